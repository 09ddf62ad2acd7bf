// For `pylibbpf run`: a ring-buffer event and a hash-map count per getpgid() call,
// a perf-buffer event per getsid() call, and a global counter.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__s32 arg;
	char comm[16];
};

const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

__u64 total = 0;
__u64 uprobe_hits = 0;
const volatile __u32 magic = 4242;

static __always_inline void fill(struct event *e, struct trace_event_raw_sys_enter *ctx)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->arg = (__s32)ctx->args[0];
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n;
	struct event *e;

	if ((__s32)ctx->args[0] != (__s32)magic)
		return 0;
	n = bpf_map_lookup_elem(&calls, &pid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);
	__sync_fetch_and_add(&total, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	fill(e, ctx);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getsid")
int on_getsid(struct trace_event_raw_sys_enter *ctx)
{
	struct event e = {};

	if ((__s32)ctx->args[0] != (__s32)magic)
		return 0;
	fill(&e, ctx);
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

SEC("uprobe")
int needs_target(void *ctx)
{
	__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
