// Kernel-matrix VM tests (tests/test_vm_tracing.py): one program per attach kind that
// the host kernel cannot run (kprobes, trampolines, LSM). Each test loads only the
// program it needs (autoload) and triggers it from the test process, so every
// program filters on the tgid in cfg[0] and, for socket hooks, on AF_INET/SOCK_DGRAM.
// Compiled on the host against the host kernel's BTF; CO-RE relocates it in the guest.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define VM_AF_INET 2
#define VM_SOCK_DGRAM 2
#define VM_IPPROTO_UDP 17
#define VM_EPERM 1
#define VM_EPROTONOSUPPORT 93

enum slot_id {
	S_KPROBE, S_KRETPROBE, S_KPROBE_OFFSET, S_KSYSCALL, S_KRETSYSCALL,
	S_MULTI, S_MULTI_RET, S_SESSION, S_FENTRY, S_FEXIT, S_FMOD_RET,
	S_LSM, S_LSM_S, S_FENTRY_S, S_TP_BTF, S_FMOD_RET_SYSCALL, S_MAX,
};

struct slot {
	__u64 hits;
	__u64 cookie;
	__s64 arg;
	__s64 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, struct slot);
} slots SEC(".maps");

// cfg[0]: tgid to watch; cfg[1]: a user-space address for the sleepable LSM to read
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} cfg SEC(".maps");

// kprobe.multi: how often each attach cookie was seen
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} multi_cookies SEC(".maps");

extern bool bpf_session_is_return(void) __ksym __weak;

static __always_inline bool mine(void)
{
	__u32 key = 0;
	__u64 *tgid = bpf_map_lookup_elem(&cfg, &key);

	return tgid && *tgid && (bpf_get_current_pid_tgid() >> 32) == *tgid;
}

static __always_inline bool udp4(int family, int type)
{
	return family == VM_AF_INET && (type & 0xf) == VM_SOCK_DGRAM;
}

static __always_inline struct slot *hit(__u32 id, __u64 cookie)
{
	struct slot *s = bpf_map_lookup_elem(&slots, &id);

	if (s) {
		__sync_fetch_and_add(&s->hits, 1);
		s->cookie = cookie;
	}
	return s;
}

/* kprobe / kretprobe: __sys_socket(int family, int type, int protocol) */

SEC("kprobe/__sys_socket")
int BPF_KPROBE(on_kprobe, int family, int type, int protocol)
{
	struct slot *s;

	if (!mine() || !udp4(family, type))
		return 0;
	s = hit(S_KPROBE, bpf_get_attach_cookie(ctx));
	if (s)
		s->arg = protocol;
	return 0;
}

SEC("kretprobe/__sys_socket")
int BPF_KRETPROBE(on_kretprobe, int ret)
{
	struct slot *s;

	if (!mine())
		return 0;
	s = hit(S_KRETPROBE, bpf_get_attach_cookie(ctx));
	if (s)
		s->ret = ret;
	return 0;
}

/* attached with an offset into a function, so only the tgid filter applies */
SEC("kprobe")
int on_kprobe_offset(struct pt_regs *ctx)
{
	if (mine())
		hit(S_KPROBE_OFFSET, bpf_get_attach_cookie(ctx));
	return 0;
}

/* ksyscall: getpgid(pid) with our marker pids 0x7fff0000.. */

SEC("ksyscall/getpgid")
int BPF_KSYSCALL(on_ksyscall, int pid)
{
	struct slot *s;

	if (!mine() || (pid & 0xffff0000) != 0x7fff0000)
		return 0;
	s = hit(S_KSYSCALL, bpf_get_attach_cookie(ctx));
	if (s)
		s->arg = pid;
	return 0;
}

SEC("kretsyscall/getpgid")
int BPF_KRETPROBE(on_kretsyscall, long ret)
{
	struct slot *s;

	if (!mine())
		return 0;
	s = hit(S_KRETSYSCALL, bpf_get_attach_cookie(ctx));
	if (s)
		s->ret = ret;
	return 0;
}

/* kprobe.multi / kretprobe.multi / kprobe.session: targets given at attach time */

static __always_inline void count_cookie(__u64 cookie)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&multi_cookies, &cookie);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&multi_cookies, &cookie, &one, BPF_NOEXIST);
}

