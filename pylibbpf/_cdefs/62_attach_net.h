/* Networking attach kinds: cgroup, netns, sockmap, netfilter, tcx, netkit, tc (clsact),
 * and BPF_PROG_ATTACH / BPF_PROG_QUERY with options. Declarations as in libbpf.h / bpf.h. */
struct bpf_link *bpf_program__attach_cgroup(const struct bpf_program *prog, int cgroup_fd);
struct bpf_link *bpf_program__attach_netns(const struct bpf_program *prog, int netns_fd);
struct bpf_link *bpf_program__attach_sockmap(const struct bpf_program *prog, int map_fd);

struct bpf_netfilter_opts {
    size_t sz;
    __u32 pf;
    __u32 hooknum;
    __s32 priority;
    __u32 flags;
    ...;
};
struct bpf_link *bpf_program__attach_netfilter(const struct bpf_program *prog,
                                               const struct bpf_netfilter_opts *opts);

struct bpf_tcx_opts {
    size_t sz;
    __u32 flags;
    __u32 relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
struct bpf_link *bpf_program__attach_tcx(const struct bpf_program *prog, int ifindex,
                                         const struct bpf_tcx_opts *opts);

struct bpf_netkit_opts {
    size_t sz;
    __u32 flags;
    __u32 relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
struct bpf_link *bpf_program__attach_netkit(const struct bpf_program *prog, int ifindex,
                                            const struct bpf_netkit_opts *opts);

/* tc through netlink (clsact qdisc + direct-action cls_bpf filters) */
enum bpf_tc_attach_point { BPF_TC_INGRESS, BPF_TC_EGRESS, BPF_TC_CUSTOM, ... };
enum bpf_tc_flags { BPF_TC_F_REPLACE, ... };
struct bpf_tc_hook {
    size_t sz;
    int ifindex;
    enum bpf_tc_attach_point attach_point;
    __u32 parent;
    ...;
};
struct bpf_tc_opts {
    size_t sz;
    int prog_fd;
    __u32 flags;
    __u32 prog_id;
    __u32 handle;
    __u32 priority;
    ...;
};
int bpf_tc_hook_create(struct bpf_tc_hook *hook);
int bpf_tc_hook_destroy(struct bpf_tc_hook *hook);
int bpf_tc_attach(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);
int bpf_tc_detach(const struct bpf_tc_hook *hook, const struct bpf_tc_opts *opts);
int bpf_tc_query(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);

/* BPF_PROG_ATTACH / BPF_PROG_DETACH / BPF_PROG_QUERY with options */
struct bpf_prog_attach_opts {
    size_t sz;
    __u32 flags;
    int replace_prog_fd;
    int relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
struct bpf_prog_detach_opts {
    size_t sz;
    __u32 flags;
    int relative_fd;
    __u32 relative_id;
    __u64 expected_revision;
    ...;
};
int bpf_prog_attach_opts(int prog_fd, int target, enum bpf_attach_type type,
                         const struct bpf_prog_attach_opts *opts);
int bpf_prog_detach_opts(int prog_fd, int target, enum bpf_attach_type type,
                         const struct bpf_prog_detach_opts *opts);
struct bpf_prog_query_opts {
    size_t sz;
    __u32 query_flags;
    __u32 attach_flags;
    __u32 *prog_ids;
    __u32 count;
    __u32 *prog_attach_flags;
    __u32 *link_ids;
    __u32 *link_attach_flags;
    __u64 revision;
    ...;
};
int bpf_prog_query_opts(int target, enum bpf_attach_type type, struct bpf_prog_query_opts *opts);

#define BPF_F_ALLOW_OVERRIDE ...
#define BPF_F_ALLOW_MULTI ...
#define BPF_F_REPLACE ...
#define BPF_F_BEFORE ...
#define BPF_F_AFTER ...
#define BPF_F_ID ...
#define BPF_F_QUERY_EFFECTIVE ...
#define BPF_F_NETFILTER_IP_DEFRAG ...
#define BPF_F_LINK ...
