/* pylibbpf._fast: the per-element hot paths, written against the CPython API.
 *
 * These live in the same extension as libbpf (one binary, one libbpf) and are
 * published as the module "pylibbpf._fast" by pylibbpf_fast_install(), which
 * _ffi.py calls once at import.
 *
 * MapBase   C base of pylibbpf.Map. Its slots and methods serve m[k], m[k] = v,
 *           del m[k], k in m, m.get(k) and m.pop(k) with one system call and
 *           no Python frame, for maps whose key and value are plain integers
 *           or records of a fixed layout (packed and unpacked here); everything
 *           else (and every error other than a missing key) goes to the Python
 *           methods _getitem, _setitem, _delitem, _contains and _pop, which
 *           raise the proper exception.
 * Layout    how to turn one record's bytes into a Python value: bytes, an int,
 *           a Record (a tuple subclass, items unpacked here), or a Python
 *           decode function for anything else.
 * Handover  async iteration's awaitable: takes one record as it hands it over.
 * Records   a batch of collected ring/perf-buffer records: an iterator that
 *           decodes lazily, and deliver(callback), the per-record callback
 *           loop, which stops at the first callback returning a true value or
 *           raising (the records after it stay in the batch).
 *
 * Element operations on int maps hold the GIL: they are short, bounded system
 * calls, like os.getpid(). */
#include <structmember.h>

/* --- MapBase ---------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    int fd;             /* _fdcache: the live fd, -1 when unknown or closed */
    int ksize;          /* _fast_k: key bytes (1..8); 0 disables the int fast path */
    int vsize;          /* _fast_v: value bytes (1..8) */
    int vsign;          /* _fast_s: index of the value's sign bit, 0 when unsigned */
    PyObject *parent;   /* _parent: views use their root map's fd */
    PyObject *klay;     /* _fast_kl: a Layout (int or struct) packing keys, when the int
                         * path is off; None disables this path */
    PyObject *vlay;     /* _fast_vl: the Layout of values (int or struct) */
} MapBase;

static PyObject *str_getitem, *str_setitem, *str_delitem, *str_contains, *str_pop;

/* the fixed-layout element operations (after Layout, below) */
enum { FAST_NO, FAST_INT, FAST_LAY };
#define LAYBUF 512      /* bytes: the largest key or value served on the fixed-layout path */
static int fast_pack_key(PyObject *self, PyObject *key, uint64_t *kb, int *fd);
static int fast_pack_value(PyObject *self, int path, PyObject *value, uint64_t *vb);
static PyObject *fast_value(PyObject *self, int path, const uint64_t *vb);
static int mapbase_contains(PyObject *self, PyObject *key);
static PyMethodDef mapbase_methods[3];

static PyTypeObject *MapBase_Type;

/* KeyError(key), as `raise KeyError(key)` makes it (PyErr_SetObject would take a
 * tuple key, a record, for the exception's arguments) */
static void set_key_error(PyObject *key)
{
    PyObject *e = PyObject_CallOneArg(PyExc_KeyError, key);

    if (e) {
        PyErr_SetObject(PyExc_KeyError, e);
        Py_DECREF(e);
    }
}

static int mapbase_fd(MapBase *m)
{
    PyObject *p = m->parent;

    if (p && p != Py_None) {
        if (!PyObject_TypeCheck(p, MapBase_Type))
            return -1;
        return ((MapBase *)p)->fd;
    }
    return m->fd;
}

/* the int fast path is on, with sizes that fit the 8-byte buffers used below (the
 * fields are set from Python, which checked them against the map's own sizes) */
static int fast_on(const MapBase *m)
{
    return m->ksize >= 1 && m->ksize <= 8 && m->vsize >= 1 && m->vsize <= 8
        && m->vsign >= 0 && m->vsign < m->vsize * 8;
}

/* key as the little-endian integer the kernel reads: 0 ok, -1 not for the fast path */
static int fast_key(MapBase *m, PyObject *key, uint64_t *out)
{
    unsigned long long k;

    if (!PyLong_CheckExact(key))
        return -1;
    k = PyLong_AsUnsignedLongLong(key);
    if (k == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (m->ksize < 8 && (k >> (m->ksize * 8)))
        return -1;
    *out = k;
    return 0;
}

static PyObject *mapbase_subscript(PyObject *self, PyObject *key)
{
    uint64_t kb[LAYBUF / 8], vb[LAYBUF / 8];
    int fd, err, path = fast_pack_key(self, key, kb, &fd);

    if (path) {
        err = bpf_map_lookup_elem(fd, kb, vb);
        if (!err)
            return fast_value(self, path, vb);
        if (err == -ENOENT) {
            set_key_error(key);
            return NULL;
        }
    }
    return PyObject_CallMethodOneArg(self, str_getitem, key);
}

static int mapbase_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
    uint64_t kb[LAYBUF / 8], vb[LAYBUF / 8];
    PyObject *r;
    int fd, err, path = fast_pack_key(self, key, kb, &fd);

    if (!value) {
        if (path) {
            err = bpf_map_delete_elem(fd, kb);
            if (!err)
                return 0;
            if (err == -ENOENT) {
                set_key_error(key);
                return -1;
            }
        }
        r = PyObject_CallMethodOneArg(self, str_delitem, key);
        goto done;
    }
    /* little-endian: the kernel reads the low vsize bytes of an int value */
    if (path && fast_pack_value(self, path, value, vb) == 0
        && bpf_map_update_elem(fd, kb, vb, BPF_ANY) == 0)
        return 0;
    r = PyObject_CallMethodObjArgs(self, str_setitem, key, value, NULL);
done:
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int mapbase_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((MapBase *)self)->parent);
    Py_VISIT(((MapBase *)self)->klay);
    Py_VISIT(((MapBase *)self)->vlay);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int mapbase_clear(PyObject *self)
{
    Py_CLEAR(((MapBase *)self)->parent);
    Py_CLEAR(((MapBase *)self)->klay);
    Py_CLEAR(((MapBase *)self)->vlay);
    return 0;
}

static void mapbase_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    mapbase_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);  /* instances of heap types own a reference to their type */
}

static PyObject *mapbase_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    MapBase *m = (MapBase *)type->tp_alloc(type, 0);

    if (m)
        m->fd = -1;
    return (PyObject *)m;
}

static PyMemberDef mapbase_members[] = {
    {"_fdcache", T_INT, offsetof(MapBase, fd), 0, NULL},
    {"_fast_k", T_INT, offsetof(MapBase, ksize), 0, NULL},
    {"_fast_v", T_INT, offsetof(MapBase, vsize), 0, NULL},
    {"_fast_s", T_INT, offsetof(MapBase, vsign), 0, NULL},
    {"_parent", T_OBJECT, offsetof(MapBase, parent), 0, NULL},
    {"_fast_kl", T_OBJECT, offsetof(MapBase, klay), 0, NULL},
    {"_fast_vl", T_OBJECT, offsetof(MapBase, vlay), 0, NULL},
    {NULL},
};

