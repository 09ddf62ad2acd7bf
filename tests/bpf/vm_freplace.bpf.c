// freplace (tests/test_vm_tracing.py): replaces vm_decide() of vm_freplace_target's
// XDP program; the target is given at attach time (or before load).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("freplace/vm_decide")
int vm_new_decide(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
