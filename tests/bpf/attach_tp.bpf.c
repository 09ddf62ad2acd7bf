// Tracepoint-style attach kinds for tests/test_attach_tracing.py and test_link.py:
// each program counts its hits per process (tgid) and records its attach cookie.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_GETPGID 121 /* x86_64 */

/* raw_tp and tp_btf programs may call bpf_get_attach_cookie() from Linux 6.10, which
 * added the cookie to struct bpf_raw_tp_link. On older kernels CO-RE turns the test
 * into a constant 0, so the verifier never visits the call and the program loads. */
#define RAW_TP_COOKIE(ctx) \
	(bpf_core_field_exists(struct bpf_raw_tp_link, cookie) ? bpf_get_attach_cookie(ctx) : 0)

struct hit_key {
	__u32 tgid;
	__u32 which; /* which program counted */
};

struct hit {
	__u64 count;
	__u64 cookie;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hit_key);
	__type(value, struct hit);
} hits SEC(".maps");

enum { W_TP = 1, W_TP_ALT = 2, W_RAW_TP = 3, W_TP_BTF = 4, W_PERF = 5, W_SEC_TP = 6 };

static __always_inline void count(__u32 which, __u64 cookie)
{
	struct hit_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .which = which };
	struct hit *h, init = { .count = 1, .cookie = cookie };

	h = bpf_map_lookup_elem(&hits, &key);
	if (h) {
		__sync_fetch_and_add(&h->count, 1);
		h->cookie = cookie;
	} else {
		bpf_map_update_elem(&hits, &key, &init, BPF_NOEXIST);
	}
}

/* attached explicitly with Program.attach_tracepoint("syscalls", "sys_enter_getpgid") */
SEC("tp")
int tp_getpgid(void *ctx)
{
	count(W_TP, bpf_get_attach_cookie(ctx));
	return 0;
}

/* a second program for the same tracepoint: Link.update() target */
SEC("tp")
int tp_getpgid_alt(void *ctx)
{
	count(W_TP_ALT, bpf_get_attach_cookie(ctx));
	return 0;
}

/* attached by its section with Program.attach() */
SEC("tp/syscalls/sys_enter_getpgid")
int sec_tp_getpgid(void *ctx)
{
	count(W_SEC_TP, 0);
	return 0;
}

SEC("raw_tp")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] == NR_GETPGID)
		count(W_RAW_TP, RAW_TP_COOKIE(ctx));
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long id)
{
	if (id == NR_GETPGID)
		count(W_TP_BTF, RAW_TP_COOKIE(ctx));
	return 0;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	count(W_PERF, bpf_get_attach_cookie(ctx));
	return 0;
}

/* a global function that an freplace program can replace */
__noinline int freplace_target(struct __sk_buff *skb)
{
	return skb ? 1 : 0;
}

SEC("socket")
int sock_with_subprog(struct __sk_buff *skb)
{
	return freplace_target(skb);
}

char LICENSE[] SEC("license") = "GPL";
