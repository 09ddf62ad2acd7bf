// hello: the smallest tracing tool, bpf_printk() on every successful exec().
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tp/sched/sched_process_exec")
int hello(struct trace_event_raw_sched_process_exec *ctx)
{
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	char file[48];

	bpf_probe_read_kernel_str(file, sizeof(file), (void *)ctx + off);
	bpf_printk("hello: exec %s", file);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
