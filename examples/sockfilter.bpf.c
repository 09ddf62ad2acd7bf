// sockfilter: a socket filter that counts the datagrams a UDP socket receives
// and drops those whose payload starts with "DROP".
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define UDP_HEADER 8	/* a UDP socket's filter sees the packet from its UDP header */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);		/* [0] accepted, [1] dropped */
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

SEC("socket")
int filter(struct __sk_buff *skb)
{
	char head[4] = {};
	__u32 key = 0;
	__u64 *n;

	bpf_skb_load_bytes(skb, UDP_HEADER, head, sizeof(head));
	if (head[0] == 'D' && head[1] == 'R' && head[2] == 'O' && head[3] == 'P')
		key = 1;
	n = bpf_map_lookup_elem(&verdicts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return key ? 0 : skb->len;	/* 0 drops, a length keeps that many bytes */
}

char LICENSE[] SEC("license") = "GPL";
