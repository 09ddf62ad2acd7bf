// ps: list the processes with a task iterator (bpf_iter), one line per process.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("iter/task")
int list_processes(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task) {	/* the end of the walk */
		return 0;
	}
	if (task->pid != task->tgid)	/* threads: only their process */
		return 0;
	BPF_SEQ_PRINTF(seq, "%d %d %u %llu %s\n", task->tgid, task->real_parent->tgid,
		       task->cred->uid.val, task->se.sum_exec_runtime, task->comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
