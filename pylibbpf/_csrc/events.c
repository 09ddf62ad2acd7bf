/* pylibbpf event and BTF shims.
 *
 * Ring and perf buffers: libbpf calls a C collector for every record, which
 * copies it into one growing buffer (fixed-size slots when the record type is
 * known, packed otherwise), so no Python code runs inside libbpf's loop. The
 * batch is then decoded and delivered record by record in C (fast.c: Records),
 * or handed over whole in batch mode.
 *
 * BTF: flat accessors over libbpf's inline btf_* helpers, which Python cannot
 * call directly. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <unistd.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pylibbpf_collector {
    char *buf;          /* record bytes */
    size_t used;        /* bytes used in buf */
    size_t cap;         /* bytes allocated */
    uint32_t *sizes;    /* original size of each record */
    uint32_t *cpus;     /* perf buffers: the CPU of each record */
    size_t count;       /* records collected */
    size_t scap;        /* slots allocated in sizes/cpus */
    uint32_t stride;    /* >0: each record takes exactly stride bytes (cut or zero-padded) */
    int err;            /* ENOMEM once an allocation failed */
    uint64_t *lost;     /* perf buffers: lost samples per CPU, not yet reported */
    uint32_t ncpus;
    uint64_t lost_total;
    int external;       /* buf belongs to the caller (e.g. a NumPy array): never grown or freed */
    size_t dropped;     /* records dropped since err was last cleared (they could not be stored) */
    size_t limit;       /* tests: >0 makes storing past this many bytes fail like ENOMEM */
};

static struct pylibbpf_collector *pylibbpf_collector_new(uint32_t stride, uint32_t ncpus)
{
    struct pylibbpf_collector *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->stride = stride;
    c->ncpus = ncpus;
    if (ncpus) {
        c->lost = calloc(ncpus, sizeof(uint64_t));
        if (!c->lost) {
            free(c);
            return NULL;
        }
    }
    return c;
}

static void pylibbpf_collector_free(struct pylibbpf_collector *c)
{
    if (!c)
        return;
    if (!c->external)
        free(c->buf);
    free(c->sizes);
    free(c->cpus);
    free(c->lost);
    free(c);
}

/* collect into caller memory (cap bytes) from now on; NULL: back to our own buffer */
static void pylibbpf_collector_target(struct pylibbpf_collector *c, void *buf, size_t cap)
{
    if (!c->external)
        free(c->buf);
    c->buf = buf;
    c->cap = buf ? cap : 0;
    c->external = buf != NULL;
    c->used = 0;
    c->count = 0;
}

static void pylibbpf_collector_reset(struct pylibbpf_collector *c)
{
    c->used = 0;
    c->count = 0;
    c->err = 0;
    c->dropped = 0;
}

/* --- waking a poller ---------------------------------------------------------
 * A reader waits in its own epoll set holding libbpf's epoll fd and an eventfd,
 * so close() in another thread can wake a poll() that waits forever (libbpf's
 * own epoll set is left alone: perf_buffer__poll takes every event in it for
 * one of its buffers). */
struct pylibbpf_waker {
    int epfd;
    int evfd;
};

static void pylibbpf_waker_close(struct pylibbpf_waker *w)
{
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->evfd >= 0)
        close(w->evfd);
    w->epfd = w->evfd = -1;
}

/* 0, or -errno with nothing left open */
static int pylibbpf_waker_init(struct pylibbpf_waker *w, int inner_fd)
{
    struct epoll_event ev = { .events = EPOLLIN };
    int err;

    w->evfd = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        goto fail;
    w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->evfd < 0)
        goto fail;
    ev.data.u32 = 0;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, inner_fd, &ev) < 0)
        goto fail;
    ev.data.u32 = 1;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0)
        goto fail;
    return 0;
fail:
    err = -errno;
    pylibbpf_waker_close(w);
    return err;
}

