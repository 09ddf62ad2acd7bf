/* User-space probes (libbpf.h): uprobe/uretprobe, uprobe.multi and USDT.
 * pylibbpf resolves symbols itself (pylibbpf.elf) and passes file offsets. */

struct bpf_uprobe_opts {
    size_t sz;
    size_t ref_ctr_offset;
    __u64 bpf_cookie;
    bool retprobe;
    const char *func_name;
    ...;
};
struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog, int pid,
                                                 const char *binary_path, size_t func_offset,
                                                 const struct bpf_uprobe_opts *opts);

struct bpf_uprobe_multi_opts {
    size_t sz;
    const char **syms;
    const unsigned long *offsets;
    const unsigned long *ref_ctr_offsets;
    const __u64 *cookies;
    size_t cnt;
    bool retprobe;
    bool session;
    ...;
};
struct bpf_link *bpf_program__attach_uprobe_multi(const struct bpf_program *prog, int pid,
                                                  const char *binary_path,
                                                  const char *func_pattern,
                                                  const struct bpf_uprobe_multi_opts *opts);

struct bpf_usdt_opts { size_t sz; __u64 usdt_cookie; ...; };
struct bpf_link *bpf_program__attach_usdt(const struct bpf_program *prog, int pid,
                                          const char *binary_path, const char *usdt_provider,
                                          const char *usdt_name,
                                          const struct bpf_usdt_opts *opts);
