"""The C hot paths (pylibbpf/_csrc/fast.c): int maps served by Map's C slots, and
ring/perf-buffer records decoded and delivered in C. Each must give exactly what
the Python paths give, and reject bad input with an exception, never a crash."""
from __future__ import annotations

import errno
import os
import random
import struct
import subprocess
import sys

import pytest

import pylibbpf
from pylibbpf import MapType
from pylibbpf._ffi import fast, lib
from pylibbpf.btf import BTF
from pylibbpf.map import possible_cpus
from pylibbpf.typed import IntCodec, StructCodec, codec_for, fast_layout

from _children import same_pylibbpf

BTF_KIND_STRUCT = 4


@pytest.fixture(scope="module")
def kernel_btf():
    ptr = lib.btf__load_vmlinux_btf()
    assert ptr
    btf = BTF(ptr, owned=True, label="vmlinux")
    yield btf
    btf.close()


def _struct_ids(btf: BTF, limit: int):
    ids = []
    for tid in range(1, int(lib.btf__type_cnt(btf._check()))):
        info = btf.info(tid)
        if info.kind == BTF_KIND_STRUCT and 0 < info.size <= 2048:
            ids.append(tid)
    rnd = random.Random(1)
    return rnd.sample(ids, min(limit, len(ids)))


def test_layout_decodes_kernel_structs_like_python(kernel_btf) -> None:
    """Random bytes through 300 kernel structs: the C decoder equals codec.decode."""
    rnd = random.Random(2)
    checked = in_c = 0
    for tid in _struct_ids(kernel_btf, 300):
        codec = kernel_btf.codec(tid)
        lay = fast_layout(codec)
        for _ in range(3):
            raw = rnd.randbytes(codec.size)
            want, got = codec.decode(raw), lay(raw)
            assert type(got) is type(want)
            if isinstance(codec, StructCodec) and want != want:  # NaN floats
                assert repr(got) == repr(want)
            else:
                assert got == want, codec.name
            assert got.to_dict().keys() == want.to_dict().keys() if hasattr(want, "to_dict") \
                else True
        checked += 1
        in_c += lay.mode == fast.L_STRUCT
    assert checked >= 100
    assert in_c >= checked * 0.9  # nearly every kernel struct is unpacked in C


@pytest.mark.parametrize("fmt", ["<I", "<q", "<B", "<h", "<Q"])
def test_layout_ints(fmt: str) -> None:
    codec = codec_for(fmt)
    lay = fast_layout(codec)
    assert type(codec) is IntCodec and lay.mode == fast.L_INT
    for raw in (bytes(codec.size), b"\xff" * codec.size, os.urandom(codec.size)):
        assert lay(raw) == codec.decode(raw)


class _T(tuple):  # type: ignore[type-arg]
    pass


def test_layout_rejects_bad_definitions_and_short_records() -> None:
    with pytest.raises(ValueError, match="bad item 0"):
        fast.Layout(fast.L_STRUCT, 4, _T, None, [(2, "I", 4)])      # runs past the end
    with pytest.raises(ValueError, match="bad item 0"):
        fast.Layout(fast.L_STRUCT, 8, _T, None, [(0, "Z", 4)])      # unknown code
    assert tuple(fast.Layout(fast.L_STRUCT, 4, _T, None, [(0, "I", 4)])(b"\1\0\0\0")) == (1,)
    for cls in (int, tuple):
        with pytest.raises(TypeError, match="tuple subclass"):
            fast.Layout(fast.L_STRUCT, 4, cls, None, [(0, "I", 4)])
    with pytest.raises(TypeError, match="callable"):
        fast.Layout(fast.L_CALL, 4, None, 42, ())
    with pytest.raises(ValueError, match="bad mode"):
        fast.Layout(9, 4, None, None, ())
    lay = fast_layout(codec_for("<IQ"))
    with pytest.raises(ValueError, match="needs at least"):
        lay(b"\0" * 5)


