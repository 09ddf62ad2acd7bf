// freplace target (tests/test_vm_tracing.py): an XDP program whose verdict comes
// from a global function that vm_freplace.bpf.c replaces.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__noinline int vm_decide(struct xdp_md *ctx)
{
	return ctx ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp")
int vm_xdp_target(struct xdp_md *ctx)
{
	return vm_decide(ctx);
}

char LICENSE[] SEC("license") = "GPL";
