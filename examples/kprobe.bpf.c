// kprobe: count calls of a kernel function (do_sys_openat2) per process with a
// kprobe, and the syscall's return values with a kretsyscall.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} opens SEC(".maps");

__u64 failed = 0;

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(on_open, int dfd, const char *filename)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n = bpf_map_lookup_elem(&opens, &pid);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&opens, &pid, &one, BPF_NOEXIST);
	return 0;
}

SEC("kretsyscall/openat")
int BPF_KRETPROBE(on_openat_return, long ret)
{
	if (ret < 0)
		__sync_fetch_and_add(&failed, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
