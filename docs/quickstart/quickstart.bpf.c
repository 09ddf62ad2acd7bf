// The README's quickstart: count exec() calls per command, send an event for each.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	char comm[16];
};
/* clang emits BTF only for types something global uses: this puts struct
 * event there, so Python can decode ring-buffer records by its name */
struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[16]);
	__type(value, __u64);
} counts SEC(".maps");

const volatile __u32 ignore_pid = 0;
__u64 total = 0;

SEC("tp/sched/sched_process_exec")
int on_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n;
	struct event *e;
	char comm[16];

	if (pid == ignore_pid)
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	n = bpf_map_lookup_elem(&counts, comm);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, comm, &one, BPF_NOEXIST);
	__sync_fetch_and_add(&total, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
