// A uprobe.multi program for bench/bench_elf.py's multi-uprobe-by-name row:
// attached to 200 libc functions, it only counts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 hits;

SEC("uprobe.multi")
int on_call(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
