/* pylibbpf._elfsym: the per-lookup work of pylibbpf.elf's symbol index, in C.
 *
 * Published as the module "pylibbpf._elfsym" by pylibbpf_elfsym_install(),
 * which pylibbpf/elf/_index.py calls on first use.
 *
 * build_hash(symdata, e64, strtab) -> bytes
 *     a chained hash of the names of a table that has none of its own
 *     (.symtab): u32 nbuckets, u32 bucket[nbuckets], u32 next[count], each an
 *     entry index + 1 (0 ends a chain), chains in table order. Its matches come
 *     in the order of SymbolTable.find's name dictionary: the last entry of a
 *     name first, then the others in table order.
 * Lookup(symbol_cls, types, bindings, segments, sources, error_cls)
 *     .lookup(name) -> [Symbol, ...]: what SymbolIndex.lookup returns for a
 *     raw name without version: every defined FUNC/IFUNC entry called name in
 *     each source table, copies merged as _index._dedupe does; None when the
 *     name is one SymbolIndex.lookup handles in Python (name@VERSION, a NUL, a
 *     lone surrogate, a possible demangled name that is not found raw).
 *
 * crc32(data, value=0), adler32(data, value=1) -> int
 *     zlib's checksums, as the zlib module computes them, for the persistent
 *     cache of these hashes (pylibbpf/elf/_diskcache.py) without importing zlib
 *     (~0.3 ms of a fresh process's first attach by name).
 *
 * cached_offsets(entry, path, rules, dirs) -> {name: int} | None
 *     the offsets cache's entry for the binary at path (written by
 *     pylibbpf/elf/_diskcache.py, where its format and rules are told), or
 *     None when it is missing, damaged or stale. The attach reads it through
 *     pylibbpf_cached_offsets() (cffi), which fills the array libbpf takes.
 *
 * realpath(path) -> str | None
 *     realpath(3) of an existing path, or None when it fails (a missing
 *     component, a loop, too long): os.path.realpath walks the path in Python,
 *     one lstat per component, ~50 us of a fresh process's first lookup in a
 *     stripped binary (where its debug link is looked for beside its real path).
 *
 * Every index read from the file (bucket heads, chain links, st_name, versym)
 * is checked before use: a malformed table raises error_cls (ELFError) and
 * cannot make a lookup read outside its buffers or loop for ever. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ES_STT_FUNC 2
#define ES_STT_GNU_IFUNC 10
#define ES_KIND_GNU 1
#define ES_KIND_SYSV 2
#define ES_KIND_OWN 3

static uint32_t es_gnu_hash(const unsigned char *s, Py_ssize_t n)
{
    uint32_t h = 5381;
    for (Py_ssize_t i = 0; i < n; i++)
        h = h * 33 + s[i];
    return h;
}

static uint32_t es_sysv_hash(const unsigned char *s, Py_ssize_t n)
{
    uint32_t h = 0, g;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h << 4) + s[i];
        g = h & 0xF0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

typedef struct {
    uint32_t name;
    unsigned char info;
    uint16_t shndx;
    uint64_t value, size;
} es_sym;

static void es_read_sym(const unsigned char *p, int e64, es_sym *out)
{
    if (e64) {  /* Elf64_Sym: name, info, other, shndx, value, size */
        memcpy(&out->name, p, 4);
        out->info = p[4];
        memcpy(&out->shndx, p + 6, 2);
        memcpy(&out->value, p + 8, 8);
        memcpy(&out->size, p + 16, 8);
    } else {    /* Elf32_Sym: name, value, size, info, other, shndx */
        uint32_t v, s;
        memcpy(&out->name, p, 4);
        memcpy(&v, p + 4, 4);
        memcpy(&s, p + 8, 4);
        out->value = v;
        out->size = s;
        out->info = p[12];
        memcpy(&out->shndx, p + 14, 2);
    }
}

static int es_is_func(const es_sym *s)
{
    int t = s->info & 0xF;
    return (t == ES_STT_FUNC || t == ES_STT_GNU_IFUNC) && s->shndx != 0 && s->value != 0;
}

/* --- build_hash ------------------------------------------------------------ */
static PyObject *es_build_hash(PyObject *self, PyObject *args)
{
    Py_buffer sym, str;
    int e64;
    PyObject *out = NULL;

    if (!PyArg_ParseTuple(args, "y*py*", &sym, &e64, &str))
        return NULL;
    Py_ssize_t ent = e64 ? 24 : 16, count = sym.len / ent, nfunc = 0;
    const unsigned char *sp = sym.buf, *strp = str.buf;
    es_sym s;

    if (count >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_OverflowError, "symbol table too large");
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        es_read_sym(sp + i * ent, e64, &s);
        nfunc += s.name < (uint64_t)str.len;
    }
    uint32_t nb = 1;
    while (nb < (uint32_t)(nfunc / 2 + 1) && nb < (1u << 28))
        nb <<= 1;
    out = PyBytes_FromStringAndSize(NULL, 4 * (1 + (Py_ssize_t)nb + count));
    if (!out)
        goto done;
    uint32_t *w = (uint32_t *)PyBytes_AS_STRING(out), *bucket = w + 1, *next = w + 1 + nb;
    memset(w, 0, 4 * (1 + (size_t)nb + count));
    w[0] = nb;
    for (Py_ssize_t i = count - 1; i >= 0; i--) {  /* head insertion: chains ascend */
        es_read_sym(sp + i * ent, e64, &s);
        if (s.name >= (uint64_t)str.len)
            continue;
        const unsigned char *nm = strp + s.name;
        const unsigned char *end = memchr(nm, 0, str.len - s.name);
        Py_ssize_t n = end ? end - nm : str.len - s.name;
        uint32_t b = es_gnu_hash(nm, n) & (nb - 1);
        next[i] = bucket[b];
        bucket[b] = (uint32_t)i + 1;
    }
