// Network-namespace hooks: sk_lookup steers connections to port 7300 to the
// socket in target[0]; the flow dissector counts the IPv4 packets it parses.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("sk_lookup")
int steer_7300(struct bpf_sk_lookup *ctx)
{
	struct bpf_sock *sk;
	__u32 zero = 0;
	long err;

	if (ctx->local_port != 7300)
		return SK_PASS;
	bump(0);
	sk = bpf_map_lookup_elem(&target, &zero);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

SEC("flow_dissector")
int dissect_ipv4(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	struct iphdr ip;

	if (keys->n_proto != bpf_htons(ETH_P_IP))
		return BPF_DROP;
	if (bpf_skb_load_bytes(skb, keys->nhoff, &ip, sizeof(ip)))
		return BPF_DROP;
	bump(1);
	keys->addr_proto = ETH_P_IP;
	keys->ipv4_src = ip.saddr;
	keys->ipv4_dst = ip.daddr;
	keys->ip_proto = ip.protocol;
	keys->thoff = keys->nhoff + ip.ihl * 4;
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
