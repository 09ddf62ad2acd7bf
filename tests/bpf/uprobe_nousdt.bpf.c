// SPDX-License-Identifier: GPL-2.0
/* A SEC("usdt") program without <bpf/usdt.bpf.h>: attaching it must fail with
 * a clean error that says what is missing (tests/test_uprobe.py). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("usdt")
int usdt_without_maps(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
