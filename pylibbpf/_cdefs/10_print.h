/* libbpf's print callback takes a va_list, which Python cannot; a C shim
 * formats the message and hands it to pylibbpf_print_cb. */
enum libbpf_print_level { LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG };
extern "Python" void pylibbpf_print_cb(int level, const char *msg);
void pylibbpf_install_print(void);
/* capture libbpf's messages of this thread in C (see _csrc/shims.c) */
struct pylibbpf_logbuf {
    char *data;
    size_t len;
    size_t cap;
};
struct pylibbpf_logbuf *pylibbpf_log_swap(struct pylibbpf_logbuf *buf);
void pylibbpf_logbuf_free(struct pylibbpf_logbuf *buf);
void pylibbpf_log_emit(int level, const char *text);  /* tests: print one message */
int libbpf_major_version(void);
int libbpf_minor_version(void);
const char *libbpf_version_string(void);
int libbpf_strerror(int err, char *buf, size_t size);
const char *libbpf_bpf_prog_type_str(enum bpf_prog_type t);
const char *libbpf_bpf_map_type_str(enum bpf_map_type t);
const char *libbpf_bpf_attach_type_str(enum bpf_attach_type t);
const char *libbpf_bpf_link_type_str(enum bpf_link_type t);
int libbpf_prog_type_by_name(const char *name, enum bpf_prog_type *prog_type,
                             enum bpf_attach_type *expected_attach_type);
int libbpf_num_possible_cpus(void);
void pylibbpf_set_print_level(int level);
