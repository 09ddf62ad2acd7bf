// Batch drains: a raw_tp program (run with BPF_PROG_TEST_RUN, never attached) that writes
// n records to a small ring buffer or to the perf buffer of the current CPU,
// optionally discarding some and varying their size.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct rec {
	__u64 seq;
	__u32 tag;
	__u32 size;
};

struct big_rec {
	struct rec r;
	__u64 extra[2];
};

struct produce_args {
	__u32 dropped;
	__u32 discard_every;   /* ring: discard every k-th record (0: none) */
	__u32 big_every;       /* every k-th record is a big_rec (0: none) */
	__u32 perf;            /* 1: perf buffer, else ring buffer */
	__u32 tag;
	void *ctx;
};

__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

__u64 next_seq = 0;
struct rec rec_anchor = {};
struct big_rec big_anchor = {};

static long emit(__u64 i, void *data)
{
	struct produce_args *a = data;
	struct big_rec b = {};
	__u32 size = sizeof(struct rec);

	if (a->big_every && (i % a->big_every) == a->big_every - 1)
		size = sizeof(struct big_rec);
	b.r.seq = next_seq++;
	b.r.tag = a->tag;
	b.r.size = size;
	b.extra[0] = b.r.seq;
	if (a->perf) {
		if (bpf_perf_event_output(a->ctx, &perf, BPF_F_CURRENT_CPU, &b,
					  size == sizeof(b) ? sizeof(b) : sizeof(struct rec)))
			a->dropped++;
		return 0;
	}
	if (size == sizeof(b)) {
		if (bpf_ringbuf_output(&ring, &b, sizeof(b), BPF_RB_NO_WAKEUP))
			a->dropped++;
		return 0;
	}
	struct rec *r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r) {
		a->dropped++;
		return 0;
	}
	*r = b.r;
	if (a->discard_every && (i % a->discard_every) == a->discard_every - 1)
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
	else
		bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

/* args: n, discard_every, big_every, perf, tag */
SEC("raw_tp/sys_enter")
int produce(struct bpf_raw_tracepoint_args *ctx)
{
	struct produce_args a = {
		.discard_every = ctx->args[1], .big_every = ctx->args[2],
		.perf = ctx->args[3], .tag = ctx->args[4], .ctx = ctx,
	};

	bpf_loop(ctx->args[0], emit, &a, 0);
	dropped += a.dropped;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
