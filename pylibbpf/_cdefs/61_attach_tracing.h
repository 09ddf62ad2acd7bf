/* Kernel tracing attach kinds (libbpf.h): tracepoints, raw tracepoints,
 * trampolines (fentry/fexit/fmod_ret/tp_btf, LSM, freplace), kprobes,
 * kprobe_multi, ksyscall, perf events, bpf_iter and struct_ops. */

struct bpf_tracepoint_opts { size_t sz; __u64 bpf_cookie; ...; };
struct bpf_link *bpf_program__attach_tracepoint_opts(const struct bpf_program *prog,
                                                     const char *tp_category,
                                                     const char *tp_name,
                                                     const struct bpf_tracepoint_opts *opts);

struct bpf_raw_tracepoint_opts { size_t sz; __u64 cookie; ...; };
struct bpf_link *bpf_program__attach_raw_tracepoint_opts(const struct bpf_program *prog,
                                                         const char *tp_name,
                                                         struct bpf_raw_tracepoint_opts *opts);

struct bpf_trace_opts { size_t sz; __u64 cookie; ...; };
struct bpf_link *bpf_program__attach_trace_opts(const struct bpf_program *prog,
                                                const struct bpf_trace_opts *opts);
struct bpf_link *bpf_program__attach_lsm(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach_freplace(const struct bpf_program *prog,
                                              int target_fd, const char *attach_func_name);

enum probe_attach_mode {
    PROBE_ATTACH_MODE_DEFAULT, PROBE_ATTACH_MODE_LEGACY, PROBE_ATTACH_MODE_PERF,
    PROBE_ATTACH_MODE_LINK,
    ...
};
struct bpf_kprobe_opts {
    size_t sz;
    __u64 bpf_cookie;
    size_t offset;
    bool retprobe;
    enum probe_attach_mode attach_mode;
    ...;
};
struct bpf_link *bpf_program__attach_kprobe_opts(const struct bpf_program *prog,
                                                 const char *func_name,
                                                 const struct bpf_kprobe_opts *opts);

struct bpf_kprobe_multi_opts {
    size_t sz;
    const char **syms;
    const unsigned long *addrs;
    const unsigned long long *cookies;  /* __u64: unsigned long long in the kernel headers */
    size_t cnt;
    bool retprobe;
    bool session;
    ...;
};
struct bpf_link *bpf_program__attach_kprobe_multi_opts(const struct bpf_program *prog,
                                                       const char *pattern,
                                                       const struct bpf_kprobe_multi_opts *opts);

struct bpf_ksyscall_opts { size_t sz; __u64 bpf_cookie; bool retprobe; ...; };
struct bpf_link *bpf_program__attach_ksyscall(const struct bpf_program *prog,
                                              const char *syscall_name,
                                              const struct bpf_ksyscall_opts *opts);

struct bpf_perf_event_opts { size_t sz; __u64 bpf_cookie; bool force_ioctl_attach; bool dont_enable; ...; };
struct bpf_link *bpf_program__attach_perf_event_opts(const struct bpf_program *prog, int pfd,
                                                     const struct bpf_perf_event_opts *opts);

enum bpf_cgroup_iter_order {
    BPF_CGROUP_ITER_ORDER_UNSPEC, BPF_CGROUP_ITER_SELF_ONLY, BPF_CGROUP_ITER_DESCENDANTS_PRE,
    BPF_CGROUP_ITER_DESCENDANTS_POST, BPF_CGROUP_ITER_ANCESTORS_UP,
    ...
};
union bpf_iter_link_info {
    struct { __u32 map_fd; } map;
    struct { enum bpf_cgroup_iter_order order; __u32 cgroup_fd; __u64 cgroup_id; } cgroup;
    struct { __u32 tid; __u32 pid; __u32 pid_fd; } task;
};
struct bpf_iter_attach_opts {
    size_t sz;
    union bpf_iter_link_info *link_info;
    __u32 link_info_len;
    ...;
};
struct bpf_link *bpf_program__attach_iter(const struct bpf_program *prog,
                                          const struct bpf_iter_attach_opts *opts);
int bpf_iter_create(int link_fd);

struct bpf_link *bpf_map__attach_struct_ops(const struct bpf_map *map);
int bpf_link__update_map(struct bpf_link *link, const struct bpf_map *map);
