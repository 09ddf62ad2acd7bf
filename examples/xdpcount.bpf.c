// xdpcount: count the packets arriving on an interface by IP protocol (XDP),
// letting every packet through.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806

/* key: IP protocol number (17 = UDP …), 256 = ARP, 257 = other */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 258);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 key = 257;
	__u64 *n;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) <= end)
			key = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) <= end)
			key = ip6->nexthdr;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		key = 256;
	}
	n = bpf_map_lookup_elem(&packets, &key);
	if (n)
		*n += 1;	/* per-CPU value: no atomics needed */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
