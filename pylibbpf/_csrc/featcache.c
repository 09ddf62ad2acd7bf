/* libbpf's kernel feature probes, their positive answers remembered per boot.
 *
 * Before it uses a kernel feature (program names, global data, BTF kinds, BPF
 * links, memcg accounting …), libbpf probes for it once per process: it loads
 * a tiny program, creates a map or loads a small BTF and sees whether the
 * kernel accepts it. A first load in a fresh process makes ~20 such system
 * calls, 0.7-1 ms of a 12 ms open+load of a small CO-RE object, and a tool
 * started again and again makes them every time.
 *
 * build_ffi.py links the extension with -Wl,--wrap=feat_supported, so libbpf's
 * calls from its other files (libbpf.c, bpf.c) come here first. For libbpf's
 * process-wide cache (a NULL cache: an object loaded with a BPF token has its
 * own cache, which is passed through untouched), a feature known to be
 * supported is answered without a probe; any other is probed by libbpf, and a
 * positive answer is remembered.
 *
 * Python (pylibbpf/_featcache.py) primes the table from a small file in
 * pylibbpf's cache directory before a load and writes it back when this
 * process learned something new. The file holds only features found
 * supported, never missing ones: a probe can fail for a passing reason
 * (memory, a locked-down moment, a signal), and a probe that said yes proved
 * the kernel has the feature: privileges can make a probe fail, never make
 * one pass on a kernel without the feature. It is used only while its key
 * matches this process's: the boot (a kernel cannot gain or lose a feature
 * without a reboot), the effective user and capabilities (belt and braces:
 * each user's cache directory is its own anyway), and libbpf's version
 * (which numbers the features). A checksum covers the file; anything that
 * does not match is ignored, and libbpf probes as it always does.
 *
 * The key costs a fresh process ~15 us (boot_id is a procfs read); the user
 * namespace was left out of it because /proc/self/ns/user alone cost 20-30 us.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#define PLB_FEAT_SLOTS 64          /* libbpf 1.7 has 27 features */
#define PLB_FEAT_MAGIC "pylibbpf feature probes 1\n"

bool __real_feat_supported(void *cache, int feat_id);
bool __wrap_feat_supported(void *cache, int feat_id);

static unsigned char plb_feat_known[PLB_FEAT_SLOTS];   /* 1: supported */
static int plb_feat_learned;       /* probed supported here, not yet exported */
static int plb_feat_asked;         /* questions passed on to libbpf's own cache */

bool __wrap_feat_supported(void *cache, int feat_id)
{
    bool ok;

    if (cache || feat_id < 0 || feat_id >= PLB_FEAT_SLOTS)
        return __real_feat_supported(cache, feat_id);
    if (__atomic_load_n(&plb_feat_known[feat_id], __ATOMIC_ACQUIRE))
        return true;
    __atomic_add_fetch(&plb_feat_asked, 1, __ATOMIC_ACQ_REL);
    ok = __real_feat_supported(cache, feat_id);
    if (ok && !__atomic_exchange_n(&plb_feat_known[feat_id], 1, __ATOMIC_ACQ_REL))
        __atomic_add_fetch(&plb_feat_learned, 1, __ATOMIC_ACQ_REL);
    return ok;
}

static uint32_t plb_feat_sum(const char *s, size_t n)
{
    uint32_t h = 2166136261u;      /* FNV-1a */

    while (n--)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

/* "key ..." line (with its newline) for this process into out: 0, or -1 when
 * something it needs cannot be read (then nothing is used or written) */
static int plb_feat_key(char *out, size_t n)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[2];
    char boot[64];
    ssize_t len;
    int fd, r;

    fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    len = read(fd, boot, sizeof(boot) - 1);
    close(fd);
    if (len < 32 || len > 40)
        return -1;
    boot[len] = 0;
    if (boot[len - 1] == '\n')
        boot[len - 1] = 0;
    if (strchr(boot, ' ') || strchr(boot, '\n'))
        return -1;
    if (syscall(SYS_capget, &hdr, caps))
        return -1;
    r = snprintf(out, n, "key libbpf-%d.%d boot-%s euid-%u cap-%08x%08x\n",
                 LIBBPF_MAJOR_VERSION, LIBBPF_MINOR_VERSION, boot, (unsigned)geteuid(),
                 caps[1].effective, caps[0].effective);
    return r > 0 && (size_t)r < n ? 0 : -1;
}

