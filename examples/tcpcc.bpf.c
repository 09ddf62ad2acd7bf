// tcpcc: a TCP congestion control written in BPF (struct_ops). It behaves
// like Reno (through the kernel's own tcp_reno_* kfuncs) and counts how often
// the kernel calls each of its operations.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

/* calls per operation: [0] init, [1] ssthresh, [2] cong_avoid, [3] undo_cwnd */
__u64 calls[4] = {};

SEC("struct_ops/pyl_init")
void BPF_PROG(pyl_init, struct sock *sk)
{
	__sync_fetch_and_add(&calls[0], 1);
}

SEC("struct_ops/pyl_ssthresh")
__u32 BPF_PROG(pyl_ssthresh, struct sock *sk)
{
	__sync_fetch_and_add(&calls[1], 1);
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/pyl_cong_avoid")
void BPF_PROG(pyl_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&calls[2], 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/pyl_undo_cwnd")
__u32 BPF_PROG(pyl_undo_cwnd, struct sock *sk)
{
	__sync_fetch_and_add(&calls[3], 1);
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops.link")
struct tcp_congestion_ops pylibbpf_cc = {
	.init = (void *)pyl_init,
	.ssthresh = (void *)pyl_ssthresh,
	.cong_avoid = (void *)pyl_cong_avoid,
	.undo_cwnd = (void *)pyl_undo_cwnd,
	.name = "pylibbpf_cc",
};

char LICENSE[] SEC("license") = "GPL";
