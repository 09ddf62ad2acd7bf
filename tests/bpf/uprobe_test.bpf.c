// SPDX-License-Identifier: GPL-2.0
/* Programs for tests/test_uprobe.py: every probe appends an event to an array
 * map used as a log (read with plain map lookups), tagged with the pid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#define MAX_EVENTS 4096

enum kind { K_ENTRY = 1, K_RETURN, K_MULTI, K_MULTI_RET, K_SLEEPABLE, K_USDT };

struct event {
	__u32 pid;
	__u32 kind;
	__s64 a;
	__s64 b;
	__u64 cookie;
	__u64 ip;
	char str[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_EVENTS);
	__type(key, __u32);
	__type(value, struct event);
} event_log SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} event_count SEC(".maps");

static __always_inline struct event *next_event(__u32 kind)
{
	__u32 zero = 0, idx;
	__u64 *count = bpf_map_lookup_elem(&event_count, &zero);
	struct event *e;

	if (!count)
		return 0;
	idx = (__u32)__sync_fetch_and_add(count, 1);
	if (idx >= MAX_EVENTS)
		return 0;
	e = bpf_map_lookup_elem(&event_log, &idx);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->kind = kind;
	return e;
}

SEC("uprobe")
int BPF_UPROBE(on_entry, long a, long b)
{
	struct event *e = next_event(K_ENTRY);

	if (e) {
		e->a = a;
		e->b = b;
		e->cookie = bpf_get_attach_cookie(ctx);
	}
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(on_return, long ret)
{
	struct event *e = next_event(K_RETURN);

	if (e) {
		e->a = ret;
		e->cookie = bpf_get_attach_cookie(ctx);
	}
	return 0;
}

SEC("uprobe.multi")
int on_multi(struct pt_regs *ctx)
{
	struct event *e = next_event(K_MULTI);

	if (e) {
		e->a = PT_REGS_PARM1(ctx);
		e->b = PT_REGS_PARM2(ctx);
		e->cookie = bpf_get_attach_cookie(ctx);
		e->ip = bpf_get_func_ip(ctx);
	}
	return 0;
}

SEC("uretprobe.multi")
int on_multi_ret(struct pt_regs *ctx)
{
	struct event *e = next_event(K_MULTI_RET);

	if (e) {
		e->a = PT_REGS_RC(ctx);
		e->cookie = bpf_get_attach_cookie(ctx);
	}
	return 0;
}

SEC("uprobe.s")
int BPF_UPROBE(on_greet, const char *who)
{
	struct event *e = next_event(K_SLEEPABLE);

	if (e)
		bpf_copy_from_user(e->str, sizeof(e->str) - 1, who);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_usdt, long a, long b)
{
	struct event *e = next_event(K_USDT);

	if (e) {
		e->a = a;
		e->b = b;
		e->cookie = bpf_usdt_cookie(ctx);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(on_usdt1, long a)
{
	struct event *e = next_event(K_USDT);

	if (e) {
		e->a = a;
		e->cookie = bpf_usdt_cookie(ctx);
	}
	return 0;
}

/* a program of another type, for the wrong-type error */
SEC("raw_tp/sys_enter")
int not_a_uprobe(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
