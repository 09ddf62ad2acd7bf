// Harmless programs of link types owned by other attach kinds, used by
// tests/test_link.py to check that Link.info decodes every link type.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tcx/ingress")
int tcx_pass(struct __sk_buff *skb)
{
	return TCX_PASS;
}

SEC("cgroup_skb/egress")
int cgroup_pass(struct __sk_buff *skb)
{
	return 1;
}

SEC("sk_lookup")
int lookup_pass(struct bpf_sk_lookup *ctx)
{
	return SK_PASS;
}

SEC("netfilter")
int nf_accept(struct bpf_nf_ctx *ctx)
{
	return 1; /* NF_ACCEPT */
}

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} socks SEC(".maps");

SEC("sk_skb/stream_verdict")
int verdict_pass(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("uprobe")
int on_uprobe(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe.multi")
int on_uprobe_multi(struct pt_regs *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