/* 1 when something is ready (records, or a wake-up), 0 after timeout_ms, -errno */
static int pylibbpf_waker_wait(struct pylibbpf_waker *w, int timeout_ms)
{
    struct epoll_event ev[2];
    int e = epoll_wait(w->epfd, ev, 2, timeout_ms);

    if (e < 0)
        return -errno;
    return e > 0;
}

/* every waiter returns now, and at once from then on */
static void pylibbpf_waker_wake(struct pylibbpf_waker *w)
{
    uint64_t one = 1;

    if (w->evfd >= 0 && write(w->evfd, &one, sizeof(one)) < 0) {
        /* the counter can't overflow from one write per close */
    }
}

/* a record that could not be stored: remembered (err, dropped) for Python to report */
static int pylibbpf_collector_fail(struct pylibbpf_collector *c, int err)
{
    c->err = err;
    c->dropped++;
    return -err;
}

static int pylibbpf_collector_add(struct pylibbpf_collector *c, const void *data, size_t size,
                                  int cpu)
{
    size_t need = c->stride ? c->stride : size;

    if (c->limit && c->used + need > c->limit)
        return pylibbpf_collector_fail(c, ENOMEM);
    if (c->used + need > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        char *p;

        if (c->external)
            return pylibbpf_collector_fail(c, ENOSPC);
        while (cap < c->used + need)
            cap *= 2;
        p = realloc(c->buf, cap);
        if (!p)
            return pylibbpf_collector_fail(c, ENOMEM);
        c->buf = p;
        c->cap = cap;
    }
    if (c->stride && !c->ncpus)
        goto copy;
    if (c->count == c->scap) {
        size_t scap = c->scap ? c->scap * 2 : 1024;
        uint32_t *s = realloc(c->sizes, scap * sizeof(uint32_t));

        if (!s)
            return pylibbpf_collector_fail(c, ENOMEM);
        c->sizes = s;
        if (c->ncpus) {
            uint32_t *q = realloc(c->cpus, scap * sizeof(uint32_t));

            if (!q)
                return pylibbpf_collector_fail(c, ENOMEM);
            c->cpus = q;
        }
        c->scap = scap;
    }
    c->sizes[c->count] = (uint32_t)size;
    if (c->ncpus)
        c->cpus[c->count] = (uint32_t)cpu;
copy:
    if (c->stride) {
        size_t n = size < c->stride ? size : c->stride;

        memcpy(c->buf + c->used, data, n);
        if (n < c->stride)
            memset(c->buf + c->used + n, 0, c->stride - n);
    } else {
        memcpy(c->buf + c->used, data, size);
    }
    c->used += need;
    c->count++;
    return 0;
}

static int pylibbpf_rb_collect(void *ctx, void *data, size_t size)
{
    return pylibbpf_collector_add(ctx, data, size, 0);
}

static ring_buffer_sample_fn pylibbpf_rb_collect_fn(void)
{
    return pylibbpf_rb_collect;
}

/* Handle what is there; if nothing, wait up to timeout_ms once and handle
 * what arrived. At most n records per call. -EINTR when a signal came. */
static int pylibbpf_rb_poll(struct ring_buffer *rb, struct pylibbpf_waker *w, int timeout_ms,
                            size_t n)
{
    int r, e;

    if (n == 0)
        n = 1;
    r = ring_buffer__consume_n(rb, n);
    if (r != 0 || timeout_ms == 0)
        return r;
    e = pylibbpf_waker_wait(w, timeout_ms);
    if (e <= 0)
        return e;
    return ring_buffer__consume_n(rb, n);
}

static void pylibbpf_pb_collect(void *ctx, int cpu, void *data, __u32 size)
{
    pylibbpf_collector_add(ctx, data, size, cpu);
}

static void pylibbpf_pb_lost(void *ctx, int cpu, __u64 cnt)
{
    struct pylibbpf_collector *c = ctx;

    if (cpu >= 0 && (uint32_t)cpu < c->ncpus)
        c->lost[cpu] += cnt;
    c->lost_total += cnt;
}

/* wait up to timeout_ms (or until woken), then handle what is there. Checking
 * the nested libbpf epoll set polls its perf fds, which clears their wake-ups
 * (perf_poll exchanges them for 0): so after a wait every CPU buffer is read,
 * not only those perf_buffer__poll would still see ready. */
