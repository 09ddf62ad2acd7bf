// kprobe-family programs. They load on any kernel; attaching them needs kprobes
// (and fprobe for the multi kinds).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 kprobe_hits = 0;

SEC("kprobe")
int on_kprobe(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kprobe/do_getpgid")
int sec_kprobe(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("ksyscall/getpgid")
int sec_ksyscall(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kprobe.multi/do_getpg*")
int sec_kprobe_multi(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kretprobe")
int on_kretprobe(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("ksyscall")
int on_ksyscall(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kprobe.multi")
int on_kprobe_multi(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kprobe.session")
int on_kprobe_session(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
