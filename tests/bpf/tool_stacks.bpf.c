// For the symbolization tests: a user stack from a uprobe (C++ method), a
// kernel and a user stack from a syscall tracepoint.
//
// Each recorded stack has a stack map of its own. A stack map stores a stack in
// the bucket its hash selects; two different stacks in one map can select the
// same bucket, and bpf_get_stackid() then fails with -EEXIST (without
// BPF_F_REUSE_STACKID) or evicts the first stack, so that its id now names the
// other one (with it). User stacks move with ASLR, so in one shared map the
// three stacks collided now and then. One stack per map cannot collide; with
// BPF_F_REUSE_STACKID a slot that records again keeps its latest stack.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define STACK_MAP(name)						\
	struct {						\
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);		\
		__uint(max_entries, 16);			\
		__uint(key_size, sizeof(__u32));		\
		__uint(value_size, 32 * sizeof(__u64));		\
	} name SEC(".maps")

STACK_MAP(method_stacks);	/* slot 0: the uprobe's user stack */
STACK_MAP(kernel_stacks);	/* slot 1: the tracepoint's kernel stack */
STACK_MAP(user_stacks);		/* slot 2: the tracepoint's user stack */

/* [0] uprobe user stack, [1] tracepoint kernel stack, [2] tracepoint user stack:
 * stack id + 1 (0: nothing recorded; below 0: bpf_get_stackid failed with
 * -errno = value - 1) */
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
	record(0, bpf_get_stackid(ctx, &method_stacks,
				  BPF_F_USER_STACK | BPF_F_REUSE_STACKID));
	return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	record(1, bpf_get_stackid(ctx, &kernel_stacks, BPF_F_REUSE_STACKID));
	record(2, bpf_get_stackid(ctx, &user_stacks,
				  BPF_F_USER_STACK | BPF_F_REUSE_STACKID));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
