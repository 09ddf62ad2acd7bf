// SPDX-License-Identifier: GPL-2.0
/* Loops the verifier cannot bound by itself: one ended by may_goto (clang 19 or
 * newer knows the instruction), one over an open-coded iterator (bpf_for). n is
 * set from Python before load, the sums land in .bss. Built by tests/test_clang.py. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* true while the verifier's may_goto budget lasts */
#define plb_can_loop                                                \
	({                                                          \
		__label__ out, go_on;                               \
		int ok_ = 1;                                        \
		asm volatile goto("may_goto %l[out]" :::: out);     \
		goto go_on;                                         \
	out:                                                        \
		ok_ = 0;                                            \
	go_on:                                                      \
		ok_;                                                \
	})

__u32 n = 1000;
__u64 loop_sum, iter_sum, rounds;

SEC("syscall")
int loops(void *ctx)
{
	__u64 sum = 0;
	__u32 i;
	int j;

	for (i = 0; i < n && plb_can_loop; i++)   /* no bound the verifier can see */
		sum += i;
	loop_sum = sum;
	rounds = i;
	sum = 0;
	bpf_for(j, 0, n)                          /* open-coded iterator */
		sum += j;
	iter_sum = sum;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
