/* The open's pre-check verdicts, remembered per file.
 *
 * Before libbpf opens an object file, pylibbpf_object_precheck (shims.c) reads
 * its ELF and parses its BTF a first time, to refuse what libbpf's own open
 * would crash on. In a fresh process that is ~0.1 ms of a first open+load
 * (fresh memory for a second copy of the file's BTF, the libelf handle), the
 * largest part of what Object() adds to libbpf's open.
 *
 * A file the pre-check accepted is remembered by its identity: device, inode,
 * size, and modification and change times in nanoseconds. The file `prechecks`
 * in pylibbpf's cache directory lists such identities; a later process opening
 * a file with one of them skips the pre-check (libbpf reads the same bytes).
 * Only accepted files are listed, and only files last changed at least
 * PLB_VERD_SETTLED_S seconds before the check: a file's times come from a clock
 * that may tick only every few milliseconds, so a file rewritten in place with
 * the same size right after it was checked could keep every field of its
 * identity (git's "racy clean" entries); a change made later than the
 * identity's change time plus that margin always gives a new change time,
 * which user space cannot set. A file opened from memory (Object(bytes)) is
 * always checked.
 *
 * The list's key holds libbpf's version and a hash of shims.c (the checks
 * themselves: build_ffi.py passes it as PYLIBBPF_CHECKS_HASH), and a checksum
 * covers the file: anything that does not match is ignored, and every file is
 * checked as without a list. Python (pylibbpf/_featcache.py) passes the file's
 * path at the process's first open and writes the list at exit when this
 * process added to it. At most PLB_VERD_MAX identities are kept, the most
 * recently added last.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#ifndef PYLIBBPF_CHECKS_HASH
#define PYLIBBPF_CHECKS_HASH "unknown"
#endif
#define PLB_VERD_MAX 64
#define PLB_VERD_SETTLED_S 2
#define PLB_VERD_MAGIC "pylibbpf pre-checks 1\n"
#define PLB_VERD_LINE 112  /* "ok" and five numbers of at most 20 digits, spaces, newline */

struct plb_verd {
    unsigned long long dev, ino, size, mtime_ns, ctime_ns;
};

static pthread_mutex_t plb_verd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct plb_verd plb_verd[PLB_VERD_MAX];
static int plb_verd_n;          /* entries in plb_verd */
static int plb_verd_learned;    /* added here, not yet exported */
static int plb_verd_checked;    /* pre-checks run in this process (tests) */

static uint32_t plb_verd_sum(const char *s, size_t n)
{
    uint32_t h = 2166136261u;   /* FNV-1a, as the feature file */

    while (n--)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int plb_verd_key(char *out, size_t n)
{
    int r = snprintf(out, n, "key libbpf-%d.%d checks-%s\n", LIBBPF_MAJOR_VERSION,
                     LIBBPF_MINOR_VERSION, PYLIBBPF_CHECKS_HASH);

    return r > 0 && (size_t)r < n ? 0 : -1;
}

static void plb_verd_of(const struct stat *st, struct plb_verd *v)
{
    v->dev = (unsigned long long)st->st_dev;
    v->ino = (unsigned long long)st->st_ino;
    v->size = (unsigned long long)st->st_size;
    v->mtime_ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ull
                  + (unsigned long long)st->st_mtim.tv_nsec;
    v->ctime_ns = (unsigned long long)st->st_ctim.tv_sec * 1000000000ull
                  + (unsigned long long)st->st_ctim.tv_nsec;
}

/* caller holds plb_verd_lock */
static int plb_verd_find(const struct plb_verd *v)
{
    for (int i = 0; i < plb_verd_n; i++)
        if (memcmp(&plb_verd[i], v, sizeof(*v)) == 0)
            return i;
    return -1;
}

/* caller holds plb_verd_lock: v appended (the oldest dropped when full) */
static void plb_verd_append(const struct plb_verd *v)
{
    if (plb_verd_find(v) >= 0)
        return;
    if (plb_verd_n == PLB_VERD_MAX) {
        memmove(&plb_verd[0], &plb_verd[1], (PLB_VERD_MAX - 1) * sizeof(plb_verd[0]));
        plb_verd_n--;
    }
    plb_verd[plb_verd_n++] = *v;
}

/* One "ok <dev> <ino> <size> <mtime_ns> <ctime_ns>\n" line at p (before end):
 * 0 and *next past it, or -1 */
static int plb_verd_parse_line(const char *p, const char *end, struct plb_verd *v,
                               const char **next)
{
    unsigned long long *f[5] = {&v->dev, &v->ino, &v->size, &v->mtime_ns, &v->ctime_ns};

    if (end - p < 3 || memcmp(p, "ok", 2))
        return -1;
    p += 2;
    for (int k = 0; k < 5; k++) {
        unsigned long long x = 0;
        int digits = 0;

        if (p >= end || *p != ' ')
            return -1;
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > 20 || x > (~0ull - 9) / 10)
                return -1;
            x = x * 10 + (unsigned)(*p - '0');
            p++;
        }
        if (!digits || (digits > 1 && p[-digits] == '0'))
            return -1;  /* exactly as written: no empty field, no leading zero */
        *f[k] = x;
    }
    if (p >= end || *p != '\n')
        return -1;
    *next = p + 1;
    return 0;
}

