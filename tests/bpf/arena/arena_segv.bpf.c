// SPDX-License-Identifier: GPL-2.0
/* An arena created with BPF_F_SEGV_ON_FAULT and no __arena globals: touching a page
 * nobody allocated is SIGSEGV for user space, so pylibbpf gives no view of it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_SEGV_ON_FAULT);
	__uint(max_entries, 2);
} arena SEC(".maps");

SEC("syscall")
int noop(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
