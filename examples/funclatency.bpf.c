// funclatency: a log2 histogram of how long a user-space function takes, from ONE
// uprobe.session program: the entry leaves a timestamp in the call's session
// cookie, the return reads it back (Linux 6.13+).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 40

/* the kfuncs took no argument up to Linux 6.18; later kernels pass the context */
extern __u64 *bpf_session_cookie(void) __ksym __weak;
extern bool bpf_session_is_return(void) __ksym __weak;
extern __u64 *bpf_session_cookie___ctx(void *ctx) __ksym __weak;
extern bool bpf_session_is_return___ctx(void *ctx) __ksym __weak;

/* slot s counts calls that took [2^s, 2^(s+1)) microseconds */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} usecs SEC(".maps");

__u64 calls = 0;

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

SEC("uprobe.session")
int on_call(struct pt_regs *ctx)
{
	__u64 *start, *count;
	bool is_return;
	__u32 slot;

	if (bpf_ksym_exists(bpf_session_cookie)) {
		start = bpf_session_cookie();
		is_return = bpf_session_is_return();
	} else {
		start = bpf_session_cookie___ctx(ctx);
		is_return = bpf_session_is_return___ctx(ctx);
	}
	if (!is_return) {
		*start = bpf_ktime_get_ns();	/* this call's own 8 bytes */
		return 0;			/* 0: run the return probe too */
	}
	slot = log2_slot((bpf_ktime_get_ns() - *start) / 1000);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	count = bpf_map_lookup_elem(&usecs, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	__sync_fetch_and_add(&calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
