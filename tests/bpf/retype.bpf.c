// A program whose type is chosen at open time from Python, plus extras for
// the open options: a __kconfig extern, a pinned-by-name map, a resizable map.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int CONFIG_PYLIBBPF_TEST_VALUE __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} resizable SEC(".maps");

SEC("socket")
int return_one(void *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&pinned_counter, &zero);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 1;
}

SEC("socket")
int return_kconfig(void *ctx)
{
	return CONFIG_PYLIBBPF_TEST_VALUE;
}

char LICENSE[] SEC("license") = "GPL";
