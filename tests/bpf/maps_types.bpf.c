// One map of each kind, with BTF-typed keys and values, and programs that use them.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum fstate { ST_IDLE = 0, ST_RUNNING = 1, ST_DONE = 7 };

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

struct fstats {
	__u64 packets;
	__u64 bytes;
	char label[12];
	__u16 ports[3];
	enum fstate state;
	struct {
		__s32 lo;
		__s32 hi;
	} range;
	unsigned int flag_a : 1, level : 3;
	int delta : 4;
	_Bool ok;
};

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct fstats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, enum fstate);
} states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pc_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct fstats);
} pc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u64);
	__type(value, __s32);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, struct lpm_v4);
} fifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, __u32);
} lifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__type(value, __u64);
	__uint(map_extra, 3);
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct lpm_v4);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jumps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 32 * sizeof(__u64));
} stacks SEC(".maps");

const volatile __u32 target_pid = 0;
__u64 tail_hits = 0;
__u64 inner_seen = 0;
__s64 last_stack = -1;
__u32 route_hit = 0;

SEC("tp/syscalls/sys_enter_getpgid")
int tail_target(void *ctx)
{
	tail_hits++;
	return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 zero = 0, one = 1;
	__u64 *v;
	void *inner;
	struct lpm_v4 k = { .prefixlen = 32 };

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	inner = bpf_map_lookup_elem(&outer, &zero);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &one);
		if (v)
			inner_seen = *v;
	}
	__builtin_memcpy(k.addr, &ctx->args[0], 4);
	{
		__u32 *r = bpf_map_lookup_elem(&routes, &k);
		route_hit = r ? *r : 0;
	}
	last_stack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	bpf_tail_call(ctx, &jumps, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