def _records(codec, raws, **kw):
    lay = fast_layout(codec)
    stride = codec.size if codec is not None else 0
    sizes = None if stride else struct.pack(f"={len(raws)}I", *map(len, raws))
    return fast.Records(lay, b"".join(raws), len(raws), stride, sizes, kw.get("cpus"))


def test_records_iterate_and_deliver() -> None:
    codec = codec_for("<IQ")
    raws = [codec.encode((i, i * 10)) for i in range(6)]
    assert [tuple(r) for r in _records(codec, raws)] == [(i, i * 10) for i in range(6)]
    # bytes records of different sizes
    blobs = [b"a", b"bcd", b"", b"efgh"]
    assert list(_records(None, blobs)) == blobs
    # (cpu, record) pairs
    cpus = [3, 1, 0, 1, 2, 0]
    assert [(c, r[0]) for c, r in _records(codec, raws, cpus=cpus)] == list(zip(cpus, range(6)))
    # delivery stops after a callback returns a true value; the rest stays
    seen = []
    recs = _records(codec, raws)
    assert recs.deliver(lambda r: seen.append(r[0]) or r[0] == 2) is True
    assert seen == [0, 1, 2] and len(recs) == 3
    # an exception stops delivery too; the record that raised is consumed
    def boom(r):
        if r[0] == 4:
            raise ZeroDivisionError("record 4")
        seen.append(r[0])
    with pytest.raises(ZeroDivisionError, match="record 4"):
        recs.deliver(boom)
    assert seen == [0, 1, 2, 3] and len(recs) == 1
    assert recs.deliver(lambda r: seen.append(r[0])) is False
    assert seen == [0, 1, 2, 3, 5] and len(recs) == 0
    assert list(recs) == []
    left = _records(codec, raws)
    next(left)
    left.discard()                      # what closing a buffer does to pending batches
    assert len(left) == 0 and left.deliver(seen.append) is False and list(left) == []
    got = []
    _records(codec, raws, cpus=cpus).deliver(lambda c, r: got.append((c, r[1])))
    assert got == [(c, i * 10) for c, i in zip(cpus, range(6))]


def test_records_reject_inconsistent_batches() -> None:
    lay = fast_layout(codec_for("<IQ"))
    with pytest.raises(ValueError, match="shorter than count"):
        fast.Records(lay, b"\0" * 24, 3, 12)
    with pytest.raises(ValueError, match="count sizes"):
        fast.Records(fast_layout(None), b"abc", 2, 0, b"\1\0\0\0")
    with pytest.raises(ValueError, match="exceed"):
        fast.Records(fast_layout(None), b"abc", 1, 0, struct.pack("=I", 9))
    with pytest.raises(ValueError, match="shorter than its type"):
        fast.Records(lay, b"\0" * 24, 2, 0, struct.pack("=2I", 12, 4))
    with pytest.raises(ValueError, match="cpus"):
        fast.Records(lay, b"\0" * 24, 2, 12, None, [0])
    cpus = [4, 5]
    recs = fast.Records(lay, b"\0" * 24, 2, 12, None, cpus)
    cpus.clear()                         # the batch keeps its own copy
    assert [c for c, _ in recs] == [4, 5]
    with pytest.raises(TypeError):
        fast.Records(lay, "text", 1, 12)


# --- maps --------------------------------------------------------------------
def test_int_map_fast_path_round_trips_every_width() -> None:
    for kf, vf in [("B", "B"), ("H", "h"), ("I", "i"), ("Q", "q"), ("I", "Q")]:
        ks, vs = struct.calcsize(kf), struct.calcsize(vf)
        with pylibbpf.Map.create("hash", key_type=kf, value_type=vf, max_entries=16,
                                 name="fastrt") as m:
            signed = vf.islower()
            top = 1 << (vs * 8 - (1 if signed else 0))
            vals = [0, 1, top - 1] + ([-1, -top] if signed else [])
            keys = [0, 1, (1 << (ks * 8)) - 1]
            for i, val in enumerate(vals):
                m[keys[i % len(keys)]] = val
                assert (m._fast_k, m._fast_v) == (ks, vs)  # the C path is the one tested
                assert m[keys[i % len(keys)]] == val
                # the bytes in the kernel are what struct would write
                raw = m.raw[struct.pack("=" + kf, keys[i % len(keys)])]
                assert raw == struct.pack("=" + vf, val)
            with pytest.raises(KeyError):
                m[2]
            # out of range: the Python path's errors, naming the map
            with pytest.raises((OverflowError, ValueError, struct.error), match="fastrt"):
                m[0] = top if not signed else -top - 1
            with pytest.raises((OverflowError, ValueError, struct.error), match="fastrt"):
                m[1 << (ks * 8)] = 1
            with pytest.raises((OverflowError, ValueError, struct.error), match="fastrt"):
                m[-1]


