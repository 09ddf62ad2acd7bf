"""Codecs compiled from BTF: layout, decoding, encoding, NumPy dtypes."""
from __future__ import annotations

import ctypes
import struct

import pytest

import pylibbpf
from pylibbpf.typed import CharArrayCodec, CString, PerCPU, Record, codec_for


@pytest.fixture
def btf(bpf_objects):
    with pylibbpf.Object(bpf_objects["maps_types"]) as obj:
        yield obj.btf


def test_struct_layout_matches_c(btf) -> None:
    key = btf.codec("struct flow_key")
    assert key.size == 16 and key.field_names == ("saddr", "daddr", "sport", "dport", "proto")
    raw = struct.pack("=IIHHB3x", 1, 2, 3, 4, 5)
    k = key.decode(raw)
    assert isinstance(k, Record) and (k.saddr, k.daddr, k.sport, k.dport, k.proto) == \
        (1, 2, 3, 4, 5)
    assert key.encode(k) == raw and key.encode({"saddr": 1, "daddr": 2, "sport": 3,
                                                "dport": 4, "proto": 5}) == raw
    assert repr(k) == "FlowKey(saddr=1, daddr=2, sport=3, dport=4, proto=5)"
    assert k.to_dict()["proto"] == 5


def test_bitfields_enums_nested_and_bool(btf) -> None:
    st = btf.codec("fstats")
    v = st(flag_a=1, level=7, delta=-8, state=7, range={"lo": -1, "hi": 1}, ok=True)
    raw = st.encode(v)
    assert len(raw) == st.size == 56
    back = st.decode(raw)
    assert (back.flag_a, back.level, back.delta) == (1, 7, -8)
    assert back.state.name == "ST_DONE" and back.ok is True
    assert back.range.lo == -1
    # an unknown enum value stays an int
    bad = bytearray(raw)
    off = 36  # after packets, bytes, label[12], ports[3] (+2 padding)
    bad[off:off + 4] = struct.pack("I", 99)
    assert st.decode(bytes(bad)).state == 99
    with pytest.raises(TypeError, match="no such enumerator"):
        st.encode({"state": "ST_NOPE"})


def test_char_arrays_are_text() -> None:
    s = CString("abc")
    assert isinstance(s, str) and s == "abc" and f"{s:>5}" == "  abc" and s.text == "abc"
    assert repr(s) == "'abc'" and {s: 1}["abc"] == 1 and s.bytes == bytes(s) == b"abc"


def test_char_arrays_keep_bytes_that_are_not_utf8(btf) -> None:
    c = CharArrayCodec(8)
    raw = b"a\xffb\xc3(\0zz"             # invalid UTF-8, then junk after the NUL
    s = c.decode(raw)
    assert isinstance(s, CString) and s == "a\udcffb\udcc3(" and s.bytes == b"a\xffb\xc3("
    assert s.text == "a\ufffdb\ufffd("         # printable
    assert c.encode(s) == b"a\xffb\xc3(\0\0\0"    # written back byte for byte
    assert c.encode(str(s)) == c.encode(s.bytes) == c.encode(s)
    assert CString.from_bytes(b"\xfe") == "\udcfe"
    # in a struct: the record's field, its repr, and the struct encoded again
    st = btf.codec("fstats")
    rec = st.decode(st.encode({"packets": 1, "label": b"w\xe9b"}))
    assert rec.label.bytes == b"w\xe9b" and "label='w\\udce9b'" in repr(rec)
    assert st.decode(st.encode(rec.to_dict())).label.bytes == b"w\xe9b"
    with pytest.raises(TypeError, match=r"char\[8\].*not encodable as UTF-8"):
        c.encode("\ud800")                       # a surrogate that stands for no byte
    with pytest.raises(ValueError, match="do not fit"):
        c.encode("é" * 5)                        # 10 bytes


def test_user_types_ctypes_and_formats() -> None:
    assert codec_for("I").decode(b"\x01\0\0\0") == 1
    fc = codec_for("<hh")
    assert fc.decode(b"\x01\0\xff\xff") == (1, -1) and fc.encode((1, -1)) == b"\x01\0\xff\xff"

    class P(ctypes.Structure):
        _fields_ = [("x", ctypes.c_uint8), ("y", ctypes.c_uint16)]

    pc = codec_for(P)
    assert pc.size == 4 and pc.decode(bytes(P(1, 2))).y == 2
    assert codec_for(ctypes.c_int16).decode(b"\xff\xff") == -1
    with pytest.raises(TypeError):
        codec_for(3.5)
    with pytest.raises(ValueError, match="bad struct format"):
        codec_for("Z")


def test_percpu_sum() -> None:
    assert PerCPU([1, 2, 3]).sum() == 6


def test_numpy_dtype_matches_layout(btf) -> None:
    np = pytest.importorskip("numpy", reason="NumPy is optional: only dtypes need it")
    st = btf.codec("fstats")
    dt = np.dtype(st.np_descr())
    assert dt.itemsize == st.size
    arr = np.frombuffer(st.encode(st(packets=5, label="x", ports=[1, 2, 3])) * 2, dt)
    assert list(arr["packets"]) == [5, 5] and arr["label"][0] == b"x"
    assert list(arr["ports"][1]) == [1, 2, 3]
    assert list(arr["range"]["lo"]) == [0, 0]
