int bpf_link__fd(const struct bpf_link *link);
const char *bpf_link__pin_path(const struct bpf_link *link);
int bpf_link__pin(struct bpf_link *link, const char *path);
int bpf_link__unpin(struct bpf_link *link);
int bpf_link__update_program(struct bpf_link *link, struct bpf_program *prog);
void bpf_link__disconnect(struct bpf_link *link);
int bpf_link__detach(struct bpf_link *link);
int bpf_link__destroy(struct bpf_link *link);
struct bpf_link *bpf_link__open(const char *path);

struct bpf_link_update_opts { size_t sz; __u32 flags; __u32 old_prog_fd; __u32 old_map_fd; ...; };
int bpf_link_update(int link_fd, int new_prog_fd, const struct bpf_link_update_opts *opts);
int bpf_link_detach(int link_fd);
int bpf_link_get_fd_by_id(__u32 id);
int bpf_link_get_next_id(__u32 start_id, __u32 *next_id);

struct bpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    ...;
};
int bpf_link_get_info_by_fd(int link_fd, struct bpf_link_info *info, __u32 *info_len);
union bpf_iter_link_info;
struct bpf_link_create_opts {
    size_t sz;
    __u32 flags;
    union bpf_iter_link_info *iter_info;
    __u32 iter_info_len;
    __u32 target_btf_id;
    union {
        struct { __u64 bpf_cookie; } perf_event;
        struct {
            __u32 flags; __u32 cnt; const char **syms; const unsigned long *addrs;
            const __u64 *cookies;
        } kprobe_multi;
        struct {
            __u32 flags; __u32 cnt; const char *path; const unsigned long *offsets;
            const unsigned long *ref_ctr_offsets; const __u64 *cookies; __u32 pid;
        } uprobe_multi;
        struct { __u64 cookie; } tracing;
        struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; } netfilter;
        struct { __u32 relative_fd; __u32 relative_id; __u64 expected_revision; } tcx;
        struct { __u32 relative_fd; __u32 relative_id; __u64 expected_revision; } netkit;
    };
    ...;
};
int bpf_link_create(int prog_fd, int target_fd, enum bpf_attach_type attach_type,
                    const struct bpf_link_create_opts *opts);