static PyType_Slot mapbase_slots[] = {
    {Py_mp_subscript, mapbase_subscript},
    {Py_mp_ass_subscript, mapbase_ass_subscript},
    {Py_sq_contains, mapbase_contains},
    {Py_tp_methods, mapbase_methods},
    {Py_tp_traverse, mapbase_traverse},
    {Py_tp_clear, mapbase_clear},
    {Py_tp_dealloc, mapbase_dealloc},
    {Py_tp_new, mapbase_new},
    {Py_tp_members, mapbase_members},
    {Py_tp_doc, "C base of pylibbpf.Map: element access for ints and fixed-layout records"},
    {0, NULL},
};

static PyType_Spec mapbase_spec = {
    "pylibbpf._fast.MapBase", sizeof(MapBase), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, mapbase_slots,
};

/* --- Layout ----------------------------------------------------------------- */
enum { L_BYTES, L_INT, L_STRUCT, L_CALL };

struct item {
    uint32_t off;
    uint32_t size;      /* bytes for 's', element size otherwise */
    char code;          /* struct module format code */
};

typedef struct {
    PyObject_HEAD
    int mode;
    Py_ssize_t size;        /* the record size the items cover (0 for bytes) */
    PyTypeObject *cls;      /* L_STRUCT: a tuple subclass */
    PyObject *decode;       /* L_CALL: decode(bytes) */
    Py_ssize_t nitems;
    struct item *items;
} Layout;

static PyTypeObject *Layout_Type;

static int item_width(char code);

static PyObject *unpack_item(const char *p, const struct item *it)
{
    switch (it->code) {
    case 'B': return PyLong_FromLong(*(const uint8_t *)p);
    case 'b': return PyLong_FromLong(*(const int8_t *)p);
    case 'H': { uint16_t x; memcpy(&x, p, 2); return PyLong_FromLong(x); }
    case 'h': { int16_t x; memcpy(&x, p, 2); return PyLong_FromLong(x); }
    case 'I': { uint32_t x; memcpy(&x, p, 4); return PyLong_FromUnsignedLong(x); }
    case 'i': { int32_t x; memcpy(&x, p, 4); return PyLong_FromLong(x); }
    case 'Q': { uint64_t x; memcpy(&x, p, 8); return PyLong_FromUnsignedLongLong(x); }
    case 'q': { int64_t x; memcpy(&x, p, 8); return PyLong_FromLongLong(x); }
    case '?': return PyBool_FromLong(*p != 0);
    case 'f': { float x; memcpy(&x, p, 4); return PyFloat_FromDouble(x); }
    case 'd': { double x; memcpy(&x, p, 8); return PyFloat_FromDouble(x); }
    case 's': case 'c': return PyBytes_FromStringAndSize(p, it->size);
    }
    PyErr_Format(PyExc_SystemError, "pylibbpf layout: bad item code %c", it->code);
    return NULL;
}

/* one record; size is the record's own length (records shorter than the
 * layout were zero-padded by the collector) */
static PyObject *layout_decode(Layout *l, const char *p, Py_ssize_t size)
{
    switch (l->mode) {
    case L_BYTES:
        return PyBytes_FromStringAndSize(p, size);
    case L_INT:
        return unpack_item(p, &l->items[0]);
    case L_STRUCT: {
        PyObject *t = l->cls->tp_alloc(l->cls, l->nitems);
        Py_ssize_t i;

        if (!t)
            return NULL;
        for (i = 0; i < l->nitems; i++) {
            PyObject *x = unpack_item(p + l->items[i].off, &l->items[i]);

            if (!x) {
                Py_DECREF(t);
                return NULL;
            }
            PyTuple_SET_ITEM(t, i, x);
        }
        return t;
    }
    default: {
        PyObject *b = PyBytes_FromStringAndSize(p, size), *r;

        if (!b)
            return NULL;
        r = PyObject_CallOneArg(l->decode, b);
        Py_DECREF(b);
        return r;
    }
    }
}

/* Refill t, a record of l->cls (L_STRUCT) that only the caller holds, with the
 * record at p: items whose bytes equal those of prev (the record t held) are
 * kept, the others decoded anew. Saves allocating and freeing a record (and
 * most of its items) per callback when callbacks don't keep records. */
static int layout_refill(Layout *l, PyObject *t, const char *p, const char *prev)
{
    Py_ssize_t i;

    for (i = 0; i < l->nitems; i++) {
        const struct item *it = &l->items[i];
        Py_ssize_t w = it->code == 's' ? it->size : item_width(it->code);
        PyObject *x, *old;

        if (prev && memcmp(p + it->off, prev + it->off, w) == 0)
            continue;
        x = unpack_item(p + it->off, it);
        if (!x)
            return -1;
        old = PyTuple_GET_ITEM(t, i);
        PyTuple_SET_ITEM(t, i, x);
        Py_DECREF(old);
    }
    return 0;
}

static const char ITEM_CODES[] = "BbHhIiQq?fdsc";

static int item_width(char code)
{
    switch (code) {
    case 'B': case 'b': case '?': case 's': case 'c': return 1;
    case 'H': case 'h': return 2;
    case 'I': case 'i': case 'f': return 4;
    default: return 8;
    }
}

/* Layout(mode, size, cls, decode, items): items is a sequence of
 * (offset, code, size) with code one of ITEM_CODES */
