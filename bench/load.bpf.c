// The open+load benchmark's object: five tracepoint programs with CO-RE
// relocations (field offsets, existence checks, string reads through
// pointers), four maps of different kinds and the three global-data sections,
// so that opening and loading it does what a small real tool's does: parse its
// BTF, load the kernel's, relocate, create maps and load every program.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct exec_event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 level;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct exec_event);
} last SEC(".maps");

const volatile __u32 target_tgid = 0;   /* .rodata */
__u64 seen = 0;                          /* .bss */
__u32 sample_rate = 1;                   /* .data */

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		(*v)++;
}

static __always_inline int fill(struct exec_event *e)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	e->pid = BPF_CORE_READ(t, tgid);
	if (target_tgid && e->pid != target_tgid)
		return 1;
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = BPF_CORE_READ(t, real_cred, uid.val);
	if (bpf_core_field_exists(t->nsproxy))
		e->level = BPF_CORE_READ(t, nsproxy, pid_ns_for_children, level);
	BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
	return 0;
}

SEC("tp/syscalls/sys_enter_execve")
int on_execve(void *ctx)
{
	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	if (fill(e)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	bpf_ringbuf_submit(e, 0);
	bump(0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct exec_event e = {};
	__u64 one = 1, *n;

	if (fill(&e))
		return 0;
	n = bpf_map_lookup_elem(&counts, &e.pid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &e.pid, &one, BPF_NOEXIST);
	bpf_map_update_elem(&last, &e.pid, &e, BPF_ANY);
	bump(1);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int on_exit(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u32 pid = BPF_CORE_READ(t, tgid);
	int code = BPF_CORE_READ(t, exit_code);

	bpf_map_delete_elem(&counts, &pid);
	bpf_map_delete_elem(&last, &pid);
	seen += code & 0xff;
	bump(2);
	return 0;
}

SEC("tp/sched/sched_process_fork")
int on_fork(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 start = BPF_CORE_READ(t, start_time);
	__u32 prio = BPF_CORE_READ(t, prio);

	if (sample_rate && (start % sample_rate) == 0)
		seen += prio;
	bump(3);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int on_openat(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct exec_event e = {};
	__u64 flags = BPF_CORE_READ(t, flags);
	unsigned long total_vm = 0;

	if (bpf_core_field_exists(t->mm))
		total_vm = BPF_CORE_READ(t, mm, total_vm);
	e.pid = BPF_CORE_READ(t, pid);
	e.uid = (__u32)(flags ^ total_vm);
	BPF_CORE_READ_STR_INTO(&e.comm, t, group_leader, comm);
	bpf_map_update_elem(&last, &e.pid, &e, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
