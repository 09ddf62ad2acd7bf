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

/* While a Python call captures libbpf's messages (pylibbpf._ffi.libbpf_log), they
 * are appended here, in C, and Python reads them once afterwards: a cffi callback
 * per line (GIL taken back, a Python frame) cost more than a failing attach itself.
 * Each record is one byte '0' + level, the text, a NUL. Per thread, as libbpf's
 * calls run with the GIL released; a capture saves and restores the one before. */
struct pylibbpf_logbuf {
    char *data;
    size_t len;
    size_t cap;
};

static __thread struct pylibbpf_logbuf *pylibbpf_log_target;

static struct pylibbpf_logbuf *pylibbpf_log_swap(struct pylibbpf_logbuf *buf)
{
    struct pylibbpf_logbuf *prev = pylibbpf_log_target;

    pylibbpf_log_target = buf;
    return prev;
}

static void pylibbpf_logbuf_free(struct pylibbpf_logbuf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

static int pylibbpf_logbuf_reserve(struct pylibbpf_logbuf *buf, size_t need)
{
    size_t cap = buf->cap ? buf->cap : 512;
    char *data;

    if (buf->cap - buf->len >= need)
        return 0;
    while (cap - buf->len < need) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    data = realloc(buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static void pylibbpf_logbuf_append(struct pylibbpf_logbuf *buf, int level, const char *fmt,
                                   va_list ap)
{
    va_list again;
    size_t avail;
    int n;

    if (pylibbpf_logbuf_reserve(buf, 256))
        return;  /* out of memory: the message is lost, as a failed print would be */
    va_copy(again, ap);
    avail = buf->cap - buf->len;
    n = vsnprintf(buf->data + buf->len + 1, avail - 1, fmt, ap);
    if (n >= 0 && (size_t)n + 2 > avail) {
        if (pylibbpf_logbuf_reserve(buf, (size_t)n + 2))
            n = -1;
        else
            vsnprintf(buf->data + buf->len + 1, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (n < 0)
        return;
    buf->data[buf->len] = (char)('0' + level);
    buf->len += (size_t)n + 2;  /* the level, the text, its NUL */
}

static int pylibbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char small[1024];
    va_list again;
    int n;

    if ((int)level > pylibbpf_print_level)
        return 0;
    if (pylibbpf_log_target) {
        int saved = errno;

        pylibbpf_logbuf_append(pylibbpf_log_target, (int)level, fmt, ap);
        errno = saved;
        return 0;
    }
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

/* tests: one message through the print function, as libbpf_print() would */
static void pylibbpf_log_emit_v(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pylibbpf_print_fn((enum libbpf_print_level)level, fmt, ap);
    va_end(ap);
}

static void pylibbpf_log_emit(int level, const char *text)
{
    pylibbpf_log_emit_v(level, "%s", text);
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

/* Local BTF that libbpf trusts blindly:
 * - a bitfield member whose base type has size 0 makes CO-RE relocation's
 *   bpf_core_calc_field_relo() divide by zero (SIGFPE);
 * - btf__new()'s sanity check validates every type ID a type refers to but a
 *   FUNC_PROTO's return type; a bad one is looked up as NULL and dereferenced
 *   (skip_mods_and_typedefs(), from the kfunc extern check at load, and
 *   btf_dump indexes its state array with it).
 * - reference cycles and impossible sizes (pylibbpf_btf_graph_check below).
 * Checked before open (pylibbpf_object_precheck), before load, and before
 * dumping a BTF file; returns 0, or -EINVAL with a message. */
static int pylibbpf_btf_graph_check(const struct btf *btf, char *msg, size_t len);

static int pylibbpf_btf_check(const struct btf *btf, char *msg, size_t len)
{
    __u32 n = btf__type_cnt(btf), id, i;

    if (pylibbpf_btf_graph_check(btf, msg, len))
        return -EINVAL;
    for (id = 1; id < n; id++) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        const struct btf_member *m;

        if (t && btf_is_func_proto(t) && t->type >= n) {
            snprintf(msg, len, "BTF type [%u]: a function prototype returning type [%u], "
                     "which does not exist (the BTF has %u types)", id, t->type, n - 1);
            return -EINVAL;
        }
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

/* --- struct_ops layout (libbpf 1.5 to 1.7 trusts it; corrupt objects crash it) -----
 *
 * libbpf copies a struct_ops variable out of its section with the size of the
 * variable's struct, checking "offset + size > section size" in 32 bits, where
 * it wraps. It then writes each relocated function pointer into that copy at
 * the member's offset (at open), and reads every member at member->offset / 8
 * (bpf_map__init_kern_struct_ops, at load), without checking either against
 * the struct's size. It also takes any map of type BPF_MAP_TYPE_STRUCT_OPS for
 * one of its struct_ops maps, so one declared in SEC(".maps") is dereferenced
 * through a NULL pointer. These checks run before libbpf sees the object. */
#include <libelf.h>
#include <fcntl.h>
#include <unistd.h>

static const char *const pylibbpf_st_ops_secs[] = {
    ".struct_ops", ".struct_ops.link", "?.struct_ops", "?.struct_ops.link",
};

static const struct btf_type *pylibbpf_skip_mods(const struct btf *btf, __u32 id)
{
    const struct btf_type *t = btf__type_by_id(btf, id);
    int depth = 0;

    while (t && (btf_is_mod(t) || btf_is_typedef(t)) && depth++ < 32)
        t = btf__type_by_id(btf, t->type);
    return t;
}

static const char *pylibbpf_btf_name(const struct btf *btf, __u32 off, const char *dflt)
{
    const char *name = btf__name_by_offset(btf, off);

    return name && name[0] ? name : dflt;
}

/* --- BTF reference cycles and sizes ------------------------------------------
 *
 * btf__new() checks that every type ID a type refers to exists, not that the
 * references end: a typedef (or const, volatile, restrict, type tag) naming
 * itself, directly or around a loop, makes libbpf's skip_mods_and_typedefs()
 * (open, CO-RE relocation at load) spin forever with the GIL released, and a
 * struct holding itself by value makes btf__align_of() recurse until the stack
 * ends. C can only make a type refer to itself through a pointer to a struct or
 * union, so the checks are:
 * - following every reference but a pointer's (modifiers, typedefs, type tags,
 *   array elements and indexes, members, function prototypes' return and
 *   parameter types, functions, variables, declaration tags, section
 *   variables) never comes back to a type;
 * - following pointers, modifiers, typedefs and type tags alone never comes
 *   back either (a pointer to itself);
 * - ints, enums and floats have the sizes the kernel accepts, arrays fit in
 *   4 GiB, and members lie inside their struct or union.
 * Returns 0, or -EINVAL with a message naming the type. */
#define PYLIBBPF_WHITE 0
#define PYLIBBPF_GREY 1
#define PYLIBBPF_BLACK 2

static int pylibbpf_btf_is_chain(const struct btf_type *t)
{
    return btf_is_ptr(t) || btf_is_mod(t) || btf_is_typedef(t);
}

/* The k-th type t refers to (k from 0), or -1 after the last. With chain_only,
 * only pointers, modifiers, typedefs and type tags refer to anything; without,
 * everything but pointers. */
static long pylibbpf_btf_ref(const struct btf_type *t, __u32 k, int chain_only)
{
    if (chain_only) {
        if (!pylibbpf_btf_is_chain(t))
            return -1;
        return k == 0 ? (long)t->type : -1;
    }
    switch (btf_kind(t)) {
    case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG: case BTF_KIND_FUNC:
    case BTF_KIND_VAR: case BTF_KIND_DECL_TAG:
        return k == 0 ? (long)t->type : -1;
    case BTF_KIND_ARRAY:
        return k == 0 ? (long)btf_array(t)->type : k == 1 ? (long)btf_array(t)->index_type : -1;
    case BTF_KIND_STRUCT: case BTF_KIND_UNION:
        return k < btf_vlen(t) ? (long)btf_members(t)[k].type : -1;
    case BTF_KIND_FUNC_PROTO:
        return k == 0 ? (long)t->type : k <= btf_vlen(t) ? (long)btf_params(t)[k - 1].type : -1;
    case BTF_KIND_DATASEC:
        return k < btf_vlen(t) ? (long)btf_var_secinfos(t)[k].type : -1;
    default:
        return -1;
    }
}

static const char *pylibbpf_btf_kind_name(const struct btf_type *t)
{
    static const char *const names[] = {
        "void", "int", "pointer", "array", "struct", "union", "enum", "forward declaration",
        "typedef", "volatile", "const", "restrict", "function", "function prototype",
        "variable", "section", "float", "declaration tag", "type tag", "enum64",
    };
    __u16 k = btf_kind(t);

    return k < sizeof(names) / sizeof(names[0]) ? names[k] : "type";
}

/* Depth-first, without recursion (vmlinux BTF has 100,000+ types). */
static int pylibbpf_btf_cycle_check(const struct btf *btf, int chain_only, unsigned char *color,
                                    __u32 *stack, __u32 *next, char *msg, size_t len)
{
    __u32 n = btf__type_cnt(btf), root;

    memset(color, PYLIBBPF_WHITE, n);
    for (root = 1; root < n; root++) {
        __u32 depth = 0;

        if (color[root] != PYLIBBPF_WHITE)
            continue;
        color[root] = PYLIBBPF_GREY;
        stack[0] = root;
        next[0] = 0;
        depth = 1;
        while (depth) {
            __u32 id = stack[depth - 1];
            const struct btf_type *t = btf__type_by_id(btf, id);
            long ref = t ? pylibbpf_btf_ref(t, next[depth - 1]++, chain_only) : -1;

            if (ref < 0) {
                color[id] = PYLIBBPF_BLACK;
                depth--;
                continue;
            }
            if (ref == 0 || (__u32)ref >= n || color[ref] == PYLIBBPF_BLACK)
                continue;  /* void; a missing ID is reported elsewhere */
            if (color[ref] == PYLIBBPF_GREY) {
                __u32 from = depth - 1, i;
                size_t used;

                while (stack[from] != (__u32)ref)
                    from--;
                t = btf__type_by_id(btf, (__u32)ref);
                used = (size_t)snprintf(msg, len, "BTF type [%u] (%s '%s') refers back to "
                                        "itself: [%u]", (__u32)ref, pylibbpf_btf_kind_name(t),
                                        pylibbpf_btf_name(btf, t->name_off, ""), (__u32)ref);
                for (i = from + 1; i < depth && used < len; i++) {
                    if (i - from > 8) {
                        used += (size_t)snprintf(msg + used, len - used, " -> ...");
                        break;
                    }
                    used += (size_t)snprintf(msg + used, len - used, " -> [%u]", stack[i]);
                }
                if (used < len)
                    snprintf(msg + used, len - used, " -> [%u]%s", (__u32)ref,
                             chain_only ? " (a pointer that never reaches a struct or union)"
                                        : "");
                return -EINVAL;
            }
            color[ref] = PYLIBBPF_GREY;
            stack[depth] = (__u32)ref;
            next[depth] = 0;
            depth++;
        }
    }
    return 0;
}

static int pylibbpf_btf_size_check(const struct btf *btf, char *msg, size_t len)
{
    __u32 n = btf__type_cnt(btf), id, i;

    for (id = 1; id < n; id++) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        const char *name;

        if (!t)
            continue;
        name = pylibbpf_btf_name(btf, t->name_off, "");
        if (btf_is_int(t)) {
            __u32 bits = btf_int_bits(t), off = btf_int_offset(t);

            if ((t->size != 1 && t->size != 2 && t->size != 4 && t->size != 8 &&
                 t->size != 16) || bits > t->size * 8 || off + bits > t->size * 8) {
                snprintf(msg, len, "BTF type [%u] (int '%s'): %u bytes holding %u bits at "
                         "bit %u", id, name, t->size, bits, off);
                return -EINVAL;
            }
        } else if (btf_is_any_enum(t)) {
            if (t->size != 1 && t->size != 2 && t->size != 4 && t->size != 8) {
                snprintf(msg, len, "BTF type [%u] (enum '%s'): a size of %u bytes", id, name,
                         t->size);
                return -EINVAL;
            }
        } else if (btf_is_float(t)) {
            if (t->size != 2 && t->size != 4 && t->size != 8 && t->size != 12 &&
                t->size != 16) {
                snprintf(msg, len, "BTF type [%u] (float '%s'): a size of %u bytes", id, name,
                         t->size);
                return -EINVAL;
            }
        } else if (btf_is_array(t)) {
            __s64 size = btf__resolve_size(btf, id);

            if (size == -E2BIG) {
                snprintf(msg, len, "BTF type [%u] (array): %u elements of type [%u] do not "
                         "fit in 4 GiB", id, btf_array(t)->nelems, btf_array(t)->type);
                return -EINVAL;
            }
        } else if (btf_is_composite(t)) {
            const struct btf_member *m = btf_members(t);

            for (i = 0; i < btf_vlen(t); i++, m++) {
                __u64 off = btf_member_bit_offset(t, i), end;
                __u32 bits = btf_member_bitfield_size(t, i);
                const struct btf_type *mt;

                if (bits) {
                    end = off + bits;
                } else {
                    __s64 msize = btf__resolve_size(btf, m->type);

                    if (msize < 0)
                        continue;  /* not sized (libbpf or the kernel say so) */
                    mt = pylibbpf_skip_mods(btf, m->type);
                    if (mt && btf_is_int(mt) && !btf_kflag(t))
                        /* an old-style bitfield: the int's own bits count */
                        end = off + btf_int_offset(mt) + btf_int_bits(mt);
                    else
                        end = off + (__u64)msize * 8;
                }
                if (end > (__u64)t->size * 8) {
                    snprintf(msg, len, "BTF type [%u] (%s '%s'): member %u '%s' ends at bit "
                             "%llu, past the %u bytes of the %s", id,
                             pylibbpf_btf_kind_name(t), name, i,
                             pylibbpf_btf_name(btf, m->name_off, ""), (unsigned long long)end,
                             t->size, pylibbpf_btf_kind_name(t));
                    return -EINVAL;
                }
            }
        }
    }
    return 0;
}

static int pylibbpf_btf_graph_check(const struct btf *btf, char *msg, size_t len)
{
    __u32 n = btf__type_cnt(btf);
    unsigned char *color = malloc(n);
    __u32 *stack = malloc(sizeof(__u32) * n), *next = malloc(sizeof(__u32) * n);
    int ret;

    if (!color || !stack || !next) {
        ret = 0;  /* no memory to check: libbpf will fail soon enough */
        goto out;
    }
    ret = pylibbpf_btf_cycle_check(btf, 0, color, stack, next, msg, len);
    if (!ret)
        ret = pylibbpf_btf_cycle_check(btf, 1, color, stack, next, msg, len);
    if (!ret)
        ret = pylibbpf_btf_size_check(btf, msg, len);
out:
    free(color);
    free(stack);
    free(next);
    return ret;
}

/* Every member of struct type_id (the value of struct_ops map `map`) inside
 * the struct, at the offset libbpf uses (the raw member->offset / 8). A pointer
 * member takes sizeof(void *), which libbpf reads and writes there. At load,
 * libbpf computes a bitfield's place from the raw offset too (before refusing
 * bitfields), so at_load refuses them; at open they must only be integers
 * inside the struct. Returns 0, or -EINVAL with a message. */
static int pylibbpf_struct_ops_type_check(const struct btf *btf, __u32 type_id, const char *map,
                                          int at_load, char *msg, size_t len)
{
    const struct btf_type *t = btf__type_by_id(btf, type_id);
    const struct btf_member *m;
    const char *tname;
    __u32 i;

    if (!t || !btf_is_struct(t))
        return 0;  /* libbpf refuses it */
    tname = pylibbpf_btf_name(btf, t->name_off, "(anonymous)");
    m = btf_members(t);
    for (i = 0; i < btf_vlen(t); i++, m++) {
        const char *mname = pylibbpf_btf_name(btf, m->name_off, "(anonymous)");
        const struct btf_type *mt = pylibbpf_skip_mods(btf, m->type);
        __u32 bits = btf_member_bitfield_size(t, i);
        __s64 msize;

        if (bits) {
            __u64 end = (__u64)btf_member_bit_offset(t, i) + bits;

            if (at_load) {
                snprintf(msg, len, "struct_ops map '%s': member '%s' of struct %s is a "
                         "bitfield, which libbpf cannot place in a struct_ops map", map,
                         mname, tname);
                return -EINVAL;
            }
            if (!mt || !(btf_is_int(mt) || btf_is_any_enum(mt)) || end > (__u64)t->size * 8) {
                snprintf(msg, len, "struct_ops map '%s': bitfield member '%s' of struct %s "
                         "(%u bits at bit %u) is not an integer inside the struct's %u "
                         "bytes", map, mname, tname, bits, btf_member_bit_offset(t, i),
                         t->size);
                return -EINVAL;
            }
            continue;
        }
        msize = mt && btf_is_ptr(mt) ? (__s64)sizeof(void *) : btf__resolve_size(btf, m->type);
        if (msize < 0)
            continue;  /* libbpf refuses it */
        if ((__u64)(m->offset / 8) + (__u64)msize > t->size) {
            snprintf(msg, len, "struct_ops map '%s': member '%s' of struct %s (%lld bytes at "
                     "offset %u) lies outside the struct's %u bytes", map, mname, tname,
                     (long long)msize, m->offset / 8, t->size);
            return -EINVAL;
        }
    }
    return 0;
}

/* The first STT_OBJECT global or weak symbol called `name`, as libbpf's
 * find_elf_var_sym(): 1 found, 0 not, -1 an unreadable name (libbpf fails). */
static int pylibbpf_elf_var_sym(Elf *elf, Elf_Data *syms, size_t strtabidx, const char *name,
                                Elf64_Sym *out)
{
    size_t i, n = syms->d_size / sizeof(Elf64_Sym);

    for (i = 0; i < n; i++) {
        const Elf64_Sym *sym = (const Elf64_Sym *)syms->d_buf + i;
        const char *sname;

        if (ELF64_ST_TYPE(sym->st_info) != STT_OBJECT)
            continue;
        if (ELF64_ST_BIND(sym->st_info) != STB_GLOBAL && ELF64_ST_BIND(sym->st_info) != STB_WEAK)
            continue;
        sname = elf_strptr(elf, strtabidx, sym->st_name);
        if (!sname)
            return -1;
        if (strcmp(sname, name) == 0) {
            *out = *sym;
            return 1;
        }
    }
    return 0;
}

/* The variables of struct_ops section `sec` (of `sec_size` bytes), at the
 * offsets libbpf gives them: from their ELF symbols when clang left the
 * DATASEC unsized (libbpf's btf_fixup_datasec), else the DATASEC's own. */
static int pylibbpf_struct_ops_sec_check(const struct btf *btf, Elf *elf, Elf_Data *syms,
                                         size_t strtabidx, const char *sec, __u64 sec_size,
                                         char *msg, size_t len)
{
    __s32 id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
    const struct btf_var_secinfo *vsi;
    const struct btf_type *ds;
    __u32 i;
    int err;

    if (id < 0)
        return 0;  /* libbpf refuses it */
    ds = btf__type_by_id(btf, id);
    vsi = btf_var_secinfos(ds);
    for (i = 0; i < btf_vlen(ds); i++, vsi++) {
        const struct btf_type *v = btf__type_by_id(btf, vsi->type), *t;
        const char *vname;
        __u32 off = vsi->offset;
        int tid;

        if (!v)
            return 0;
        vname = pylibbpf_btf_name(btf, v->name_off, "(anonymous)");
        if (ds->size == 0) {
            Elf64_Sym sym;
            int found;

            if (!btf_is_var(v))
                return 0;  /* libbpf's fixup refuses it */
            if (btf_var(v)->linkage != BTF_VAR_STATIC &&
                btf_var(v)->linkage != BTF_VAR_GLOBAL_EXTERN) {
                found = pylibbpf_elf_var_sym(elf, syms, strtabidx, vname, &sym);
                if (found <= 0)
                    return 0;  /* libbpf's fixup fails */
                off = (__u32)sym.st_value;  /* as libbpf stores it */
            }
        }
        tid = btf__resolve_type(btf, vsi->type);
        if (tid < 0)
            continue;
        t = btf__type_by_id(btf, tid);
        if (!t || !btf_is_struct(t))
            continue;
        if ((__u64)off + t->size > sec_size) {
            snprintf(msg, len, "struct_ops map '%s' (struct %s, %u bytes at offset %u) lies "
                     "past the end of section %s (%llu bytes)", vname,
                     pylibbpf_btf_name(btf, t->name_off, "(anonymous)"), t->size, off, sec,
                     (unsigned long long)sec_size);
            return -EINVAL;
        }
        err = pylibbpf_struct_ops_type_check(btf, tid, vname, 0, msg, len);
        if (err)
            return err;
    }
    return 0;
}

/* BTF-defined maps (the first DATASEC ".maps", as libbpf reads it) whose
 * __uint(type, ...) says BPF_MAP_TYPE_STRUCT_OPS. */
static int pylibbpf_btf_maps_check(const struct btf *btf, char *msg, size_t len)
{
    __u32 n = btf__type_cnt(btf), id, i, j;

    for (id = 1; id < n; id++) {
        const struct btf_type *ds = btf__type_by_id(btf, id);
        const struct btf_var_secinfo *vsi;

        if (!ds || !btf_is_datasec(ds) ||
            strcmp(pylibbpf_btf_name(btf, ds->name_off, ""), ".maps") != 0)
            continue;
        vsi = btf_var_secinfos(ds);
        for (i = 0; i < btf_vlen(ds); i++, vsi++) {
            const struct btf_type *v = btf__type_by_id(btf, vsi->type), *def;
            const struct btf_member *m;
            __u32 map_type = 0;

            if (!v || !btf_is_var(v))
                continue;
            def = pylibbpf_skip_mods(btf, v->type);
            if (!def || !btf_is_struct(def))
                continue;
            m = btf_members(def);
            for (j = 0; j < btf_vlen(def); j++, m++) {
                const struct btf_type *p, *arr;

                if (strcmp(pylibbpf_btf_name(btf, m->name_off, ""), "type") != 0)
                    continue;
                p = pylibbpf_skip_mods(btf, m->type);
                if (!p || !btf_is_ptr(p))
                    continue;
                arr = btf__type_by_id(btf, p->type);
                if (arr && btf_is_array(arr))
                    map_type = btf_array(arr)->nelems;
            }
            if (map_type == BPF_MAP_TYPE_STRUCT_OPS) {
                snprintf(msg, len, "map '%s' in section .maps is declared "
                         "BPF_MAP_TYPE_STRUCT_OPS; struct_ops maps are variables in "
                         "SEC(\".struct_ops\")", pylibbpf_btf_name(btf, v->name_off, "?"));
                return -EINVAL;
            }
        }
        break;  /* libbpf reads the first one */
    }
    return 0;
}

static int pylibbpf_is_struct_ops_sec(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(pylibbpf_st_ops_secs) / sizeof(pylibbpf_st_ops_secs[0]); i++)
        if (strcmp(name, pylibbpf_st_ops_secs[i]) == 0)
            return 1;
    return 0;
}

#ifndef SHT_LLVM_ADDRSIG
#define SHT_LLVM_ADDRSIG 0x6FFF4C03
#endif

/* Before bpf_object__open: the ELF file `path`, or `size` bytes at `buf`,
 * read with libelf as libbpf reads it. Returns 0 (also when libelf or libbpf's
 * BTF parser refuse the input: libbpf then reports it), -EBADMSG with a message
 * for BTF pylibbpf_btf_check refuses, or -EINVAL with a message for struct_ops
 * data. */
static int pylibbpf_object_precheck(const char *path, const void *buf, size_t size,
                                    char *msg, size_t len)
{
    Elf_Data *btf_data = NULL, *syms = NULL;
    size_t shstrndx, strtabidx = 0;
    int fd = -1, ret = 0, has_maps = 0, has_st_ops = 0;
    struct btf *btf = NULL;
    Elf_Scn *scn = NULL;
    Elf *elf = NULL;

    if (elf_version(EV_CURRENT) == EV_NONE)
        return 0;
    if (buf) {
        elf = elf_memory((char *)buf, size);
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        /* read, not mapped: as libbpf reads it (its ELF_C_READ_MMAP is ELF_C_READ, as
         * libelf.h defines no such macro), the few pieces needed */
        elf = elf_begin(fd, ELF_C_READ, NULL);
    }
    if (!elf || elf_kind(elf) != ELF_K_ELF || !elf64_getehdr(elf) ||
        elf_getshdrstrndx(elf, &shstrndx))
        goto out;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        Elf64_Shdr *sh = elf64_getshdr(scn);
        const char *name;

        if (!sh)
            goto out;
        if (sh->sh_type == SHT_SYMTAB) {
            if (syms)
                goto out;  /* libbpf refuses two */
            syms = elf_getdata(scn, NULL);
            if (!syms)
                goto out;
            strtabidx = sh->sh_link;
        }
        name = elf_strptr(elf, shstrndx, sh->sh_name);
        if (!name)
            goto out;
        if (sh->sh_type == SHT_STRTAB || sh->sh_type == SHT_LLVM_ADDRSIG)
            continue;  /* libbpf ignores them */
        if (strcmp(name, ".maps") == 0) {
            has_maps = 1;
        } else if (strcmp(name, ".BTF") == 0) {
            if (sh->sh_type != SHT_PROGBITS)
                goto out;
            btf_data = elf_getdata(scn, NULL);  /* libbpf takes the last one */
        } else if (sh->sh_type == SHT_PROGBITS && sh->sh_size > 0 &&
                   !(sh->sh_flags & SHF_EXECINSTR) && pylibbpf_is_struct_ops_sec(name)) {
            has_st_ops = 1;
        }
    }
    if (!btf_data || !btf_data->d_buf)
        goto out;
    btf = btf__new(btf_data->d_buf, btf_data->d_size);
    if (!btf || (unsigned long)btf >= (unsigned long)-4095L) {
        btf = NULL;
        goto out;
    }
    /* libbpf walks type chains from open on (map definitions, externs) */
    if (pylibbpf_btf_check(btf, msg, len)) {
        ret = -EBADMSG;
        goto out;
    }
    if (!syms || !(has_maps || has_st_ops))
        goto out;
    if (has_maps) {
        ret = pylibbpf_btf_maps_check(btf, msg, len);
        if (ret)
            goto out;
    }
    scn = NULL;
    while (has_st_ops && (scn = elf_nextscn(elf, scn)) != NULL) {
        Elf64_Shdr *sh = elf64_getshdr(scn);
        const char *name = sh ? elf_strptr(elf, shstrndx, sh->sh_name) : NULL;
        Elf_Data *data;

        if (!name || sh->sh_type != SHT_PROGBITS || sh->sh_size == 0 ||
            (sh->sh_flags & SHF_EXECINSTR) || !pylibbpf_is_struct_ops_sec(name))
            continue;
        data = elf_getdata(scn, NULL);
        if (!data)
            break;  /* libbpf refuses it */
        ret = pylibbpf_struct_ops_sec_check(btf, elf, syms, strtabidx, name, data->d_size,
                                            msg, len);
        if (ret)
            break;
    }
out:
    btf__free(btf);
    if (elf)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    return ret;
}

/* Before bpf_object__load: struct_ops map `map` (value type type_id in the
 * object's BTF) must be a variable of a struct_ops DATASEC of that type (libbpf
 * dereferences the struct_ops data of every map of that type), and its struct
 * must hold together as bpf_map__init_kern_struct_ops reads it. */
static int pylibbpf_struct_ops_map_check(const struct btf *btf, const char *map, __u32 type_id,
                                         char *msg, size_t len)
{
    size_t s;
    int found = 0;

    for (s = 0; s < sizeof(pylibbpf_st_ops_secs) / sizeof(pylibbpf_st_ops_secs[0]) && !found;
         s++) {
        __s32 id = btf__find_by_name_kind(btf, pylibbpf_st_ops_secs[s], BTF_KIND_DATASEC);
        const struct btf_var_secinfo *vsi;
        const struct btf_type *ds;
        __u32 i;

        if (id < 0)
            continue;
        ds = btf__type_by_id(btf, id);
        vsi = btf_var_secinfos(ds);
        for (i = 0; i < btf_vlen(ds) && !found; i++, vsi++) {
            const struct btf_type *v = btf__type_by_id(btf, vsi->type);

            found = v && strcmp(pylibbpf_btf_name(btf, v->name_off, ""), map) == 0 &&
                    btf__resolve_type(btf, vsi->type) == (int)type_id;
        }
    }
    if (!found) {
        snprintf(msg, len, "map '%s' has type BPF_MAP_TYPE_STRUCT_OPS but is no variable of "
                 "SEC(\".struct_ops\")", map);
        return -EINVAL;
    }
    return pylibbpf_struct_ops_type_check(btf, type_id, map, 1, msg, len);
}

/* --- Object's open and load in fewer calls ----------------------------------
 *
 * A fresh process pays for every cffi type and function it touches the first
 * time (building a struct's fields, a function's signature): tens of
 * microseconds each, which was a good part of what pylibbpf added to the first
 * open+load of a process. Filling libbpf's open options here, and running the
 * checks before load in one call, keeps those out of Object(). */

/* Why the last pre-check or load check in this thread refused an object
 * ("" when it did not): read by Object() only on a refusal, so an accepted
 * object needs no message buffer allocated from Python. */
static __thread char pylibbpf_refusal_msg[512];

static const char *pylibbpf_refusal(void)
{
    return pylibbpf_refusal_msg;
}

/* pylibbpf_object_precheck (skipped for a file verdicts.c remembers as
 * accepted; verdicts, when not NULL, is the list's path: the process's first
 * open), then bpf_object__open_mem (buf not NULL) or
 * bpf_object__open_file (path) with Object()'s options (NULL strings: unset).
 * NULL with errno set on failure: the pre-check's (EBADMSG: BTF, EINVAL:
 * struct_ops) when it wrote its message (pylibbpf_refusal), else libbpf's,
 * also for an error pointer libbpf let through (-1..-4095, or any value from
 * 1 << 56 up: a negative number wrapped into a pointer). What libbpf's BTF
 * parser prints during the pre-check is dropped: it prints it again in the
 * open. */
static struct bpf_object *pylibbpf_object_open(const char *path, const void *buf, size_t size,
                                               const char *name, const char *kconfig,
                                               const char *btf_custom_path,
                                               const char *pin_root_path,
                                               const char *token_path, int relaxed_maps,
                                               __u32 kernel_log_level, const char *verdicts)
{
    LIBBPF_OPTS(bpf_object_open_opts, o,
        .object_name = name,
        .relaxed_maps = relaxed_maps != 0,
        .pin_root_path = pin_root_path,
        .kconfig = kconfig,
        .btf_custom_path = btf_custom_path,
        .kernel_log_level = kernel_log_level,
        .bpf_token_path = token_path,
    );
    struct pylibbpf_logbuf dropped = {0}, *prev;
    struct bpf_object *obj;
    unsigned long addr;
    struct stat st;
    int err = 0, st_ok = 0;

    pylibbpf_refusal_msg[0] = '\0';
    if (verdicts)
        pylibbpf_verdicts_prime(verdicts);
    if (!buf && path)
        st_ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (!st_ok || !plb_verd_known(&st)) {  /* verdicts.c: a file accepted before */
        __atomic_add_fetch(&plb_verd_checked, 1, __ATOMIC_ACQ_REL);
        prev = pylibbpf_log_swap(&dropped);
        err = pylibbpf_object_precheck(path, buf, size, pylibbpf_refusal_msg,
                                       sizeof(pylibbpf_refusal_msg));
        pylibbpf_log_swap(prev);
        pylibbpf_logbuf_free(&dropped);
        if (err < 0) {
            errno = -err;
            return NULL;
        }
        if (st_ok)
            plb_verd_accepted(&st);
    }
    pylibbpf_refusal_msg[0] = '\0';  /* a message is the pre-check's refusal, never libbpf's */
    obj = buf ? bpf_object__open_mem(buf, size, &o) : bpf_object__open_file(path, &o);
    /* errors.bad_ptr's rule (its _USER_PTR_LIMIT): no user-space pointer lies
     * this high, so it covers -1..-4095 and any wrapped negative number */
    addr = (unsigned long)obj;
    if (obj && addr >= 1UL << 56) {
        err = (int)-(long)addr;
        errno = err > 0 ? err : EINVAL;
        return NULL;
    }
    return obj;
}

/* Before bpf_object__prepare/bpf_object__load: with check_btf,
 * pylibbpf_btf_check of the object's BTF, then pylibbpf_struct_ops_map_check
 * of every struct_ops map libbpf will create. Returns, in one int (no out
 * parameter: Object.load allocates nothing for it), the verdict in the low 8
 * bits (0 accepted, 1 refused BTF, 2 refused struct_ops data; the message in
 * pylibbpf_refusal) and above them how many arena maps libbpf will create
 * (Object.load checks where each goes), counted in any case. */
static int pylibbpf_object_load_check(const struct bpf_object *obj, int check_btf)
{
    const struct btf *btf = bpf_object__btf(obj);
    struct bpf_map *m;
    int n = 0;

    pylibbpf_refusal_msg[0] = '\0';
    bpf_object__for_each_map(m, obj)
        if (bpf_map__type(m) == BPF_MAP_TYPE_ARENA && bpf_map__autocreate(m) && n < 0xFFFF)
            n++;
    if (!check_btf || !btf)
        return n << 8;
    if (pylibbpf_btf_check(btf, pylibbpf_refusal_msg, sizeof(pylibbpf_refusal_msg)) < 0)
        return n << 8 | 1;
    /* libbpf's own list: two maps may share a name; it sets up the struct_ops
     * maps it creates */
    bpf_object__for_each_map(m, obj)
        if (bpf_map__type(m) == BPF_MAP_TYPE_STRUCT_OPS && bpf_map__autocreate(m) &&
            pylibbpf_struct_ops_map_check(btf, bpf_map__name(m), bpf_map__btf_value_type_id(m),
                                          pylibbpf_refusal_msg,
                                          sizeof(pylibbpf_refusal_msg)) < 0)
            return n << 8 | 2;
    return n << 8;
}