static int pylibbpf_pb_poll(struct perf_buffer *pb, struct pylibbpf_waker *w, int timeout_ms)
{
    int e;

    if (timeout_ms == 0)
        return perf_buffer__poll(pb, 0);
    e = pylibbpf_waker_wait(w, timeout_ms);
    if (e <= 0)
        return e;
    return perf_buffer__consume(pb);
}

static struct perf_buffer *pylibbpf_pb_new(int map_fd, size_t page_cnt,
                                           struct pylibbpf_collector *c)
{
    return perf_buffer__new(map_fd, page_cnt, pylibbpf_pb_collect, pylibbpf_pb_lost, c, NULL);
}

/* --- zero-copy batch drains ---------------------------------------------------
 * A RingBuffer's batch() maps the ring itself (consumer page read-write,
 * producer page and data read-only, the data mapped twice in a row by the
 * kernel so a record crossing the end is contiguous), walks the committed
 * records without consuming them, and hands NumPy a strided view of them.
 * The consumer position moves only when the caller's scope ends. A
 * PerfBuffer's batch() copies each sample once into a reused array and moves
 * each CPU buffer's tail at the end of the scope. */
#define PYLIBBPF_RB_BUSY (1U << 31)
#define PYLIBBPF_RB_DISCARD (1U << 30)
#define PYLIBBPF_RB_HDR 8U

struct pylibbpf_scan {
    uint64_t begin;     /* position of the first record that carries data */
    uint64_t end;       /* position after the last record walked */
    size_t count;       /* records that carry data (discarded ones are skipped) */
    int regular;        /* every counted record has rec_size bytes, none discarded between */
};

static uint64_t pylibbpf_rb_span(uint32_t len)
{
    return ((uint64_t)len + PYLIBBPF_RB_HDR + 7) & ~(uint64_t)7;
}

/* the committed records from the consumer position, at most max of them (0:
 * no limit); stops at the first record still being written */
static void pylibbpf_ring_scan(const uint64_t *consumer, const uint64_t *producer,
                               const char *data, size_t size, uint32_t rec_size, size_t max,
                               struct pylibbpf_scan *s)
{
    uint64_t mask = size - 1;
    uint64_t pos = __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
    size_t n = 0;
    int regular = 1, gap = 0;

    s->begin = pos;
    if (rec_size && pos < prod) {
        /* the common case first: records of rec_size back to back. Their
         * headers sit at a fixed stride, so the loads don't wait on each other
         * (the data is mapped twice: no wrapping within size bytes) */
        uint64_t span = pylibbpf_rb_span(rec_size);
        const char *b = data + (pos & mask);
        size_t limit = (size_t)((prod - pos) / span), i;

        if (max && limit > max)
            limit = max;
        for (i = 0; i < limit; i++)
            if (*(const volatile uint32_t *)(b + i * span) != rec_size)
                break;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);  /* headers before the records */
        n = i;
        pos += i * span;
    }
    while (pos < prod && (!max || n < max)) {
        uint32_t hdr = __atomic_load_n((const uint32_t *)(data + (pos & mask)),
                                       __ATOMIC_ACQUIRE);
        uint32_t len = hdr & ~(PYLIBBPF_RB_BUSY | PYLIBBPF_RB_DISCARD);

        if (hdr & PYLIBBPF_RB_BUSY)
            break;
        if (len > size)     /* cannot happen with a sane kernel: stop rather than overrun */
            break;
        if (hdr & PYLIBBPF_RB_DISCARD) {
            if (!n)
                s->begin = pos + pylibbpf_rb_span(len);
            else
                gap = 1;
        } else {
            if (len != rec_size || gap)
                regular = 0;
            n++;
        }
        pos += pylibbpf_rb_span(len);
    }
    s->end = pos;
    s->count = n;
    s->regular = regular;
}

/* copy the records with data between begin and end (as walked by
 * pylibbpf_ring_scan) into out, stride bytes each (cut or zero-padded) */
