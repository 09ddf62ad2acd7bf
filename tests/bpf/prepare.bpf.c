// Object.prepare(): maps exist (and can be filled) before the program loads
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

const volatile __u32 mult = 3;
__u32 add = 1;
__u64 total;

SEC("socket")
int count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	total += add * mult;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
