// lsm: a BPF LSM program that refuses to let one process (the tool's own
// child) create directories, and counts the refusals.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1

const volatile __u32 target_tgid = 0;
__u64 denied = 0;

SEC("lsm/path_mkdir")
int BPF_PROG(deny_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode, int ret)
{
	if (ret)
		return ret;	/* an earlier LSM already decided */
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	__sync_fetch_and_add(&denied, 1);
	return -EPERM;
}

char LICENSE[] SEC("license") = "GPL";
