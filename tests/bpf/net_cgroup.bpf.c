// cgroup hooks: each program counts its runs in counts[<its slot>] and applies
// a verdict the tests can observe from a process inside the cgroup.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define SOCK_DGRAM 2
#define SOL_SOCKET 1
#define SO_PRIORITY 12
#define DEVCG_DEV_CHAR 2 /* BPF_DEVCG_DEV_CHAR */

enum {
	C_EGRESS, C_INGRESS, C_SOCK_CREATE, C_SOCK_RELEASE, C_BIND4, C_CONNECT4,
	C_SENDMSG4, C_RECVMSG4, C_GETPEERNAME4, C_GETSOCKNAME4, C_CONNECT_UNIX, C_SYSCTL,
	C_GETSOCKOPT, C_SETSOCKOPT, C_DEVICE, C_SOCK_OPS, C_PASS_A, C_PASS_B,
	C_RECVMSG6, C_RECVMSG_UNIX, C_GETPEERNAME6, C_GETSOCKNAME6, C_GETPEERNAME_UNIX,
	C_GETSOCKNAME_UNIX, C_MAX = 32,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* drop every UDP/TCP packet the cgroup sends: send() fails with EPERM */
SEC("cgroup_skb/egress")
int egress_drop(struct __sk_buff *skb)
{
	bump(C_EGRESS);
	return 0;
}

SEC("cgroup_skb/ingress")
int ingress_count(struct __sk_buff *skb)
{
	bump(C_INGRESS);
	return 1;
}

/* two pass-through egress programs, to see several programs on one hook */
SEC("cgroup_skb/egress")
int egress_pass_a(struct __sk_buff *skb)
{
	bump(C_PASS_A);
	return 1;
}

SEC("cgroup_skb/egress")
int egress_pass_b(struct __sk_buff *skb)
{
	bump(C_PASS_B);
	return 1;
}

/* no IPv6 UDP sockets in this cgroup */
SEC("cgroup/sock_create")
int sock_create_deny(struct bpf_sock *sk)
{
	bump(C_SOCK_CREATE);
	return !(sk->family == AF_INET6 && sk->type == SOCK_DGRAM);
}

SEC("cgroup/sock_release")
int sock_release_count(struct bpf_sock *sk)
{
	bump(C_SOCK_RELEASE);
	return 1;
}

/* binding port 4242 is refused */
SEC("cgroup/bind4")
int bind4_deny(struct bpf_sock_addr *ctx)
{
	bump(C_BIND4);
	return ctx->user_port != bpf_htons(4242);
}

/* connections to port 7000 go to port 7001 */
SEC("cgroup/connect4")
int connect4_redirect(struct bpf_sock_addr *ctx)
{
	bump(C_CONNECT4);
	if (ctx->user_port == bpf_htons(7000))
		ctx->user_port = bpf_htons(7001);
	return 1;
}

/* datagrams to port 7100 go to port 7101 */
SEC("cgroup/sendmsg4")
int sendmsg4_redirect(struct bpf_sock_addr *ctx)
{
	bump(C_SENDMSG4);
	if (ctx->user_port == bpf_htons(7100))
		ctx->user_port = bpf_htons(7101);
	return 1;
}

/* replies from port 7101 look as if they came from port 7100 */
SEC("cgroup/recvmsg4")
int recvmsg4_rewrite(struct bpf_sock_addr *ctx)
{
	bump(C_RECVMSG4);
	if (ctx->user_port == bpf_htons(7101))
		ctx->user_port = bpf_htons(7100);
	return 1;
}

SEC("cgroup/getpeername4")
int getpeername4_rewrite(struct bpf_sock_addr *ctx)
{
	bump(C_GETPEERNAME4);
	if (ctx->user_port == bpf_htons(7001))
		ctx->user_port = bpf_htons(7000);
	return 1;
}

SEC("cgroup/getsockname4")
int getsockname4_rewrite(struct bpf_sock_addr *ctx)
{
	bump(C_GETSOCKNAME4);
	if (ctx->user_port == bpf_htons(7500))
		ctx->user_port = bpf_htons(7501);
	return 1;
}

/* connecting a unix socket is refused */
SEC("cgroup/connect_unix")
int connect_unix_deny(struct bpf_sock_addr *ctx)
{
	bump(C_CONNECT_UNIX);
	return 0;
}

/* sysctls can be read, not written */
SEC("cgroup/sysctl")
int sysctl_readonly(struct bpf_sysctl *ctx)
{
	bump(C_SYSCTL);
	return !ctx->write;
}

SEC("cgroup/getsockopt")
int getsockopt_count(struct bpf_sockopt *ctx)
{
	bump(C_GETSOCKOPT);
	return 1;
}

/* SO_PRIORITY cannot be set */
SEC("cgroup/setsockopt")
int setsockopt_deny_priority(struct bpf_sockopt *ctx)
{
	bump(C_SETSOCKOPT);
	if (ctx->level == SOL_SOCKET && ctx->optname == SO_PRIORITY)
		return 0;
	ctx->optlen = 0; /* let the kernel handle the original value */
	return 1;
}

/* /dev/null (char 1:3) cannot be opened; everything else can */
SEC("cgroup/dev")
int dev_deny_null(struct bpf_cgroup_dev_ctx *ctx)
{
	bump(C_DEVICE);
	return !((ctx->access_type & 0xFFFF) == DEVCG_DEV_CHAR && ctx->major == 1 &&
		 ctx->minor == 3);
}

SEC("sockops")
int sockops_count(struct bpf_sock_ops *ctx)
{
	if (ctx->op == BPF_SOCK_OPS_TCP_CONNECT_CB)
		bump(C_SOCK_OPS);
	return 1;
}

/* hooks that must allow (return 1): they only count */
#define COUNTER(sec, name, slot)			\
SEC(sec)						\
int name(struct bpf_sock_addr *ctx)			\
{							\
	bump(slot);					\
	return 1;					\
}

COUNTER("cgroup/recvmsg6", count_recvmsg6, C_RECVMSG6)
COUNTER("cgroup/recvmsg_unix", count_recvmsg_unix, C_RECVMSG_UNIX)
COUNTER("cgroup/getpeername6", count_getpeername6, C_GETPEERNAME6)
COUNTER("cgroup/getsockname6", count_getsockname6, C_GETSOCKNAME6)
COUNTER("cgroup/getpeername_unix", count_getpeername_unix, C_GETPEERNAME_UNIX)
COUNTER("cgroup/getsockname_unix", count_getsockname_unix, C_GETSOCKNAME_UNIX)

char LICENSE[] SEC("license") = "GPL";
