// pyimports: every module a Python process imports, and how long loading it
// took, from CPython's USDT probes python:import__find__load__start(module)
// and python:import__find__load__done(module, found).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

struct event {
	__u32 pid;
	__s32 found;
	__u64 duration_ns;
	char module[64];
};

const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* start time per thread (imports nest: keep the innermost) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);	/* pid_tgid << 8 | nesting depth */
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} depth SEC(".maps");

SEC("usdt")
int BPF_USDT(on_load_start, const char *module)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns(), key;
	__u32 zero = 0, *d = bpf_map_lookup_elem(&depth, &id);

	if (!d) {
		bpf_map_update_elem(&depth, &id, &zero, BPF_ANY);
		d = bpf_map_lookup_elem(&depth, &id);
		if (!d)
			return 0;
	}
	*d += 1;
	key = id << 8 | (*d & 0xff);
	bpf_map_update_elem(&starts, &key, &now, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_load_done, const char *module, int found)
{
	__u64 id = bpf_get_current_pid_tgid(), key, *start;
	__u32 *d = bpf_map_lookup_elem(&depth, &id);
	struct event *e;

	if (!d || *d == 0)
		return 0;
	key = id << 8 | (*d & 0xff);
	*d -= 1;
	start = bpf_map_lookup_elem(&starts, &key);
	if (!start)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->pid = id >> 32;
		e->found = found;
		e->duration_ns = bpf_ktime_get_ns() - *start;
		bpf_probe_read_user_str(&e->module, sizeof(e->module), module);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&starts, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