done:
    PyBuffer_Release(&sym);
    PyBuffer_Release(&str);
    return out;
}

/* --- Lookup ------------------------------------------------------------------ */
typedef struct {
    Py_buffer sym, str, h1, h2, versym;
    int has_h1, has_h2, has_versym;
    int e64, kind;
    Py_ssize_t count;
    uint32_t nbuckets, symoffset;
    Py_ssize_t nchain;
    PyObject *versions, *table, *file;
} es_source;

typedef struct {
    uint64_t vaddr, offset, filesz, memsz;
    int exec;
} es_seg;

typedef struct {
    PyObject_HEAD
    Py_ssize_t nsrc, nseg;
    es_source *src;
    es_seg *seg;
    PyObject *symcls, *types, *bindings, *errcls, *path;
    /* where each field of Symbol lives in an instance when the class has __slots__
     * (dataclass(slots=True)): stored directly; otherwise set as attributes */
    Py_ssize_t slot[11];
    int use_slots;
    /* lookup_all's way back to SymbolIndex.lookup: a weak reference to the index
     * (a strong one would be a cycle through a type the GC does not walk) and a
     * module-level function fallback(index, query, root) */
    PyObject *fb_ref, *fb_func;
} ESLookup;

static PyTypeObject *ESLookup_Type;
static PyObject *es_fields[11];
static PyObject *es_f_name, *es_f_version, *es_f_default, *es_f_address, *es_f_size,
    *es_f_type, *es_f_binding, *es_f_offset, *es_f_table, *es_f_file, *es_f_demangled,
    *es_empty, *es_empty_str;

static void es_source_release(es_source *s)
{
    if (s->sym.obj) PyBuffer_Release(&s->sym);
    if (s->str.obj) PyBuffer_Release(&s->str);
    if (s->has_h1) PyBuffer_Release(&s->h1);
    if (s->has_h2) PyBuffer_Release(&s->h2);
    if (s->has_versym) PyBuffer_Release(&s->versym);
    Py_CLEAR(s->versions);
    Py_CLEAR(s->table);
    Py_CLEAR(s->file);
}

static void eslookup_dealloc(PyObject *o)
{
    ESLookup *l = (ESLookup *)o;
    PyTypeObject *tp = Py_TYPE(o);

    for (Py_ssize_t i = 0; i < l->nsrc; i++)
        es_source_release(&l->src[i]);
    PyMem_Free(l->src);
    PyMem_Free(l->seg);
    Py_CLEAR(l->symcls);
    Py_CLEAR(l->types);
    Py_CLEAR(l->bindings);
    Py_CLEAR(l->errcls);
    Py_CLEAR(l->path);
    Py_CLEAR(l->fb_ref);
    Py_CLEAR(l->fb_func);
    tp->tp_free(o);
    Py_DECREF(tp);
}

static PyObject *es_error(ESLookup *l, const es_source *s, const char *why)
{
    const char *what = s->kind == ES_KIND_GNU ? ".gnu.hash" : s->kind == ES_KIND_SYSV ? ".hash"
                       : "name hash (built by pylibbpf)";
    PyObject *msg = PyUnicode_FromFormat("%R is not a valid ELF file: the %s of %U %s",
                                         s->file, what, s->table, why);
    if (msg) {
        PyObject *args = Py_BuildValue("(iN)", 8 /* ENOEXEC */, msg);
        if (args) {
            PyErr_SetObject(l->errcls, args);
            Py_DECREF(args);
        }
    }
    return NULL;
}

static PyObject *eslookup_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    PyObject *symcls, *types, *bindings, *segs, *srcs, *errcls, *path;
    ESLookup *l;

    if (!PyArg_ParseTuple(args, "OO!O!O!O!OU", &symcls, &PyList_Type, &types, &PyList_Type,
                          &bindings, &PyList_Type, &segs, &PyList_Type, &srcs, &errcls, &path))
        return NULL;
    if (PyList_GET_SIZE(types) != 16 || PyList_GET_SIZE(bindings) != 16) {
        PyErr_SetString(PyExc_ValueError, "types and bindings need 16 names each");
        return NULL;
    }
    l = (ESLookup *)tp->tp_alloc(tp, 0);
    if (!l)
        return NULL;
    Py_INCREF(symcls); l->symcls = symcls;
    Py_INCREF(types); l->types = types;
    Py_INCREF(bindings); l->bindings = bindings;
    Py_INCREF(errcls); l->errcls = errcls;
    Py_INCREF(path); l->path = path;
    l->use_slots = PyType_Check(symcls);
    for (int k = 0; k < 11 && l->use_slots; k++) {
        PyObject *d = PyObject_GetAttr(symcls, es_fields[k]);
        l->slot[k] = -1;
        if (!d) {
            PyErr_Clear();
        } else {
            if (Py_TYPE(d) == &PyMemberDescr_Type) {
                PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
                if (m->type == T_OBJECT_EX && m->offset > 0 && m->offset + (Py_ssize_t)sizeof(PyObject *)
                    <= ((PyTypeObject *)symcls)->tp_basicsize)
                    l->slot[k] = m->offset;
            }
            Py_DECREF(d);
        }
        if (l->slot[k] < 0)
            l->use_slots = 0;
    }
    l->nseg = PyList_GET_SIZE(segs);
    l->seg = PyMem_Calloc(l->nseg ? l->nseg : 1, sizeof(es_seg));
    l->src = PyMem_Calloc(PyList_GET_SIZE(srcs) ? PyList_GET_SIZE(srcs) : 1, sizeof(es_source));
    if (!l->seg || !l->src) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < l->nseg; i++) {
        unsigned long long va, off, fs, ms;
        int ex;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(segs, i), "KKKKp", &va, &off, &fs, &ms, &ex))
            goto fail;
        l->seg[i] = (es_seg){ va, off, fs, ms, ex };
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(srcs); i++) {
        es_source *s = &l->src[i];
        PyObject *h1, *h2, *vs, *versions, *table, *file;
        unsigned int nb, so;

        if (!PyArg_ParseTuple(PyList_GET_ITEM(srcs, i), "y*py*iOOIIOO!UU", &s->sym, &s->e64,
                              &s->str, &s->kind, &h1, &h2, &nb, &so, &vs, &PyDict_Type,
                              &versions, &table, &file))
            goto fail;
        l->nsrc = i + 1;
        Py_INCREF(versions); s->versions = versions;
        Py_INCREF(table); s->table = table;
        Py_INCREF(file); s->file = file;
        s->count = s->sym.len / (s->e64 ? 24 : 16);
        s->nbuckets = nb;
        s->symoffset = so;
        if (h1 != Py_None) {
            if (PyObject_GetBuffer(h1, &s->h1, PyBUF_SIMPLE))
                goto fail;
            s->has_h1 = 1;
        }
        if (h2 != Py_None) {
            if (PyObject_GetBuffer(h2, &s->h2, PyBUF_SIMPLE))
                goto fail;
            s->has_h2 = 1;
        }
        if (vs != Py_None) {
            if (PyObject_GetBuffer(vs, &s->versym, PyBUF_SIMPLE))
                goto fail;
            s->has_versym = 1;
            if (s->versym.len < 2 * s->count) {  /* as SymbolTable: too short, unused */
                PyBuffer_Release(&s->versym);
                s->has_versym = 0;
            }
        }
        if (s->kind < ES_KIND_GNU || s->kind > ES_KIND_OWN || !s->has_h1 || !s->has_h2
            || s->nbuckets == 0 || s->h1.len < 4 * (Py_ssize_t)s->nbuckets) {
            PyErr_SetString(PyExc_ValueError, "bad hash table description");
            goto fail;
        }
        s->nchain = s->h2.len / 4;
    }
    return (PyObject *)l;