static size_t pylibbpf_ring_copy(const char *data, size_t size, uint64_t begin, uint64_t end,
                                 uint32_t stride, char *out)
{
    uint64_t mask = size - 1, pos = begin;
    size_t n = 0;

    while (pos < end) {
        const char *rec = data + (pos & mask);
        uint32_t hdr = __atomic_load_n((const uint32_t *)rec, __ATOMIC_ACQUIRE);
        uint32_t len = hdr & ~(PYLIBBPF_RB_BUSY | PYLIBBPF_RB_DISCARD);

        if (!(hdr & PYLIBBPF_RB_DISCARD)) {
            uint32_t k = len < stride ? len : stride;

            memcpy(out + n * stride, rec + PYLIBBPF_RB_HDR, k);
            if (k < stride)
                memset(out + n * stride + k, 0, stride - k);
            n++;
        }
        pos += pylibbpf_rb_span(len);
    }
    return n;
}

static void pylibbpf_ring_release(uint64_t *consumer, uint64_t pos)
{
    __atomic_store_n(consumer, pos, __ATOMIC_RELEASE);
}

/* replace a mapping by private zero pages, so views of it read zeros and can't
 * see (or crash on) the ring any more; the range stays mapped until munmap */
static int pylibbpf_blank(void *addr, size_t len)
{
    void *p = mmap(addr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

    return p == MAP_FAILED ? -errno : 0;
}

/* map len bytes of fd from offset off at addr (memory the caller owns,
 * MAP_FIXED), shared; 0 or -errno */
static int pylibbpf_map_at(int fd, void *addr, size_t len, size_t off, int writable)
{
    void *p = mmap(addr, len, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_SHARED | MAP_FIXED, fd, (off_t)off);

    return p == MAP_FAILED ? -errno : 0;
}

/* map a ring's producer page and data (read-only, the data twice) at addr,
 * over memory the caller owns (MAP_FIXED); 0 or -errno */
static int pylibbpf_ring_map_at(int fd, void *addr, size_t len, size_t page)
{
    void *p = mmap(addr, len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, (off_t)page);

    return p == MAP_FAILED ? -errno : 0;
}

#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif

/* move the ring mapping at old to to (both in memory the caller owns, same
 * alignment: page tables move, no page is mapped again), then fill old with
 * zero pages: views of old read zeros from now on. 0 or -errno */
static int pylibbpf_ring_move(void *old, void *to, size_t len)
{
    long p = syscall(SYS_mremap, old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);

    if (p == -1)
        return -errno;
    return pylibbpf_blank(old, len);
}

static void pylibbpf_ring_read(const char *data, uint64_t size, uint64_t pos, void *dst,
                               size_t n)
{
    uint64_t off = pos & (size - 1);

    if (off + n <= size) {
        memcpy(dst, data + off, n);
    } else {
        memcpy(dst, data + off, size - off);
        memcpy((char *)dst + (size - off), data, n - (size - off));
    }
}

/* copy n bytes: 8 at a time with inlined loads (a record is a few words; a
 * memcpy call per record would cost more than the copy) */
static inline void pylibbpf_copy_small(char *dst, const char *src, size_t n)
{
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x;

        memcpy(&x, src + i, 8);
        memcpy(dst + i, &x, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i];
}

static int pylibbpf_pb_ring(struct perf_buffer *pb, size_t idx,
                            struct perf_event_mmap_page **hdr, char **data, size_t *size)
{
    void *base;
    size_t sz;
    int err = perf_buffer__buffer(pb, (int)idx, &base, &sz);

    if (err)
        return err;
    *hdr = base;
    *data = (char *)base + sysconf(_SC_PAGE_SIZE);
    *size = sz;
    return 0;
}

/* the tail (read position) of CPU buffer idx, or -errno */
static int64_t pylibbpf_pb_tail(struct perf_buffer *pb, size_t idx)
{
    struct perf_event_mmap_page *h;
    char *data;
    size_t size;
    int err = pylibbpf_pb_ring(pb, idx, &h, &data, &size);

    if (err)
        return err;
    return (int64_t)(__atomic_load_n(&h->data_tail, __ATOMIC_ACQUIRE) & INT64_MAX);
}

/* bytes written to CPU buffer idx and not read yet, or -errno */
static int64_t pylibbpf_pb_avail(struct perf_buffer *pb, size_t idx)
{
    struct perf_event_mmap_page *h;
    char *data;
    size_t size;
    int err = pylibbpf_pb_ring(pb, idx, &h, &data, &size);

    if (err)
        return err;
    return (int64_t)((__atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE)
                      - __atomic_load_n(&h->data_tail, __ATOMIC_ACQUIRE)) & INT64_MAX);
}

