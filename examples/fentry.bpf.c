// fentry: time a kernel function (do_unlinkat) with fentry/fexit, which read
// arguments and return values through BTF, with less overhead than kprobes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct event {
	__u32 pid;
	__s32 ret;
	__u64 duration_ns;
	char comm[16];
	char filename[64];
};

const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} starts SEC(".maps");

SEC("fentry/do_unlinkat")
int BPF_PROG(on_unlink, int dfd, struct filename *name)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();

	bpf_map_update_elem(&starts, &id, &now, BPF_ANY);
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(on_unlink_exit, int dfd, struct filename *name, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), *start = bpf_map_lookup_elem(&starts, &id);
	struct event *e;

	if (!start)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->pid = id >> 32;
		e->ret = ret;
		e->duration_ns = bpf_ktime_get_ns() - *start;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename), name->name);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&starts, &id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