fail:
    Py_DECREF(l);
    return NULL;
}

typedef struct {
    es_source *src;
    Py_ssize_t i;
    es_sym sym;
    PyObject *version;  /* borrowed: a value of src->versions, or NULL */
    int dflt;
} es_hit;

static int es_name_is(const es_source *s, uint32_t st_name, const char *name, Py_ssize_t n)
{
    if ((uint64_t)st_name + n >= (uint64_t)s->str.len)
        return 0;
    const char *p = (const char *)s->str.buf + st_name;
    return memcmp(p, name, n) == 0 && p[n] == 0;
}

/* one entry: appended to hits when it is a defined function called name; -1 on error */
static int es_consider(ESLookup *l, es_source *s, Py_ssize_t i, const char *name, Py_ssize_t n,
                       es_hit **hits, Py_ssize_t *nhits, Py_ssize_t *cap)
{
    es_sym sym;

    if (i < 0 || i >= s->count) {
        es_error(l, s, "points past the last symbol");
        return -1;
    }
    es_read_sym((const unsigned char *)s->sym.buf + i * (s->e64 ? 24 : 16), s->e64, &sym);
    if (!es_is_func(&sym) || !es_name_is(s, sym.name, name, n))
        return 0;
    if (*nhits == *cap) {
        Py_ssize_t nc = *cap * 2;
        es_hit *nh = PyMem_Realloc(*hits, nc * sizeof(es_hit));
        if (!nh) {
            PyErr_NoMemory();
            return -1;
        }
        *hits = nh;
        *cap = nc;
    }
    es_hit *h = &(*hits)[(*nhits)++];
    h->src = s;
    h->i = i;
    h->sym = sym;
    h->version = NULL;
    h->dflt = 1;
    if (s->has_versym) {
        uint16_t v = ((const uint16_t *)s->versym.buf)[i];
        if ((v & 0x7FFF) > 1) {
            PyObject *key = PyLong_FromLong(v & 0x7FFF);
            if (!key)
                return -1;
            PyObject *ver = PyDict_GetItemWithError(s->versions, key);
            Py_DECREF(key);
            if (!ver && PyErr_Occurred())
                return -1;
            h->version = ver == Py_None ? NULL : ver;
            h->dflt = !(v & 0x8000);
        }
    }
    return 0;
}

static int es_find(ESLookup *l, es_source *s, const char *name, Py_ssize_t n,
                   es_hit **hits, Py_ssize_t *nhits, Py_ssize_t *cap)
{
    const uint32_t *b = s->h1.buf, *c = s->h2.buf;

    if (s->kind == ES_KIND_GNU) {
        uint32_t h = es_gnu_hash((const unsigned char *)name, n);
        uint32_t i = b[h % s->nbuckets];
        if (i < s->symoffset)
            return 0;
        h |= 1;
        for (;;) {
            if ((Py_ssize_t)i >= s->count || (Py_ssize_t)(i - s->symoffset) >= s->nchain) {
                es_error(l, s, "has a chain that runs past the last symbol");
                return -1;
            }
            uint32_t h2 = c[i - s->symoffset];
            if ((h2 | 1) == h && es_consider(l, s, i, name, n, hits, nhits, cap))
                return -1;
            if (h2 & 1)
                return 0;
            i++;
        }
    }
    if (s->kind == ES_KIND_SYSV) {
        uint32_t i = b[es_sysv_hash((const unsigned char *)name, n) % s->nbuckets];
        Py_ssize_t steps = 0;
        while (i != 0) {
            if ((Py_ssize_t)i >= s->nchain) {
                es_error(l, s, "has a chain link past its end");
                return -1;
            }
            if (++steps > s->nchain) {
                es_error(l, s, "has a chain that loops");
                return -1;
            }
            if (es_consider(l, s, i, name, n, hits, nhits, cap))
                return -1;
            i = c[i];
        }
        return 0;
    }
    /* ES_KIND_OWN: built by build_hash, bounded the same way. Two walks: the last
     * entry called name goes first, as in SymbolTable.find's dictionary */
    {
        uint32_t head = b[es_gnu_hash((const unsigned char *)name, n) & (s->nbuckets - 1)];
        Py_ssize_t last = -1;
        for (int pass = 0; pass < 2; pass++) {
            uint32_t i = head;
            Py_ssize_t steps = 0;
            if (pass == 1 && last >= 0 && es_consider(l, s, last, name, n, hits, nhits, cap))
                return -1;
            while (i != 0) {
                if ((Py_ssize_t)i > s->nchain || (Py_ssize_t)i > s->count
                    || ++steps > s->nchain) {
                    es_error(l, s, "is inconsistent");
                    return -1;
                }
                Py_ssize_t k = (Py_ssize_t)i - 1;
                if (pass == 0) {
                    es_sym sym;
                    es_read_sym((const unsigned char *)s->sym.buf + k * (s->e64 ? 24 : 16),
                                s->e64, &sym);
                    if (es_name_is(s, sym.name, name, n))
                        last = k;
                } else if (k != last && es_consider(l, s, k, name, n, hits, nhits, cap)) {
                    return -1;
                }
                i = c[k];
            }
            if (last < 0)
                break;
        }
    }
    return 0;
}

