// SPDX-License-Identifier: GPL-2.0
/* An arena created with BPF_F_SEGV_ON_FAULT and no __arena globals: touching a page
 * nobody allocated is SIGSEGV for user space, so pylibbpf gives no view of it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* Numbers, not the uapi enum names: vmlinux.h is made from the running kernel's
 * BTF, and a kernel older than 6.9 has no arenas (there load() raises the
 * NotSupportedError the tests expect, but the source must still compile). */
#define MAP_TYPE_ARENA 33		/* BPF_MAP_TYPE_ARENA */
#define F_SEGV_ON_FAULT (1U << 17)	/* BPF_F_SEGV_ON_FAULT */

struct {
	__uint(type, MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE | F_SEGV_ON_FAULT);
	__uint(max_entries, 2);
} arena SEC(".maps");

SEC("syscall")
int noop(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