static PyObject *layout_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    int mode;
    Py_ssize_t size, i, n;
    PyObject *cls, *decode, *items, *seq;
    Layout *l;

    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Layout() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "inOOO:Layout", &mode, &size, &cls, &decode, &items))
        return NULL;
    if (mode < L_BYTES || mode > L_CALL || size < 0) {
        PyErr_SetString(PyExc_ValueError, "Layout: bad mode or size");
        return NULL;
    }
    if (mode == L_STRUCT && (!PyType_Check(cls) || cls == (PyObject *)&PyTuple_Type
                             || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type))) {
        PyErr_SetString(PyExc_TypeError, "Layout: a struct layout needs a tuple subclass");
        return NULL;
    }
    if (mode == L_CALL && !PyCallable_Check(decode)) {
        PyErr_SetString(PyExc_TypeError, "Layout: decode must be callable");
        return NULL;
    }
    seq = PySequence_Fast(items, "Layout: items must be a sequence");
    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if ((mode == L_INT && n != 1) || (mode == L_STRUCT && n < 1)) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "Layout: wrong number of items");
        return NULL;
    }
    l = (Layout *)type->tp_alloc(type, 0);
    if (!l) {
        Py_DECREF(seq);
        return NULL;
    }
    l->mode = mode;
    l->size = size;
    l->nitems = n;
    if (n) {
        l->items = PyMem_Calloc(n, sizeof(struct item));
        if (!l->items) {
            Py_DECREF(seq);
            Py_DECREF(l);
            return PyErr_NoMemory();
        }
    }
    for (i = 0; i < n; i++) {
        unsigned long off, isz;
        int code;

        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "kCk", &off, &code, &isz))
            goto fail;
        if (!code || !strchr(ITEM_CODES, code)
            || (code != 's' && isz != (unsigned long)item_width((char)code))
            || off + isz > (unsigned long)size || (isz == 0 && code != 's')) {
            PyErr_Format(PyExc_ValueError, "Layout: bad item %zd (%c at %lu, %lu bytes) "
                         "for a %zd-byte record", i, code ? code : '?', off, isz, size);
            goto fail;
        }
        l->items[i].off = (uint32_t)off;
        l->items[i].size = (uint32_t)isz;
        l->items[i].code = (char)code;
    }
    Py_DECREF(seq);
    if (mode == L_STRUCT) {
        Py_INCREF(cls);
        l->cls = (PyTypeObject *)cls;
    }
    if (mode == L_CALL) {
        Py_INCREF(decode);
        l->decode = decode;
    }
    return (PyObject *)l;
fail:
    Py_DECREF(seq);
    Py_DECREF(l);
    return NULL;
}

static PyObject *layout_call(PyObject *self, PyObject *args, PyObject *kwds)
{
    Layout *l = (Layout *)self;
    Py_buffer b;
    PyObject *r;

    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Layout takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*:Layout", &b))
        return NULL;
    if (l->mode != L_BYTES && b.len < l->size) {
        PyErr_Format(PyExc_ValueError, "a %zd-byte record needs at least %zd bytes, got %zd",
                     l->size, l->size, b.len);
        PyBuffer_Release(&b);
        return NULL;
    }
    r = layout_decode(l, b.buf, b.len);
    PyBuffer_Release(&b);
    return r;
}

static int layout_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((Layout *)self)->cls);
    Py_VISIT(((Layout *)self)->decode);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int layout_clear(PyObject *self)
{
    Py_CLEAR(((Layout *)self)->cls);
    Py_CLEAR(((Layout *)self)->decode);
    return 0;
}

static void layout_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    layout_clear(self);
    PyMem_Free(((Layout *)self)->items);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMemberDef layout_members[] = {
    {"size", T_PYSSIZET, offsetof(Layout, size), READONLY, "record bytes the layout reads"},
    {"mode", T_INT, offsetof(Layout, mode), READONLY, "0 bytes, 1 int, 2 struct, 3 call"},
    {NULL},
};

static PyType_Slot layout_slots[] = {
    {Py_tp_new, layout_new},
    {Py_tp_call, layout_call},
    {Py_tp_traverse, layout_traverse},
    {Py_tp_clear, layout_clear},
    {Py_tp_dealloc, layout_dealloc},
    {Py_tp_members, layout_members},
    {Py_tp_doc, "Layout(mode, size, cls, decode, items): decodes one record's bytes"},
    {0, NULL},
};

static PyType_Spec layout_spec = {
    "pylibbpf._fast.Layout", sizeof(Layout), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, layout_slots,
};

/* --- MapBase: element operations ---------------------------------------------
 * Two fast paths, both for maps whose element calls never block (Python sets
 * the fields only for hash, array and LRU hash maps, with sizes checked
 * against the map's own): the int path (ksize/vsize/vsign) for int -> int
 * maps, and the fixed-layout path (klay/vlay) for ints and records. A key or
 * value either path cannot pack exactly as the Python codec would (a dict, a
 * bool, an int out of range, a str, ...) is left to the Python methods, which
 * encode it or raise the codec's error. */

static Layout *fixed_layout(PyObject *o)
{
    Layout *l;

    if (!o || !PyObject_TypeCheck(o, Layout_Type))
        return NULL;
    l = (Layout *)o;
    if ((l->mode != L_INT && l->mode != L_STRUCT) || l->size < 1 || l->size > LAYBUF)
        return NULL;
    return l;
}

/* one flat item as struct.pack would write it: 0, or -1 (no error set) when x
 * is not exactly of the item's type or out of its range */
static int pack_item(char *p, const struct item *it, PyObject *x)
{
    switch (it->code) {
    case 'B': case 'H': case 'I': case 'Q': {
        unsigned long long u;

        if (!PyLong_CheckExact(x))
            return -1;
        u = PyLong_AsUnsignedLongLong(x);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        if (it->size < 8 && (u >> (it->size * 8)))
            return -1;
        memcpy(p, &u, it->size);    /* little-endian (Layouts exist only there) */
        return 0;
    }
    case 'b': case 'h': case 'i': case 'q': {
        long long v;

        if (!PyLong_CheckExact(x))
            return -1;
        v = PyLong_AsLongLong(x);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        if (it->size < 8 && (v >= (1LL << (it->size * 8 - 1)) || v < -(1LL << (it->size * 8 - 1))))
            return -1;
        memcpy(p, &v, it->size);
        return 0;
    }
    case '?':
        if (x != Py_True && x != Py_False)
            return -1;
        *p = x == Py_True;
        return 0;
    case 'f': {
        double d;
        float f;

        if (!PyFloat_CheckExact(x))
            return -1;
        d = PyFloat_AS_DOUBLE(x);
        f = (float)d;
        if (isinf(f) && !isinf(d))
            return -1;      /* struct.pack raises OverflowError */
        memcpy(p, &f, 4);
        return 0;
    }
    case 'd': {
        double d;

        if (!PyFloat_CheckExact(x))
            return -1;
        d = PyFloat_AS_DOUBLE(x);
        memcpy(p, &d, 8);
        return 0;
    }
    case 's': {     /* like struct.pack: cut to size, zero-padded (the buffer is zeroed) */
        Py_ssize_t n;

        if (!PyBytes_CheckExact(x))
            return -1;
        n = PyBytes_GET_SIZE(x);
        memcpy(p, PyBytes_AS_STRING(x), n < (Py_ssize_t)it->size ? n : (Py_ssize_t)it->size);
        return 0;
    }
    case 'c':
        if (!PyBytes_CheckExact(x) || PyBytes_GET_SIZE(x) != 1)
            return -1;
        *p = PyBytes_AS_STRING(x)[0];
        return 0;
    }
    return -1;
}