/* The identities the file at path lists, added to the table when its key is
 * this build's and its checksum holds: how many it lists, or -1 when the file
 * is missing, damaged or another build's (nothing is added then). */
static int pylibbpf_verdicts_prime(const char *path)
{
    char buf[PLB_VERD_MAX * PLB_VERD_LINE + 256], key[160], want[16];
    struct plb_verd got[PLB_VERD_MAX];
    size_t klen, mlen = sizeof(PLB_VERD_MAGIC) - 1;
    const char *p, *sum;
    ssize_t len;
    int fd, n = 0;

    if (plb_verd_key(key, sizeof(key)))
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0 || (size_t)len >= sizeof(buf) - 1)
        return -1;
    buf[len] = 0;
    if (memchr(buf, 0, (size_t)len))
        return -1;
    klen = strlen(key);
    if ((size_t)len < mlen + klen || memcmp(buf, PLB_VERD_MAGIC, mlen)
        || memcmp(buf + mlen, key, klen))
        return -1;
    /* the lines, then "sum <8 hex digits>\n" over all before it: the file's end */
    p = buf + mlen + klen;
    sum = p;
    while (strncmp(sum, "sum ", 4)) {
        if (n == PLB_VERD_MAX || plb_verd_parse_line(sum, buf + len, &got[n], &sum))
            return -1;
        n++;
    }
    snprintf(want, sizeof(want), "sum %08x\n", plb_verd_sum(buf, (size_t)(sum - buf)));
    if (strcmp(sum, want))
        return -1;
    pthread_mutex_lock(&plb_verd_lock);
    for (int i = 0; i < n; i++)
        plb_verd_append(&got[i]);
    pthread_mutex_unlock(&plb_verd_lock);
    return n;
}

/* Whether the file at path (when st_ok, st is its stat) is one the pre-check
 * accepted before. */
static int plb_verd_known(const struct stat *st)
{
    struct plb_verd v;
    int i;

    plb_verd_of(st, &v);
    pthread_mutex_lock(&plb_verd_lock);
    i = plb_verd_find(&v);
    pthread_mutex_unlock(&plb_verd_lock);
    return i >= 0;
}

/* The pre-check accepted the file whose stat (taken before the check) is st:
 * remembered when it had settled (see the top of this file). */
static void plb_verd_accepted(const struct stat *st)
{
    struct timespec now;
    struct plb_verd v;

    if (clock_gettime(CLOCK_REALTIME, &now))
        return;
    if (st->st_ctim.tv_sec > now.tv_sec - PLB_VERD_SETTLED_S
        || st->st_mtim.tv_sec > now.tv_sec - PLB_VERD_SETTLED_S)
        return;
    plb_verd_of(st, &v);
    pthread_mutex_lock(&plb_verd_lock);
    if (plb_verd_find(&v) < 0) {
        plb_verd_append(&v);
        plb_verd_learned++;
    }
    pthread_mutex_unlock(&plb_verd_lock);
}

/* How many files this process's pre-checks accepted and remembered since the
 * last export (Python writes the list when there are any). */
static int pylibbpf_verdicts_learned(void)
{
    int n;

    pthread_mutex_lock(&plb_verd_lock);
    n = plb_verd_learned;
    pthread_mutex_unlock(&plb_verd_lock);
    return n;
}

/* How many pre-checks this process ran (tests). */
static int pylibbpf_verdicts_checked(void)
{
    return __atomic_load_n(&plb_verd_checked, __ATOMIC_ACQUIRE);
}

/* The file's contents for the table now, into buf: its length, or -1 (buf too
 * small). Counts the learned ones as exported. */
static int pylibbpf_verdicts_export(char *buf, size_t n)
{
    size_t mlen = sizeof(PLB_VERD_MAGIC) - 1, len;
    int r, ret = -1;

    if (n < mlen + 1 || plb_verd_key(buf + mlen, n - mlen))
        return -1;
    memcpy(buf, PLB_VERD_MAGIC, mlen);
    len = strlen(buf);
    pthread_mutex_lock(&plb_verd_lock);
    for (int i = 0; i < plb_verd_n; i++) {
        const struct plb_verd *v = &plb_verd[i];

        r = snprintf(buf + len, n - len, "ok %llu %llu %llu %llu %llu\n", v->dev, v->ino,
                     v->size, v->mtime_ns, v->ctime_ns);
        if (r < 0 || (size_t)r >= n - len)
            goto out;
        len += (size_t)r;
    }
    r = snprintf(buf + len, n - len, "sum %08x\n", plb_verd_sum(buf, len));
    if (r < 0 || (size_t)r >= n - len)
        goto out;
    plb_verd_learned = 0;
    ret = (int)(len + (size_t)r);
out:
    pthread_mutex_unlock(&plb_verd_lock);
    return ret;
}
