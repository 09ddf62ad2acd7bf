// Programs that need BPF trampolines: fentry, fexit, fmod_ret, LSM, freplace.
// Each test loads only the one it needs (autoload).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 trampoline_hits = 0;

SEC("fentry/do_getpgid")
int BPF_PROG(on_fentry, pid_t pid)
{
	__sync_fetch_and_add(&trampoline_hits, 1);
	return 0;
}

SEC("fexit/do_getpgid")
int BPF_PROG(on_fexit, pid_t pid, int ret)
{
	__sync_fetch_and_add(&trampoline_hits, 1);
	return 0;
}

/* an LSM hook: fmod_ret may modify those on every kernel, with or without error
 * injection (Debian's 6.1 refuses bpf_modify_return_test: "is not modifiable") */
SEC("fmod_ret/security_socket_create")
int BPF_PROG(on_fmod_ret, int family, int type, int protocol, int kern, int ret)
{
	__sync_fetch_and_add(&trampoline_hits, 1);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(on_lsm_file_open, struct file *file, int ret)
{
	__sync_fetch_and_add(&trampoline_hits, 1);
	return ret;
}

/* target set with Program.set_attach_target() before load */
SEC("freplace")
int on_freplace(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&trampoline_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
