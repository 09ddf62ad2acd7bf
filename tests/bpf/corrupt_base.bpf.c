// The base of the corrupt-object tests (tests/test_corrupt_inputs.py), which
// patch its BTF: a map value holding an array of 5, a .rodata array of 3, a
// .bss counter. The odd counts make each array easy to find.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct big {
	__u32 vals[5];
	__u64 tail;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct big);
} bigmap SEC(".maps");

const volatile __u16 ro_vals[3] = {1, 2, 3};
__u64 hits = 0;

SEC("xdp")
int corrupt_base(struct xdp_md *ctx)
{
	__u32 k = ro_vals[0];
	struct big *b = bpf_map_lookup_elem(&bigmap, &k);

	if (b)
		hits += b->vals[1] + ro_vals[2];
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
