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
    size_t dropped;
    size_t limit;
};
struct pylibbpf_waker { int epfd; int evfd; };
int pylibbpf_waker_init(struct pylibbpf_waker *w, int inner_fd);
void pylibbpf_waker_wake(struct pylibbpf_waker *w);
void pylibbpf_waker_close(struct pylibbpf_waker *w);
struct pylibbpf_collector *pylibbpf_collector_new(uint32_t stride, uint32_t ncpus);
void pylibbpf_collector_free(struct pylibbpf_collector *c);
void pylibbpf_collector_reset(struct pylibbpf_collector *c);
void pylibbpf_collector_target(struct pylibbpf_collector *c, void *buf, size_t cap);
ring_buffer_sample_fn pylibbpf_rb_collect_fn(void);
int pylibbpf_rb_poll(struct ring_buffer *rb, struct pylibbpf_waker *w, int timeout_ms, size_t n);
int ring_buffer__consume_n(struct ring_buffer *rb, size_t n);
int pylibbpf_pb_poll(struct perf_buffer *pb, struct pylibbpf_waker *w, int timeout_ms);
struct perf_buffer *pylibbpf_pb_new(int map_fd, size_t page_cnt, struct pylibbpf_collector *c);
int pylibbpf_urb_submit(struct user_ring_buffer *rb, const void *data, __u32 size, int timeout_ms);
int pylibbpf_waker_wait(struct pylibbpf_waker *w, int timeout_ms);
/* zero-copy batch drains (events.c) */
struct pylibbpf_scan { uint64_t begin; uint64_t end; size_t count; int regular; };
void pylibbpf_ring_scan(const uint64_t *consumer, const uint64_t *producer, const char *data,
                        size_t size, uint32_t rec_size, size_t max, struct pylibbpf_scan *s);
size_t pylibbpf_ring_copy(const char *data, size_t size, uint64_t begin, uint64_t end,
                          uint32_t stride, char *out);
void pylibbpf_ring_release(uint64_t *consumer, uint64_t pos);
int pylibbpf_blank(void *addr, size_t len);
int64_t pylibbpf_pb_tail(struct perf_buffer *pb, size_t idx);
long pylibbpf_pb_scan(struct perf_buffer *pb, size_t idx, struct pylibbpf_collector *c,
                      uint32_t cpu, uint64_t *tail, char *out, uint32_t stride, size_t cap,
                      uint32_t *cpus, size_t min_run);
struct pylibbpf_pb_run { uint64_t start; size_t count; uint32_t span; uint64_t size;
                         size_t idx; uint64_t avail; };
long pylibbpf_pb_next(struct perf_buffer *pb, size_t n, struct pylibbpf_collector *c,
                      const uint32_t *cpus, uint64_t *start, uint64_t *tails, uint32_t stride,
                      size_t max, size_t min_run, struct pylibbpf_pb_run *out);
int pylibbpf_pb_release_all(struct perf_buffer *pb, size_t n, const uint64_t *start,
                            const uint64_t *tails);
long pylibbpf_pb_run(struct perf_buffer *pb, size_t idx, struct pylibbpf_collector *c,
                     uint32_t cpu, uint64_t *tail, uint32_t stride, size_t max,
                     struct pylibbpf_pb_run *out);
int pylibbpf_map_at(int fd, void *addr, size_t len, size_t off, int writable);
int pylibbpf_pb_release(struct perf_buffer *pb, size_t idx, uint64_t tail);
int pylibbpf_ring_map_at(int fd, void *addr, size_t len, size_t page);
int pylibbpf_ring_move(void *old, void *to, size_t len);
int64_t pylibbpf_pb_avail(struct perf_buffer *pb, size_t idx);
