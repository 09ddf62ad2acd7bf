// For `pylibbpf run --set` and `map`: globals of every kind set from the command
// line change what the program counts; a per-CPU array is summed on output.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum mode { MODE_COUNT = 1, MODE_IGNORE = 2 };

struct label {
	__u32 weight;
	char text[8];
};

const volatile __u32 target_arg = 4242;
const volatile enum mode mode = MODE_COUNT;
struct label label = { .weight = 1, .text = "none" };
__u64 matched = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct label);
} labels SEC(".maps");

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 zero = 0, arg = (__u32)ctx->args[0];
	__u64 *n;

	if (arg != target_arg || mode != MODE_COUNT)
		return 0;
	n = bpf_map_lookup_elem(&per_cpu_hits, &zero);
	if (n)
		*n += label.weight;
	__sync_fetch_and_add(&matched, 1);
	bpf_map_update_elem(&labels, &arg, &label, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
