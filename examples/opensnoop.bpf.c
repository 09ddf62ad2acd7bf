// opensnoop: one ring-buffer event per openat(), from the syscalls tracepoint.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 ignore_tgid = 0;	/* set from Python before load: the tool itself */

struct event {
	__u32 pid;
	__s32 flags;
	char comm[16];
	char filename[256];
};

/* makes clang put struct event into the object's BTF, for Python to decode */
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_openat")
int on_openat(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;

	if (tgid == ignore_tgid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = tgid;
	e->flags = (__s32)ctx->args[2];
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->filename, sizeof(e->filename), (const char *)ctx->args[1]);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
