// For the histogram tests: getpgid(v) calls of one process counted in log2 and
// linear slots of v, grouped by whether v is even or odd.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 target_tgid = 0;

struct hist_key {
	__u32 parity;	/* 0 even, 1 odd */
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} log2_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct hist_key);
	__type(value, __u64);
} linear_by_parity SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

SEC("tp/syscalls/sys_enter_getpgid")
int count(struct trace_event_raw_sys_enter *ctx)
{
	__u64 v = ctx->args[0], one = 1, *n;
	__u32 slot;
	struct hist_key k;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	slot = log2_slot(v);
	n = bpf_map_lookup_elem(&log2_slots, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	k.parity = v & 1;
	k.slot = v / 10;	/* linear buckets of 10 */
	n = bpf_map_lookup_elem(&linear_by_parity, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&linear_by_parity, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
