// SPDX-License-Identifier: GPL-2.0
/* An arena shared with Python: __arena globals (which libbpf places in the arena),
 * a page the program allocates with bpf_arena_alloc_pages(), and input Python
 * writes straight into the arena. Needs clang 18+ (address_space(1) pointers). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* Numbers, not the uapi enum names: vmlinux.h is made from the running kernel's
 * BTF, and a kernel older than 6.9 has no arenas (there load() raises the
 * NotSupportedError the tests expect, but the source must still compile). */
#define MAP_TYPE_ARENA 33		/* BPF_MAP_TYPE_ARENA */
#define F_SEGV_ON_FAULT (1U << 17)	/* BPF_F_SEGV_ON_FAULT */

#define __arena __attribute__((address_space(1)))
#define ARENA_PAGES 16
#define N_IO 64
#define PAGE_WORDS (4096 / 8)

struct {
	__uint(type, MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, ARENA_PAGES);	/* pages */
} arena SEC(".maps");

void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt,
				    int node_id, __u64 flags) __ksym __weak;

struct io {
	__u64 n;		/* how many of in[] to use (Python sets it) */
	__u64 in[N_IO];		/* written by Python */
	__u64 out[N_IO];	/* out[i] = in[i] * in[i] + calls, by the program */
	__u64 calls;		/* runs of compute() */
};

/* __arena globals: libbpf puts them in the arena (ELF section .addr_space.1) */
struct io __arena io;
__u64 __arena magic = 0x5eed;
/* a page the program allocates on its first run, then fills with calls * 1000 + i */
__u64 __arena *page;

SEC("syscall")
int compute(void *ctx)
{
	__u64 calls = ++io.calls;
	__u64 __arena *p = page;
	__u64 n = io.n;
	int i;

	if (!p) {
		p = bpf_arena_alloc_pages(&arena, NULL, 1, -1 /* NUMA_NO_NODE */, 0);
		if (!p)
			return 1;
		page = p;
	}
	if (n > N_IO)
		n = N_IO;
	for (i = 0; i < N_IO && i < n; i++)
		io.out[i] = io.in[i] * io.in[i] + calls;
	for (i = 0; i < PAGE_WORDS; i++)
		p[i] = calls * 1000 + i;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
