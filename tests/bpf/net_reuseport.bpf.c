// SO_REUSEPORT: every datagram goes to the socket in group[1].
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} group SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("sk_reuseport")
int pick_second(struct sk_reuseport_md *ctx)
{
	__u32 zero = 0, one = 1;
	__u64 *c = bpf_map_lookup_elem(&counts, &zero);

	if (c)
		__sync_fetch_and_add(c, 1);
	if (bpf_sk_select_reuseport(ctx, &group, &one, 0))
		return SK_DROP;
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
