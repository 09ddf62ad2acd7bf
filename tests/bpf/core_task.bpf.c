// CO-RE: read task_struct fields on a syscall tracepoint.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct seen {
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct seen);
} seen SEC(".maps");

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct seen s = {};

	s.pid = BPF_CORE_READ(task, pid);
	s.tgid = BPF_CORE_READ(task, tgid);
	s.ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&s.comm, task, comm);
	bpf_map_update_elem(&seen, &s.tgid, &s, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
