// Netfilter programs: one counts what it sees and accepts it, one drops.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define NF_DROP 0
#define NF_ACCEPT 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("netfilter")
int nf_count(struct bpf_nf_ctx *ctx)
{
	bump(0);
	return NF_ACCEPT;
}

SEC("netfilter")
int nf_drop(struct bpf_nf_ctx *ctx)
{
	bump(1);
	return NF_DROP;
}

char LICENSE[] SEC("license") = "GPL";