def test_int_map_other_inputs_take_the_general_path() -> None:
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=8,
                             name="fastin") as m:
        m[True] = 5                     # bool is not taken as a plain int in C
        assert m[1] == 5
        m[struct.pack("I", 2)] = struct.pack("Q", 7)   # raw bytes still work
        assert m[2] == 7
        with pytest.raises(TypeError, match="fastin"):
            m["x"] = 1
        with pytest.raises(TypeError, match="fastin"):
            m[3] = "seven"
        del m[2]
        assert 2 not in m and 1 in m


def test_only_never_blocking_map_types_take_the_c_path() -> None:
    with pylibbpf.Map.create("lru_hash", key_type="I", value_type="Q", max_entries=4) as m, \
            pylibbpf.Map.create("percpu_hash", key_type="I", value_type="Q",
                                max_entries=4) as pc, \
            pylibbpf.Map.create("cpumap", key_type="I", value_type="I", max_entries=2) as cm:
        m[1] = 2
        pc[1] = 3
        cm[0] = 0                        # queue size 0: no CPU entry (and no kthread)
        assert m._fast_k == 4 and pc._fast_k == 0 and cm._fast_k == 0
        assert m[1] == 2 and pc.sum(1) == 3 * possible_cpus()


def test_c_path_ignores_impossible_sizes() -> None:
    """MapBase's fields are plain ints settable from Python: sizes its 8-byte buffers
    can't hold switch the C path off instead of reaching memory they don't own."""
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=4) as m:
        m[1] = 5
        for field, bad in (("_fast_k", 100), ("_fast_k", -3), ("_fast_v", 64),
                           ("_fast_v", 0), ("_fast_s", 99), ("_fast_s", -1)):
            good = getattr(m, field)
            setattr(m, field, bad)
            assert m[1] == 5                 # the Python path answered
            m[2] = 6
            assert m[2] == 6
            setattr(m, field, good)


def test_int_map_membership() -> None:
    m = pylibbpf.Map.create("hash", key_type="H", value_type="Q", max_entries=4, name="fastin2")
    m[7] = 0                             # a zero value is still present
    assert m._fast_k == 2
    assert 7 in m and 8 not in m and -1 not in m and 1 << 16 not in m and "7" not in m
    assert m.get(7) == 0 and m.get(8, "none") == "none"
    m.close()
    with pytest.raises(pylibbpf.ClosedError):
        7 in m


def test_int_map_full_raises_the_kernel_error() -> None:
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=2,
                             name="fastfull") as m:
        m[1] = m[2] = 1
        with pytest.raises(pylibbpf.BPFError, match="fastfull") as ei:
            m[3] = 1
        assert ei.value.errno == errno.E2BIG


def test_int_map_closed_and_views() -> None:
    m = pylibbpf.Map.create("array", key_type="I", value_type="I", max_entries=4,
                            name="fastview")
    m[1] = 11
    view = m.typed(value="<i")
    raw = m.raw
    assert view[1] == 11 and raw[struct.pack("I", 1)] == struct.pack("I", 11)
    view[2] = -3
    assert m[2] == (1 << 32) - 3
    m.close()
    for mm in (m, view, raw):
        with pytest.raises(pylibbpf.ClosedError):
            mm[1]
    with pytest.raises(pylibbpf.ClosedError):
        m[1] = 2
    with pytest.raises(pylibbpf.ClosedError):
        view[1] = 2


