/* batch map operations */
struct bpf_map_batch_opts { size_t sz; __u64 elem_flags; __u64 flags; ...; };
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
                         __u32 *count, const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys,
                                    void *values, __u32 *count,
                                    const struct bpf_map_batch_opts *opts);
int bpf_map_update_batch(int fd, const void *keys, const void *values, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_delete_batch(int fd, const void *keys, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_elem_flags(int fd, const void *key, void *value, __u64 flags);
/* shim (events.c): unsigned-int key/value maps without byte packing */
int pylibbpf_update_uu(int fd, uint64_t key, uint32_t ksize, uint64_t value, uint32_t vsize,
                       uint64_t flags);
int pylibbpf_lookup_uu(int fd, uint64_t key, uint32_t ksize, uint64_t *value);
uint64_t pylibbpf_lookup_uu_v(int fd, uint64_t key, uint32_t ksize);
