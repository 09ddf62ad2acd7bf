"""Codecs: C memory <-> Python values, compiled once per type.

A :class:`Codec` turns the bytes of one C object into a Python value and
back. Codecs are built from BTF (:func:`pylibbpf.btf.BTF.codec`), from a
ctypes type, or from a :mod:`struct` format; :func:`codec_for` accepts any of
those.

Every BTF codec is *flat*: it describes its bytes as one :class:`struct.Struct`
format, so a whole record is unpacked by one C call. Structs decode to
instances of a generated ``tuple`` subclass (the flat items) whose fields are
attributes: scalars are read straight from the tuple, the rest (``char[]`` as
:class:`CString`, arrays, nested structs and unions, enums, bitfields) are
built when the attribute is read.
"""
from __future__ import annotations

import enum
import functools
import keyword
import operator
import struct
import sys
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type

from ._ffi import fast

__all__ = ["Codec", "RawCodec", "IntCodec", "FloatCodec", "BoolCodec", "EnumCodec",
           "CharArrayCodec", "BytesArrayCodec", "ArrayCodec", "StructCodec", "UnionCodec",
           "CtypesCodec", "FormatCodec", "CString", "Record", "PerCPU", "codec_for",
           "OutOfRangeError", "fast_layout"]


_Bytes = bytes