static int es_same_version(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (!a || !b)
        return 0;
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* _dedupe: 1 when hits[a] stays in lookup()'s answer, 0 when it goes (an
 * unversioned copy of a versioned symbol at the same address goes, then the first
 * of each (address, version, default) stays), -1 on error */
static int es_survives(const es_hit *hits, Py_ssize_t nhits, Py_ssize_t a)
{
    const es_hit *h = &hits[a];

    for (Py_ssize_t b = 0; b < nhits; b++) {
        if (b == a)
            continue;
        if (!h->version && hits[b].version && hits[b].sym.value == h->sym.value)
            return 0;
        if (b < a && hits[b].sym.value == h->sym.value && hits[b].dflt == h->dflt) {
            int same = es_same_version(hits[b].version, h->version);
            if (same)
                return same < 0 ? -1 : 0;
        }
    }
    return 1;
}

static PyObject *es_offset(ESLookup *l, uint64_t value)
{
    es_seg *best = NULL;

    for (Py_ssize_t k = 0; k < l->nseg; k++) {
        es_seg *g = &l->seg[k];
        uint64_t span = g->memsz > g->filesz ? g->memsz : g->filesz;
        if (value >= g->vaddr && value - g->vaddr < span && value - g->vaddr < g->filesz) {
            if (g->exec) {
                best = g;
                break;
            }
            if (!best)
                best = g;
        }
    }
    if (!best)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(value - best->vaddr + best->offset);
}

static PyObject *es_symbol(ESLookup *l, PyObject *name, es_hit *h)
{
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)l->symcls, es_empty, NULL);
    PyObject *vals[11];
    int k, rc = 0;

    if (!obj)
        return NULL;
    /* in the order of es_fields */
    vals[0] = Py_NewRef(name);
    vals[1] = Py_NewRef(h->version ? h->version : Py_None);
    vals[2] = PyBool_FromLong(h->dflt);
    vals[3] = PyLong_FromUnsignedLongLong(h->sym.value);
    vals[4] = PyLong_FromUnsignedLongLong(h->sym.size);
    vals[5] = Py_NewRef(PyList_GET_ITEM(l->types, h->sym.info & 0xF));
    vals[6] = Py_NewRef(PyList_GET_ITEM(l->bindings, h->sym.info >> 4));
    vals[7] = es_offset(l, h->sym.value);
    vals[8] = Py_NewRef(h->src->table);
    vals[9] = Py_NewRef(h->src->file);
    vals[10] = Py_NewRef(Py_None);
    for (k = 0; k < 11; k++)
        if (!vals[k])
            rc = -1;
    for (k = 0; k < 11; k++) {
        if (rc || !vals[k]) {
            Py_XDECREF(vals[k]);
        } else if (l->use_slots) {
            PyObject **slot = (PyObject **)((char *)obj + l->slot[k]);
            Py_XSETREF(*slot, vals[k]);  /* the reference moves into the instance */
        } else {
            rc = PyObject_GenericSetAttr(obj, es_fields[k], vals[k]);
            Py_DECREF(vals[k]);
        }
    }
    if (rc) {
        Py_DECREF(obj);
        return NULL;
    }
    /* Every field is a str, int, bool or None, and the class is frozen: the object
     * can't be part of a reference cycle, so the cyclic GC need not visit it (as
     * CPython does for tuples of atomic values). Thousands of lookups then don't
     * drive collections over a freshly imported heap. */
    if (l->use_slots && PyObject_GC_IsTracked(obj))
        PyObject_GC_UnTrack(obj);
    return obj;
}

