// profile: sample stacks on every CPU at a fixed rate (perf_event), counting
// each distinct (process, kernel stack, user stack).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_DEPTH 64

const volatile __u32 target_tgid = 0;	/* 0: every process */

struct sample_key {
	__u32 pid;
	__s32 kernel_stack;	/* stack ids, negative when not available */
	__s32 user_stack;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sample_key);
	__type(value, __u64);
} counts SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), one = 1, *n;
	struct sample_key k = {};

	if (target_tgid && (id >> 32) != target_tgid)
		return 0;
	k.pid = id >> 32;
	bpf_get_current_comm(&k.comm, sizeof(k.comm));
	k.kernel_stack = bpf_get_stackid(ctx, &stacks, 0);
	k.user_stack = k.pid ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	n = bpf_map_lookup_elem(&counts, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
