/* shim (events.c): C collectors that batch ring/perf buffer records for Python */
struct pylibbpf_collector {
    char *buf;
    size_t used;
    size_t cap;
    uint32_t *sizes;
    uint32_t *cpus;
    size_t count;
    size_t scap;
    uint32_t stride;
    int err;
    uint64_t *lost;
    uint32_t ncpus;
    uint64_t lost_total;
    int external;
};
struct pylibbpf_collector *pylibbpf_collector_new(uint32_t stride, uint32_t ncpus);
void pylibbpf_collector_free(struct pylibbpf_collector *c);
void pylibbpf_collector_reset(struct pylibbpf_collector *c);
void pylibbpf_collector_target(struct pylibbpf_collector *c, void *buf, size_t cap);
ring_buffer_sample_fn pylibbpf_rb_collect_fn(void);
int pylibbpf_rb_poll(struct ring_buffer *rb, int timeout_ms, size_t n);
int ring_buffer__consume_n(struct ring_buffer *rb, size_t n);
struct perf_buffer *pylibbpf_pb_new(int map_fd, size_t page_cnt, struct pylibbpf_collector *c);
int pylibbpf_urb_submit(struct user_ring_buffer *rb, const void *data, __u32 size, int timeout_ms);