/* the bytes of x under layout l into buf (l->size bytes, holes zeroed): an int
 * for an int layout, a record of exactly the layout's class for a struct one
 * (the codec packs a record's flat items as they are); 0, or -1 (no error
 * set) when x is for the Python codec */
static int layout_pack(Layout *l, PyObject *x, char *buf)
{
    Py_ssize_t i;

    memset(buf, 0, l->size);
    if (l->mode == L_INT)
        return pack_item(buf + l->items[0].off, &l->items[0], x);
    if (Py_TYPE(x) != l->cls || PyTuple_GET_SIZE(x) != l->nitems)
        return -1;
    for (i = 0; i < l->nitems; i++)
        if (pack_item(buf + l->items[i].off, &l->items[i], PyTuple_GET_ITEM(x, i)))
            return -1;
    return 0;
}

/* the key's bytes in kb and the map's fd in *fd: FAST_INT or FAST_LAY, or
 * FAST_NO (no error set) when this key or map is for the Python methods (a
 * closed map has no fd here: Python raises ClosedError) */
static int fast_pack_key(PyObject *self, PyObject *key, uint64_t *kb, int *fd)
{
    MapBase *m = (MapBase *)self;
    Layout *kl, *vl;

    if (fast_on(m)) {
        if ((*fd = mapbase_fd(m)) >= 0 && fast_key(m, key, kb) == 0)
            return FAST_INT;
        return FAST_NO;
    }
    if (!m->klay || m->klay == Py_None || !(kl = fixed_layout(m->klay))
        || !(vl = fixed_layout(m->vlay)) || (*fd = mapbase_fd(m)) < 0
        || layout_pack(kl, key, (char *)kb))
        return FAST_NO;
    return FAST_LAY;
}

/* the value's bytes in vb: 0, or -1 (no error set) when it is for Python */
static int fast_pack_value(PyObject *self, int path, PyObject *value, uint64_t *vb)
{
    MapBase *m = (MapBase *)self;

    if (path == FAST_LAY)
        return layout_pack((Layout *)m->vlay, value, (char *)vb);
    if (!PyLong_CheckExact(value))
        return -1;
    if (m->vsign) {
        long long s = PyLong_AsLongLong(value);

        if (s == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        if (m->vsign < 63 && (s >= (1LL << m->vsign) || s < -(1LL << m->vsign)))
            return -1;
        vb[0] = (uint64_t)s;
    } else {
        unsigned long long u = PyLong_AsUnsignedLongLong(value);

        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        if (m->vsize < 8 && (u >> (m->vsize * 8)))
            return -1;
        vb[0] = u;
    }
    return 0;
}

/* the value the kernel wrote in vb (fast_pack_key checked vlay for FAST_LAY) */
static PyObject *fast_value(PyObject *self, int path, const uint64_t *vb)
{
    MapBase *m = (MapBase *)self;
    uint64_t v = vb[0];

    if (path == FAST_LAY)
        return layout_decode((Layout *)m->vlay, (const char *)vb, ((Layout *)m->vlay)->size);
    if (m->vsize < 8)
        v &= (1ULL << (m->vsize * 8)) - 1;
    if (m->vsign && ((v >> m->vsign) & 1)) {
        int sh = 63 - m->vsign;

        return PyLong_FromLongLong(((int64_t)(v << sh)) >> sh);
    }
    return PyLong_FromUnsignedLongLong(v);
}

static int mapbase_contains(PyObject *self, PyObject *key)
{
    uint64_t kb[LAYBUF / 8], vb[LAYBUF / 8];
    PyObject *r;
    int fd, err, truth, path = fast_pack_key(self, key, kb, &fd);

    if (path) {
        err = bpf_map_lookup_elem(fd, kb, vb);
        if (!err)
            return 1;
        if (err == -ENOENT)
            return 0;
    }
    r = PyObject_CallMethodOneArg(self, str_contains, key);
    if (!r)
        return -1;
    truth = PyObject_IsTrue(r);
    Py_DECREF(r);
    return truth;
}

/* get(key, default=None), keywords accepted as Mapping.get accepts them */
static PyObject *mapbase_get(PyObject *self, PyObject *const *args, size_t nargsf,
                             PyObject *kwnames)
{
    uint64_t kb[LAYBUF / 8], vb[LAYBUF / 8];
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *key = nargs > 0 ? args[0] : NULL, *dflt = nargs > 1 ? args[1] : NULL, *r;
    int fd, err, path;

    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get() takes a key and an optional default, got %zd "
                     "arguments", nargs);
        return NULL;
    }
    for (i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i), **slot;

        if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "key") == 0)
            slot = &key;
        else if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "default") == 0)
            slot = &dflt;
        else {
            PyErr_Format(PyExc_TypeError, "get() got an unexpected keyword argument '%S'", name);
            return NULL;
        }
        if (*slot) {
            PyErr_Format(PyExc_TypeError, "get() got multiple values for argument '%S'", name);
            return NULL;
        }
        *slot = args[nargs + i];
    }
    if (!key) {
        PyErr_SetString(PyExc_TypeError, "get() missing required argument 'key'");
        return NULL;
    }
    if (!dflt)
        dflt = Py_None;
    path = fast_pack_key(self, key, kb, &fd);
    if (path) {
        err = bpf_map_lookup_elem(fd, kb, vb);
        if (!err)
            return fast_value(self, path, vb);
        if (err == -ENOENT)
            return Py_NewRef(dflt);
    }
    /* as Mapping.get: self[key], a KeyError gives the default */
    r = PyObject_CallMethodOneArg(self, str_getitem, key);
    if (!r && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        return Py_NewRef(dflt);
    }
    return r;
}

static PyObject *mapbase_pop(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t kb[LAYBUF / 8], vb[LAYBUF / 8];
    int fd, err, path;

    if (nargs == 1 || nargs == 2) {
        path = fast_pack_key(self, args[0], kb, &fd);
        if (path) {
            err = bpf_map_lookup_and_delete_elem(fd, kb, vb);
            if (!err)
                return fast_value(self, path, vb);
            if (err == -ENOENT) {
                if (nargs == 2)
                    return Py_NewRef(args[1]);
                set_key_error(args[0]);
                return NULL;
            }
        }
    }
    {   /* queue/stack pops, other keys, errors: the Python method */
        PyObject *meth = PyObject_GetAttr(self, str_pop), *r;

        if (!meth)
            return NULL;
        r = PyObject_Vectorcall(meth, args, (size_t)nargs, NULL);
        Py_DECREF(meth);
        return r;
    }
}

