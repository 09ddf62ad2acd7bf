/* The running kernel's BTF, parsed once per process and shared.
 *
 * libbpf 1.5 reads and parses /sys/kernel/btf/vmlinux (5-6 MB) again for every
 * object it loads with CO-RE relocations, and for every
 * libbpf_find_vmlinux_btf_id(): fread() into one fresh buffer, copied into a
 * second, an index built, all freed at the end of the load. That was about
 * half of an open+load of a small CO-RE object, and most of its page faults.
 *
 * build_ffi.py links the extension with
 *     -Wl,--wrap=btf__load_vmlinux_btf -Wl,--wrap=btf__free
 * so every call to those two from libbpf's other files (libbpf.c: object load,
 * attach-target lookup) and from pylibbpf itself lands here: the first call
 * parses the kernel's BTF and keeps it; later calls return the same struct
 * btf, and btf__free() of it does nothing. Calls inside btf.c itself are not
 * redirected (the linker only wraps references between files), and btf.c
 * never frees the kernel's BTF.
 *
 * Sharing is safe because nothing changes the kernel's BTF while the kernel
 * runs, and libbpf only reads it (type and name lookups, the CO-RE candidate
 * search, module BTF split on top of it); BTF it could modify (btf__add_*,
 * dedup) is an object's, never this one. Loads in several threads read it at
 * the same time. No lock (a fork() while another thread held one would leave
 * the child stuck): the pointer is set with compare-and-swap, and when two
 * first loads race, the loser frees its copy.
 *
 * The first parse is libbpf's own loader: since 1.6 it maps
 * /sys/kernel/btf/vmlinux (Linux 6.16+ allows a read-only private mapping) and
 * parses the mapping in place, no copy (our 1.5-era loader mapped the file and
 * copied it into a struct btf: ~4 ms of page faults more than C libbpf 1.7 in a
 * fresh process); on older kernels it reads the file. A failure is not kept:
 * the next call tries again.
 *
 * Cost: the parsed BTF (a mapping of the file plus an index, ~6 MB on a distribution
 * kernel) stays allocated until the process exits, once it was first needed.
 */

struct btf *__real_btf__load_vmlinux_btf(void);
void __real_btf__free(struct btf *btf);
struct btf *__wrap_btf__load_vmlinux_btf(void);
void __wrap_btf__free(struct btf *btf);

static struct btf *pylibbpf_kbtf;   /* set once (atomically), never freed */

/* The kernel's own BTF, not checked again in user space.
 *
 * libbpf's btf_new() checks every type of a BTF it parses (~1.7 ms of a first
 * CO-RE load for the kernel's 126k types). The kernel checked its BTF when it
 * booted, and serves it read-only in sysfs; build_ffi.py compiles libbpf's btf.c
 * so that a BTF mapped from a file (only btf__load_vmlinux_btf's sysfs path maps
 * one) skips that check when pylibbpf_kernel_btf_trusted() returns 1. It does
 * only inside this wrapper's call, in this thread, and only when
 * /sys/kernel/btf/vmlinux is on a sysfs mount: a file bind-mounted over it, or
 * any other BTF, is checked as libbpf always checks it. */
#include <sys/vfs.h>
#define PLB_SYSFS_MAGIC 0x62656572

static __thread int plb_kbtf_trusted;
static int plb_kbtf_unchecked;      /* kernel BTFs parsed without the check (tests) */

int pylibbpf_kernel_btf_trusted(void);
int pylibbpf_kernel_btf_trusted(void)
{
    if (!plb_kbtf_trusted)
        return 0;
    __atomic_add_fetch(&plb_kbtf_unchecked, 1, __ATOMIC_ACQ_REL);
    return 1;
}

static int pylibbpf_kbtf_unchecked(void)
{
    return __atomic_load_n(&plb_kbtf_unchecked, __ATOMIC_ACQUIRE);
}

struct btf *__wrap_btf__load_vmlinux_btf(void)
{
    struct btf *btf = __atomic_load_n(&pylibbpf_kbtf, __ATOMIC_ACQUIRE), *none = NULL;
    struct statfs sfs;

    if (btf)
        return btf;
    plb_kbtf_trusted = statfs("/sys/kernel/btf/vmlinux", &sfs) == 0
                       && sfs.f_type == PLB_SYSFS_MAGIC;
    btf = __real_btf__load_vmlinux_btf();       /* says why on failure */
    plb_kbtf_trusted = 0;
    if (!btf)
        return NULL;                            /* errno set; tried again next time */
    /* two first loads at once both parse; one keeps its copy */
    if (!__atomic_compare_exchange_n(&pylibbpf_kbtf, &none, btf, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        __real_btf__free(btf);
        btf = none;
    }
    return btf;
}

void __wrap_btf__free(struct btf *btf)
{
    if (btf && btf == pylibbpf_kbtf)
        return;
    __real_btf__free(btf);
}

/* whether the kernel's BTF was parsed in this process (tests) */
static int pylibbpf_kbtf_cached(void)
{
    return __atomic_load_n(&pylibbpf_kbtf, __ATOMIC_ACQUIRE) != NULL;
}
