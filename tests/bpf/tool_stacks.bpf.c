// For the symbolization tests: a user stack from a uprobe (C++ method), a
// kernel and a user stack from a syscall tracepoint.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 32 * sizeof(__u64));
} stacks SEC(".maps");

/* [0] uprobe user stack, [1] tracepoint kernel stack, [2] tracepoint user stack;
 * stack id + 1 (0: nothing recorded) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __s64);
} ids SEC(".maps");

const volatile __u32 target_tgid = 0;

static __always_inline void record(__u32 slot, long id)
{
	__s64 v = id + 1;

	bpf_map_update_elem(&ids, &slot, &v, BPF_ANY);
}

SEC("uprobe")
int on_method(struct pt_regs *ctx)
{
	record(0, bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK));
	return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	record(1, bpf_get_stackid(ctx, &stacks, 0));
	record(2, bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