static PyMethodDef mapbase_methods[3] = {
    {"get", (PyCFunction)(void (*)(void))mapbase_get, METH_FASTCALL | METH_KEYWORDS,
     "get($self, key, default=None)\n--\n\n"
     "The value for ``key``, or ``default`` when it is missing."},
    {"pop", (PyCFunction)(void (*)(void))mapbase_pop, METH_FASTCALL,
     "pop($self, *args)\n--\n\n"
     "Queue/stack: ``pop([default])`` removes and returns the next value\n"
     "(IndexError when empty, or ``default``). Other maps: ``pop(key[, default])``\n"
     "as dicts do (an atomic lookup-and-delete where the kernel has one)."},
    {NULL},
};

/* --- Records ---------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    Layout *layout;
    PyObject *data;         /* bytes: the records back to back */
    PyObject *sizes;        /* bytes of uint32 record sizes when stride is 0, else NULL */
    PyObject *cpus;         /* tuple of CPUs (perf buffers): yields (cpu, record), or NULL */
    Py_ssize_t n, pos, stride, off;
    Py_ssize_t taken;       /* records handed out (to a callback or an iterator), not discarded */
} Records;

static PyTypeObject *Records_Type;

/* Records(layout, data, count, stride, sizes=None, cpus=None) */
static PyObject *records_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *layout, *data, *sizes = Py_None, *cpus = Py_None;
    Py_ssize_t n, stride;
    Records *r;

    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Records() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!nn|OO:Records", Layout_Type, &layout, &PyBytes_Type,
                          &data, &n, &stride, &sizes, &cpus))
        return NULL;
    if (n < 0 || stride < 0) {
        PyErr_SetString(PyExc_ValueError, "Records: negative count or stride");
        return NULL;
    }
    if (stride) {
        if (stride < ((Layout *)layout)->size || n > PyBytes_GET_SIZE(data) / stride) {
            PyErr_SetString(PyExc_ValueError, "Records: data shorter than count * stride");
            return NULL;
        }
    } else {
        Py_ssize_t i, total = 0;
        const uint32_t *s;

        if (!PyBytes_Check(sizes) || PyBytes_GET_SIZE(sizes) != n * 4) {
            PyErr_SetString(PyExc_ValueError, "Records: packed records need count sizes");
            return NULL;
        }
        s = (const uint32_t *)PyBytes_AS_STRING(sizes);
        for (i = 0; i < n; i++) {
            if (s[i] < ((Layout *)layout)->size) {
                PyErr_SetString(PyExc_ValueError, "Records: a record is shorter than its type");
                return NULL;
            }
            total += s[i];
        }
        if (total > PyBytes_GET_SIZE(data)) {
            PyErr_SetString(PyExc_ValueError, "Records: sizes exceed the data");
            return NULL;
        }
    }
    if (cpus != Py_None && (!PyList_Check(cpus) || PyList_GET_SIZE(cpus) != n)) {
        PyErr_SetString(PyExc_ValueError, "Records: cpus must be a list of count CPUs");
        return NULL;
    }
    r = (Records *)type->tp_alloc(type, 0);
    if (!r)
        return NULL;
    Py_INCREF(layout);
    r->layout = (Layout *)layout;
    Py_INCREF(data);
    r->data = data;
    if (!stride) {
        Py_INCREF(sizes);
        r->sizes = sizes;
    }
    if (cpus != Py_None) {  /* a tuple of our own: nobody can shorten it meanwhile */
        r->cpus = PyList_AsTuple(cpus);
        if (!r->cpus) {
            Py_DECREF(r);
            return NULL;
        }
    }
    r->n = n;
    r->stride = stride;
    return (PyObject *)r;
}

/* the next record (with its CPU when there are CPUs); NULL with no error at the end */
static PyObject *records_next(PyObject *self)
{
    Records *r = (Records *)self;
    const char *p;
    Py_ssize_t size, i = r->pos;
    PyObject *rec;

    if (i >= r->n)
        return NULL;
    if (r->stride) {
        size = r->stride;
        p = PyBytes_AS_STRING(r->data) + i * r->stride;
    } else {
        size = ((const uint32_t *)PyBytes_AS_STRING(r->sizes))[i];
        p = PyBytes_AS_STRING(r->data) + r->off;
        r->off += size;
    }
    r->pos = i + 1;
    r->taken++;
    rec = layout_decode(r->layout, p, size);
    if (rec && r->cpus) {
        PyObject *cpu = PyTuple_GET_ITEM(r->cpus, i), *pair = PyTuple_New(2);

        if (!pair) {
            Py_DECREF(rec);
            return NULL;
        }
        Py_INCREF(cpu);
        PyTuple_SET_ITEM(pair, 0, cpu);
        PyTuple_SET_ITEM(pair, 1, rec);
        return pair;
    }
    return rec;
}

/* After a callback call raised: true when the callback's own code never ran,
 * i.e. the exception came from a signal handler (or a tracer) run at the
 * callback's first instruction (its RESUME at byte offset `resume` of `code`).
 * Such a record was not delivered and stays pending. */
static int callback_not_started(PyObject *code, long resume)
{
    PyObject *type, *value, *tb, *frame = NULL, *fcode = NULL, *lasti = NULL, *next = NULL;
    int yes = 0;

    if (code == Py_None || resume < 0)
        return 0;
    PyErr_Fetch(&type, &value, &tb);
    if (tb && PyTraceBack_Check(tb)) {
        frame = PyObject_GetAttrString(tb, "tb_frame");
        fcode = frame ? PyObject_GetAttrString(frame, "f_code") : NULL;
        lasti = PyObject_GetAttrString(tb, "tb_lasti");
        next = PyObject_GetAttrString(tb, "tb_next");
        yes = fcode == code && lasti && PyLong_Check(lasti)
              && PyLong_AsLong(lasti) == resume && next && next != Py_None;
    }
    Py_XDECREF(frame);
    Py_XDECREF(fcode);
    Py_XDECREF(lasti);
    Py_XDECREF(next);
    PyErr_Clear();  /* from the attribute look-ups, if any */
    PyErr_Restore(type, value, tb);
    return yes;
}

/* deliver(callback, code=None, resume=-1) -> True when a callback returned a
 * true value (delivery stopped after that record), False when every record
 * was delivered. With CPUs the callback gets (cpu, record). An exception
 * stops delivery too. Pending signal handlers run before each record is
 * taken, so their exceptions leave it pending; a record counts as delivered
 * once the callback's code started (see callback_not_started). */
