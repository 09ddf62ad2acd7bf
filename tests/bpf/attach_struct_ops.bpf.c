// A TCP congestion control written in BPF (struct_ops): Reno, through kfuncs,
// counting how often the kernel calls it. One registered through a link
// (.struct_ops.link), one the legacy way (.struct_ops).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

/* how often each congestion control's init ran: [0] plb_cc, [1] plb_cc_legacy,
 * [2] plb_cc_v2 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} init_calls SEC(".maps");

static __always_inline void count_init(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&init_calls, &which);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("struct_ops/plb_init")
void BPF_PROG(plb_init, struct sock *sk)
{
	count_init(0);
}

SEC("struct_ops/plb_ssthresh")
__u32 BPF_PROG(plb_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/plb_cong_avoid")
void BPF_PROG(plb_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/plb_undo_cwnd")
__u32 BPF_PROG(plb_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC("struct_ops/plb_init_v2")
void BPF_PROG(plb_init_v2, struct sock *sk)
{
	count_init(2);
}

SEC("struct_ops/plb_legacy_init")
void BPF_PROG(plb_legacy_init, struct sock *sk)
{
	count_init(1);
}

SEC("struct_ops/plb_legacy_ssthresh")
__u32 BPF_PROG(plb_legacy_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/plb_legacy_cong_avoid")
void BPF_PROG(plb_legacy_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/plb_legacy_undo_cwnd")
__u32 BPF_PROG(plb_legacy_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops.link")
struct tcp_congestion_ops plb_cc = {
	.init = (void *)plb_init,
	.ssthresh = (void *)plb_ssthresh,
	.cong_avoid = (void *)plb_cong_avoid,
	.undo_cwnd = (void *)plb_undo_cwnd,
	.name = "plb_cc",
};

/* a second version of plb_cc (same name): Link.update() target */
SEC(".struct_ops.link")
struct tcp_congestion_ops plb_cc_v2 = {
	.init = (void *)plb_init_v2,
	.ssthresh = (void *)plb_ssthresh,
	.cong_avoid = (void *)plb_cong_avoid,
	.undo_cwnd = (void *)plb_undo_cwnd,
	.name = "plb_cc",
};

SEC(".struct_ops")
struct tcp_congestion_ops plb_cc_legacy = {
	.init = (void *)plb_legacy_init,
	.ssthresh = (void *)plb_legacy_ssthresh,
	.cong_avoid = (void *)plb_legacy_cong_avoid,
	.undo_cwnd = (void *)plb_legacy_undo_cwnd,
	.name = "plb_cc_legacy",
};

char LICENSE[] SEC("license") = "GPL";
