"""BTF: the kernel's (or an object's) type information.

:func:`vmlinux_h` writes the C header of every kernel type (the ``vmlinux.h``
CO-RE programs include), through libbpf's btf_dump API. :class:`BTF` reads an
object's (or a kernel map's) types and compiles :mod:`pylibbpf.typed` codecs
that decode map keys/values, events and global variables into Python values.
"""
from __future__ import annotations

import errno
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple, Union

from ._ffi import ffi, lib, libbpf_log
from ._files import regular_file
from .errors import (BPFError, BPFNotFoundError, ClosedError, ELFError, check_ptr,
                     error_from_errno)
from .errors import bad_ptr as errors_bad_ptr
from .typed import (ArrayCodec, BoolCodec, BytesArrayCodec, CharArrayCodec, Codec,
                    EnumCodec, FloatCodec, IntCodec, RawCodec, StructCodec, UnionCodec)

__all__ = ["vmlinux_h", "KERNEL_BTF", "BTF", "DataSecVar", "btf_of_object"]

KERNEL_BTF = "/sys/kernel/btf/vmlinux"

#: the largest type a codec is built for: the kernel holds no map value over
#: 4 MiB (KMALLOC_MAX_SIZE), so a bigger one is corrupt BTF, not a real layout
MAX_TYPE_BYTES = 16 << 20
#: the most flat values (struct items, array elements) one codec unpacks
MAX_TYPE_ITEMS = 1 << 22

_HEAD = """\
/* Kernel types from BTF, written by pylibbpf.btf.vmlinux_h(). */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

"""
_TAIL = """
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
"""


def _btf_name(ptr: Any) -> str:
    """A BTF name as text; a name that is not UTF-8 is corrupt BTF (an ELFError
    naming the bytes), never a UnicodeDecodeError."""
    if ptr == ffi.NULL:
        return ""
    raw = ffi.string(ptr)
    try:
        return raw.decode()  # type: ignore[no-any-return]
    except UnicodeDecodeError as e:
        raise ELFError(errno.EINVAL, f"corrupt BTF: the name {raw!r} is not UTF-8 "
                                     f"({e.reason} at byte {e.start})") from None


def _parse_btf_file(path: str, what: str, base: Any = None) -> Any:
    """libbpf's parse of a BTF file (split over ``base`` when given); a file
    libbpf refuses is an ELFError naming it (a missing one BPFNotFoundError)."""
    regular_file(path, "BTF file", cls=ELFError)  # a FIFO would block libbpf
    with libbpf_log() as log:
        if base is None:
            btf = lib.btf__parse(path.encode(), ffi.NULL)
        else:
            btf = lib.btf__parse_split(path.encode(), base)
        err = ffi.errno
    bad = errors_bad_ptr(btf)
    if bad is not None:
        err = abs(bad or err)
        # the file is there (regular_file said so): ENOENT is "no BTF in it"
        cls = ELFError if err in (errno.EINVAL, errno.EPROTO, errno.E2BIG, errno.EOVERFLOW,
                                  errno.ENOMSG, errno.ENODATA, errno.ENOENT) else None
        raise error_from_errno(err, what, cls=cls, libbpf_log=log.warnings)
    return btf