/* how many samples from pos on can be seen in place as one strided array of
 * stride-byte records: samples of the same size and length as the first, none
 * crossing the end of the ring, each with at least stride bytes of data; at
 * most max (0: no limit). Their size in *span. */
static size_t pylibbpf_pb_runlen(const char *data, size_t size, uint64_t pos, uint64_t head,
                                 uint32_t stride, size_t max, uint32_t *span)
{
    uint64_t off = pos & (size - 1);
    struct perf_event_header eh;
    uint32_t len;
    size_t lim, i;

    *span = 0;
    if (pos >= head || off + 12 > size)
        return 0;
    memcpy(&eh, data + off, 8);
    memcpy(&len, data + off + 8, 4);
    if (eh.type != PERF_RECORD_SAMPLE || eh.size < 12 + stride || eh.size > head - pos
        || off + eh.size > size || len < stride || len > eh.size - 12u)
        return 0;
    lim = (size_t)((head - pos) / eh.size);
    if (lim > (size - off) / eh.size)
        lim = (size_t)((size - off) / eh.size);
    if (max && lim > max)
        lim = max;
    for (i = 1; i < lim; i++) {
        const char *r = data + off + i * eh.size;
        struct perf_event_header e2;
        uint32_t l2;

        memcpy(&e2, r, 8);
        memcpy(&l2, r + 8, 4);
        if (e2.type != PERF_RECORD_SAMPLE || e2.size != eh.size || l2 != len)
            break;
    }
    *span = eh.size;
    return i;
}

struct pylibbpf_pb_run {
    uint64_t start;     /* position of the run's first sample */
    size_t count;       /* samples in the run */
    uint32_t span;      /* bytes per sample */
    uint64_t size;      /* the ring's data size */
    size_t idx;         /* pylibbpf_pb_next: the CPU buffer of the run (in: the last one) */
    uint64_t avail;     /* pylibbpf_pb_next, no run: bytes left to read in all buffers */
};

/* a PERF_RECORD_LOST at pos (header, id, lost count): add its count to the collector */
static void pylibbpf_pb_count_lost(struct pylibbpf_collector *c, uint32_t cpu, const char *data,
                                   uint64_t size, uint64_t pos, uint16_t rec_size)
{
    uint64_t lost;

    if (rec_size < sizeof(struct perf_event_header) + 16)
        return;
    pylibbpf_ring_read(data, size, pos + sizeof(struct perf_event_header) + 8, &lost, 8);
    if (cpu < c->ncpus)
        c->lost[cpu] += lost;
    c->lost_total += lost;
}

/* Skip (and count) the lost-sample and other non-sample records at *tail of CPU
 * buffer idx, then measure the run of samples there that can be seen in place
 * (pylibbpf_pb_runlen), at most max. *tail moves past the skipped records only.
 * Returns the run's length (0: none there), or -errno. */
static long pylibbpf_pb_run(struct perf_buffer *pb, size_t idx, struct pylibbpf_collector *c,
                            uint32_t cpu, uint64_t *tail, uint32_t stride, size_t max,
                            struct pylibbpf_pb_run *out)
{
    struct perf_event_mmap_page *h;
    char *data;
    size_t size;
    uint64_t head, pos = *tail;
    int err = pylibbpf_pb_ring(pb, idx, &h, &data, &size);

