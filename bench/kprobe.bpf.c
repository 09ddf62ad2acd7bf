// A kprobe program for the failing-attach benchmark: attached to a function
// no kernel has, so every attach fails (and, on a kernel without kprobes,
// fails for that reason first).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe")
int on_kprobe(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
