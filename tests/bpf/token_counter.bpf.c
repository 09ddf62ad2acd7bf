// A socket filter that counts its runs: loaded from a user namespace through a BPF token
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 runs;

SEC("socket")
int count_runs(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&runs, 1);
	return 7;
}

char LICENSE[] SEC("license") = "GPL";