    out->count = 0;
    out->span = 0;
    if (err)
        return err;
    out->size = size;
    head = __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
    while (pos < head) {
        struct perf_event_header eh;

        pylibbpf_ring_read(data, size, pos, &eh, sizeof(eh));
        if (eh.size < sizeof(eh) || eh.size > head - pos)
            break;
        if (eh.type == PERF_RECORD_SAMPLE)
            break;
        if (eh.type == PERF_RECORD_LOST)
            pylibbpf_pb_count_lost(c, cpu, data, size, pos, eh.size);
        pos += eh.size;
    }
    *tail = pos;
    out->start = pos;
    out->count = pylibbpf_pb_runlen(data, size, pos, head, stride, max, &out->span);
    return (long)out->count;
}

/* One call for the start of a batch over all n CPU buffers (no Python loop
 * per CPU): reads each ring's tail into start[] and tails[], then looks for a
 * run of samples to hand over as a view (pylibbpf_pb_run), CPU after CPU,
 * from the one after the CPU of the previous view on (so that a CPU with a
 * steady flow can't starve the others). A run counts when it has min_run
 * samples or more, or max (non-zero) samples. tails[] move past lost-sample
 * records met on the way. On a run: its CPU's index in out->idx, returns its
 * length. Else returns 0 and out->avail is the number of bytes left to read
 * in all rings (0: nothing there, no copy to make). -errno on error. */
static long pylibbpf_pb_next(struct perf_buffer *pb, size_t n, struct pylibbpf_collector *c,
                             const uint32_t *cpus, uint64_t *start, uint64_t *tails,
                             uint32_t stride, size_t max, size_t min_run,
                             struct pylibbpf_pb_run *out)
{
    size_t k, first = out->idx + 1;
    uint64_t avail = 0;

    for (k = 0; k < n; k++) {
        int64_t t = pylibbpf_pb_tail(pb, k);

        if (t < 0)
            return (long)t;
        start[k] = tails[k] = (uint64_t)t;
    }
    for (k = 0; k < n; k++) {
        size_t i = (first + k) % n;
        long got = pylibbpf_pb_run(pb, i, c, cpus[i], &tails[i], stride, max, out);
        int64_t a;

        if (got < 0)
            return got;
        if ((size_t)got >= min_run || (got && (size_t)got == max)) {
            out->idx = i;
            out->avail = 0;
            return got;
        }
        a = pylibbpf_pb_avail(pb, i);
        if (a < 0)
            return (long)a;
        /* pylibbpf_pb_avail counts from the ring's own tail: minus what was skipped */
        avail += (uint64_t)a - (tails[i] - start[i]);
    }
    out->count = 0;
    out->avail = avail;
    return 0;
}

/* Copy the samples of CPU buffer idx from *tail on into out (stride bytes
 * each, cut or zero-padded; their CPU into cpus when given), at most cap of
 * them; lost-sample records are counted into c. *tail moves past what was
 * read; the ring's own tail is left alone (pylibbpf_pb_release). With
 * min_run, stops before a run of at least min_run samples that can be seen in
 * place (pylibbpf_pb_runlen): those are for a view. Returns the count, or
 * -errno. */