static PyObject *eslookup_lookup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ESLookup *l = (ESLookup *)self;
    es_hit *hits;
    Py_ssize_t nhits = 0, cap = 8;
    PyObject *out = NULL;
    char *name;
    Py_ssize_t n;

    if (nargs != 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "lookup(name: str)");
        return NULL;
    }
    name = (char *)PyUnicode_AsUTF8AndSize(args[0], &n);
    if (!name) {  /* lone surrogates: SymbolIndex.lookup encodes with surrogateescape */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    /* a version (name@VER), or a NUL: SymbolIndex.lookup's own path */
    if (memchr(name, '@', n) || memchr(name, 0, n))
        Py_RETURN_NONE;
    hits = PyMem_Malloc(cap * sizeof(es_hit));
    if (!hits)
        return PyErr_NoMemory();
    for (Py_ssize_t k = 0; k < l->nsrc; k++)
        if (es_find(l, &l->src[k], name, n, &hits, &nhits, &cap))
            goto done;
    if (nhits == 0 && !(n >= 2 && name[0] == '_' && (name[1] == 'Z' || name[1] == 'R'))
        && strpbrk(name, ":(<~")) {
        out = Py_NewRef(Py_None);  /* maybe a demangled C++/Rust name: Python's path */
        goto done;
    }
    out = PyList_New(0);
    if (!out)
        goto done;
    for (Py_ssize_t a = 0; a < nhits; a++) {
        int keep = es_survives(hits, nhits, a);
        if (keep < 0)
            goto fail;
        if (!keep)
            continue;
        es_hit *h = &hits[a];
        PyObject *sym = es_symbol(l, args[0], h);
        if (!sym || PyList_Append(out, sym)) {
            Py_XDECREF(sym);
            goto fail;
        }
        Py_DECREF(sym);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyMem_Free(hits);
    return out;
}

static PyObject *eslookup_set_fallback(PyObject *self, PyObject *args)
{
    ESLookup *l = (ESLookup *)self;
    PyObject *ref, *func;

    if (!PyArg_ParseTuple(args, "OO", &ref, &func))
        return NULL;
    if (!PyWeakref_CheckRef(ref) || !PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "set_fallback(weakref.ref(index), function)");
        return NULL;
    }
    Py_INCREF(ref);
    Py_XSETREF(l->fb_ref, ref);
    Py_INCREF(func);
    Py_XSETREF(l->fb_func, func);
    Py_RETURN_NONE;
}

/* SymbolIndex.lookup(query, *, root="") with no Python frame on the common path:
 * lookup() here, else (another root, or a query lookup() leaves to Python) the
 * fallback function with the index */
static PyObject *eslookup_lookup_all(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    ESLookup *l = (ESLookup *)self;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *root = NULL, *idx, *out;

    if (nargs != 1 || nkw > 1 || (nkw == 1 && (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0))
            || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "root")))) {
        PyErr_SetString(PyExc_TypeError, "lookup() takes one query and the keyword root");
        return NULL;
    }
    if (nkw == 1)
        root = args[1];
    if (!root || (PyUnicode_Check(root) && PyUnicode_GET_LENGTH(root) == 0)) {
        out = eslookup_lookup(self, args, 1);
        if (out != Py_None)
            return out;  /* the list, or NULL with the error set */
        Py_DECREF(out);
    }
    if (!l->fb_ref || !l->fb_func) {
        PyErr_SetString(PyExc_RuntimeError, "lookup_all() without set_fallback()");
        return NULL;
    }
    idx = PyWeakref_GetObject(l->fb_ref);  /* borrowed */
    if (!idx)
        return NULL;
    if (idx == Py_None) {
        PyErr_SetString(PyExc_ReferenceError, "the symbol index is gone");
        return NULL;
    }
    Py_INCREF(idx);
    out = PyObject_CallFunctionObjArgs(l->fb_func, idx, args[0], root ? root : es_empty_str,
                                       NULL);
    Py_DECREF(idx);
    return out;
}

/* Lookup.offsets(names) -> [int | None]: for each name, the file offset a probe on it
 * goes to when that needs no choice (lookup() finds it, every match is at one address,
 * in a loadable segment: _find_symbol's answer), else None, and the caller's Python
 * path decides (not a str, empty, a version, name+0x10, not found, several
 * addresses, a table error): so the same choices and the same errors, in order.
 * need_default (a Lookup over .dynsym alone): only entries with a default version
 * (name@@VER) count, and there must be one. _choose answers such a query with them
 * whatever .symtab or a debug file adds (their entries carry no version: either all
 * matches are at that address, or the default versions decide), so the file's other
 * tables need not be read. */
static PyObject *eslookup_offsets(PyObject *self, PyObject *args)
{
    ESLookup *l = (ESLookup *)self;
    PyObject *names, *seq, *out;
    es_hit *hits;
    Py_ssize_t cap = 8, count;
    int need_default = 0;

    if (!PyArg_ParseTuple(args, "O|p", &names, &need_default))
        return NULL;
    seq = PySequence_Fast(names, "offsets(names): a sequence of names");
    if (!seq)
        return NULL;
    count = PySequence_Fast_GET_SIZE(seq);
    out = PyList_New(count);
    hits = PyMem_Malloc(cap * sizeof(es_hit));
    if (!out || !hits) {
        Py_DECREF(seq);
        Py_XDECREF(out);
        PyMem_Free(hits);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, k), *off = NULL;
        Py_ssize_t n, nhits = 0, first = -1;
        const char *name;
        int bad = 0;

        if (PyUnicode_Check(item) && (name = PyUnicode_AsUTF8AndSize(item, &n)) != NULL
            && n > 0 && !memchr(name, '@', n) && !memchr(name, '+', n) && !memchr(name, 0, n)) {
            for (Py_ssize_t s = 0; s < l->nsrc && !bad; s++)
                bad = es_find(l, &l->src[s], name, n, &hits, &nhits, &cap) != 0;
            for (Py_ssize_t a = 0; a < nhits && !bad; a++) {
                int keep = es_survives(hits, nhits, a);
                if (keep < 0)
                    bad = 1;
                else if (!keep || (need_default && !(hits[a].version && hits[a].dflt)))
                    continue;
                else if (first < 0)
                    first = a;
                else if (hits[a].sym.value != hits[first].sym.value)
                    bad = 1;  /* several addresses: _choose's reasons */
            }
            if (!bad && first >= 0) {
                off = es_offset(l, hits[first].sym.value);
                if (off == Py_None)
                    Py_CLEAR(off);  /* in no loadable segment: Python's error */
            }
        }
        if (PyErr_Occurred())
            PyErr_Clear();  /* the Python path meets it again, in the names' order */
        PyList_SET_ITEM(out, k, off ? off : Py_NewRef(Py_None));
    }
    PyMem_Free(hits);
    Py_DECREF(seq);
    return out;
}

