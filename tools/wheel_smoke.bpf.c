// The wheel smoke test's object (tools/wheel_smoke.py), compiled by ./dev.sh wheel on
// the build machine: the pristine machines that install the wheel have no clang.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 seq;
};
struct event *unused_event __attribute__((unused));  /* struct event into BTF */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} events SEC(".maps");

const volatile __u32 target_pid = 0;
__u64 hits = 0;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct event *e;

	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = target_pid;
	e->seq = __sync_fetch_and_add(&hits, 1) + 1;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
