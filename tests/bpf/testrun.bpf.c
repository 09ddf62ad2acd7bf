// Programs for BPF_PROG_TEST_RUN with a context: a syscall program that
// writes its result back into its ctx, and a tc program reading __sk_buff.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct args {
	__u32 a;
	__u32 b;
	__u64 out;
};

SEC("syscall")
int compute(struct args *ctx)
{
	ctx->out = (__u64)ctx->a * 1000 + ctx->b;
	return ctx->a + ctx->b;
}

SEC("tc")
int mark_to_retval(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;

	skb->mark = mark + 1;
	return mark * 2;
}

char LICENSE[] SEC("license") = "GPL";
