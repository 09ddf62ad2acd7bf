// XDP: bounce frames that start with 0xAA after rewriting their first bytes,
// drop runts, pass the rest. Counts what it sees per action.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} actions SEC(".maps");

const volatile __u32 min_len = 14;

SEC("xdp")
int xdp_rewrite(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 action = XDP_PASS;
	__u64 *count;

	if (data + min_len > end) {
		action = XDP_DROP;
	} else if (data + 2 <= end && data[0] == 0xAA) {
		data[0] = 0xBB;
		data[1] = 0xCC;
		action = XDP_TX;
	}
	count = bpf_map_lookup_elem(&actions, &action);
	if (count)
		__sync_fetch_and_add(count, 1);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