static long pylibbpf_pb_scan(struct perf_buffer *pb, size_t idx, struct pylibbpf_collector *c,
                             uint32_t cpu, uint64_t *tail, char *out, uint32_t stride,
                             size_t cap, uint32_t *cpus, size_t min_run)
{
    struct perf_event_mmap_page *h;
    char *data;
    size_t size, n = 0;
    uint64_t head, pos = *tail;
    int err = pylibbpf_pb_ring(pb, idx, &h, &data, &size);

    if (err)
        return err;
    head = __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
    while (pos < head && n < cap) {
        struct perf_event_header eh;
        uint64_t off = pos & (size - 1);

        if (off + 8 <= size) {  /* the common case: header and sample before the end */
            const char *rec = data + off;

            memcpy(&eh, rec, 8);
            if (min_run && eh.type == PERF_RECORD_SAMPLE) {
                uint32_t sp;

                if (pylibbpf_pb_runlen(data, size, pos, head, stride, min_run, &sp) >= min_run)
                    break;
            }
            if (eh.type == PERF_RECORD_SAMPLE && eh.size >= sizeof(eh) + 4
                && eh.size <= head - pos && off + eh.size <= size) {
                uint32_t len, k;

                memcpy(&len, rec + 8, 4);
                if (len > eh.size - sizeof(eh) - 4)
                    len = eh.size - sizeof(eh) - 4;
                k = len < stride ? len : stride;
                pylibbpf_copy_small(out + n * stride, rec + 12, k);
                if (k < stride)
                    memset(out + n * stride + k, 0, stride - k);
                if (cpus)
                    cpus[n] = cpu;
                n++;
                pos += eh.size;
                /* samples of the same size usually follow back to back: check
                 * their headers at that fixed stride (independent loads, no
                 * walk from one header to the next) up to the ring's end */
                {
                    uint64_t sz = eh.size, o2 = pos & (size - 1);
                    size_t lim = (size_t)((head - pos) / sz), i;
                    uint32_t want = len;

                    if (o2 == 0 || lim > (size - o2) / sz)
                        lim = o2 == 0 ? 0 : (size_t)((size - o2) / sz);
                    if (lim > cap - n)
                        lim = cap - n;
                    for (i = 0; i < lim; i++) {
                        const char *r2 = data + o2 + i * sz;
                        struct perf_event_header e2;
                        uint32_t l2;

                        memcpy(&e2, r2, 8);
                        memcpy(&l2, r2 + 8, 4);
                        if (e2.type != PERF_RECORD_SAMPLE || e2.size != sz || l2 != want)
                            break;
                        pylibbpf_copy_small(out + (n + i) * stride, r2 + 12, k);
                        if (k < stride)
                            memset(out + (n + i) * stride + k, 0, stride - k);
                        if (cpus)
                            cpus[n + i] = cpu;
                    }
                    n += i;
                    pos += i * sz;
                }
                continue;
            }
        }
        pylibbpf_ring_read(data, size, pos, &eh, sizeof(eh));
        if (eh.size < sizeof(eh) || eh.size > head - pos)
            break;  /* not a record: stop rather than walk garbage */
        if (eh.type == PERF_RECORD_SAMPLE && eh.size >= sizeof(eh) + 4) {
            uint32_t len, k;

            pylibbpf_ring_read(data, size, pos + sizeof(eh), &len, 4);
            if (len > eh.size - sizeof(eh) - 4)
                len = eh.size - sizeof(eh) - 4;
            k = len < stride ? len : stride;
            pylibbpf_ring_read(data, size, pos + sizeof(eh) + 4, out + n * stride, k);
            if (k < stride)
                memset(out + n * stride + k, 0, stride - k);
            if (cpus)
                cpus[n] = cpu;
            n++;
        } else if (eh.type == PERF_RECORD_LOST) {
            pylibbpf_pb_count_lost(c, cpu, data, size, pos, eh.size);
        }
        pos += eh.size;
    }
    *tail = pos;
    return (long)n;
}

static int pylibbpf_pb_release(struct perf_buffer *pb, size_t idx, uint64_t tail)
{
    struct perf_event_mmap_page *h;
    char *data;
    size_t size;
    int err = pylibbpf_pb_ring(pb, idx, &h, &data, &size);

    if (err)
        return err;
    __atomic_store_n(&h->data_tail, tail, __ATOMIC_RELEASE);
    return 0;
}

/* the end of a batch: the ring tail of every CPU buffer whose records were
 * read (tails[k] != start[k]) moves to tails[k] */
static int pylibbpf_pb_release_all(struct perf_buffer *pb, size_t n, const uint64_t *start,
                                   const uint64_t *tails)
{
    size_t k;
    int err = 0;

    for (k = 0; k < n; k++) {
        if (tails[k] != start[k]) {
            int e = pylibbpf_pb_release(pb, k, tails[k]);

            if (e && !err)
                err = e;
        }
    }
    return err;
}

