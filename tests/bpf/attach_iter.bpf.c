// bpf_iter programs: tasks, and the elements of a map.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} numbers SEC(".maps");

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	if (task->pid == task->tgid)
		BPF_SEQ_PRINTF(seq, "%d %s\n", task->tgid, task->comm);
	return 0;
}

/* the same walk in another format: the Link.update() target */
SEC("iter/task")
int dump_task_alt(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	if (task->pid == task->tgid)
		BPF_SEQ_PRINTF(seq, "task=%d comm=%s\n", task->tgid, task->comm);
	return 0;
}

SEC("iter/bpf_map_elem")
int dump_numbers(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	__u32 *key = ctx->key;
	__u64 *value = ctx->value;

	if (!key || !value)
		return 0;
	BPF_SEQ_PRINTF(seq, "%u=%llu\n", *key, *value);
	return 0;
}

SEC("iter/cgroup")
int dump_cgroup(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;

	if (!cgrp)
		return 0;
	BPF_SEQ_PRINTF(seq, "%llu\n", cgrp->kn->id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