static PyObject *records_deliver(PyObject *self, PyObject *args)
{
    Records *r = (Records *)self;
    PyObject *cb, *code = Py_None;
    long resume = -1;

    PyObject *spare = NULL;     /* the last record, when only we hold it: refilled */
    const char *prev = NULL;    /* the bytes spare was decoded from */

    if (!PyArg_ParseTuple(args, "O|Ol:deliver", &cb, &code, &resume))
        return NULL;
    while (r->pos < r->n) {
        PyObject *argv[2], *res;
        Py_ssize_t i = r->pos, off = r->off;
        const char *p;
        Py_ssize_t size;
        int truth;

        if (PyErr_CheckSignals()) {
            Py_XDECREF(spare);
            return NULL;
        }
        if (r->stride) {
            size = r->stride;
            p = PyBytes_AS_STRING(r->data) + i * r->stride;
        } else {
            size = ((const uint32_t *)PyBytes_AS_STRING(r->sizes))[i];
            p = PyBytes_AS_STRING(r->data) + r->off;
            r->off += size;
        }
        r->pos = i + 1;
        r->taken++;
        if (spare && Py_REFCNT(spare) == 1) {
            if (layout_refill(r->layout, spare, p, prev) < 0) {
                Py_DECREF(spare);
                return NULL;
            }
            argv[1] = spare;
            spare = NULL;
        } else {
            Py_CLEAR(spare);
            argv[1] = layout_decode(r->layout, p, size);
            if (!argv[1])
                return NULL;
        }
        if (r->cpus) {
            argv[0] = PyTuple_GET_ITEM(r->cpus, i);
            res = PyObject_Vectorcall(cb, argv, 2, NULL);
        } else {
            res = PyObject_Vectorcall(cb, argv + 1, 1, NULL);
        }
        if (r->layout->mode == L_STRUCT && Py_REFCNT(argv[1]) == 1 && res) {
            spare = argv[1];    /* the callback kept no reference: reuse it */
            prev = p;
        } else {
            Py_DECREF(argv[1]);
        }
        if (!res) {
            if (callback_not_started(code, resume) && r->pos == i + 1) {
                r->pos = i;     /* not delivered: it stays pending */
                r->off = off;
                r->taken--;
            }
            return NULL;
        }
        if (res == Py_None || res == Py_False) {
            Py_DECREF(res);
            continue;
        }
        truth = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (truth < 0 || truth) {
            Py_XDECREF(spare);
            if (truth < 0)
                return NULL;
            Py_RETURN_TRUE;
        }
    }
    Py_XDECREF(spare);
    Py_RETURN_FALSE;
}

/* rest() -> the records not yet taken, decoded, without taking them */
static PyObject *records_rest(PyObject *self, PyObject *unused)
{
    Records *r = (Records *)self;
    PyObject *out = PyList_New(0);
    Py_ssize_t i, off = r->off;

    if (!out)
        return NULL;
    for (i = r->pos; i < r->n; i++) {
        const char *p;
        Py_ssize_t size;
        PyObject *rec;
        int err;

        if (r->stride) {
            size = r->stride;
            p = PyBytes_AS_STRING(r->data) + i * r->stride;
        } else {
            size = ((const uint32_t *)PyBytes_AS_STRING(r->sizes))[i];
            p = PyBytes_AS_STRING(r->data) + off;
            off += size;
        }
        rec = layout_decode(r->layout, p, size);
        if (rec && r->cpus) {
            PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(r->cpus, i), rec);

            Py_DECREF(rec);
            rec = pair;
        }
        if (!rec) {
            Py_DECREF(out);
            return NULL;
        }
        err = PyList_Append(out, rec);
        Py_DECREF(rec);
        if (err < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *records_discard(PyObject *self, PyObject *unused)
{
    Records *r = (Records *)self;

    r->pos = r->n;
    Py_RETURN_NONE;
}

static PyObject *records_length_hint(PyObject *self, PyObject *unused)
{
    Records *r = (Records *)self;

    return PyLong_FromSsize_t(r->n - r->pos);
}

static Py_ssize_t records_len(PyObject *self)
{
    Records *r = (Records *)self;

    return r->n - r->pos;
}

static int records_traverse(PyObject *self, visitproc visit, void *arg)
{
    Records *r = (Records *)self;

    Py_VISIT(r->layout);
    Py_VISIT(r->cpus);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int records_clear(PyObject *self)
{
    Records *r = (Records *)self;

    Py_CLEAR(r->layout);
    Py_CLEAR(r->data);
    Py_CLEAR(r->sizes);
    Py_CLEAR(r->cpus);
    r->n = r->pos = 0;
    return 0;
}

static void records_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    records_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMemberDef records_members[] = {
    {"taken", T_PYSSIZET, offsetof(Records, taken), READONLY,
     "records handed out so far (discarded ones not counted)"},
    {NULL},
};

static PyMethodDef records_methods[] = {
    {"deliver", records_deliver, METH_VARARGS,
     "deliver(callback, code=None, resume=-1): call callback per record; True if one "
     "returned a true value"},
    {"__length_hint__", records_length_hint, METH_NOARGS, "records not yet taken"},
    {"discard", records_discard, METH_NOARGS, "drop the records not yet taken"},
    {"rest", records_rest, METH_NOARGS, "the records not yet taken, decoded, left in place"},
    {NULL},
};

static PyType_Slot records_slots[] = {
    {Py_tp_new, records_new},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, records_next},
    {Py_sq_length, records_len},
    {Py_tp_methods, records_methods},
    {Py_tp_members, records_members},
    {Py_tp_traverse, records_traverse},
    {Py_tp_clear, records_clear},
    {Py_tp_dealloc, records_dealloc},
    {Py_tp_doc, "Records(layout, data, count, stride, sizes=None, cpus=None)"},
    {0, NULL},
};

static PyType_Spec records_spec = {
    "pylibbpf._fast.Records", sizeof(Records), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, records_slots,
};

/* --- moving records without a gap ---------------------------------------------
 * An exception from a signal handler can surface between any two bytecodes,
 * and right after any call returns: a value a call returns to Python is lost
 * if one surfaces before it is stored. So records change hands inside one C
 * call each, from one place that outlives an exception to another. */

static struct pylibbpf_collector *collector_at(PyObject *addr)
{
    unsigned long long a = PyLong_AsUnsignedLongLong(addr);

    if (a == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (!a) {
        PyErr_SetString(PyExc_ValueError, "no collector");
        return NULL;
    }
    return (struct pylibbpf_collector *)(uintptr_t)a;
}

/* commit(container, item, collector): append item (the collector's records,
 * copied) to container and empty the collector, in one step */
static PyObject *fast_commit(PyObject *mod, PyObject *args)
{
    PyObject *container, *item, *addr, *r;
    struct pylibbpf_collector *c;

    if (!PyArg_ParseTuple(args, "OOO:commit", &container, &item, &addr))
        return NULL;
    c = collector_at(addr);
    if (!c)
        return NULL;
    if (PyList_CheckExact(container)) {
        if (PyList_Append(container, item) < 0)
            return NULL;
    } else {
        r = PyObject_CallMethod(container, "append", "O", item);
        if (!r)
            return NULL;
        Py_DECREF(r);
    }
    if (c->external)
        pylibbpf_collector_target(c, NULL, 0);  /* the caller's array now holds them */
    c->used = 0;
    c->count = 0;
    Py_RETURN_NONE;
}

/* deliver_batches(batches, callback, with_cpu, code=None, resume=-1) -> (records, stopped):
 * pop each (records, cpus) batch off the list and call callback(records) or
 * callback(records, cpus); stops after a callback returning a true value */
static PyObject *fast_deliver_batches(PyObject *mod, PyObject *args)
{
    PyObject *list, *cb, *code = Py_None;
    int with_cpu;
    long resume = -1;
    Py_ssize_t done = 0;

    if (!PyArg_ParseTuple(args, "O!Op|Ol:deliver_batches", &PyList_Type, &list, &cb, &with_cpu,
                          &code, &resume))
        return NULL;
    while (PyList_GET_SIZE(list) > 0) {
        PyObject *item, *argv[2], *res;
        Py_ssize_t n;
        int truth;

        if (PyErr_CheckSignals())
            return NULL;
        item = PyList_GET_ITEM(list, 0);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "deliver_batches: items must be (records, cpus)");
            return NULL;
        }
        Py_INCREF(item);
        if (PyList_SetSlice(list, 0, 1, NULL) < 0) {
            Py_DECREF(item);
            return NULL;
        }
        argv[0] = PyTuple_GET_ITEM(item, 0);
        argv[1] = PyTuple_GET_ITEM(item, 1);
        n = PyObject_Length(argv[0]);
        if (n < 0) {
            PyErr_Clear();
            n = 0;
        }
        res = PyObject_Vectorcall(cb, argv, with_cpu ? 2 : 1, NULL);
        if (!res) {
            if (callback_not_started(code, resume)) {
                PyObject *t, *v, *tb;

                PyErr_Fetch(&t, &v, &tb);
                if (PyList_Insert(list, 0, item) < 0)
                    PyErr_Clear();
                PyErr_Restore(t, v, tb);
            }
            Py_DECREF(item);
            return NULL;
        }
        Py_DECREF(item);
        done += n;
        truth = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (truth < 0)
            return NULL;
        if (truth)
            return Py_BuildValue("nO", done, Py_True);
    }
    return Py_BuildValue("nO", done, Py_False);
}

/* --- Handover: async iteration's take-and-deliver -----------------------------
 * Handover(queue, out, nothing): an awaitable that, when awaited, takes one
 * record (the first of the list `out`, else the next of the Records at the head
 * of the deque `queue`, dropping spent ones) and finishes with it as its result:
 * the record leaves the buffer inside the C call whose StopIteration carries it
 * to the awaiting frame, so no exception can surface between taking and handing
 * over. With nothing to take, the result is `nothing`. */
typedef struct {
    PyObject_HEAD
    PyObject *queue;
    PyObject *out;
    PyObject *nothing;
} Handover;

static PyTypeObject *Handover_Type;

static PyObject *handover_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *queue, *out, *nothing;
    Handover *h;

    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Handover takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO!O:Handover", &queue, &PyList_Type, &out, &nothing))
        return NULL;
    h = (Handover *)type->tp_alloc(type, 0);
    if (!h)
        return NULL;
    Py_INCREF(queue);
    h->queue = queue;
    Py_INCREF(out);
    h->out = out;
    Py_INCREF(nothing);
    h->nothing = nothing;
    return (PyObject *)h;
}