SEC("kprobe.multi")
int on_kprobe_multi(struct pt_regs *ctx)
{
	__u64 cookie;

	if (!mine())
		return 0;
	cookie = bpf_get_attach_cookie(ctx);
	hit(S_MULTI, cookie);
	count_cookie(cookie);
	return 0;
}

SEC("kretprobe.multi")
int on_kretprobe_multi(struct pt_regs *ctx)
{
	if (mine())
		hit(S_MULTI_RET, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("kprobe.session")
int on_kprobe_session(struct pt_regs *ctx)
{
	struct slot *s;

	if (!mine())
		return 0;
	s = hit(S_SESSION, bpf_get_attach_cookie(ctx));
	if (s) {
		if (bpf_session_is_return())
			__sync_fetch_and_add(&s->ret, 1);   /* returns seen */
		else
			__sync_fetch_and_add(&s->arg, 1);   /* entries seen */
	}
	return 0;   /* 0 at entry: also run at return */
}

/* fentry / fexit on the same function as the kprobes */

SEC("fentry/__sys_socket")
int BPF_PROG(on_fentry, int family, int type, int protocol)
{
	struct slot *s;

	if (!mine() || !udp4(family, type))
		return 0;
	s = hit(S_FENTRY, bpf_get_attach_cookie(ctx));
	if (s)
		s->arg = protocol;
	return 0;
}

SEC("fexit/__sys_socket")
int BPF_PROG(on_fexit, int family, int type, int protocol, int ret)
{
	struct slot *s;

	if (!mine() || !udp4(family, type))
		return 0;
	s = hit(S_FEXIT, bpf_get_attach_cookie(ctx));
	if (s)
		s->ret = ret;
	return 0;
}

/* fmod_ret: allowed on security_*() functions even without error injection */
SEC("fmod_ret/security_socket_create")
int BPF_PROG(on_fmod_ret, int family, int type, int protocol, int kern, int ret)
{
	if (ret || kern || !mine() || !udp4(family, type) || protocol != VM_IPPROTO_UDP)
		return ret;
	hit(S_FMOD_RET, bpf_get_attach_cookie(ctx));
	return -VM_EPROTONOSUPPORT;
}

/* fmod_ret on a syscall needs function error injection, which Debian's kernels lack */
SEC("fmod_ret/__x64_sys_getpgid")
int BPF_PROG(on_fmod_ret_syscall, struct pt_regs *regs, int ret)
{
	if (mine())
		hit(S_FMOD_RET_SYSCALL, 0);
	return ret;
}

/* LSM: deny UDP/IPv4 sockets of our process with EPERM */
SEC("lsm/socket_create")
int BPF_PROG(on_lsm, int family, int type, int protocol, int kern, int ret)
{
	if (ret)
		return ret;
	if (kern || !mine() || !udp4(family, type) || protocol != VM_IPPROTO_UDP)
		return 0;
	hit(S_LSM, 0);
	return -VM_EPERM;
}

/* sleepable LSM: reads user memory (bpf_copy_from_user may fault, so it sleeps) */
SEC("lsm.s/socket_create")
int BPF_PROG(on_lsm_s, int family, int type, int protocol, int kern, int ret)
{
	__u32 key = 1;
	__u64 *addr, value = 0;
	struct slot *s;

	if (ret)
		return ret;
	if (kern || !mine() || !udp4(family, type) || protocol != VM_IPPROTO_UDP)
		return 0;
	addr = bpf_map_lookup_elem(&cfg, &key);
	if (!addr || !*addr)
		return 0;
	if (bpf_copy_from_user(&value, sizeof(value), (void *)*addr))
		return 0;
	s = hit(S_LSM_S, 0);
	if (s)
		s->arg = value;
	return 0;
}

/* sleepable fentry: only on error-injectable functions, so refused on these kernels */
SEC("fentry.s/__sys_socket")
int BPF_PROG(on_fentry_s, int family, int type, int protocol)
{
	if (mine())
		hit(S_FENTRY_S, 0);
	return 0;
}

/* tp_btf: raw syscall entry, typed by BTF */
SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf, struct pt_regs *regs, long id)
{
	struct slot *s;

	if (!mine() || id != 121 /* __NR_getpgid on x86_64 */)
		return 0;
	if ((regs->di & 0xffff0000) != 0x7fff0000)
		return 0;
	s = hit(S_TP_BTF, 0);   /* no attach cookie: tp_btf has none before 6.10 */
	if (s)
		s->arg = regs->di;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
