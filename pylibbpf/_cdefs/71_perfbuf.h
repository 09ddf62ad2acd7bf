/* perf buffers and user ring buffers (records go to a C collector, see 72_events.h) */
struct perf_buffer;
void perf_buffer__free(struct perf_buffer *pb);
int perf_buffer__epoll_fd(const struct perf_buffer *pb);
int perf_buffer__poll(struct perf_buffer *pb, int timeout_ms);
int perf_buffer__consume(struct perf_buffer *pb);
size_t perf_buffer__buffer_cnt(const struct perf_buffer *pb);
int perf_buffer__buffer_fd(const struct perf_buffer *pb, size_t buf_idx);

struct user_ring_buffer;
struct user_ring_buffer_opts { size_t sz; ...; };
struct user_ring_buffer *user_ring_buffer__new(int map_fd, const struct user_ring_buffer_opts *opts);
void user_ring_buffer__free(struct user_ring_buffer *rb);
