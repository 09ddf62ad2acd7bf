// SPDX-License-Identifier: GPL-2.0
/* BPF CPU v4 instructions (-mcpu=v4, clang 18 or newer): sdiv, smod, movsx,
 * ldsx, bswap, gotol. Inputs in .data (set from Python before load), results in
 * .bss. Not in tests/bpf: the session fixture builds those with whatever clang
 * is the default; tests/test_clang.py builds this one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__s64 num = -100, den = 7, mod_num = -100, mod_den = 7;
__u64 word = 0x0102030405060708ULL;
__s8 narrow = -3;
__u32 wide32 = 0xfffffff0;

__s64 quot, rem, widened, sx32, loaded, jumped;
__u64 swapped;

SEC("syscall")
int cpu_v4(void *ctx)
{
	__s64 a = num, b = den;
	__u32 w = wide32;

	quot = a / b;                        /* sdiv */
	rem = mod_num % mod_den;             /* smod */
	sx32 = (__s64)(__s32)w;              /* movsx or ldsx (32 -> 64) */
	widened = (__s64)(__s8)(a + 1);      /* movsx (8 -> 64) */
	loaded = *(volatile __s8 *)&narrow;  /* ldsx */
	swapped = __builtin_bswap64(word);   /* bswap64 */
	jumped = 1;
	if (word == 0)  /* never, but the verifier can't know: both paths reachable */
		goto two;
	asm volatile goto("gotol %l[over]" :::: over);  /* gotol: a 32-bit jump */
two:
	jumped = 2;
over:
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