/* user ring buffer: reserve, copy, submit in one call */
static int pylibbpf_urb_submit(struct user_ring_buffer *rb, const void *data, __u32 size,
                               int timeout_ms)
{
    void *p;

    if (timeout_ms == 0)
        p = user_ring_buffer__reserve(rb, size);
    else
        p = user_ring_buffer__reserve_blocking(rb, size, timeout_ms);
    if (!p)
        return -errno;
    memcpy(p, data, size);
    user_ring_buffer__submit(rb, p);
    return 0;
}

/* --- BTF ------------------------------------------------------------------ */
struct pylibbpf_btf_info {
    __u32 kind;
    __u32 vlen;
    __u32 kflag;
    __u32 size;        /* struct/union/int/enum/float/datasec size */
    __u32 type;        /* ptr/typedef/modifiers/var/func: referenced type */
    const char *name;
    __u32 int_encoding, int_bits, int_offset;
    __u32 elem_type, index_type, nelems;   /* arrays */
    __u32 linkage;     /* var */
};

struct pylibbpf_btf_member {
    const char *name;
    __u32 type;
    __u32 bit_offset;
    __u32 bitfield_size;
    __s64 value;       /* enums */
    __u64 uvalue;
    __u32 offset, size; /* datasec */
};

static int pylibbpf_btf_info(const struct btf *btf, __u32 id, struct pylibbpf_btf_info *out)
{
    const struct btf_type *t;

    if (id >= btf__type_cnt(btf))
        return -ENOENT;
    t = btf__type_by_id(btf, id);
    if (!t)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    out->kind = btf_kind(t);
    out->vlen = btf_vlen(t);
    out->kflag = btf_kflag(t);
    out->name = btf__name_by_offset(btf, t->name_off);
    switch (out->kind) {
    case BTF_KIND_INT:
        out->size = t->size;
        out->int_encoding = btf_int_encoding(t);
        out->int_bits = btf_int_bits(t);
        out->int_offset = btf_int_offset(t);
        break;
    case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_ENUM: case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT: case BTF_KIND_DATASEC:
        out->size = t->size;
        break;
    case BTF_KIND_ARRAY:
        out->elem_type = btf_array(t)->type;
        out->index_type = btf_array(t)->index_type;
        out->nelems = btf_array(t)->nelems;
        break;
    case BTF_KIND_VAR:
        out->type = t->type;
        out->linkage = btf_var(t)->linkage;
        break;
    default:
        out->type = t->type;
        break;
    }
    return 0;
}

static int pylibbpf_btf_member(const struct btf *btf, __u32 id, __u32 idx,
                               struct pylibbpf_btf_member *out)
{
    const struct btf_type *t = btf__type_by_id(btf, id);

    if (!t || idx >= btf_vlen(t))
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    switch (btf_kind(t)) {
    case BTF_KIND_STRUCT: case BTF_KIND_UNION: {
        const struct btf_member *m = btf_members(t) + idx;

        out->name = btf__name_by_offset(btf, m->name_off);
        out->type = m->type;
        out->bit_offset = btf_member_bit_offset(t, idx);
        out->bitfield_size = btf_member_bitfield_size(t, idx);
        return 0;
    }
    case BTF_KIND_ENUM: {
        const struct btf_enum *e = btf_enum(t) + idx;

        out->name = btf__name_by_offset(btf, e->name_off);
        out->value = e->val;
        out->uvalue = (__u32)e->val;
        return 0;
    }
    case BTF_KIND_ENUM64: {
        const struct btf_enum64 *e = btf_enum64(t) + idx;

        out->name = btf__name_by_offset(btf, e->name_off);
        out->uvalue = btf_enum64_value(e);
        out->value = (__s64)out->uvalue;
        return 0;
    }
    case BTF_KIND_DATASEC: {
        const struct btf_var_secinfo *v = btf_var_secinfos(t) + idx;

        out->type = v->type;
        out->offset = v->offset;
        out->size = v->size;
        return 0;
    }
    default:
        return -EINVAL;
    }
}