/* finish with `value` (a reference stolen); NULL with StopIteration(value) set */
static PyObject *handover_finish(Handover *h, PyObject *value, int from_out)
{
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);

    if (!stop) {
        /* could not even make the exception: give a taken record back */
        if (from_out && PyList_Insert(h->out, 0, value) < 0)
            PyErr_Clear();
        Py_DECREF(value);
        return NULL;
    }
    PyErr_SetObject(PyExc_StopIteration, stop);
    Py_DECREF(stop);
    Py_DECREF(value);
    return NULL;
}

static PyObject *handover_next(PyObject *self)
{
    Handover *h = (Handover *)self;
    PyObject *rec;

    if (PyList_GET_SIZE(h->out) > 0) {
        rec = PyList_GET_ITEM(h->out, 0);
        Py_INCREF(rec);
        if (PyList_SetSlice(h->out, 0, 1, NULL) < 0) {
            Py_DECREF(rec);
            return NULL;
        }
        return handover_finish(h, rec, 1);
    }
    for (;;) {
        PyObject *head, *popped;
        Py_ssize_t n = PyObject_Length(h->queue);

        if (n < 0)
            return NULL;
        if (n == 0)
            break;
        head = PySequence_GetItem(h->queue, 0);
        if (!head)
            return NULL;
        rec = PyIter_Next(head);
        if (rec) {
            Py_DECREF(head);
            return handover_finish(h, rec, 0);
        }
        if (PyErr_Occurred()) {
            Py_DECREF(head);
            return NULL;
        }
        /* spent: drop it, unless someone already did */
        popped = PySequence_GetItem(h->queue, 0);
        if (!popped) {
            PyErr_Clear();
            Py_DECREF(head);
            break;
        }
        if (popped == head) {
            PyObject *r = PyObject_CallMethod(h->queue, "popleft", NULL);

            if (!r) {
                Py_DECREF(popped);
                Py_DECREF(head);
                return NULL;
            }
            Py_DECREF(r);
        }
        Py_DECREF(popped);
        Py_DECREF(head);
    }
    Py_INCREF(h->nothing);
    return handover_finish(h, h->nothing, 0);
}

static PyObject *handover_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

static int handover_traverse(PyObject *self, visitproc visit, void *arg)
{
    Handover *h = (Handover *)self;

    Py_VISIT(h->queue);
    Py_VISIT(h->out);
    Py_VISIT(h->nothing);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int handover_clear(PyObject *self)
{
    Handover *h = (Handover *)self;

    Py_CLEAR(h->queue);
    Py_CLEAR(h->out);
    Py_CLEAR(h->nothing);
    return 0;
}

static void handover_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    handover_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot handover_slots[] = {
    {Py_tp_new, handover_new},
    {Py_am_await, handover_await},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, handover_next},
    {Py_tp_traverse, handover_traverse},
    {Py_tp_clear, handover_clear},
    {Py_tp_dealloc, handover_dealloc},
    {Py_tp_doc, "Handover(queue, out, nothing): await it for one record, taken as it is "
                "handed over (nothing when there is none)"},
    {0, NULL},
};

