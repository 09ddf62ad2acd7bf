// mallocsize: a log2 histogram of malloc() request sizes, from a uprobe on libc.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 40

/* slot s counts sizes in [2^s, 2^(s+1)); slot 0 also counts 0 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} sizes SEC(".maps");

__u64 calls = 0;
__u64 bytes = 0;

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;

	/* floor(log2(v)), no loops: old clang has no BPF lowering for clz */
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

SEC("uprobe")
int BPF_UPROBE(on_malloc, size_t size)
{
	__u32 slot = log2_slot(size);
	__u64 *count;

	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	count = bpf_map_lookup_elem(&sizes, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	__sync_fetch_and_add(&calls, 1);
	__sync_fetch_and_add(&bytes, size);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
