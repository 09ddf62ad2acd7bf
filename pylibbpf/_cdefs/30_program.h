const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
bool bpf_program__autoattach(const struct bpf_program *prog);
void bpf_program__set_autoattach(struct bpf_program *prog, bool autoattach);
const struct bpf_insn *bpf_program__insns(const struct bpf_program *prog);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__pin(struct bpf_program *prog, const char *path);
int bpf_program__unpin(struct bpf_program *prog, const char *path);
enum bpf_prog_type bpf_program__type(const struct bpf_program *prog);
int bpf_program__set_type(struct bpf_program *prog, enum bpf_prog_type type);
enum bpf_attach_type bpf_program__expected_attach_type(const struct bpf_program *prog);
int bpf_program__set_expected_attach_type(struct bpf_program *prog, enum bpf_attach_type type);
__u32 bpf_program__flags(const struct bpf_program *prog);
int bpf_program__set_flags(struct bpf_program *prog, __u32 flags);
__u32 bpf_program__log_level(const struct bpf_program *prog);
int bpf_program__set_log_level(struct bpf_program *prog, __u32 log_level);
const char *bpf_program__log_buf(const struct bpf_program *prog, size_t *log_size);
int bpf_program__set_log_buf(struct bpf_program *prog, char *log_buf, size_t log_size);
int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd,
                                   const char *attach_func_name);
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);

/* raw program load (bpf.h) */
struct bpf_prog_load_opts {
    size_t sz;
    int attempts;
    enum bpf_attach_type expected_attach_type;
    __u32 prog_btf_fd;
    __u32 prog_flags;
    __u32 prog_ifindex;
    __u32 kern_version;
    __u32 attach_btf_id;
    __u32 attach_prog_fd;
    __u32 attach_btf_obj_fd;
    __u32 log_level;
    __u32 log_size;
    char *log_buf;
    __u32 log_true_size;
    __u32 token_fd;
    ...;
};
int bpf_prog_load(enum bpf_prog_type prog_type, const char *prog_name, const char *license,
                  const struct bpf_insn *insns, size_t insn_cnt, struct bpf_prog_load_opts *opts);

struct bpf_test_run_opts {
    size_t sz;
    const void *data_in;
    void *data_out;
    __u32 data_size_in;
    __u32 data_size_out;
    const void *ctx_in;
    void *ctx_out;
    __u32 ctx_size_in;
    __u32 ctx_size_out;
    __u32 retval;
    int repeat;
    __u32 duration;
    __u32 flags;
    __u32 cpu;
    __u32 batch_size;
    ...;
};
int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);

struct bpf_prog_info {
    __u32 type;
    __u32 id;
    __u8  tag[8];
    __u32 jited_prog_len;
    __u32 xlated_prog_len;
    __u64 load_time;
    __u32 created_by_uid;
    __u32 nr_map_ids;
    __u64 map_ids;
    char name[16];
    __u32 ifindex;
    __u32 btf_id;
    __u64 run_time_ns;
    __u64 run_cnt;
    __u64 recursion_misses;
    __u32 verified_insns;
    __u32 attach_btf_obj_id;
    __u32 attach_btf_id;
    /* program dumps (disassembly, source lines) */
    __u64 jited_prog_insns;
    __u64 xlated_prog_insns;
    __u32 nr_jited_ksyms;
    __u32 nr_jited_func_lens;
    __u64 jited_ksyms;
    __u64 jited_func_lens;
    __u32 func_info_rec_size;
    __u64 func_info;
    __u32 nr_func_info;
    __u32 nr_line_info;
    __u64 line_info;
    __u64 jited_line_info;
    __u32 nr_jited_line_info;
    __u32 line_info_rec_size;
    __u32 jited_line_info_rec_size;
    ...;
};
int bpf_prog_get_info_by_fd(int prog_fd, struct bpf_prog_info *info, __u32 *info_len);
int bpf_prog_get_fd_by_id(__u32 id);
int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);
enum bpf_stats_type { BPF_STATS_RUN_TIME, ... };
int bpf_enable_stats(int type);

/* BPF streams (bpf.h, libbpf 1.7; BPF_PROG_STREAM_READ_BY_FD, Linux 6.17) */
struct bpf_prog_stream_read_opts { size_t sz; ...; };
int bpf_prog_stream_read(int prog_fd, __u32 stream_id, void *buf, __u32 buf_len,
                         struct bpf_prog_stream_read_opts *opts);

/* BPF tokens (bpf.h; BPF_TOKEN_CREATE, Linux 6.9) */
struct bpf_token_create_opts { size_t sz; __u32 flags; ...; };
int bpf_token_create(int bpffs_fd, struct bpf_token_create_opts *opts);
