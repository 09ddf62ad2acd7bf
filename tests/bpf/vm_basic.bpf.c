// VM smoke: a syscall tracepoint that counts getpgid() calls whose argument is
// one of ours (0x7fff0000..), so nothing else on the system moves the counter.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 key = 0;
	__u64 *v;

	if ((ctx->args[0] & 0xffff0000) != 0x7fff0000)
		return 0;
	v = bpf_map_lookup_elem(&hits, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
