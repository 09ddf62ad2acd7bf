// Prints to the program's BPF stdout and stderr (kernel streams, Linux 6.17+)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* the kernel's kfunc (its BTF: bpf_stream_vprintk_impl(int stream_id, const char
 * *fmt__str, const void *args, u32 len__sz, void *aux__prog); the verifier
 * supplies aux__prog); libbpf's bpf_stream_printk() macro calls bpf_stream_vprintk */
extern int bpf_stream_vprintk_impl(int stream_id, const char *fmt__str, const void *args,
				   __u32 len__sz, void *aux__prog) __ksym __weak;
#define bpf_stream_vprintk(id, fmt, args, len) bpf_stream_vprintk_impl(id, fmt, args, len, NULL)

int ret_out = 1, ret_err = 1;

SEC("syscall")
int say(void *ctx)
{
	if (!bpf_ksym_exists(bpf_stream_vprintk_impl))
		return 1;
	ret_out = bpf_stream_printk(BPF_STDOUT, "hello %d from %s\n", 42, "bpf");
	ret_err = bpf_stream_printk(BPF_STDERR, "oops: %llu\n", 7ULL);
	return 0;
}

int tp_ret = 1;

/* for `pylibbpf run`: a line per getpgid(4243) */
SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[0] != 4243 || !bpf_ksym_exists(bpf_stream_vprintk_impl))
		return 0;
	tp_ret = bpf_stream_printk(BPF_STDOUT, "getpgid(%d)\n", (int)ctx->args[0]);
	bpf_stream_printk(BPF_STDERR, "warned %d\n", 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
