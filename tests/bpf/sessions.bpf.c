// SPDX-License-Identifier: GPL-2.0
/* uprobe.session and kprobe.session: one program runs at the entry and at the
 * return of each call, with a per-call cookie (bpf_session_cookie) that the entry
 * writes and the return reads back. An entry returning non-zero cancels that
 * call's return probe. Only calls of process target_tgid are logged. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* the kfuncs took no argument up to Linux 6.18; later kernels pass the context:
 * libbpf resolves whichever flavor the running kernel has */
extern __u64 *bpf_session_cookie(void) __ksym __weak;
extern bool bpf_session_is_return(void) __ksym __weak;
extern __u64 *bpf_session_cookie___ctx(void *ctx) __ksym __weak;
extern bool bpf_session_is_return___ctx(void *ctx) __ksym __weak;

#define MAX_LOG 64
#define KIND_ENTRY 1
#define KIND_RETURN 2

struct record {
	__u32 kind;	/* KIND_ENTRY / KIND_RETURN */
	__u32 pad;
	__s64 arg;	/* entry: first argument; return: what the cookie held */
	__s64 ret;	/* return: the return value */
	__u64 cookie;	/* bpf_get_attach_cookie() */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_LOG);
	__type(key, __u32);
	__type(value, struct record);
} session_log SEC(".maps");

__u32 log_len;
__u32 target_tgid;
/* the entry of a call with this first argument returns 1: no return probe for it */
__s64 skip_arg = -1;

static __always_inline struct record *next(__u32 kind)
{
	__u32 i = log_len++;	/* one traced thread: its calls come one at a time */
	struct record *r = bpf_map_lookup_elem(&session_log, &i);

	if (r)
		r->kind = kind;
	return r;
}

static __always_inline int session(struct pt_regs *ctx, __s64 arg, __s64 ret)
{
	struct record *r;
	bool is_return;
	__u64 *cookie;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 1;			/* not ours: no return probe either */
	if (bpf_ksym_exists(bpf_session_cookie)) {
		cookie = bpf_session_cookie();
		is_return = bpf_session_is_return();
	} else {
		cookie = bpf_session_cookie___ctx(ctx);
		is_return = bpf_session_is_return___ctx(ctx);
	}
	if (!is_return) {
		*cookie = arg * 1000 + 7;	/* read back at this call's return */
		r = next(KIND_ENTRY);
		if (r) {
			r->arg = arg;
			r->cookie = bpf_get_attach_cookie(ctx);
		}
		return arg == skip_arg;		/* non-zero: no return probe */
	}
	r = next(KIND_RETURN);
	if (r) {
		r->arg = *cookie;
		r->ret = ret;
		r->cookie = bpf_get_attach_cookie(ctx);
	}
	return 0;
}

SEC("uprobe.session")
int on_uprobe_session(struct pt_regs *ctx)
{
	return session(ctx, (int)PT_REGS_PARM1(ctx), (int)PT_REGS_RC(ctx));
}

SEC("kprobe.session")
int on_kprobe_session(struct pt_regs *ctx)
{
	return session(ctx, (int)PT_REGS_PARM1(ctx), (int)PT_REGS_RC(ctx));
}

char LICENSE[] SEC("license") = "GPL";