class CString(str):
    """A C ``char[]``: the text up to the first NUL, as a ``str``.

    It formats, compares, hashes and prints as text (``f"{e.comm:<16}"``,
    ``e.comm == "bash"``, ``{e.comm: n}``). The bytes are decoded as UTF-8 with
    ``surrogateescape``, as Python does for file names: bytes that are not UTF-8
    become lone surrogates (``"\\udcff"`` for ``0xff``), so nothing is lost.
    :attr:`bytes` (or ``bytes(s)``) gives the exact bytes back, and encoding the
    value (or any ``str`` holding such surrogates) into a ``char[]`` writes them.
    Printing a string with surrogates to a strict UTF-8 stream raises
    ``UnicodeEncodeError``; :attr:`text` is the printable form.
    """

    __slots__ = ()

    @classmethod
    def from_bytes(cls, raw: "bytes | bytearray | memoryview") -> "CString":
        """The CString of ``raw`` as it is (no cut at NUL)."""
        return cls(bytes(raw), "utf-8", "surrogateescape")

    @property
    def bytes(self) -> _Bytes:
        """The exact bytes of the C string (without the terminating NUL)."""
        return self.encode("utf-8", "surrogateescape")

    def __bytes__(self) -> _Bytes:
        return self.encode("utf-8", "surrogateescape")

    @property
    def text(self) -> str:
        """Safe to print: bytes that are not UTF-8 replaced by U+FFFD."""
        return self.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Record(tuple):  # type: ignore[type-arg]
    """Base of decoded structs: a tuple of flat items with attribute access to fields.

    Build one from field values: ``Event(pid=1, comm="sh")`` (missing fields are zero).
    """

    __slots__ = ()
    _codec: "StructCodec"
    _fields: Tuple[str, ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> "Record":
        if args:
            if len(args) != 1 or kwargs:
                raise TypeError(f"{cls.__name__}() takes keyword arguments or one mapping")
            values = dict(args[0])
        else:
            values = kwargs
        items: List[Any] = []
        codec = cls._codec
        codec.flatten(values, items)
        try:
            return codec.decode(codec.struct.pack(*items))  # type: ignore[no-any-return]
        except struct.error as e:
            raise _err(codec, values, str(e)) from None

    def to_dict(self) -> Dict[str, Any]:
        """Fields as a dict (nested records stay records)."""
        return {name: getattr(self, name) for name in self._fields}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> Any:
        return (type(self), (self.to_dict(),))


class PerCPU(list):  # type: ignore[type-arg]
    """A per-CPU value: one decoded value per possible CPU."""

    def sum(self) -> Any:
        """Sum over CPUs: ints add; records add field by field (numbers only)."""
        if not self:
            return 0
        first = self[0]
        if isinstance(first, Record):
            cols = []
            for col in zip(*self):
                c0 = col[0]
                if isinstance(c0, (int, float)) and not isinstance(c0, bool):
                    cols.append(sum(col))
                else:
                    cols.append(c0)
            return tuple.__new__(type(first), cols)
        return sum(self)


def _err(codec: "Codec", value: Any, why: str = "") -> TypeError:
    msg = (f"cannot encode {type(value).__name__} {value!r:.60} as {codec.name}"
           + (f": {why}" if why else ""))
    if type(value) is int and ("requires" in why or "out of range" in why):  # too big/small
        return OutOfRangeError(msg)
    return TypeError(msg)


class OutOfRangeError(OverflowError, TypeError):
    """An int that doesn't fit its C type: an OverflowError (also a TypeError, as
    every other value the codec can't encode)."""


class Codec:
    """Decode/encode one C type. ``size`` bytes; ``fmt`` its flat struct format
    (``n`` items) without byte-order prefix."""

    name: str = "?"
    size: int = 0
    fmt: str = ""
    n: int = 0
    #: True when the flat item is the value itself (plain ints, floats, bools)
    scalar: bool = False

    def _compile(self) -> None:
        self.struct = struct.Struct("=" + self.fmt)
        if self.struct.size != self.size:
            # members past the end of their struct, say (corrupt BTF): no codec
            raise ValueError(f"{self.name}: its members' layout is {self.struct.size} bytes, "
                             f"the type says {self.size}")
        self.zero_items: Tuple[Any, ...] = self.struct.unpack(bytes(self.size))
        if self.scalar:
            unpack = self.struct.unpack
            self.decode: Callable[[Any], Any] = lambda b: unpack(b)[0]
            self._pack1: Callable[..., bytes] = self.struct.pack
        else:
            unpack = self.struct.unpack
            build = self.build
            self.decode = lambda b: build(unpack(b), 0)

    # --- flat item protocol ---------------------------------------------------
    def build(self, items: Sequence[Any], i: int) -> Any:
        """The value made of ``items[i:i+n]``."""
        return items[i]

    def flatten(self, value: Any, out: List[Any]) -> None:
        """Append the flat items of ``value`` to ``out``."""
        out.append(value)

    # --- whole values ----------------------------------------------------------
    def encode(self, value: Any) -> bytes:
        """The ``size`` bytes of ``value``; bytes-like of exactly ``size`` pass unchanged."""
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == self.size \
                and not isinstance(self, (CharArrayCodec, BytesArrayCodec)):
            return bytes(value)
        if self.scalar:
            try:
                return self._pack1(value)
            except struct.error as e:
                raise _err(self, value, str(e)) from None
        items: List[Any] = []
        self.flatten(value, items)
        try:
            return self.struct.pack(*items)
        except struct.error as e:
            raise _err(self, value, str(e)) from None

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        """Decode ``count`` values laid out every ``stride`` (default ``size``) bytes."""
        stride = stride or self.size
        if count == 0:
            return []
        if stride == self.size:
            if self.scalar:
                mv = memoryview(buf)[:count * self.size]
                if self.fmt in "bBhHiIqQfd" and len(self.fmt) == 1:
                    return mv.cast(self.fmt).tolist()  # type: ignore[call-overload, no-any-return]
                return list(struct.unpack_from(f"={count}{self.fmt}", mv))
            build = self.build
            return [build(t, 0) for t in self.struct.iter_unpack(buf[:count * self.size])]
        unpack_from = self.struct.unpack_from
        build = self.build
        return [build(unpack_from(buf, i * stride), 0) for i in range(count)]

    def encode_many(self, values: Iterable[Any]) -> bytes:
        """The values' bytes back to back."""
        return b"".join(self.encode(v) for v in values)

    def np_descr(self) -> Any:
        """A NumPy dtype description of the type."""
        return f"V{self.size}" if self.size else "V1"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Build a value: ``codec(**fields)`` for structs, ``codec(x)`` otherwise."""
        if kwargs or not args:
            return self.decode(self.encode(kwargs))
        return self.decode(self.encode(args[0]))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} size={self.size}>"


class RawCodec(Codec):
    """Bytes as they are (no type information)."""

    def __init__(self, size: int, name: str = "") -> None:
        self.size = size
        self.name = name or f"{size} bytes"
        self.fmt = f"{size}s"
        self.n = 1
        self._compile()
        self.decode = bytes

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{self.name} must be bytes-like, not {type(value).__name__}")
        if len(value) != self.size:
            raise ValueError(f"{self.name} must be {self.size} bytes, got {len(value)}")
        return bytes(value)

    def flatten(self, value: Any, out: List[Any]) -> None:
        out.append(self.encode(value))

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        stride = stride or self.size
        mv = memoryview(buf)
        return [bytes(mv[i * stride:i * stride + self.size]) for i in range(count)]

    def np_descr(self) -> Any:
        return f"V{self.size}"


_INT_FMT = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
            (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


class IntCodec(Codec):
    """C integers of 1, 2, 4, 8 (and 16) bytes; pointers are unsigned 8-byte ints."""

    def __init__(self, size: int, signed: bool, name: str = "") -> None:
        self.size = size
        self.signed = signed
        self.name = name or f"{'s' if signed else 'u'}{size * 8}"
        if size in (1, 2, 4, 8):
            self.fmt = _INT_FMT[(size, signed)]
            self.scalar = True
        else:
            self.fmt = f"{size}s"
        self.n = 1
        self._compile()

    def build(self, items: Sequence[Any], i: int) -> Any:
        if self.scalar:
            return items[i]
        return int.from_bytes(items[i], "little", signed=self.signed)

    def flatten(self, value: Any, out: List[Any]) -> None:
        if self.scalar:
            out.append(value)
        else:
            out.append(int(value).to_bytes(self.size, "little", signed=self.signed))

    def np_descr(self) -> Any:
        if self.scalar:
            return ("<i" if self.signed else "<u") + str(self.size)
        return f"V{self.size}"


class FloatCodec(Codec):
    def __init__(self, size: int, name: str = "") -> None:
        self.size = size
        self.name = name or f"float{size * 8}"
        self.fmt = {4: "f", 8: "d", 2: "e"}.get(size, f"{size}s")
        self.scalar = size in (2, 4, 8)
        self.n = 1
        self._compile()

    def np_descr(self) -> Any:
        return f"<f{self.size}" if self.scalar else f"V{self.size}"


class BoolCodec(Codec):
    def __init__(self, name: str = "bool") -> None:
        self.size, self.name, self.fmt, self.n, self.scalar = 1, name, "?", 1, True
        self._compile()

    def np_descr(self) -> Any:
        return "?"


class EnumCodec(Codec):
    """A C enum: decodes to a member of a generated :class:`enum.IntEnum` (unknown
    values stay ints); encodes members, ints or member names."""

    def __init__(self, name: str, size: int, signed: bool,
                 members: Sequence[Tuple[str, int]]) -> None:
        self.size = size
        self.signed = signed
        self.name = f"enum {name}" if name else "enum"
        self.fmt = _INT_FMT.get((size, signed), "I")
        self.n = 1
        clean: Dict[str, int] = {}
        for mname, val in members:
            if mname.isidentifier() and not mname.startswith("_") and mname not in clean:
                clean[mname] = val
        self.enum: Optional[Type[enum.IntEnum]] = None
        if clean:
            self.enum = enum.IntEnum(name or "Enum", clean)  # type: ignore[misc]
            self._lookup = self.enum._value2member_map_
        else:
            self._lookup = {}
        self._compile()

    def build(self, items: Sequence[Any], i: int) -> Any:
        v = items[i]
        return self._lookup.get(v, v)

    def flatten(self, value: Any, out: List[Any]) -> None:
        if isinstance(value, str):
            if self.enum is None or value not in self.enum.__members__:
                raise _err(self, value, "no such enumerator")
            value = self.enum[value]
        out.append(int(value))

    def np_descr(self) -> Any:
        return ("<i" if self.signed else "<u") + str(self.size)


class CharArrayCodec(Codec):
    """``char[N]``: a :class:`CString` cut at the first NUL; encodes bytes or str."""

    def __init__(self, count: int) -> None:
        self.size = count
        self.name = f"char[{count}]"
        self.fmt = f"{count}s"
        self.n = 1
        self._compile()

    def build(self, items: Sequence[Any], i: int) -> Any:
        b = items[i]
        j = b.find(b"\0")
        return CString(b if j < 0 else b[:j], "utf-8", "surrogateescape")

    def flatten(self, value: Any, out: List[Any]) -> None:
        if isinstance(value, str):
            try:
                value = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as e:
                raise _err(self, value, f"not encodable as UTF-8: {e.reason}") from None
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _err(self, value)
        if len(value) > self.size:
            raise ValueError(f"{len(value)} bytes do not fit in {self.name}")
        out.append(bytes(value))

    def np_descr(self) -> Any:
        return f"S{self.size}"


class BytesArrayCodec(Codec):
    """``unsigned char[N]`` / ``__u8[N]``: all N bytes."""

    def __init__(self, count: int) -> None:
        self.size = count
        self.name = f"u8[{count}]"
        self.fmt = f"{count}s"
        self.n = 1
        self._compile()
        self.decode = bytes

    def build(self, items: Sequence[Any], i: int) -> Any:
        return items[i]

    def flatten(self, value: Any, out: List[Any]) -> None:
        if isinstance(value, (list, tuple)):
            value = bytes(value)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _err(self, value)
        if len(value) > self.size:
            raise ValueError(f"{len(value)} bytes do not fit in {self.name}")
        out.append(bytes(value))

    def np_descr(self) -> Any:
        return ("u1", (self.size,))


class ArrayCodec(Codec):
    """``T[N]``: a list of N decoded elements; encodes any sequence of at most N."""

    def __init__(self, elem: Codec, count: int) -> None:
        self.elem = elem
        self.count = count
        self.size = elem.size * count
        self.name = f"{elem.name}[{count}]"
        self.fmt = elem.fmt * count if count else ""
        self.n = elem.n * count
        self._compile()

    def build(self, items: Sequence[Any], i: int) -> Any:
        e = self.elem
        if e.scalar:
            return list(items[i:i + self.n])
        step = e.n
        return [e.build(items, i + k * step) for k in range(self.count)]

    def flatten(self, value: Any, out: List[Any]) -> None:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise _err(self, value, "expected a sequence")
        if len(value) > self.count:
            raise ValueError(f"{len(value)} elements do not fit in {self.name}")
        e = self.elem
        if e.scalar:
            out.extend(value)
        else:
            for v in value:
                e.flatten(v, out)
        for _ in range(self.count - len(value)):
            out.extend(e.zero_items)

    def np_descr(self) -> Any:
        return (self.elem.np_descr(), (self.count,))


class _Bitfield:
    __slots__ = ("name", "bit", "bits", "signed", "enum")

    def __init__(self, name: str, bit: int, bits: int, signed: bool,
                 enum_codec: Optional[EnumCodec]) -> None:
        self.name, self.bit, self.bits, self.signed, self.enum = name, bit, bits, signed, enum_codec


class StructCodec(Codec):
    """A C struct: instances of a generated :class:`Record` subclass (``.cls``)."""

    def __init__(self, name: str, size: int,
                 members: Sequence[Tuple[str, int, Codec, int, int]]) -> None:
        """``members``: (name, bit_offset, codec, bitfield_size, signed-for-bitfields)."""
        self.size = size
        self.name = f"struct {name}" if name else "struct"
        fmt: List[str] = []
        pos = 0            # byte position reached in the format
        n = 0              # flat items so far
        props: Dict[str, Any] = {}
        fields: List[str] = []
        self._fields: List[Tuple[str, Codec, int]] = []  # (name, codec, flat index)
        self._groups: List[Tuple[int, int, int, List[_Bitfield]]] = []  # (item, start, len, bfs)
        self._aliases: Dict[str, str] = {}  # C name that is a Python keyword -> field name
        cur_group: Optional[Tuple[int, int, int, List[_Bitfield]]] = None
        anon = 0
        for mname, bit_off, codec, bf_size, signed in members:
            if not mname:
                anon += 1
                mname = f"_anon{anon}"
            if keyword.iskeyword(mname):
                self._aliases[mname] = mname + "_"
                mname += "_"
            if bf_size or bit_off % 8:
                bits = bf_size or codec.size * 8
                start = bit_off // 8
                end = (bit_off + bits + 7) // 8
                if cur_group is not None and start < cur_group[1] + cur_group[2]:
                    gi, gs, gl, bfs = cur_group
                    gl = max(gl, end - gs)
                    cur_group = (gi, gs, gl, bfs)
                else:
                    if cur_group is not None:
                        self._close_group(cur_group, fmt)
                        pos = cur_group[1] + cur_group[2]
                    if start > pos:
                        fmt.append(f"{start - pos}x")
                        pos = start
                    cur_group = (n, start, end - start, [])
                    n += 1
                en = codec if isinstance(codec, EnumCodec) else None
                cur_group[3].append(_Bitfield(mname, bit_off - cur_group[1] * 8, bits,
                                              bool(signed), en))
                fields.append(mname)
                continue
            if cur_group is not None:
                self._close_group(cur_group, fmt)
                pos = cur_group[1] + cur_group[2]
                cur_group = None
            off = bit_off // 8
            if off < pos:  # overlapping (shouldn't happen in a struct): raw view of it
                continue
            if off > pos:
                fmt.append(f"{off - pos}x")
                pos = off
            fmt.append(codec.fmt)
            pos += codec.size
            self._fields.append((mname, codec, n))
            fields.append(mname)
            if codec.scalar:
                props[mname] = _field(n, mname)
            else:
                props[mname] = property(functools.partial(_getter, codec.build, n))
            n += codec.n
        if cur_group is not None:
            self._close_group(cur_group, fmt)
            pos = cur_group[1] + cur_group[2]
        if size > pos:
            fmt.append(f"{size - pos}x")
        for gi, gs, gl, bfs in self._groups:
            for bf in bfs:
                props[bf.name] = property(functools.partial(_bitfield_get, gi, bf))
        self.fmt = "".join(fmt)
        self.n = n
        self.field_names = tuple(fields)
        clsname = "".join(p.capitalize() for p in name.split("_")) if name else "Struct"
        if not clsname.isidentifier():
            clsname = "Struct"
        props["__slots__"] = ()
        props["_fields"] = self.field_names
        props["_codec"] = self
        self.cls: Type[Record] = type(clsname, (Record,), props)
        self._make = functools.partial(tuple.__new__, self.cls)
        self._compile()
        unpack = self.struct.unpack
        make = self._make
        self.decode = lambda b: make(unpack(b))
        self._bitfield_names = {bf.name: (gi, bf) for gi, _, _, bfs in self._groups for bf in bfs}

    def _close_group(self, group: Tuple[int, int, int, List[_Bitfield]], fmt: List[str]) -> None:
        fmt.append(f"{group[2]}s")
        self._groups.append(group)

    def build(self, items: Sequence[Any], i: int) -> Any:
        return tuple.__new__(self.cls, items[i:i + self.n])

    def encode(self, value: Any) -> bytes:
        if type(value) is self.cls:  # a record holds its flat items already
            try:
                return self.struct.pack(*value)
            except struct.error as e:
                raise _err(self, value, str(e)) from None
        return super().encode(value)

    def flatten(self, value: Any, out: List[Any]) -> None:
        if type(value) is self.cls:
            out.extend(value)
            return
        if isinstance(value, Mapping):
            if self._aliases and any(a in value for a in self._aliases):
                value = {self._aliases.get(k, k): v for k, v in value.items()}
            get = value.get
            unknown = set(value) - set(self.field_names)
            if unknown:
                raise _err(self, value, f"no field {sorted(unknown)[0]!r}")
        elif isinstance(value, Record) or hasattr(value, "__dict__") or hasattr(value,
                                                                                "__slots__"):
            def get(k: str, d: Any = None) -> Any:
                return getattr(value, k, d)
        else:
            raise _err(self, value, "expected a record or a dict of fields")
        gi_iter = iter(self._groups)
        nxt = next(gi_iter, None)
        for fname, codec, idx in self._fields:
            while nxt is not None and nxt[0] < idx:
                out.append(self._pack_group(nxt, get))
                nxt = next(gi_iter, None)
            v = get(fname)
            if v is None:
                out.extend(codec.zero_items)
            else:
                try:
                    codec.flatten(v, out)
                except (TypeError, ValueError, OverflowError) as e:
                    raise type(e)(f"field {fname!r}: {e}") from None
        while nxt is not None:
            out.append(self._pack_group(nxt, get))
            nxt = next(gi_iter, None)

    def _pack_group(self, group: Tuple[int, int, int, List[_Bitfield]],
                    get: Callable[..., Any]) -> bytes:
        gi, gs, gl, bfs = group
        acc = 0
        for bf in bfs:
            v = get(bf.name)
            if v is None:
                continue
            if isinstance(v, str) and bf.enum is not None and bf.enum.enum is not None:
                v = bf.enum.enum[v]
            v = int(v)
            mask = (1 << bf.bits) - 1
            acc |= (v & mask) << bf.bit
        return acc.to_bytes(gl, "little")

    def np_descr(self) -> Any:
        names, formats, offsets = [], [], []
        off = 0
        layout = self.struct.format[1:]
        del layout
        pos_of: Dict[int, int] = {}
        # offsets: recompute by walking the format items
        items = _item_offsets(self.fmt)
        for i, o in enumerate(items):
            pos_of[i] = o
        for fname, codec, idx in self._fields:
            names.append(fname)
            formats.append(codec.np_descr())
            offsets.append(pos_of[idx])
            off = max(off, pos_of[idx] + codec.size)
        return {"names": names, "formats": formats, "offsets": offsets, "itemsize": self.size}


def _item_offsets(fmt: str) -> List[int]:
    """Byte offset of each flat item of a '='-style format."""
    out: List[int] = []
    pos = 0
    num = ""
    for ch in fmt:
        if ch.isdigit():
            num += ch
            continue
        cnt = int(num) if num else 1
        num = ""
        size = struct.calcsize("=" + ch)
        if ch == "x":
            pos += cnt
        elif ch in "sp":
            out.append(pos)
            pos += cnt
        else:
            for _ in range(cnt):
                out.append(pos)
                pos += size
    return out


try:  # CPython's C descriptor behind namedtuple fields: the fastest attribute read
    from collections import _tuplegetter  # type: ignore[attr-defined]

    def _field(i: int, name: str) -> Any:
        return _tuplegetter(i, f"field {name}")
except ImportError:  # pragma: no cover - other Pythons
    def _field(i: int, name: str) -> Any:
        return property(operator.itemgetter(i))


def _getter(build: Callable[[Sequence[Any], int], Any], i: int, self: Any) -> Any:
    return build(self, i)


def _bitfield_get(gi: int, bf: _Bitfield, self: Any) -> Any:
    v = (int.from_bytes(self[gi], "little") >> bf.bit) & ((1 << bf.bits) - 1)
    if bf.signed and v >> (bf.bits - 1):
        v -= 1 << bf.bits
    if bf.enum is not None:
        return bf.enum._lookup.get(v, v)
    return v


class UnionView:
    """A decoded C union: each member is decoded from the same bytes when read."""

    __slots__ = ("_codec", "_raw")

    def __init__(self, codec: "UnionCodec", raw: bytes) -> None:
        self._codec = codec
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        try:
            c = self._codec.members[name]
        except KeyError:
            raise AttributeError(f"{self._codec.name} has no member {name!r}") from None
        return c.decode(self._raw[:c.size])

    def __bytes__(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnionView) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"<{self._codec.name} {self._raw.hex()}>"


class UnionCodec(Codec):
    """A C union: a :class:`UnionView`; encodes a dict with one member, or bytes."""

    def __init__(self, name: str, size: int, members: Sequence[Tuple[str, Codec]]) -> None:
        self.size = size
        self.name = f"union {name}" if name else "union"
        self.members = {m: c for m, c in members if m}
        self.fmt = f"{size}s"
        self.n = 1
        self._compile()

    def build(self, items: Sequence[Any], i: int) -> Any:
        return UnionView(self, items[i])

    def flatten(self, value: Any, out: List[Any]) -> None:
        if isinstance(value, UnionView):
            out.append(value._raw)
        elif isinstance(value, (bytes, bytearray)) and len(value) <= self.size:
            out.append(bytes(value))
        elif isinstance(value, Mapping) and len(value) == 1:
            (m, v), = value.items()
            if m not in self.members:
                raise _err(self, value, f"no member {m!r}")
            out.append(self.members[m].encode(v).ljust(self.size, b"\0"))
        else:
            raise _err(self, value, "expected {member: value} or bytes")


class CtypesCodec(Codec):
    """A user-given ctypes type: simple types decode to their value, others to instances."""

    def __init__(self, ctype: Any) -> None:
        import ctypes  # (a ctypes type exists: ctypes is imported already)
        self.ctype = ctype
        self.size = ctypes.sizeof(ctype)
        self.name = getattr(ctype, "__name__", repr(ctype))
        self.simple = issubclass(ctype, ctypes._SimpleCData)  # type: ignore[attr-defined]
        self.fmt = f"{self.size}s"
        self.n = 1
        self._compile()
        fbc = ctype.from_buffer_copy
        if self.simple:
            self.decode = lambda b: fbc(b).value
        else:
            self.decode = fbc

    def build(self, items: Sequence[Any], i: int) -> Any:
        return self.decode(items[i])

    def flatten(self, value: Any, out: List[Any]) -> None:
        if isinstance(value, self.ctype):
            out.append(bytes(value))
        elif isinstance(value, Mapping):
            out.append(bytes(self.ctype(**value)))
        elif isinstance(value, (bytes, bytearray)) and len(value) == self.size:
            out.append(bytes(value))
        else:
            try:
                out.append(bytes(self.ctype(value)))
            except TypeError as e:
                raise _err(self, value, str(e)) from None

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        stride = stride or self.size
        mv = memoryview(buf)
        dec = self.decode
        return [dec(mv[i * stride:i * stride + self.size]) for i in range(count)]

    def np_descr(self) -> Any:
        import importlib

        return importlib.import_module("numpy").dtype(self.ctype)


class FormatCodec(Codec):
    """A :mod:`struct` format: a tuple, or the value itself for one-item formats."""

    def __init__(self, fmt: str) -> None:
        try:
            s = struct.Struct(fmt)
        except struct.error as e:
            raise ValueError(f"bad struct format {fmt!r}: {e}") from None
        self.user = s
        self.size = s.size
        self.name = f"struct format {fmt!r}"
        self.fmt = f"{s.size}s"
        self.n = 1
        self._compile()
        self.single = len(s.unpack(bytes(s.size))) == 1
        u = s.unpack
        self.decode = (lambda b: u(b)[0]) if self.single else u

    def build(self, items: Sequence[Any], i: int) -> Any:
        return self.decode(items[i])

    def flatten(self, value: Any, out: List[Any]) -> None:
        try:
            out.append(self.user.pack(value) if self.single else self.user.pack(*value))
        except (struct.error, TypeError) as e:
            raise _err(self, value, str(e)) from None

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        stride = stride or self.size
        if stride == self.size:
            it = self.user.iter_unpack(memoryview(buf)[:count * self.size])
            return [t[0] for t in it] if self.single else list(it)
        return [self.decode(memoryview(buf)[i * stride:i * stride + self.size])
                for i in range(count)]


_INT_CHARS = set("bBhHiIlLqQ")
_CTYPES_INTS: Dict[Any, Tuple[int, bool]] = {}


def _ctypes_ints() -> Dict[Any, Tuple[int, bool]]:
    """ctypes' integer types -> (size, signed); ctypes is imported only when a type
    is passed (a ctypes type can't exist without it), not with pylibbpf."""
    if not _CTYPES_INTS:
        import ctypes
        _CTYPES_INTS.update({t: (ctypes.sizeof(t), t(-1).value == -1) for t in (
            ctypes.c_int8, ctypes.c_uint8, ctypes.c_int16, ctypes.c_uint16, ctypes.c_int32,
            ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64, ctypes.c_long, ctypes.c_ulong,
            ctypes.c_int, ctypes.c_uint, ctypes.c_short, ctypes.c_ushort, ctypes.c_longlong,
            ctypes.c_ulonglong)})
    return _CTYPES_INTS


def codec_for(spec: Any, size: Optional[int] = None, what: str = "type") -> Codec:
    """A codec for ``spec``: a Codec, a ctypes type, a struct format, or None (raw bytes)."""
    if spec is None:
        if size is None:
            raise ValueError(f"{what}: give a type or a size")
        return RawCodec(size)
    if isinstance(spec, Codec):
        c = spec
    elif isinstance(spec, str) and spec.lstrip("<=@").strip() in _INT_CHARS and \
            spec[:1] in "<=@" + spec[:1] and struct.calcsize(spec) == \
            struct.calcsize("=" + spec.lstrip("<=@")):
        ch = spec.lstrip("<=@").strip()
        c = IntCodec(struct.calcsize("=" + ch), ch.islower(), spec)
    elif isinstance(spec, str):
        c = FormatCodec(spec)
    elif isinstance(spec, type) and spec in _ctypes_ints():
        size, signed = _ctypes_ints()[spec]
        c = IntCodec(size, signed, spec.__name__)
    elif isinstance(spec, type) and hasattr(spec, "from_buffer_copy"):
        c = CtypesCodec(spec)
    else:
        raise TypeError(f"{what} must be a pylibbpf codec, a ctypes type or a struct format, "
                        f"not {type(spec).__name__}")
    if size is not None and c.size != size:
        raise ValueError(f"{what} {c.name} is {c.size} bytes, but the map's size is {size}")
    return c


_ITEM = r"(\d*)(.)"  # one struct format item: (repeat count, code)


def _format_items(fmt: str) -> List[Tuple[str, str]]:
    """``re.findall(_ITEM, fmt)``; the usual formats (letters, digits, ``?``) are
    split here, so that the first map or ring buffer does not import re."""
    if not fmt.isascii() or not fmt.replace("?", "a").isalnum() or fmt[-1].isdigit():
        import re

        return re.findall(_ITEM, fmt)
    out = []
    count = ""
    for ch in fmt:
        if ch.isdigit():
            count += ch
        else:
            out.append((count, ch))
            count = ""
    return out
_C_ITEM_CODES = frozenset("BbHhIiQq?fdsc")  # what fast.c's unpack_item reads


def _flat_items(codec: Codec) -> Optional[List[Tuple[int, str, int]]]:
    """The codec's flat items as (offset, struct code, bytes), or None when its
    format has an item the C decoder doesn't read (or the host is big-endian)."""
    fmt = codec.struct.format
    if not fmt.startswith("=") or sys.byteorder != "little":
        return None
    out: List[Tuple[int, str, int]] = []
    off = 0
    for count, code in _format_items(fmt[1:]):
        k = int(count) if count else 1
        if code == "x":
            off += k
        elif code == "s":
            out.append((off, "s", k))
            off += k
        elif code in _C_ITEM_CODES:
            w = struct.calcsize("=" + code)
            out.extend((off + i * w, code, w) for i in range(k))
            off += k * w
        else:
            return None
    if off != codec.size or len(out) != codec.n:
        return None
    return out


def fast_layout(codec: Optional[Codec]) -> Any:
    """A C decoder (``pylibbpf._fast.Layout``) giving what ``codec.decode`` gives:
    bytes without a codec, ints and records unpacked in C, else ``codec.decode``."""
    if codec is None:
        return fast.Layout(fast.L_BYTES, 0, None, None, ())
    items = _flat_items(codec) if type(codec) in (IntCodec, StructCodec) else None
    if items is not None and type(codec) is IntCodec and codec.scalar:
        return fast.Layout(fast.L_INT, codec.size, None, None, items)
    if items and type(codec) is StructCodec:
        return fast.Layout(fast.L_STRUCT, codec.size, codec.cls, None, items)
    return fast.Layout(fast.L_CALL, codec.size, None, codec.decode, ())
