/* pylibbpf's small C shims, compiled into pylibbpf._libbpf together with
 * libbpf. They exist where libbpf hands a va_list to a callback, which
 * Python cannot receive. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

/* defined by cffi (extern "Python") */
static void pylibbpf_print_cb(int level, const char *msg);

/* messages above this level are dropped here, before any formatting */
static int pylibbpf_print_level = LIBBPF_INFO;

static void pylibbpf_set_print_level(int level)
{
    pylibbpf_print_level = level;
}

static int pylibbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char small[1024];
    va_list again;
    int n;

    if ((int)level > pylibbpf_print_level)
        return 0;
    va_copy(again, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n >= 0 && (size_t)n < sizeof(small)) {
        pylibbpf_print_cb((int)level, small);
    } else if (n >= 0) {
        /* verifier logs can be megabytes: format them whole */
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            pylibbpf_print_cb((int)level, big);
            free(big);
        }
    }
    va_end(again);
    return 0;
}

static void pylibbpf_install_print(void)
{
    libbpf_set_print(pylibbpf_print_fn);
}

struct pylibbpf_strbuf {
    char *data;
    size_t len;
    size_t cap;
    int err;
};

static void pylibbpf_strbuf_printf(void *ctx, const char *fmt, va_list ap)
{
    struct pylibbpf_strbuf *buf = ctx;
    va_list again;
    int n;

    if (buf->err)
        return;
    va_copy(again, ap);
    n = vsnprintf(buf->data ? buf->data + buf->len : NULL,
                  buf->data ? buf->cap - buf->len : 0, fmt, ap);
    if (n < 0) {
        buf->err = EINVAL;
    } else if (!buf->data || buf->len + (size_t)n + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 65536;
        char *p;

        while (cap < buf->len + (size_t)n + 1)
            cap *= 2;
        p = realloc(buf->data, cap);
        if (!p) {
            buf->err = ENOMEM;
        } else {
            buf->data = p;
            buf->cap = cap;
            vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, again);
            buf->len += (size_t)n;
        }
    } else {
        buf->len += (size_t)n;
    }
    va_end(again);
}

static struct btf_dump *pylibbpf_btf_dump_new(const struct btf *btf, struct pylibbpf_strbuf *buf)
{
    return btf_dump__new(btf, pylibbpf_strbuf_printf, buf, NULL);
}

static void pylibbpf_strbuf_free(struct pylibbpf_strbuf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

/* Local BTF that libbpf's CO-RE relocation trusts blindly: a bitfield member
 * whose base type has size 0 makes bpf_core_calc_field_relo() divide by zero
 * (SIGFPE). Checked before load; returns 0, or -EINVAL with a message. */
static int pylibbpf_btf_check(const struct btf *btf, char *msg, size_t len)
{
    __u32 n = btf__type_cnt(btf), id, i;

    for (id = 1; id < n; id++) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        const struct btf_member *m;

        if (!t || !btf_is_composite(t))
            continue;
        m = btf_members(t);
        for (i = 0; i < btf_vlen(t); i++, m++) {
            __u32 bits = btf_member_bitfield_size(t, i);
            const struct btf_type *mt;
            int depth = 0;

            if (!bits)
                continue;
            mt = btf__type_by_id(btf, m->type);
            while (mt && (btf_is_mod(mt) || btf_is_typedef(mt)) && depth++ < 32)
                mt = btf__type_by_id(btf, mt->type);
            if (!mt || !(btf_is_int(mt) || btf_is_any_enum(mt)) || mt->size == 0 ||
                mt->size > 8 || bits > mt->size * 8) {
                snprintf(msg, len, "BTF type [%u] member %u: a %u-bit bitfield on a base "
                         "type of %u bytes", id, i, bits, mt ? mt->size : 0);
                return -EINVAL;
            }
        }
    }
    return 0;
}
