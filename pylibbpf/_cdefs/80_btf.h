/* the kernel's BTF: parsed once per process and shared (_csrc/kbtf.c); btf__free of it
 * does nothing */
struct btf *btf__load_vmlinux_btf(void);
int pylibbpf_kbtf_cached(void);
int pylibbpf_kbtf_unchecked(void);
struct btf *btf__parse(const char *path, void *btf_ext);
struct btf *btf__parse_split(const char *path, struct btf *base_btf);
void btf__free(struct btf *btf);
__u32 btf__type_cnt(const struct btf *btf);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
__s32 btf__find_by_name(const struct btf *btf, const char *type_name);
__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
const void *btf__raw_data(const struct btf *btf, __u32 *size);
__s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
int btf__resolve_type(const struct btf *btf, __u32 type_id);

struct btf_dump;
void btf_dump__free(struct btf_dump *d);
int btf_dump__dump_type(struct btf_dump *d, __u32 id);

/* shim: btf_dump prints (with a va_list) into a growing text buffer */
struct pylibbpf_strbuf { char *data; size_t len; size_t cap; int err; };
struct btf_dump *pylibbpf_btf_dump_new(const struct btf *btf, struct pylibbpf_strbuf *buf);
void pylibbpf_strbuf_free(struct pylibbpf_strbuf *buf);
int pylibbpf_btf_check(const struct btf *btf, char *msg, size_t len);
/* shim: struct_ops layouts libbpf would crash on (before open, before load) */
int pylibbpf_object_precheck(const char *path, const void *buf, size_t size, char *msg, size_t len);
int pylibbpf_struct_ops_map_check(const struct btf *btf, const char *map, __u32 type_id,
                                  char *msg, size_t len);
/* shims: Object's pre-checks and open (its options set in C), the checks before its load,
 * and why the last of them in this thread refused the object */
struct bpf_object *pylibbpf_object_open(const char *path, const void *buf, size_t size,
                                        const char *name, const char *kconfig,
                                        const char *btf_custom_path, const char *pin_root_path,
                                        const char *token_path, int relaxed_maps,
                                        __u32 kernel_log_level, const char *verdicts);
int pylibbpf_object_load_check(const struct bpf_object *obj, int check_btf);
const char *pylibbpf_refusal(void);
