// The verifier must reject this (a packet read without a bounds check) after
// libbpf has created, filled and frozen the object's .rodata map.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile int knob = 0;
int seen = 0;

SEC("xdp")
int unchecked_read_knob(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	seen = knob;
	return data[100];
}

char LICENSE[] SEC("license") = "GPL";