/* The features the file at path says are supported, added to the table when
 * its key is this process's and its checksum holds: how many it lists, or -1
 * when the file is missing, damaged or another process's. */
static int pylibbpf_features_prime(const char *path)
{
    char buf[1024], key[256], want[16], *p, *end, *sum;
    size_t klen, mlen = sizeof(PLB_FEAT_MAGIC) - 1;
    unsigned char ids[PLB_FEAT_SLOTS] = {0};
    unsigned long id;
    ssize_t len;
    int fd, n = 0, i;

    if (plb_feat_key(key, sizeof(key)))
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0 || (size_t)len >= sizeof(buf) - 1)
        return -1;
    buf[len] = 0;
    klen = strlen(key);
    if ((size_t)len < mlen + klen || memcmp(buf, PLB_FEAT_MAGIC, mlen)
        || memcmp(buf + mlen, key, klen))
        return -1;
    /* "supported 1 2 5\n" then "sum <hex>\n", the sum over all before "sum" */
    p = buf + mlen + klen;
    sum = strstr(p, "\nsum ");
    if (strncmp(p, "supported", 9) || !sum)
        return -1;
    sum++;
    /* exactly as written: "sum " and 8 lowercase hex digits, the file's end */
    snprintf(want, sizeof(want), "sum %08x\n", plb_feat_sum(buf, sum - buf));
    if (strcmp(sum, want))
        return -1;
    for (p += 9; p < sum - 1; p = end) {
        if (*p != ' ' || p[1] < '0' || p[1] > '9')
            return -1;
        id = strtoul(p + 1, &end, 10);
        if (id >= PLB_FEAT_SLOTS)
            return -1;
        ids[id] = 1;
    }
    if (p != sum - 1)
        return -1;
    for (i = 0; i < PLB_FEAT_SLOTS; i++)
        if (ids[i]) {
            __atomic_store_n(&plb_feat_known[i], 1, __ATOMIC_RELEASE);
            n++;
        }
    return n;
}

/* How many features were found supported by probing in this process since the
 * last export (Python writes the file when there are any). */
static int pylibbpf_features_learned(void)
{
    return __atomic_load_n(&plb_feat_learned, __ATOMIC_ACQUIRE);
}

/* The file's contents for everything known supported now, into buf: its
 * length, or -1 (no key, or buf too small). Counts the learned ones as
 * exported. */
static int pylibbpf_features_export(char *buf, size_t n)
{
    size_t mlen = sizeof(PLB_FEAT_MAGIC) - 1, len;
    int i, r;

    if (n < mlen + 1 || plb_feat_key(buf + mlen, n - mlen))
        return -1;
    memcpy(buf, PLB_FEAT_MAGIC, mlen);
    __atomic_store_n(&plb_feat_learned, 0, __ATOMIC_RELEASE);
    len = strlen(buf);
    r = snprintf(buf + len, n - len, "supported");
    if (r < 0 || (size_t)r >= n - len)
        return -1;
    len += r;
    for (i = 0; i < PLB_FEAT_SLOTS; i++) {
        if (!__atomic_load_n(&plb_feat_known[i], __ATOMIC_ACQUIRE))
            continue;
        r = snprintf(buf + len, n - len, " %d", i);
        if (r < 0 || (size_t)r >= n - len)
            return -1;
        len += r;
    }
    if (len + 1 >= n)
        return -1;
    buf[len++] = '\n';
    r = snprintf(buf + len, n - len, "sum %08x\n", plb_feat_sum(buf, len));
    if (r < 0 || (size_t)r >= n - len)
        return -1;
    return (int)(len + r);
}

/* How many questions about libbpf's process-wide cache were passed on to
 * libbpf (which probes the first time it is asked each feature): tests. */
static int pylibbpf_features_asked(void)
{
    return __atomic_load_n(&plb_feat_asked, __ATOMIC_ACQUIRE);
}

/* bpf_object__load (prepare: bpf_object__prepare), the feature file at
 * features primed first unless it is NULL (Object.load passes it at the
 * process's first load): -errno, or how many features this process found
 * supported and has not exported yet (Python then writes the file). One call,
 * so that a fresh process's first load builds no more cffi functions than
 * before. */
static int pylibbpf_object_load(struct bpf_object *obj, int prepare, const char *features)
{
    int err;

    if (features)
        pylibbpf_features_prime(features);
    err = prepare ? bpf_object__prepare(obj) : bpf_object__load(obj);
    return err < 0 ? err : pylibbpf_features_learned();
}