def vmlinux_h(btf_path: Optional[Union[str, "os.PathLike[str]"]] = None, *,
              base_btf: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
    """The C declarations of every type in the kernel's BTF (or ``btf_path``'s).

    Split BTF (a kernel module's, ``/sys/kernel/btf/<module>``, whose types
    continue those of ``vmlinux``) is read over its base: ``base_btf``, a BTF
    file, or the running kernel's BTF for the files of ``/sys/kernel/btf``.
    Then the split's own types are written (with what they use of the base).
    A file libbpf or pylibbpf's checks refuse raises ``ELFError`` naming it."""
    base: Any = None
    if btf_path is None:
        if base_btf is not None:
            raise ValueError("base_btf needs btf_path (the split BTF to read over it)")
        with libbpf_log() as log:
            btf = lib.btf__load_vmlinux_btf()
            err = ffi.errno
        label = "the running kernel's BTF"
        check_ptr(btf, err, f"load BTF from {label}", libbpf_log=log.warnings)
    else:
        label = os.fspath(btf_path)
        if base_btf is None and os.path.dirname(os.path.abspath(label)) == "/sys/kernel/btf" \
                and os.path.basename(label) != "vmlinux":
            base_btf = KERNEL_BTF  # a module's BTF is split over the kernel's
        if base_btf is not None:
            base_label = os.fspath(base_btf)
            base = _parse_btf_file(base_label, f"load base BTF from {base_label}")
        try:
            btf = _parse_btf_file(label, f"load BTF from {label}"
                                  + (f" (split over {os.fspath(base_btf)})" if base_btf else ""),
                                  base)
        except BaseException:
            if base is not None:
                lib.btf__free(base)
            raise
    buf = ffi.new("struct pylibbpf_strbuf *")
    try:
        msg = ffi.new("char[]", 512)
        if btf_path is not None and lib.pylibbpf_btf_check(btf, msg, 512) < 0:
            # a type libbpf's parser let through that btf_dump would crash on
            raise ELFError(errno.EINVAL, f"load BTF from {label}: corrupt BTF: "
                                         f"{ffi.string(msg).decode(errors='replace')}")
        dump = lib.pylibbpf_btf_dump_new(btf, buf)
        check_ptr(dump, ffi.errno, "create btf_dump")
        try:
            first = lib.btf__type_cnt(base) if base is not None else 1
            for type_id in range(first, lib.btf__type_cnt(btf)):
                ret = lib.btf_dump__dump_type(dump, type_id)
                if ret < 0:
                    raise error_from_errno(-ret, f"dump BTF type {type_id} of {label}")
        finally:
            lib.btf_dump__free(dump)
        if buf.err:
            raise error_from_errno(buf.err, f"dump BTF of {label}")
        try:
            body = ffi.unpack(buf.data, buf.len).decode() if buf.len else ""
        except UnicodeDecodeError as e:
            raise ELFError(errno.EINVAL, f"dump BTF of {label}: corrupt BTF: a name that is "
                                         f"not UTF-8 ({e.reason} at byte {e.start})") from None
    finally:
        lib.pylibbpf_strbuf_free(buf)
        lib.btf__free(btf)
        if base is not None:
            lib.btf__free(base)
    return _HEAD + body + _TAIL


# BTF kinds (uapi linux/btf.h; stable ABI)
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD = 1, 2, 3, 4, 5, 6, 7
KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT = 8, 9, 10, 11
KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_FLOAT = 12, 13, 14, 15, 16
KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 17, 18, 19
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4

_KIND_BY_WORD = {"struct": KIND_STRUCT, "union": KIND_UNION, "enum": KIND_ENUM,
                 "typedef": KIND_TYPEDEF}


class DataSecVar:
    """A variable of a data section: name, byte offset, size and codec."""

    __slots__ = ("name", "offset", "size", "codec")

    def __init__(self, name: str, offset: int, size: int, codec: Codec) -> None:
        self.name, self.offset, self.size, self.codec = name, offset, size, codec

    def __repr__(self) -> str:
        return f"<var {self.name} at {self.offset}: {self.codec.name}>"


class BTF:
    """Type information of a BPF object (or of a map, from the kernel).

    ``codec(type_id)`` compiles a codec once per type; ``find(name)`` looks a
    type up by name (``"event"``, ``"struct event"``, a typedef name …).
    """

    def __init__(self, ptr: Any, *, owned: bool, label: str, owner: Any = None) -> None:
        self._ptr = ptr
        self._owned = owned
        self._owner = owner  # keeps an Object alive while its BTF is used
        self.label = label
        self._codecs: Dict[int, Codec] = {}

    @classmethod
    def from_kernel_id(cls, btf_id: int) -> "BTF":
        """Load BTF object ``btf_id`` from the kernel (what a map's ``btf_id`` names)."""
        with libbpf_log() as log:
            ptr = lib.btf__load_from_kernel_by_id(btf_id)
            err = ffi.errno
        check_ptr(ptr, err, f"load BTF id {btf_id} from the kernel", libbpf_log=log.warnings)
        return cls(ptr, owned=True, label=f"kernel BTF id {btf_id}")

    def _check(self) -> Any:
        ptr = self._ptr
        if ptr is None or (self._owner is not None and self._owner._ptr is None):
            raise ClosedError(f"BTF of {self.label}")
        return ptr

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None and self._owned:
            lib.btf__free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # --- raw access -----------------------------------------------------------
    def info(self, type_id: int) -> Any:
        out = ffi.new("struct pylibbpf_btf_info *")
        ret = lib.pylibbpf_btf_info(self._check(), type_id, out)
        if ret < 0:
            raise BPFNotFoundError(-ret, f"no type id {type_id} in {self.label}")
        return out

    def _members(self, type_id: int, vlen: int) -> List[Any]:
        ptr = self._check()
        out = []
        for i in range(vlen):
            m = ffi.new("struct pylibbpf_btf_member *")
            if lib.pylibbpf_btf_member(ptr, type_id, i, m) == 0:
                out.append(m)
        return out

    @staticmethod
    def _name(info: Any) -> str:
        return _btf_name(info.name)

    def name_of(self, type_id: int) -> str:
        return self._name(self.info(type_id))

    def resolve(self, type_id: int) -> int:
        """Skip typedefs and modifiers."""
        for _ in range(64):
            info = self.info(type_id)
            if info.kind not in _MODIFIERS:
                return type_id
            type_id = int(info.type)
        return type_id

    def find(self, name: str) -> int:
        """The id of the type called ``name`` (``"event"``, ``"struct event"`` …)."""
        ptr = self._check()
        word, _, rest = name.partition(" ")
        if rest and word in _KIND_BY_WORD:
            tid = lib.btf__find_by_name_kind(ptr, rest.strip().encode(), _KIND_BY_WORD[word])
            if tid < 0 and word == "enum":
                tid = lib.btf__find_by_name_kind(ptr, rest.strip().encode(), KIND_ENUM64)
        else:
            tid = -1
            for kind in (KIND_STRUCT, KIND_TYPEDEF, KIND_UNION, KIND_ENUM, KIND_ENUM64,
                         KIND_INT, KIND_FLOAT):
                tid = lib.btf__find_by_name_kind(ptr, name.encode(), kind)
                if tid > 0:
                    break
        if tid <= 0:
            raise BPFNotFoundError(
                2, f"no type {name!r} in the BTF of {self.label} (clang emits BTF only "
                   "for types that a global, a map or a function signature uses; for a "
                   f"record type add e.g. 'struct {name} *unused_{name} "
                   "__attribute__((unused));' to the BPF source)")
        return int(tid)

    def size_of(self, type_id: int) -> int:
        ret = lib.btf__resolve_size(self._check(), type_id)
        if ret < 0:
            raise error_from_errno(-ret, f"size of BTF type {type_id} of {self.label}")
        return int(ret)

    # --- codecs ---------------------------------------------------------------
    def codec(self, type: Union[int, str]) -> Codec:
        """The codec of a type id or type name, compiled once.

        A type bigger than :data:`MAX_TYPE_BYTES` (or of more than
        :data:`MAX_TYPE_ITEMS` values) raises :class:`~pylibbpf.ELFError`, as does
        a corrupt one: a codec is never allocated for an absurd size."""
        type_id = self.find(type) if isinstance(type, str) else type
        c = self._codecs.get(type_id)
        if c is None:
            try:
                c = self._build(type_id, 0)
            except BPFError:
                raise
            except (ValueError, OverflowError, struct.error, MemoryError, RecursionError) as e:
                # a layout the codecs can't express: only corrupt BTF gets here
                raise ELFError(errno.EINVAL, f"decode BTF type {self._describe(type_id)} of "
                                             f"{self.label}: corrupt type ({e})") from None
            self._codecs[type_id] = c
        return c

    def sized_codec(self, type_id: int, size: int, what: str) -> Optional[Codec]:
        """The codec of ``type_id`` when the type is ``size`` bytes (``what`` holds
        that many: a map's key, a section's variable), else None; built only then,
        so a corrupt type's absurd size is never allocated."""
        ptr = self._check()
        have = lib.btf__resolve_size(ptr, type_id)
        if have < 0:
            raise ELFError(errno.EINVAL, f"{what}: BTF type {self._describe(type_id)} of "
                                         f"{self.label} has no size (corrupt BTF)")
        if int(have) != size:
            return None
        self._check_size(type_id, int(have), what)
        try:
            return self.codec(type_id)
        except ELFError as e:  # a part of it: say what it was built for
            raise ELFError(e.errno or errno.EINVAL, f"{what}: {e.strerror}") from None

    def _describe(self, type_id: int) -> str:
        """``[id] 'name'``; an anonymous array as ``[id] 'elem[count]'``."""
        try:
            info = self.info(type_id)
            name = self._name(info)
            if not name and int(info.kind) == KIND_ARRAY:
                name = f"{self.name_of(int(info.elem_type)) or '?'}[{int(info.nelems)}]"
            elif not name and int(info.kind) in (KIND_STRUCT, KIND_UNION):
                name = "struct" if int(info.kind) == KIND_STRUCT else "union"
        except Exception:
            name = ""
        return f"[{type_id}] {name!r}" if name else f"[{type_id}]"

    def _check_size(self, type_id: int, size: int, what: str = "", items: int = 0) -> None:
        if size > MAX_TYPE_BYTES or items > MAX_TYPE_ITEMS:
            amount = (f"{size} bytes" if size > MAX_TYPE_BYTES
                      else f"{items} values")
            limit = (f"{MAX_TYPE_BYTES >> 20} MiB" if size > MAX_TYPE_BYTES
                     else f"{MAX_TYPE_ITEMS} values")
            raise ELFError(errno.E2BIG, f"{what + ': ' if what else ''}BTF type "
                                        f"{self._describe(type_id)} of {self.label} is "
                                        f"{amount}, more than pylibbpf decodes ({limit}; "
                                        "corrupt BTF?)")

    def _build(self, type_id: int, depth: int) -> Codec:
        if depth > 64:
            raise ELFError(errno.ELOOP, f"BTF type {self._describe(type_id)} of {self.label} "
                                        "nests more than 64 types deep (corrupt BTF?)")
        if type_id == 0:
            return RawCodec(0, "void")
        cached = self._codecs.get(type_id)
        if cached is not None:
            return cached
        info = self.info(type_id)
        kind = int(info.kind)
        name = self._name(info)
        c: Codec
        if kind in _MODIFIERS:
            inner = self._build(int(info.type), depth + 1)
            if kind == KIND_TYPEDEF and isinstance(inner, IntCodec) and inner.scalar:
                c = inner
            else:
                c = inner
        elif kind == KIND_INT:
            size = int(info.size)
            enc = int(info.int_encoding)
            self._check_size(type_id, size)
            if enc & INT_BOOL and size == 1:
                c = BoolCodec(name or "bool")
            else:
                c = IntCodec(size, bool(enc & INT_SIGNED), name)
        elif kind == KIND_PTR:
            c = IntCodec(8, False, "pointer")
        elif kind == KIND_FLOAT:
            self._check_size(type_id, int(info.size))
            c = FloatCodec(int(info.size), name)
        elif kind in (KIND_ENUM, KIND_ENUM64):
            raw = self._members(type_id, int(info.vlen))
            signed = bool(info.kflag) or (kind == KIND_ENUM and any(int(m.value) < 0
                                                                    for m in raw))
            members = [(_btf_name(m.name), int(m.value) if signed else int(m.uvalue))
                       for m in raw]
            self._check_size(type_id, int(info.size))
            c = EnumCodec(name, int(info.size), signed, members)
        elif kind == KIND_ARRAY:
            count = int(info.nelems)
            elem_id = self.resolve(int(info.elem_type))
            einfo = self.info(elem_id)
            if int(einfo.kind) == KIND_INT and int(einfo.size) == 1 and \
                    not int(einfo.int_encoding) & INT_BOOL:
                ename = self._name(einfo)
                if ename == "char" or int(einfo.int_encoding) & INT_CHAR:
                    self._check_size(type_id, count)
                    c = CharArrayCodec(count)
                elif int(einfo.int_encoding) & INT_SIGNED:
                    c = self._array(type_id, self._build(elem_id, depth + 1), count)
                else:
                    self._check_size(type_id, count)
                    c = BytesArrayCodec(count)
            else:
                c = self._array(type_id, self._build(int(info.elem_type), depth + 1), count)
        elif kind == KIND_STRUCT:
            smembers: List[Tuple[str, int, Codec, int, int]] = []
            for m in self._members(type_id, int(info.vlen)):
                mc = self._build(int(m.type), depth + 1)
                msigned = int(bool(getattr(mc, "signed", False)))
                smembers.append((_btf_name(m.name),
                                 int(m.bit_offset), mc, int(m.bitfield_size), msigned))
            self._check_size(type_id, int(info.size),
                             items=max(sum(m[2].n for m in smembers),
                                       sum(len(m[2].fmt) for m in smembers)))
            c = StructCodec(name, int(info.size), smembers)
        elif kind == KIND_UNION:
            umembers: List[Tuple[str, Codec]] = []
            for m in self._members(type_id, int(info.vlen)):
                umembers.append((_btf_name(m.name),
                                 self._build(int(m.type), depth + 1)))
            self._check_size(type_id, int(info.size))
            c = UnionCodec(name, int(info.size), umembers)
        elif kind == KIND_VAR:
            c = self._build(int(info.type), depth + 1)
        else:
            size = lib.btf__resolve_size(self._check(), type_id)
            self._check_size(type_id, int(size))
            c = RawCodec(max(int(size), 0), name or f"BTF type {type_id}")
        self._codecs[type_id] = c
        return c

    def _array(self, type_id: int, elem: Codec, count: int) -> Codec:
        # the format repeats the element's: bound it before building it
        self._check_size(type_id, elem.size * count,
                         items=max(elem.n, len(elem.fmt)) * count)
        return ArrayCodec(elem, count)

    def datasec(self, name: str) -> Tuple[int, Dict[str, DataSecVar]]:
        """Variables of data section ``name`` (``.rodata``, ``.bss``, ``.data.foo`` …)."""
        ptr = self._check()
        tid = lib.btf__find_by_name_kind(ptr, name.encode(), KIND_DATASEC)
        if tid <= 0:
            raise BPFNotFoundError(2, f"no data section {name!r} in the BTF of {self.label}")
        return self.datasec_by_id(int(tid))

    def datasec_by_id(self, tid: int) -> Tuple[int, Dict[str, DataSecVar]]:
        info = self.info(tid)
        sec_name, sec_size = self._name(info), int(info.size)
        out: Dict[str, DataSecVar] = {}
        for m in self._members(tid, int(info.vlen)):
            vinfo = self.info(int(m.type))
            if int(vinfo.kind) != KIND_VAR:
                continue
            vname = self._name(vinfo)
            off, size = int(m.offset), int(m.size)
            what = f"variable {vname!r} of section {sec_name!r}"
            if off + size > sec_size:
                raise ELFError(errno.EINVAL, f"{what} in {self.label}: its {size} bytes at "
                                             f"offset {off} lie outside the section's "
                                             f"{sec_size} bytes (corrupt BTF)")
            codec = self.sized_codec(int(vinfo.type), size, what)
            if codec is None:
                raise ELFError(errno.EINVAL, f"{what} in {self.label}: its type "
                                             f"{self._describe(int(vinfo.type))} is "
                                             f"{self.size_of(int(vinfo.type))} bytes, the "
                                             f"section gives it {size} (corrupt BTF)")
            out[vname] = DataSecVar(vname, off, size, codec)
        return sec_size, out


def btf_of_object(obj: Any) -> Optional[BTF]:
    """The BTF of an open :class:`~pylibbpf.Object` (None when it has none).

    Cached on the Object itself: the BTF refers back to its Object, and a
    cycle is collectable where a weak-keyed table holding it would never let
    the Object go.
    """
    if obj._ptr is None:
        raise ClosedError(f"Object {getattr(obj, '_label', '?')!r}")
    try:
        return obj._btf_cache  # type: ignore[no-any-return]
    except AttributeError:
        pass
    ptr = lib.bpf_object__btf(obj._ptr)
    btf = None if ptr == ffi.NULL else BTF(ptr, owned=False, label=f"object {obj.name!r}",
                                          owner=obj)
    obj._btf_cache = btf
    return btf


def map_def_types(btf: BTF, map_name: str) -> Tuple[int, int]:
    """Key and value type ids from a map's definition in the ``.maps`` section
    (libbpf drops them for map types whose kernel side takes no BTF, e.g. queues)."""
    ptr = btf._check()
    if lib.btf__find_by_name_kind(ptr, b".maps", KIND_DATASEC) <= 0:
        return 0, 0
    tid = lib.btf__find_by_name_kind(ptr, map_name.encode(), KIND_VAR)
    if tid <= 0:
        return 0, 0
    st = btf.resolve(int(btf.info(int(tid)).type))
    info = btf.info(st)
    if int(info.kind) != KIND_STRUCT:
        return 0, 0
    out = {"key": 0, "value": 0}
    for m in btf._members(st, int(info.vlen)):
        name = _btf_name(m.name)
        if name in out:
            pinfo = btf.info(int(m.type))
            if int(pinfo.kind) == KIND_PTR:
                out[name] = int(pinfo.type)
    return out["key"], out["value"]