static PyType_Spec handover_spec = {
    "pylibbpf._fast.Handover", sizeof(Handover), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, handover_slots,
};

/* --- LogCaptureBase: libbpf_log()'s context manager ----------------------------
 * __enter__ points this thread's print target (shims.c) at a buffer of its own,
 * __exit__ restores the previous target; take() returns what was printed. In C,
 * so that entering is one call with no point between switching the target and
 * the with-block's cleanup taking over (a Python __enter__ interrupted by an
 * exception from a signal handler would leave the target switched, at memory
 * that is then freed). The buffer is malloc'd; one still in use when the object
 * dies is left alone (leaked), never freed under libbpf. */
typedef struct {
    PyObject_HEAD
    struct pylibbpf_logbuf *buf;
    struct pylibbpf_logbuf *prev;
    int active;
} LogCaptureBase;

static PyTypeObject *LogCaptureBase_Type;

static PyObject *logcap_enter(PyObject *self, PyObject *unused)
{
    LogCaptureBase *c = (LogCaptureBase *)self;

    if (c->active) {
        PyErr_SetString(PyExc_RuntimeError, "this libbpf_log() capture is already on");
        return NULL;
    }
    if (!c->buf) {
        c->buf = calloc(1, sizeof(*c->buf));
        if (!c->buf)
            return PyErr_NoMemory();
    }
    c->prev = pylibbpf_log_swap(c->buf);
    c->active = 1;
    Py_INCREF(self);
    return self;
}

static PyObject *logcap_exit(PyObject *self, PyObject *args)
{
    LogCaptureBase *c = (LogCaptureBase *)self;

    if (c->active) {
        pylibbpf_log_swap(c->prev);
        c->active = 0;
        /* with the pylibbpf logger at DEBUG, captured text is logged there too */
        if (pylibbpf_print_level >= LIBBPF_DEBUG && c->buf && c->buf->len) {
            PyObject *r = PyObject_CallMethod(self, "_log_debug", NULL);

            if (!r)
                return NULL;
            Py_DECREF(r);
        }
    }
    Py_RETURN_FALSE;
}

/* take(): what was printed since the last take(), as bytes (records: b"0"+level,
 * the text, b"\0"); the buffer's memory goes once the capture is off */
static PyObject *logcap_take(PyObject *self, PyObject *unused)
{
    LogCaptureBase *c = (LogCaptureBase *)self;
    PyObject *out;

    if (!c->buf || !c->buf->len) {
        if (c->buf && !c->active)
            pylibbpf_logbuf_free(c->buf);
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    out = PyBytes_FromStringAndSize(c->buf->data, (Py_ssize_t)c->buf->len);
    if (!out)
        return NULL;
    c->buf->len = 0;
    if (!c->active)
        pylibbpf_logbuf_free(c->buf);
    return out;
}

static void logcap_dealloc(PyObject *self)
{
    LogCaptureBase *c = (LogCaptureBase *)self;
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    if (c->buf && !c->active) {
        pylibbpf_logbuf_free(c->buf);
        free(c->buf);
    }
    c->buf = NULL;
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int logcap_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyMethodDef logcap_methods[] = {
    {"__enter__", logcap_enter, METH_NOARGS, "start capturing this thread's libbpf messages"},
    {"__exit__", logcap_exit, METH_VARARGS, "stop capturing"},
    {"take", logcap_take, METH_NOARGS, "the messages captured since the last take(), as bytes"},
    {NULL},
};

static PyType_Slot logcap_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_methods, logcap_methods},
    {Py_tp_traverse, logcap_traverse},
    {Py_tp_dealloc, logcap_dealloc},
    {Py_tp_doc, "C base of pylibbpf._ffi.LogCapture"},
    {0, NULL},
};

static PyType_Spec logcap_spec = {
    "pylibbpf._fast.LogCaptureBase", sizeof(LogCaptureBase), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, logcap_slots,
};

static PyMethodDef fast_functions[] = {
    {"commit", fast_commit, METH_VARARGS,
     "commit(container, item, collector): append item and empty the collector, at once"},
    {"deliver_batches", fast_deliver_batches, METH_VARARGS,
     "deliver_batches(batches, callback, with_cpu, code=None, resume=-1) -> (records, stopped)"},
    {NULL},
};

/* --- the module ------------------------------------------------------------- */
static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "pylibbpf._fast",
    "pylibbpf's CPython-level hot paths (see pylibbpf/_csrc/fast.c)", -1, fast_functions,
};

static int fast_add_type(PyObject *mod, PyType_Spec *spec, PyTypeObject **out)
{
    PyObject *t = PyType_FromSpec(spec);

    if (!t)
        return -1;
    *out = (PyTypeObject *)t;
    Py_INCREF(t);   /* one for *out, one for the module */
    return PyModule_AddObject(mod, strrchr(spec->name, '.') + 1, t) ? (Py_DECREF(t), -1) : 0;
}

/* Called once through cffi (which released the GIL): builds the module and
 * publishes it as sys.modules["pylibbpf._fast"]. 0 on success; on failure the
 * Python error is printed and -1 returned. */
static int pylibbpf_fast_install(void)
{
    PyGILState_STATE st = PyGILState_Ensure();
    PyObject *mod = NULL;
    int rc = -1;

    if (!str_getitem) {
        str_getitem = PyUnicode_InternFromString("_getitem");
        str_setitem = PyUnicode_InternFromString("_setitem");
        str_delitem = PyUnicode_InternFromString("_delitem");
        str_contains = PyUnicode_InternFromString("_contains");
        str_pop = PyUnicode_InternFromString("_pop");
        if (!str_getitem || !str_setitem || !str_delitem || !str_contains || !str_pop)
            goto out;
    }
    mod = PyModule_Create(&fast_module);
    if (!mod)
        goto out;
    if (fast_add_type(mod, &mapbase_spec, &MapBase_Type)
        || fast_add_type(mod, &layout_spec, &Layout_Type)
        || fast_add_type(mod, &records_spec, &Records_Type)
        || fast_add_type(mod, &handover_spec, &Handover_Type)
        || fast_add_type(mod, &logcap_spec, &LogCaptureBase_Type))
        goto out;
    if (PyModule_AddIntConstant(mod, "L_BYTES", L_BYTES) || PyModule_AddIntConstant(mod, "L_INT", L_INT)
        || PyModule_AddIntConstant(mod, "L_STRUCT", L_STRUCT)
        || PyModule_AddIntConstant(mod, "L_CALL", L_CALL))
        goto out;
    rc = PyDict_SetItemString(PyImport_GetModuleDict(), "pylibbpf._fast", mod);
out:
    if (rc)
        PyErr_Print();
    Py_XDECREF(mod);
    PyGILState_Release(st);
    return rc;
}
