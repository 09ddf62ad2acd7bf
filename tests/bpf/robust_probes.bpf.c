// Probes for the SIGKILL test: a uprobe, a uretprobe and a tracepoint.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 hits = 0;

SEC("uprobe")
int on_entry(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("uretprobe")
int on_return(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
