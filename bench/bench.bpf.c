// Benchmark producers: a syscall program that writes N ring-buffer records per
// BPF_PROG_TEST_RUN, and a small CO-RE program for open+load timing.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct bench_event {
	__u64 seq;
	__u32 pid;
	__u32 cpu;
	__u64 ts;
	char comm[8];
};

struct produce_args {
	__u32 n;
	__u32 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
} rb SEC(".maps");

struct bench_event type_anchor = {};
__u64 next_seq = 0;

static long emit(__u64 i, void *ctx)
{
	struct produce_args *a = ctx;
	struct bench_event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);

	if (!e) {
		a->dropped++;
		return 1;
	}
	e->seq = next_seq++;
	e->pid = 42;
	e->cpu = 1;
	e->ts = i;
	__builtin_memcpy(e->comm, "bench\0\0", 8);
	/* no wakeup: the consumer drains after the run */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("syscall")
int produce(struct produce_args *args)
{
	struct produce_args a = { .n = args->n };

	bpf_loop(a.n, emit, &a, 0);
	args->dropped = a.dropped;
	return 0;
}

/* perf buffer producer: a raw_tp program (sleepable syscall programs can't use
 * perf event arrays), run with BPF_PROG_TEST_RUN; args[0] = records */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

struct perf_args {
	void *ctx;
	__u32 dropped;
};

__u64 perf_dropped = 0;

static long emit_perf(__u64 i, void *data)
{
	struct perf_args *a = data;
	struct bench_event e = { .seq = next_seq++, .pid = 42, .cpu = 1, .ts = i };

	__builtin_memcpy(e.comm, "bench\0\0", 8);
	if (bpf_perf_event_output(a->ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e)))
		a->dropped++;
	return 0;
}

SEC("raw_tp/sys_enter")
int produce_perf(struct bpf_raw_tracepoint_args *ctx)
{
	struct perf_args a = { .ctx = ctx };

	bpf_loop(ctx->args[0], emit_perf, &a, 0);
	perf_dropped += a.dropped;
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int core_read(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	int tgid = BPF_CORE_READ(t, tgid);
	int ppid = BPF_CORE_READ(t, real_parent, tgid);

	next_seq += tgid + ppid;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