def _python_paths_fail(monkeypatch) -> None:
    """Make Map's Python element methods fail: what still works was served in C."""
    for name in ("_getitem", "_setitem", "_delitem", "_contains", "_pop"):
        def fail(self, *args, _name=name):
            raise AssertionError(f"{_name} reached Python")
        monkeypatch.setattr(pylibbpf.Map, name, fail)


def test_int_map_delete_pop_get_in_are_served_in_c(monkeypatch) -> None:
    """del m[k], m.pop(k), m.get(k) and k in m on an int map: one system call in C,
    with dict semantics (KeyError(key) / the default on a missing key)."""
    with pylibbpf.Map.create("hash", key_type="I", value_type="q", max_entries=8,
                             name="fastdel") as m:
        m.update({1: 10, 2: -20, 3: 30})
        assert m._fast_k == 4
        with monkeypatch.context() as mp:
            _python_paths_fail(mp)
            del m[1]
            with pytest.raises(KeyError) as ei:
                del m[1]
            assert ei.value.args == (1,)
            assert m.pop(2) == -20 and m.pop(2, "gone") == "gone"
            with pytest.raises(KeyError) as ei:
                m.pop(2)
            assert ei.value.args == (2,)
            assert m.get(3) == 30 and m.get(4) is None and m.get(4, 0) == 0
            # keywords, as Mapping.get takes them
            assert m.get(3, default=0) == 30 and m.get(key=4, default="d") == "d"
            assert 3 in m and 1 not in m and 4 not in m
        assert dict(m.items()) == {3: 30}
        # anything else still reaches Python, with its errors
        with pytest.raises(TypeError, match="fastdel"):
            del m["3"]
        for op in (lambda: m.pop(1 << 40, "big"), lambda: m.get(-1, "neg"), lambda: -1 in m):
            try:
                assert op() is False      # `in` answers False for keys out of range,
            except OverflowError as e:    # the others raise the codec's error
                assert "fastdel" in str(e)
        with pytest.raises(TypeError, match="takes a key"):
            m.pop()
        with pytest.raises(TypeError):
            m.get()
        with pytest.raises(TypeError, match="unexpected keyword"):
            m.get(3, fallback=1)
        with pytest.raises(TypeError, match="multiple values"):
            m.get(3, key=3)
    for op in (lambda: m.__delitem__(3), lambda: m.pop(3), lambda: m.get(3),
               lambda: 3 in m, lambda: m.pop(3, None)):
        with pytest.raises(pylibbpf.ClosedError):
            op()


def test_array_map_delete_and_pop_keep_the_kernel_errors() -> None:
    with pylibbpf.Map.create("array", key_type="I", value_type="I", max_entries=4,
                             name="fastarr") as m:
        m[1] = 5
        with pytest.raises(pylibbpf.BPFError, match="fastarr") as ei:
            del m[1]
        assert ei.value.errno == errno.EINVAL
        with pytest.raises(pylibbpf.BPFError, match="fastarr"):
            m.pop(1)
        assert m.get(1) == 5 and m.get(9, "x") == "x" and 1 in m


def _struct_codecs():
    u32, u64, s16 = IntCodec(4, False, "u32"), IntCodec(8, False, "u64"), IntCodec(2, True, "s16")
    from pylibbpf.typed import BoolCodec, CharArrayCodec
    key = StructCodec("fkey", 8, [("pid", 0, u32, 0, 0), ("tid", 32, u32, 0, 0)])
    val = StructCodec("fval", 32, [("seq", 0, u64, 0, 0), ("delta", 64, s16, 0, 0),
                                   ("ok", 80, BoolCodec(), 0, 0), ("count", 96, u32, 0, 0),
                                   ("comm", 128, CharArrayCodec(8), 0, 0),
                                   ("ts", 192, u64, 0, 0)])
    return key, val


