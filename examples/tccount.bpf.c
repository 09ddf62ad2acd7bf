// tccount: packets and bytes leaving an interface, per IPv4 destination (tc).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0

struct traffic {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);		/* destination address, network byte order */
	__type(value, struct traffic);
} by_destination SEC(".maps");

SEC("tc")
int count_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct traffic *t, zero = {};
	__u32 daddr;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	daddr = ip->daddr;
	t = bpf_map_lookup_elem(&by_destination, &daddr);
	if (!t) {
		bpf_map_update_elem(&by_destination, &daddr, &zero, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&by_destination, &daddr);
		if (!t)
			return TC_ACT_OK;
	}
	__sync_fetch_and_add(&t->packets, 1);
	__sync_fetch_and_add(&t->bytes, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
