// Typed events: ring buffer, perf buffer and user ring buffer; globals in
// .rodata, .data, .bss and a custom .data.custom section.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum ev_kind { EV_ENTER = 1, EV_BIG = 2 };

struct event {
	__u32 pid;
	__u32 tid;
	__s64 arg;
	char comm[16];
	enum ev_kind kind;
	__u32 seq;
};

struct command {
	__u32 op;
	__u32 pad;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} big_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 64 * 1024);
} commands SEC(".maps");

const volatile __u32 target_pid = 0;
const volatile __s64 min_arg = 0;        /* events with a smaller arg are dropped */
const volatile __s64 big_arg = 1 << 30;  /* events with arg >= big_arg also go to big_events */

__u64 hits = 0;                 /* .bss: every call from target_pid */
__u64 emitted = 0;              /* .bss: events sent */
__u64 cmd_count = 0;            /* .bss: commands drained from user space */
__u64 cmd_sum = 0;
__u32 seq = 0;
/* globals of the record types also put them in the object's BTF (types only
 * used by locals are not emitted), so user space can name them */
struct event last_event = {};
struct command last_command = {};
int data_knob = 42;             /* .data */
__u32 custom_counter SEC(".data.custom") = 7;

static long on_command(struct bpf_dynptr *dynptr, void *ctx)
{
	struct command *c = bpf_dynptr_data(dynptr, 0, sizeof(*c));

	if (!c)
		return 0;
	last_command = *c;
	cmd_count++;
	cmd_sum += c->value * c->op;
	return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct event e = {}, *r;

	if (target_pid && (id >> 32) != target_pid)
		return 0;
	hits++;
	custom_counter++;
	bpf_user_ringbuf_drain(&commands, on_command, NULL, 0);
	if ((__s64)ctx->args[0] < min_arg)
		return 0;
	e.pid = id >> 32;
	e.tid = (__u32)id;
	e.arg = ctx->args[0];
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	e.kind = EV_ENTER;
	e.seq = seq++;
	emitted++;
	last_event = e;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (r) {
		*r = e;
		bpf_ringbuf_submit(r, 0);
	}
	if (e.arg >= big_arg) {
		r = bpf_ringbuf_reserve(&big_events, sizeof(*r), 0);
		if (r) {
			*r = e;
			r->kind = EV_BIG;
			bpf_ringbuf_submit(r, 0);
		}
	}
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