def test_struct_map_elements_are_served_in_c_like_python(monkeypatch) -> None:
    """Records of a fixed layout as keys and values: packed and unpacked in C, the
    kernel's bytes exactly what the Python codec writes, the same records back."""
    kc, vc = _struct_codecs()
    with pylibbpf.Map.create("hash", key_type=kc, value_type=vc, max_entries=16,
                             name="fastrec") as m, \
            pylibbpf.Map.create("hash", key_type="I", value_type=vc, max_entries=16,
                                name="fastrec2") as by_int:
        m[kc.cls(pid=0, tid=0)] = vc.cls()  # the first call loads the codecs
        by_int[0] = vc.cls()
        assert m._fast_kl is not None and m._fast_vl is not None and m._fast_k == 0
        recs = [vc.cls(seq=i, delta=-i, ok=bool(i & 1), count=i * 3, comm=f"t{i}",
                       ts=(1 << 63) + i) for i in range(1, 6)]
        keys = [kc.cls(pid=i, tid=100 + i) for i in range(1, 6)]
        with monkeypatch.context() as mp:
            _python_paths_fail(mp)
            for k, v in zip(keys, recs):
                m[k] = v
                by_int[k.pid] = v
            for k, v in zip(keys, recs):
                got = m[k]
                assert type(got) is vc.cls and got == v and got.comm == v.comm
                assert by_int[k.pid] == v and by_int.get(k.pid) == v
                assert k in m and m.get(k) == v
            assert m.pop(keys[0]) == recs[0] and keys[0] not in m
            assert m.pop(keys[0], None) is None and m.get(keys[0], "no") == "no"
            del m[keys[1]]
            with pytest.raises(KeyError) as ei:
                m[keys[1]]
            assert ei.value.args == (keys[1],)
            with pytest.raises(KeyError):
                del by_int[99]
        # the kernel holds what the Python codec writes
        for k, v in zip(keys[2:], recs[2:]):
            assert m.raw[kc.encode(k)] == vc.encode(v)
            assert by_int.raw[struct.pack("I", k.pid)] == vc.encode(v)
        # dicts and raw bytes still work, through Python
        assert m[{"pid": 3, "tid": 103}] == recs[2]
        m[{"pid": 9, "tid": 9}] = {"seq": 9, "comm": "nine"}
        assert m[kc.cls(pid=9, tid=9)].comm == "nine"
        assert m[kc.encode(keys[3])] == recs[3]
        # values the codec refuses keep its errors
        with pytest.raises((TypeError, OverflowError, ValueError), match="fastrec"):
            m[keys[2]] = {"delta": 1 << 20}
        with pytest.raises(TypeError, match="fastrec"):
            m[(3, 103)] = recs[2]
        assert m[keys[2]] == recs[2]
    for op in (lambda: m[keys[2]], lambda: m.__setitem__(keys[2], recs[2]),
               lambda: m.__delitem__(keys[2]), lambda: m.pop(keys[2]),
               lambda: keys[2] in m, lambda: m.get(keys[2])):
        with pytest.raises(pylibbpf.ClosedError):
            op()


def test_struct_records_the_c_path_cannot_pack_take_the_python_path() -> None:
    """A record of the key's class whose items are not what the codec wrote (built
    with tuple.__new__) is packed by struct, with its error, not guessed in C."""
    kc, vc = _struct_codecs()
    with pylibbpf.Map.create("hash", key_type=kc, value_type=vc, max_entries=4,
                             name="fastodd") as m:
        m[kc.cls(pid=1, tid=1)] = vc.cls(seq=1)
        odd = tuple.__new__(kc.cls, (1 << 40, 1))
        with pytest.raises((TypeError, OverflowError, ValueError), match="fastodd"):
            m[odd]
        # records of the wrong length: refused by the Python codec (as before), not
        # read past their end in C
        for short in (tuple.__new__(kc.cls, (1,)), tuple.__new__(kc.cls, ())):
            for op in (lambda: m[short], lambda: m.__delitem__(short),
                       lambda: m.__setitem__(kc.cls(pid=1, tid=1), tuple.__new__(vc.cls, (1,)))):
                with pytest.raises(Exception):
                    op()
        assert m[kc.cls(pid=1, tid=1)].seq == 1
        flt = tuple.__new__(kc.cls, (1.5, 1))
        with pytest.raises((TypeError, struct.error), match="fastodd"):
            m[flt] = vc.cls()
        longer = tuple.__new__(vc.cls, (2, 0, True, 0, b"abcdefghij", 0))
        m[kc.cls(pid=2, tid=2)] = longer          # struct.pack cuts bytes to size
        assert m[kc.cls(pid=2, tid=2)].comm == "abcdefgh"
        truthy = tuple.__new__(vc.cls, (3, 0, 7, 0, b"", 0))  # struct.pack takes 7 as True
        m[kc.cls(pid=3, tid=3)] = truthy
        assert m[kc.cls(pid=3, tid=3)].ok is True


