// sockcount: count the sockets created by the processes of a cgroup, by
// family and type (cgroup/sock_create), allowing every one.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct sock_kind {
	__u32 family;
	__u32 type;
	__u32 protocol;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct sock_kind);
	__type(value, __u64);
} created SEC(".maps");

SEC("cgroup/sock_create")
int count_socket(struct bpf_sock *sk)
{
	struct sock_kind k = { .family = sk->family, .type = sk->type,
			       .protocol = sk->protocol };
	__u64 one = 1, *n = bpf_map_lookup_elem(&created, &k);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&created, &k, &one, BPF_NOEXIST);
	return 1;	/* 1 allows the socket, 0 would refuse it (EPERM) */
}

char LICENSE[] SEC("license") = "GPL";
