// sockmap programs: sk_msg on sends (13-byte messages are refused), sk_skb
// stream parser + verdict and sk_skb verdict on receives. Each counts its runs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum { C_MSG, C_PARSER, C_STREAM_VERDICT, C_VERDICT, C_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} msg_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} stream_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdict_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("sk_msg")
int msg_verdict(struct sk_msg_md *msg)
{
	bump(C_MSG);
	return msg->size == 13 ? SK_DROP : SK_PASS;
}

SEC("sk_skb/stream_parser")
int skb_parser(struct __sk_buff *skb)
{
	bump(C_PARSER);
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int skb_stream_verdict(struct __sk_buff *skb)
{
	bump(C_STREAM_VERDICT);
	return SK_PASS;
}

SEC("sk_skb/verdict")
int skb_verdict(struct __sk_buff *skb)
{
	bump(C_VERDICT);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
