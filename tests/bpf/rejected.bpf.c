// The verifier must reject this: a packet read without a bounds check.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[100];
}

char LICENSE[] SEC("license") = "GPL";