static PyMethodDef eslookup_methods[] = {
    {"offsets", eslookup_offsets, METH_VARARGS,
     "offsets(names, need_default=False) -> [int | None]: each name's file offset when\n"
     "lookup() finds it at one address in a loadable segment, else None (the caller's\n"
     "Python path decides). need_default: only the default-version entries count, and\n"
     "one is needed (a query _choose answers from them whatever the other tables hold)"},
    {"lookup_all", (PyCFunction)(void (*)(void))eslookup_lookup_all,
     METH_FASTCALL | METH_KEYWORDS,
     "lookup_all(query, *, root='') -> [Symbol]: SymbolIndex.lookup, the fallback\n"
     "function of set_fallback() taking what lookup() returns None for"},
    {"set_fallback", eslookup_set_fallback, METH_VARARGS,
     "set_fallback(weakref.ref(index), fallback(index, query, root))"},
    {"lookup", (PyCFunction)(void (*)(void))eslookup_lookup, METH_FASTCALL,
     "lookup(name) -> [Symbol]: defined functions called name, copies merged; None for\n"
     "a name SymbolIndex.lookup handles itself (a version, a NUL, a lone surrogate, a\n"
     "possibly demangled name not found raw)"},
    {NULL},
};

static PyType_Slot eslookup_slots[] = {
    {Py_tp_new, eslookup_new},
    {Py_tp_dealloc, eslookup_dealloc},
    {Py_tp_methods, eslookup_methods},
    {Py_tp_doc, "Lookup(symbol_cls, types, bindings, segments, sources, error_cls, path)"},
    {0, NULL},
};

static PyType_Spec eslookup_spec = {
    "pylibbpf._elfsym.Lookup", sizeof(ESLookup), 0, Py_TPFLAGS_DEFAULT, eslookup_slots,
};

static PyObject *es_checksum(PyObject *args, int adler)
{
    Py_buffer b;
    unsigned long v = adler ? 1 : 0;

    if (!PyArg_ParseTuple(args, adler ? "y*|k:adler32" : "y*|k:crc32", &b, &v))
        return NULL;
    const Bytef *p = b.buf;
    Py_ssize_t left = b.len;
    uLong acc = v & 0xFFFFFFFFUL;

    Py_BEGIN_ALLOW_THREADS
    do {  /* zlib takes a uInt length; called for no data too, as the zlib module does */
        uInt n = left > (1 << 30) ? (1u << 30) : (uInt)left;
        acc = adler ? adler32(acc, p, n) : crc32(acc, p, n);
        p += n;
        left -= n;
    } while (left > 0);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(acc & 0xFFFFFFFFUL);
}

static PyObject *es_crc32(PyObject *self, PyObject *args)
{
    return es_checksum(args, 0);
}

static PyObject *es_adler32(PyObject *self, PyObject *args)
{
    return es_checksum(args, 1);
}

/* --- the offsets cache, read ------------------------------------------------
 * Entry: "PLBOFF02", u64 checksum (sum of the body's 64-bit words), u32 names,
 * u32 header length, u32 body length, u32 0; body: the offsets (u64, native
 * order), the header (text lines: rules tag, path, real path or "-", identity,
 * "stripped" or "-"; for a stripped binary the debug directories joined by
 * 0x1f, then "looked-path 0x1f its state" per place looked at; "", the number
 * of places, the places), the names (NUL-separated), NULs to a multiple of 8. */

#define ESC_MAGIC "PLBOFF02"
#define ESC_FIXED 32
#define ESC_MAX_ENTRY (64u << 20)

/* "dev:ino:size:mtime_ns" of a regular file, as pylibbpf.elf._diskcache._ident
 * writes it; "-" for anything else (no file, not a regular one) */