def test_fixed_layout_fields_ignore_bogus_values() -> None:
    """_fast_kl/_fast_vl are settable from Python: anything but an int or struct
    Layout that fits the C buffers switches the path off."""
    kc, vc = _struct_codecs()
    with pylibbpf.Map.create("hash", key_type=kc, value_type=vc, max_entries=4) as m:
        k = kc.cls(pid=1, tid=2)
        m[k] = vc.cls(seq=5)
        good = m._fast_kl, m._fast_vl
        big = fast.Layout(fast.L_STRUCT, 4096, kc.cls, None, [(0, "I", 4), (4, "I", 4)])
        call = fast_layout(pylibbpf.typed.RawCodec(8))
        for bad in (5, "x", call, big, fast.Layout(fast.L_BYTES, 0, None, None, ())):
            for field in ("_fast_kl", "_fast_vl"):
                setattr(m, field, bad)
                assert m[k].seq == 5 and k in m and m.get(k).seq == 5
                m[k] = vc.cls(seq=5)
                setattr(m, field, good[field == "_fast_vl"])


def test_codecs_are_published_whole_to_other_threads(monkeypatch) -> None:
    """A thread switch can come anywhere while the first m[k] builds a map's codecs:
    another thread's m[k] then must find them whole (it once found the key codec
    set and the value decoder still None: TypeError)."""
    import pylibbpf.map as mapmod

    real = mapmod.fast_layout
    seen = []
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=4) as m:
        m.raw[struct.pack("I", 1)] = struct.pack("Q", 7)   # (a view: its own codecs)

        def switch(codec):
            if not seen:
                seen.append("switch")
                seen.append(m[1])          # what the other thread does meanwhile
            return real(codec)

        monkeypatch.setattr(mapmod, "fast_layout", switch)
        assert m[1] == 7 and seen == ["switch", 7]


def test_random_layouts_and_batches_never_crash() -> None:
    """Random (often invalid) item lists, sizes and batches: a clean exception or a
    decoded record, never a crash (run in a child so a crash fails the test)."""
    code = r'''
import random, struct
from pylibbpf._ffi import fast
from pylibbpf.typed import Record
class R(Record):
    __slots__ = ()
rnd = random.Random(7)
codes = "BbHhIiQq?fdscxZ"
ok = bad = 0
for _ in range(3000):
    size = rnd.randrange(0, 40)
    items = [(rnd.randrange(-2, 44), rnd.choice(codes), rnd.choice([0, 1, 2, 4, 8, 9]))
             for _ in range(rnd.randrange(0, 6))]
    mode = rnd.choice([0, 1, 2, 2, 3])
    try:
        lay = fast.Layout(mode, size, R, len, items)
    except (ValueError, TypeError, OverflowError):
        bad += 1
        continue
    n = rnd.randrange(0, 5)
    stride = rnd.choice([0, size, size + 3, 1])
    data = rnd.randbytes(rnd.randrange(0, 200))
    sizes = struct.pack(f"={n}I", *(rnd.randrange(0, 60) for _ in range(n)))
    cpus = rnd.choice([None, list(range(n)), [0]])
    try:
        recs = fast.Records(lay, data, n, stride, sizes if not stride else None, cpus)
    except (ValueError, TypeError):
        bad += 1
        continue
    list(recs)
    ok += 1
print(ok, bad)
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert out.returncode == 0, out.stderr
    ok, bad = map(int, out.stdout.split())
    assert ok > 50 and bad > 500  # both outcomes were exercised