static void esc_state(const char *path, char *out, size_t n)
{
    struct stat st;

    if (stat(path, &st) || !S_ISREG(st.st_mode)) {
        snprintf(out, n, "-");
        return;
    }
    snprintf(out, n, "%llu:%llu:%lld:%lld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (long long)st.st_size,
             (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
}

static int esc_eq(const char *a, Py_ssize_t alen, const char *b)
{
    size_t blen = strlen(b);
    return (size_t)alen == blen && memcmp(a, b, blen) == 0;
}

/* the next '\n'-terminated field of [*p, end): its start and length */
static int esc_field(const char **p, const char *end, const char **f, Py_ssize_t *len)
{
    if (*p > end)
        return 0;
    const char *nl = memchr(*p, '\n', end - *p);
    const char *stop = nl ? nl : end;
    *f = *p;
    *len = stop - *p;
    *p = stop + 1;
    return 1;
}

static uint64_t esc_hash(const char *s, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Is the header [h, h+hlen) the one the binary at path has now? */
static int esc_header_ok(const char *h, Py_ssize_t hlen, const char *path, const char *rules,
                         const char *dirs)
{
    const char *p = h, *end = h + hlen, *f;
    Py_ssize_t len;
    char buf[PATH_MAX + 128];
    int stripped;

    if (!esc_field(&p, end, &f, &len) || !esc_eq(f, len, rules))
        return 0;
    if (!esc_field(&p, end, &f, &len) || !esc_eq(f, len, path))
        return 0;
    if (!esc_field(&p, end, &f, &len))
        return 0;
    if (!esc_eq(f, len, "-")) {
        char *real = realpath(path, NULL);
        int same = real && esc_eq(f, len, real);
        free(real);
        if (!same)
            return 0;
    }
    esc_state(path, buf, sizeof(buf));
    if (!esc_field(&p, end, &f, &len) || !esc_eq(f, len, buf) || esc_eq(f, len, "-"))
        return 0;
    if (!esc_field(&p, end, &f, &len))
        return 0;
    stripped = esc_eq(f, len, "stripped");
    if (!stripped && !esc_eq(f, len, "-"))
        return 0;
    if (stripped && (!esc_field(&p, end, &f, &len) || !esc_eq(f, len, dirs)))
        return 0;
    /* each place looked at, with what is there now, up to the "" line */
    Py_ssize_t places = 0;
    for (;;) {
        if (!esc_field(&p, end, &f, &len))
            return 0;
        if (len == 0)
            break;
        const char *sep = memchr(f, 0x1f, len);
        if (!stripped || !sep || (size_t)(sep - f) >= sizeof(buf))
            return 0;
        memcpy(buf, f, sep - f);
        buf[sep - f] = 0;
        if (memchr(buf, 0, sep - f))
            return 0;
        char state[128];
        esc_state(buf, state, sizeof(state));
        if (!esc_eq(sep + 1, len - (sep + 1 - f), state))
            return 0;
        places++;
    }
    /* then their number and the places again (for the writer's merge) */
    if (!esc_field(&p, end, &f, &len))
        return 0;
    snprintf(buf, sizeof(buf), "%zd", places);
    return esc_eq(f, len, buf);
}

/* A loaded, checked entry: its names in a hash table. */
typedef struct {
    char *blob;
    const char *body;
    uint32_t count;
    size_t nslots;
    uint32_t *slots;  /* name index + 1, 0: empty */
    const char **starts;
    size_t *lens;
} ESCEntry;

static void esc_free(ESCEntry *e)
{
    free(e->blob);
    free(e->slots);
    free(e->starts);
    free(e->lens);
    memset(e, 0, sizeof(*e));
}

/* 0: the entry at `entry` is intact and current for the binary at `path`;
 * 1: it is not (missing, damaged, stale); -1: out of memory. */
static int esc_load(ESCEntry *e, const char *entry, const char *path, const char *rules,
                    const char *dirs)
{
    struct stat st;
    int fd = -1, rc = 1;

    memset(e, 0, sizeof(*e));
    if (stat(path, &st) || !S_ISREG(st.st_mode) || access(path, R_OK))
        return 1;
    fd = open(entry, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 1;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < ESC_FIXED ||
            (uint64_t)st.st_size > ESC_MAX_ENTRY)
        goto out;
    size_t size = (size_t)st.st_size, got = 0;
    if (!(e->blob = malloc(size))) {
        rc = -1;
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, e->blob + got, size - got);
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    uint64_t total, sum = 0;
    uint32_t count, hlen, blen, zero;

    memcpy(&total, e->blob + 8, 8);
    memcpy(&count, e->blob + 16, 4);
    memcpy(&hlen, e->blob + 20, 4);
    memcpy(&blen, e->blob + 24, 4);
    memcpy(&zero, e->blob + 28, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    total = __builtin_bswap64(total);
    count = __builtin_bswap32(count);
    hlen = __builtin_bswap32(hlen);
    blen = __builtin_bswap32(blen);
#endif
    if (memcmp(e->blob, ESC_MAGIC, 8) || zero || blen != size - ESC_FIXED || blen % 8 ||
            count == 0 || (uint64_t)count * 8 + hlen > blen)
        goto out;
    e->body = e->blob + ESC_FIXED;
    for (size_t i = 0; i < blen; i += 8) {
        uint64_t w;
        memcpy(&w, e->body + i, 8);
        sum += w;
    }
    if (sum != total || !esc_header_ok(e->body + (size_t)count * 8, hlen, path, rules, dirs))
        goto out;

    /* the names: count NUL-separated names, then NUL padding */
    const char *q = e->body + (size_t)count * 8 + hlen, *nend = e->body + blen;
    while (nend > q && nend[-1] == 0)
        nend--;
    e->count = count;
    e->nslots = 16;
    while (e->nslots < (size_t)count * 2)
        e->nslots <<= 1;
    e->slots = calloc(e->nslots, sizeof(*e->slots));
    e->starts = malloc((size_t)count * sizeof(*e->starts));
    e->lens = malloc((size_t)count * sizeof(*e->lens));
    if (!e->slots || !e->starts || !e->lens) {
        rc = -1;
        goto out;
    }
    uint32_t k = 0;
    while (q < nend) {
        const char *z = memchr(q, 0, nend - q);
        const char *stop = z ? z : nend;
        if (k == count || stop == q)
            goto out;
        e->starts[k] = q;
        e->lens[k] = stop - q;
        size_t at = esc_hash(q, stop - q) & (e->nslots - 1);
        while (e->slots[at])
            at = (at + 1) & (e->nslots - 1);
        e->slots[at] = k + 1;
        k++;
        q = stop + 1;
    }
    if (k == count)
        rc = 0;
out:
    close(fd);
    if (rc)
        esc_free(e);
    return rc;
}

/* 1 and *off: the recorded offset of the name s[0:len]; 0: not recorded */
static int esc_find(const ESCEntry *e, const char *s, size_t len, uint64_t *off)
{
    size_t at = esc_hash(s, len) & (e->nslots - 1);

    while (e->slots[at]) {
        uint32_t i = e->slots[at] - 1;
        if (e->lens[i] == len && memcmp(e->starts[i], s, len) == 0) {
            memcpy(off, e->body + (size_t)i * 8, 8);
            return 1;
        }
        at = (at + 1) & (e->nslots - 1);
    }
    return 0;
}

/* For the attach (through cffi, no Python objects): the offsets of the n names
 * of `names` (NUL-separated, names_len bytes) into out[n]. 0: all found; 1:
 * no current entry, or a name not in it; -1: out of memory. */
static int pylibbpf_cached_offsets(const char *entry, const char *path, const char *rules,
                                   const char *dirs, const char *names, size_t names_len,
                                   size_t n, unsigned long *out)
{
    ESCEntry e;
    int rc = esc_load(&e, entry, path, rules, dirs);
    const char *q = names, *end = names + names_len;
    size_t i = 0;

    if (rc)
        return rc;
    for (; i < n && q <= end; i++) {
        const char *z = memchr(q, 0, end - q);
        const char *stop = z ? z : end;
        uint64_t off;
        if (!esc_find(&e, q, stop - q, &off))
            break;
        out[i] = (unsigned long)off;
        q = stop + 1;
    }
    rc = (i == n && q == end + 1) ? 0 : 1;
    esc_free(&e);
    return rc;
}

/* For the writer's merge: {name: offset} of the whole entry, or None. */
static PyObject *es_cached_offsets(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *enc[4] = {NULL, NULL, NULL, NULL}, *out = NULL;
    ESCEntry e;
    int rc;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "cached_offsets(entry, path, rules, dirs)");
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        if (!PyUnicode_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "entry, path, rules and dirs must be str");
            goto out;
        }
        /* as os functions and the writer encode them (UTF-8, surrogateescape) */
        enc[i] = PyUnicode_EncodeFSDefault(args[i]);
        if (!enc[i])
            goto out;
        if ((Py_ssize_t)strlen(PyBytes_AS_STRING(enc[i])) != PyBytes_GET_SIZE(enc[i])) {
            out = Py_NewRef(Py_None);  /* a NUL inside */
            goto out;
        }
    }
    rc = esc_load(&e, PyBytes_AS_STRING(enc[0]), PyBytes_AS_STRING(enc[1]),
                  PyBytes_AS_STRING(enc[2]), PyBytes_AS_STRING(enc[3]));
    if (rc < 0) {
        PyErr_NoMemory();
        goto out;
    }
    if (rc > 0) {
        out = Py_NewRef(Py_None);
        goto out;
    }
    out = PyDict_New();
    for (uint32_t i = 0; out && i < e.count; i++) {
        uint64_t off;
        memcpy(&off, e.body + (size_t)i * 8, 8);
        PyObject *key = PyUnicode_DecodeFSDefaultAndSize(e.starts[i], e.lens[i]);
        PyObject *val = key ? PyLong_FromUnsignedLongLong(off) : NULL;
        if (!val || PyDict_SetItem(out, key, val))
            Py_CLEAR(out);
        Py_XDECREF(key);
        Py_XDECREF(val);
    }
    esc_free(&e);
out:
    for (int i = 0; i < 4; i++)
        Py_XDECREF(enc[i]);
    return out;
}

static PyObject *es_realpath(PyObject *self, PyObject *arg)
{
    PyObject *enc, *out;
    char *res;

    if (!PyUnicode_FSConverter(arg, &enc))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    res = realpath(PyBytes_AS_STRING(enc), NULL);
    Py_END_ALLOW_THREADS
    Py_DECREF(enc);
    if (!res)
        Py_RETURN_NONE;
    out = PyUnicode_DecodeFSDefault(res);
    free(res);
    return out;
}

static PyMethodDef elfsym_functions[] = {
    {"realpath", es_realpath, METH_O, "realpath(path) -> str, or None when realpath(3) fails"},
    {"build_hash", es_build_hash, METH_VARARGS,
     "build_hash(symdata, e64, strtab) -> bytes: a hash of the table's defined functions"},
    {"crc32", es_crc32, METH_VARARGS, "crc32(data, value=0) -> int: zlib.crc32"},
    {"adler32", es_adler32, METH_VARARGS, "adler32(data, value=1) -> int: zlib.adler32"},
    {"cached_offsets", (PyCFunction)(void (*)(void))es_cached_offsets, METH_FASTCALL,
     "cached_offsets(entry, path, rules, dirs) -> {name: offset} or None"},
    {NULL},
};

static struct PyModuleDef elfsym_module = {
    PyModuleDef_HEAD_INIT, "pylibbpf._elfsym",
    "pylibbpf.elf's symbol lookups in C (see pylibbpf/_csrc/elfsym.c)", -1, elfsym_functions,
};

/* Called once through cffi: builds the module and publishes it as
 * sys.modules["pylibbpf._elfsym"]. 0 on success, -1 (error printed) on failure. */
static int pylibbpf_elfsym_install(void)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *mod = NULL, *t;
    int rc = -1;

#define ES_INTERN(var, s) if (!var && !(var = PyUnicode_InternFromString(s))) goto out
    ES_INTERN(es_f_name, "name");
    ES_INTERN(es_f_version, "version");
    ES_INTERN(es_f_default, "default_version");
    ES_INTERN(es_f_address, "address");
    ES_INTERN(es_f_size, "size");
    ES_INTERN(es_f_type, "type");
    ES_INTERN(es_f_binding, "binding");
    ES_INTERN(es_f_offset, "offset");
    ES_INTERN(es_f_table, "table");
    ES_INTERN(es_f_file, "file");
    ES_INTERN(es_f_demangled, "_demangled");
#undef ES_INTERN
    es_fields[0] = es_f_name;
    es_fields[1] = es_f_version;
    es_fields[2] = es_f_default;
    es_fields[3] = es_f_address;
    es_fields[4] = es_f_size;
    es_fields[5] = es_f_type;
    es_fields[6] = es_f_binding;
    es_fields[7] = es_f_offset;
    es_fields[8] = es_f_table;
    es_fields[9] = es_f_file;
    es_fields[10] = es_f_demangled;
    if (!es_empty && !(es_empty = PyTuple_New(0)))
        goto out;
    if (!es_empty_str && !(es_empty_str = PyUnicode_FromString("")))
        goto out;
    mod = PyModule_Create(&elfsym_module);
    if (!mod)
        goto out;
    t = PyType_FromSpec(&eslookup_spec);
    if (!t)
        goto out;
    ESLookup_Type = (PyTypeObject *)t;
    if (PyModule_AddObject(mod, "Lookup", t)) {
        Py_DECREF(t);
        goto out;
    }
    rc = PyDict_SetItemString(PyImport_GetModuleDict(), "pylibbpf._elfsym", mod);
out:
    if (rc)
        PyErr_Print();
    Py_XDECREF(mod);
    PyGILState_Release(st);
    return rc;
}
