"""``Map``: a BPF map as a Python mapping, typed from BTF.

Keys and values are decoded from the map's BTF types (ints, enums, structs as
attribute-access records, arrays, ``char[]`` as :class:`~pylibbpf.typed.CString`);
maps without BTF use bytes. ``m.raw`` is the same map with bytes keys and
values, ``m.typed(key=…, value=…)`` overrides the types (ctypes, struct format).

Maps of an :class:`~pylibbpf.Object` are borrowed (configured before load,
freed with the Object); :meth:`Map.create`, :meth:`Map.open_pinned`,
:meth:`Map.from_fd` and :meth:`Map.from_id` give standalone maps that own their
file descriptor.
"""
from __future__ import annotations

import errno as _errno
import os
import struct
import sys
from collections.abc import ItemsView, KeysView, MutableMapping, Sequence, ValuesView

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, List, Optional, Tuple, Union
    PathLike = Union[str, "os.PathLike[str]"]
    Buffer = Union[bytes, bytearray, memoryview]

from ._owner import Closeable
from ._ffi import cstr, fast, ffi, lib, libbpf_log, opts, to_str
from .attach._map_api import MapAttachMixin
from .btf import MAX_TYPE_BYTES, BTF, btf_of_object, map_def_types
from .errors import (ENOTSUPP, BPFError, BPFNotFoundError, ClosedError, ELFError, as_path,
                     check_ret,
                     error_from_errno)
from .typed import (ArrayCodec, Codec, IntCodec, PerCPU, RawCodec, StructCodec, codec_for,
                    fast_layout)
from ._bpffs import check_pin, fs_type
from .types import MapType, _coerce

if TYPE_CHECKING:
    from .arena import Arena
    from .object import Object

__all__ = ["Map", "MapInfo", "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK"]


BPF_ANY = int(lib.BPF_ANY)
BPF_NOEXIST = int(lib.BPF_NOEXIST)
BPF_EXIST = int(lib.BPF_EXIST)
BPF_F_LOCK = int(lib.BPF_F_LOCK)

PERCPU_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY,
                          MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE})
# values are fds when written, ids when read
_FD_VALUE_TYPES = frozenset({MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS,
                             MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY})
#: a stack trace map value decoded as frames up to this size (the kernel's
#: perf_event_max_stack is 127 by default; beyond this, raw bytes)
_MAX_STACK_BYTES = 8 << 16
_INDEX_KEY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                              MapType.ARRAY_OF_MAPS, MapType.PERF_EVENT_ARRAY,
                              MapType.CGROUP_ARRAY, MapType.STACK_TRACE, MapType.DEVMAP,
                              MapType.CPUMAP, MapType.XSKMAP, MapType.SOCKMAP})
_ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                          MapType.ARRAY_OF_MAPS, MapType.PERF_EVENT_ARRAY,
                          MapType.CGROUP_ARRAY})
# element calls on these never block, so MapBase makes them holding the GIL
# (others, e.g. a cpumap update that starts a kernel thread, take the Python path)
_GIL_HELD_TYPES = frozenset({MapType.HASH, MapType.ARRAY, MapType.LRU_HASH})
_NO_BATCH = frozenset({_errno.EINVAL, _errno.ENOTSUP, _errno.EOPNOTSUPP, ENOTSUPP,
                       _errno.ENOSYS})
_BATCH = 65536
_FAST_LAYOUT_BYTES = 512  # fast.c's LAYBUF: larger keys and values take the Python path
_MISSING = object()


if TYPE_CHECKING:
    class _MapBase:
        """What the C base (pylibbpf._fast.MapBase) provides."""
        _fdcache: int
        _fast_k: int
        _fast_v: int
        _fast_s: int
        _fast_kl: Any
        _fast_vl: Any
        _parent: Optional["Map"]

        def __getitem__(self, key: Any) -> Any: ...
        def __setitem__(self, key: Any, value: Any) -> None: ...
        def __delitem__(self, key: Any) -> None: ...
        def __contains__(self, key: object) -> bool: ...
        def get(self, key: Any, default: Any = None) -> Any: ...
        def pop(self, *args: Any) -> Any: ...
else:
    # C base whose slots and methods (m[k], m[k] = v, del m[k], k in m, get, pop)
    # serve int -> int maps and fixed-layout records in one system call
    # (_csrc/fast.c); the rest reaches _getitem/_setitem/_delitem/_contains/_pop below
    _MapBase = fast.MapBase
_lookup_elem = lib.bpf_map_lookup_elem
_update_elem = lib.bpf_map_update_elem


def _at(buf: bytes, offset: int) -> Any:
    """A C pointer ``offset`` bytes into ``buf`` (which the caller keeps alive)."""
    return ffi.from_buffer(buf) + offset


class FdCodec(IntCodec):
    """Values of prog arrays and map-in-maps: written as fds (Program/Map or int),
    read back as kernel ids."""

    def __init__(self, size: int) -> None:
        super().__init__(size, False, "fd/id")
        self.scalar = False  # no int fast path: objects with .fd are accepted

    def encode(self, value: Any) -> bytes:
        fd = getattr(value, "fd", value)
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise TypeError(f"expected a Program, a Map or an fd, not {type(value).__name__}")
        return fd.to_bytes(self.size, "little")

    def build(self, items: Any, i: int) -> Any:
        return items[i]

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        return list(struct.unpack(f"={count}I", bytes(buf)[:count * 4])) if self.size == 4 \
            else [int.from_bytes(bytes(buf)[i * self.size:(i + 1) * self.size], "little")
                  for i in range(count)]


class StackCodec(ArrayCodec):
    """Stack-trace map values: the instruction pointers, without the zero tail."""

    def __init__(self, depth: int) -> None:
        super().__init__(IntCodec(8, False, "u64"), depth)
        self.name = f"stack trace[{depth}]"
        unpack = self.struct.unpack
        self.decode = lambda b: _strip_zeros(unpack(b))

    def build(self, items: Any, i: int) -> Any:
        return _strip_zeros(items[i:i + self.n])


def _strip_zeros(ips: Sequence[int]) -> List[int]:
    out = list(ips)
    while out and out[-1] == 0:
        out.pop()
    return out


class LpmKeyCodec(Codec):
    """LPM trie keys: also accepts ``ipaddress`` networks and ``(prefixlen, address)``."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.size = inner.size
        self.name = f"LPM key ({inner.name})"
        self.fmt = inner.fmt
        self.n = inner.n
        self.struct = inner.struct
        self.zero_items = inner.zero_items
        self.decode = inner.decode

    def build(self, items: Any, i: int) -> Any:
        return self.inner.build(items, i)

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        return self.inner.decode_many(buf, count, stride)

    def encode(self, value: Any) -> bytes:
        import ipaddress  # only LPM keys need it: not imported with pylibbpf
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            value = (value.prefixlen, value.network_address.packed)
        elif isinstance(value, str) and "/" in value:
            net = ipaddress.ip_network(value, strict=False)
            value = (net.prefixlen, net.network_address.packed)
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
            plen, data = value
            if isinstance(data, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                data = data.packed
            elif isinstance(data, str):
                data = ipaddress.ip_address(data).packed
            if not isinstance(data, (bytes, bytearray)) or len(data) > self.size - 4:
                raise ValueError(f"LPM key data must be at most {self.size - 4} bytes")
            return struct.pack("=I", plen) + bytes(data).ljust(self.size - 4, b"\0")
        return self.inner.encode(value)

    def flatten(self, value: Any, out: List[Any]) -> None:
        out.extend(self.inner.struct.unpack(self.encode(value)))


class PerCPUCodec(Codec):
    """Per-CPU values: a :class:`~pylibbpf.typed.PerCPU` list with one value per CPU.

    Encodes such a list, or one value, which is then written to every CPU."""

    def __init__(self, inner: Codec, ncpus: int) -> None:
        self.inner = inner
        self.ncpus = ncpus
        self.stride = (inner.size + 7) // 8 * 8
        self.size = self.stride * ncpus
        self.name = f"per-CPU {inner.name}"
        self.fmt = f"{self.size}s"
        self.n = 1
        self._compile()
        many, stride, n = inner.decode_many, self.stride, ncpus
        self.decode = lambda b: PerCPU(many(b, n, stride))

    def build(self, items: Any, i: int) -> Any:
        return self.decode(items[i])

    def _is_percpu(self, value: Any) -> bool:
        if isinstance(value, PerCPU):
            return True
        if not isinstance(value, (list, tuple)) or len(value) != self.ncpus:
            return False
        if isinstance(self.inner, (ArrayCodec, StructCodec)):
            return all(isinstance(v, (list, tuple, dict)) for v in value) and \
                not isinstance(self.inner, StructCodec) or \
                all(isinstance(v, (tuple, dict)) for v in value)
        return True

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == self.size:
            return bytes(value)
        pad = b"\0" * (self.stride - self.inner.size)
        if self._is_percpu(value):
            return b"".join(self.inner.encode(v) + pad for v in value)
        return (self.inner.encode(value) + pad) * self.ncpus

    def flatten(self, value: Any, out: List[Any]) -> None:
        out.append(self.encode(value))

    def decode_many(self, buf: Any, count: int, stride: int = 0) -> List[Any]:
        stride = stride or self.size
        mv = memoryview(buf)
        dec = self.decode
        return [dec(mv[i * stride:i * stride + self.size]) for i in range(count)]


class _Keys(KeysView):  # type: ignore[type-arg]
    def __init__(self, m: "Map", keys: List[Any]) -> None:
        super().__init__(m)
        self._list = keys

    def __iter__(self) -> Iterator[Any]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)


class _Items(ItemsView):  # type: ignore[type-arg]
    """A snapshot of (key, value) pairs (all read and decoded when taken)."""

    def __init__(self, m: "Map", keys: List[Any], values: List[Any]) -> None:
        super().__init__(m)
        self._keys = keys
        self._values = values

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        return zip(self._keys, self._values)

    def __len__(self) -> int:
        return len(self._keys)


class _Values(ValuesView):  # type: ignore[type-arg]
    def __init__(self, m: "Map", values: List[Any]) -> None:
        super().__init__(m)
        self._list = values

    def __iter__(self) -> Iterator[Any]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)

_NCPUS: Optional[int] = None


def possible_cpus() -> int:
    """Number of possible CPUs (the length of per-CPU values)."""
    global _NCPUS
    if _NCPUS is None:
        _NCPUS = check_ret(lib.libbpf_num_possible_cpus(), "count possible CPUs")
    return _NCPUS


if TYPE_CHECKING:
    from ._infos import MapInfo


def __getattr__(name: str) -> Any:
    # the info dataclasses load on first use (_infos.py: dataclasses imports inspect)
    if name in ('MapInfo',):
        from . import _infos
        value = getattr(_infos, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _map_info(fd: int, what: str) -> MapInfo:
    info = ffi.new("struct bpf_map_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
    check_ret(lib.bpf_map_get_info_by_fd(fd, info, size), f"info of {what}")
    try:
        mtype: Union[MapType, int] = MapType(info.type)
    except ValueError:
        mtype = int(info.type)
    from ._infos import MapInfo
    return MapInfo(type=mtype, id=int(info.id), name=ffi.string(info.name).decode(),
                   key_size=int(info.key_size), value_size=int(info.value_size),
                   max_entries=int(info.max_entries), flags=int(info.map_flags),
                   btf_id=int(info.btf_id))


#: map types whose max_entries may be 0 (libbpf or the kernel sizes them)
_ANY_MAX_ENTRIES = frozenset({MapType.PERF_EVENT_ARRAY, MapType.CGROUP_STORAGE,
                              MapType.PERCPU_CGROUP_STORAGE, MapType.SK_STORAGE,
                              MapType.INODE_STORAGE, MapType.TASK_STORAGE,
                              MapType.CGRP_STORAGE, MapType.STRUCT_OPS})
#: map types without values
_NO_VALUE = frozenset({MapType.RINGBUF, MapType.USER_RINGBUF, MapType.ARENA,
                       MapType.PERF_EVENT_ARRAY, MapType.STRUCT_OPS})


def zero_size_field(mtype: MapType, max_entries: int, value_size: int) -> str:
    """``"max_entries"`` or ``"value_size"`` when that size is 0 and a map of
    ``mtype`` needs it (the likely cause of an EINVAL from map creation), else ""."""
    if max_entries == 0 and mtype not in _ANY_MAX_ENTRIES:
        return "max_entries"
    if value_size == 0 and mtype not in _NO_VALUE:
        return "value_size"
    return ""


class Map(_MapBase, Closeable, MapAttachMixin, MutableMapping["Any", "Any"]):
    """A BPF map: ``m[key]``, ``m[key] = value``, ``del m[key]``, iteration.

    Keys and values are decoded from BTF when the map has types (ints, enums,
    records for structs, per-CPU maps give a :class:`~pylibbpf.typed.PerCPU`
    list); otherwise they are bytes of exactly ``key_size`` / ``value_size``
    bytes (per-CPU: ``value_size`` rounded up to 8, times the possible CPUs).
    Bytes of the exact size are always accepted as raw memory. A missing key
    raises :class:`KeyError`. ``items()``, ``update(dict)`` and ``clear()`` use
    batch operations where the map type has them.
    """

    def __init__(self, *, _obj: Optional["Object"] = None, _ptr: Any = None,
                 _fd: int = -1, _info: Optional[MapInfo] = None,
                 _parent: Optional["Map"] = None) -> None:
        self._obj = _obj
        self._ptr = _ptr
        self._fd = _fd
        self._info = _info
        self._closed = False
        self._initial: Any = None  # keeps a buffer given to set_initial_value alive
        self._parent = _parent      # views (m.raw, m.typed()) share their parent's fd
        self._fdcache = -1
        self._typed = True
        self._key_override: Optional[Codec] = None
        self._value_override: Optional[Codec] = None
        self._kc: Optional[Codec] = None
        self._vc: Optional[Codec] = None
        self._vsize = 0
        self._vdecode: Any = None
        self._u64: List[Any] = []
        self._bufs: List[Tuple[bytearray, Any]] = []
        self._batch_ok = True
        self._kernel_btf: Optional[BTF] = None

    # --- standalone maps ----------------------------------------------------
    @classmethod
    def create(cls, map_type: Union[MapType, str, int], key_size: Optional[int] = None,
               value_size: Optional[int] = None, max_entries: Optional[int] = None, *,
               name: str = "", flags: int = 0, key_type: Any = None, value_type: Any = None,
               inner_map: Optional["Map"] = None, map_extra: int = 0,
               numa_node: Optional[int] = None, token: Any = None) -> "Map":
        """Create a map in the kernel; the result owns its fd.

        ``key_type`` / ``value_type`` (a ctypes type, a struct format such as
        ``"<IQ"``, or a codec such as ``obj.btf.codec("struct event")``) type the
        map's keys and values and give their sizes when ``key_size`` /
        ``value_size`` are omitted. ``token`` (a :class:`~pylibbpf.Token`)
        creates it with the privileges a BPF token delegates.
        """
        from .token import BPF_F_TOKEN_FD, token_fd_of

        token_fd = token_fd_of(token)
        mtype = _coerce(MapType, map_type, "map type")
        kc = codec_for(key_type, what="key_type") if key_type is not None else None
        vc = codec_for(value_type, what="value_type") if value_type is not None else None
        if key_size is None:
            key_size = kc.size if kc is not None else \
                (0 if mtype in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER) else None)
        if value_size is None and vc is not None:
            value_size = vc.size
        if key_size is None or value_size is None:
            raise TypeError("create() needs key_size and value_size (or key_type/value_type)")
        if max_entries is None:
            raise TypeError("create() needs max_entries")
        for what, c, size in (("key_type", kc, key_size), ("value_type", vc, value_size)):
            if c is not None and c.size != size:
                raise ValueError(f"{what} {c.name} is {c.size} bytes, not {size}")
        for arg, val in (("key_size", key_size), ("value_size", value_size),
                         ("max_entries", max_entries), ("flags", flags)):
            if not isinstance(val, int) or isinstance(val, bool):
                raise TypeError(f"{arg} must be an int, not {type(val).__name__}")
            if not 0 <= val <= 0xFFFFFFFF:
                raise ValueError(f"{arg} must be between 0 and 2**32-1, not {val}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        o = opts("bpf_map_create_opts", map_flags=flags | (BPF_F_TOKEN_FD if token_fd else 0),
                 map_extra=map_extra, token_fd=token_fd)
        if inner_map is not None:
            o.inner_map_fd = inner_map.fd
        if numa_node is not None:
            o.numa_node = numa_node
        keep: List[Any] = []
        what = f"create {mtype.name.lower()} map {name or '(unnamed)'!r}"
        fd = lib.bpf_map_create(mtype, cstr(name[:15], keep) if name else ffi.NULL,
                                key_size, value_size, max_entries, o)
        if fd == -_errno.EINVAL:
            field = zero_size_field(mtype, max_entries, value_size)
            if field:
                raise error_from_errno(_errno.EINVAL, what, hint=f"{field} is 0: a "
                                       f"{mtype.name.lower()} map needs one")
        check_ret(fd, what)
        m = cls._own_fd(fd, what)
        m._key_override, m._value_override = kc, vc
        return m

    @classmethod
    def _own_fd(cls, fd: int, what: str) -> "Map":
        try:
            info = _map_info(fd, what)
        except BPFError:
            os.close(fd)
            raise
        return cls(_fd=fd, _info=info)

    @classmethod
    def open_pinned(cls, path: PathLike) -> "Map":
        """Open a map pinned in bpffs at ``path``."""
        path = as_path(path)
        fd = lib.bpf_obj_get(path.encode())
        if fd < 0 and os.path.exists(path):
            t = fs_type(path)
            if t is not None and t != "bpf":
                # the kernel's EPERM/EACCES would read as missing privileges
                raise BPFError(_errno.EINVAL, f"open pinned map {path!r}: it is not a bpffs "
                                              f"pin (the file is on a {t or 'non-bpffs'} file system, "
                                              "not bpffs)")
        check_ret(fd, f"open pinned map {path!r}")
        return cls._own_fd(fd, f"pinned map {path!r}")

    @classmethod
    def from_fd(cls, fd: int) -> "Map":
        """A Map for a map fd; the fd is duplicated, the caller keeps its own."""
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise TypeError(f"fd must be an int, not {type(fd).__name__}")
        try:
            dup = os.dup(fd)
        except OSError as e:
            raise error_from_errno(e.errno or _errno.EBADF, f"map fd {fd}") from None
        return cls._own_fd(dup, f"map fd {fd}")

    @classmethod
    def from_id(cls, map_id: int) -> "Map":
        """Open the map with kernel id ``map_id``."""
        fd = lib.bpf_map_get_fd_by_id(map_id)
        check_ret(fd, f"open map id {map_id}")
        return cls._own_fd(fd, f"map id {map_id}")

    @classmethod
    def from_name(cls, name: str) -> "Map":
        """Open the map the kernel knows as ``name`` (``bpf_map_info.name``, at most
        15 characters). Keys and values are typed from the map's BTF, as for
        :meth:`from_id`. No such map: :class:`~pylibbpf.BPFNotFoundError`;
        several: :class:`~pylibbpf.BPFError` listing their ids."""
        from .system import maps

        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        ids = [m.id for m in maps(with_holders=False, with_pins=False) if m.name == name[:15]]
        if not ids:
            raise BPFNotFoundError(_errno.ENOENT, f"open map named {name!r}: no such map")
        if len(ids) > 1:
            raise BPFError(_errno.EEXIST, f"open map named {name!r}: {len(ids)} maps have "
                                          f"that name (ids {', '.join(map(str, ids))}); "
                                          "name one by id")
        return cls.from_id(ids[0])

    # --- state --------------------------------------------------------------
    @property
    def closed(self) -> bool:
        if self._parent is not None:
            return self._parent.closed
        if self._obj is not None:
            return self._obj._ptr is None
        return self._closed

    def _check(self) -> None:
        if self.closed:
            label = self._info.name if self._info else "?"
            if self._obj is not None:
                raise ClosedError(f"Map {label!r} (its Object was closed)")
            raise ClosedError(f"Map {label!r}")

    def _check_configurable(self, what: str) -> None:
        self._check()
        if self._ptr is None:
            raise BPFError(_errno.EINVAL, f"{what}: map {self.name!r} already exists "
                                          "in the kernel; only an Object's maps are "
                                          "configurable, before load")
        if self._obj is not None and self._obj.loaded:
            raise BPFError(_errno.EBUSY, f"{what}: Object {self._obj.name!r} is already loaded")
        if self._obj is not None and self._obj._prepared:
            raise BPFError(_errno.EBUSY, f"{what}: Object {self._obj.name!r} is already "
                                         "prepared: its maps exist (set it before prepare())")
        if self._obj is not None and self._obj._load_attempted:
            raise BPFError(_errno.EBUSY, f"{what}: the load() of Object {self._obj.name!r} "
                                         "failed (open the object again)")

    @property
    def name(self) -> str:
        """The map's name."""
        self._check()
        if self._ptr is not None:
            return to_str(lib.bpf_map__name(self._ptr))  # corrupt ELF: not UTF-8
        assert self._info is not None
        return self._info.name

    @property
    def type(self) -> MapType:
        """The map type."""
        self._check()
        if self._ptr is not None:
            number = int(lib.bpf_map__type(self._ptr))
        else:
            assert self._info is not None
            number = int(self._info.type)
        try:
            return MapType(number)
        except ValueError:
            # a corrupt object's (or a newer kernel's) number; ELFError is a ValueError
            of = f" of {self._obj.name!r}" if self._obj is not None else ""
            raise ELFError(_errno.EINVAL, f"map {self.name!r}{of} has map type "
                                          f"number {number}, which pylibbpf does not know "
                                          "(a corrupt object, or a newer kernel's type)") \
                from None

    def _u32(self, getter: str, field: str) -> int:
        self._check()
        if self._ptr is not None:
            return int(getattr(lib, getter)(self._ptr))
        return int(getattr(self._info, field))

    def _set_u32(self, setter: str, value: int, what: str) -> None:
        self._check_configurable(f"set {what}")
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{what} must be an int, not {type(value).__name__}")
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"{what} must be between 0 and 2**32-1, not {value}")
        check_ret(getattr(lib, setter)(self._ptr, value), f"set {what} of map {self.name!r}")

    @property
    def key_size(self) -> int:
        """Size of a key in bytes."""
        return self._u32("bpf_map__key_size", "key_size")

    @property
    def value_size(self) -> int:
        """Size of one value in bytes (of one CPU's value for per-CPU maps)."""
        return self._u32("bpf_map__value_size", "value_size")

    @value_size.setter
    def value_size(self, value: int) -> None:
        self._set_u32("bpf_map__set_value_size", value, "value_size")

    @property
    def max_entries(self) -> int:
        """Capacity; settable before load (resizes the map)."""
        return self._u32("bpf_map__max_entries", "max_entries")

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        self._check_configurable("set max_entries")
        if lib.bpf_map__initial_value(self._ptr, ffi.new("size_t *")) != ffi.NULL:
            # libbpf memory-maps global-data (and arena) maps at open and would
            # later unmap a region sized by the new max_entries: refuse, as C
            # users are told to
            raise ValueError(f"map {self.name!r} is memory-mapped global data: its "
                             "max_entries cannot change (resize value_size instead)")
        self._set_u32("bpf_map__set_max_entries", value, "max_entries")

    @property
    def map_extra(self) -> int:
        """The map's ``map_extra``; settable before load. For an arena
        (``BPF_MAP_TYPE_ARENA``) it is the fixed address where the arena is
        mapped, in this process and in the programs' arena pointers (0: the
        kernel picks); ``Object.load()`` refuses an address that overlaps memory
        this process already maps (libbpf's ``MAP_FIXED`` would replace it)."""
        self._check()
        if self._ptr is None:
            return self._info.map_extra if self._info is not None and \
                hasattr(self._info, "map_extra") else 0
        return int(lib.bpf_map__map_extra(self._ptr))

    @map_extra.setter
    def map_extra(self, value: int) -> None:
        self._check_configurable("set map_extra")
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"map_extra must be an int, not {type(value).__name__}")
        if not 0 <= value < 1 << 64:
            raise ValueError(f"map_extra must be between 0 and 2**64-1, not {value}")
        check_ret(lib.bpf_map__set_map_extra(self._ptr, value),
                  f"set map_extra of map {self.name!r}")

    @property
    def arena(self) -> "Arena":
        """The memory of this ``BPF_MAP_TYPE_ARENA`` map, shared with the programs
        without copies (an :class:`~pylibbpf.arena.Arena`: ``.memory`` is a writable
        memoryview, ``.numpy()`` an array, ``.globals`` the ``__arena`` variables).
        Available once the Object is loaded."""
        self._check()
        cached = self.__dict__.get("_arena")
        if cached is not None:
            return cached
        if self.type != MapType.ARENA:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} is a {self.type.name.lower()} "
                                          "map, not an arena")
        if self._ptr is None or self._obj is None:
            raise BPFError(_errno.EINVAL, f"map {self.name!r}: only an Object's arena map "
                                          "gives its memory (pylibbpf maps the arena libbpf "
                                          "created)")
        from .arena import Arena

        arena = Arena(self)
        self.__dict__["_arena"] = arena
        return arena

    @property
    def autocreate(self) -> bool:
        """Whether ``Object.load()`` creates this map (default True); settable before
        load. A struct_ops map that is not created takes its programs with it (they
        are not loaded either); other programs that use the map fail to load."""
        self._check()
        if self._ptr is None:
            return True
        return bool(lib.bpf_map__autocreate(self._ptr))

    @autocreate.setter
    def autocreate(self, value: bool) -> None:
        self._check_configurable("set autocreate")
        if not isinstance(value, bool):
            raise TypeError(f"autocreate must be a bool, not {type(value).__name__}")
        check_ret(lib.bpf_map__set_autocreate(self._ptr, value),
                  f"set autocreate of map {self.name!r}")

    @property
    def flags(self) -> int:
        """BPF_F_* map flags; settable before load."""
        return self._u32("bpf_map__map_flags", "flags")

    @flags.setter
    def flags(self, value: int) -> None:
        self._set_u32("bpf_map__set_map_flags", value, "flags")

    def _initial_memory(self) -> Tuple[Any, int]:
        """libbpf's copy of the map's initial value: (pointer or NULL, size).

        For a struct_ops map libbpf answers its copy of the object's struct with the
        map's value_size, which is the kernel's (larger) struct after load, or
        whatever value_size was set to: the size is that of the struct instead.
        """
        size = ffi.new("size_t *")
        p = lib.bpf_map__initial_value(self._ptr, size)
        n = int(size[0])
        if p != ffi.NULL and lib.bpf_map__type(self._ptr) == lib.BPF_MAP_TYPE_STRUCT_OPS:
            btf = lib.bpf_object__btf(self._obj._ptr) if self._obj is not None else ffi.NULL
            local = lib.btf__resolve_size(btf, lib.bpf_map__btf_value_type_id(self._ptr)) \
                if btf != ffi.NULL else -1
            n = min(n, max(int(local), 0))
        return p, n

    @property
    def initial_value(self) -> bytes:
        """The initial contents of a global-data map (.rodata, .data, .bss).

        Settable before load, with exactly the map's value size in bytes.
        """
        self._check()
        if self._ptr is None:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} has no initial value")
        p, n = self._initial_memory()
        if p == ffi.NULL:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} has no initial value "
                                          "(only global-data maps have one)")
        return bytes(ffi.buffer(p, n))

    @initial_value.setter
    def initial_value(self, data: Buffer) -> None:
        self._check_configurable("set initial value")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"initial value must be bytes-like, not {type(data).__name__}")
        raw = bytes(data)
        size = ffi.new("size_t *")
        if lib.bpf_map__initial_value(self._ptr, size) == ffi.NULL:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} has no initial value "
                                          "(only global-data maps have one)")
        if len(raw) != size[0]:
            raise ValueError(f"initial value of map {self.name!r} must be {size[0]} bytes, "
                             f"got {len(raw)}")
        check_ret(lib.bpf_map__set_initial_value(self._ptr, raw, len(raw)),
                  f"set initial value of map {self.name!r}")

    @property
    def fd(self) -> int:
        """The map's file descriptor (raises before its Object is loaded)."""
        self._check()
        if self._ptr is None:
            return self._parent.fd if self._parent is not None else self._fd
        fd = int(lib.bpf_map__fd(self._ptr))
        if fd < 0:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} is not created yet "
                                          "(call Object.load())")
        if not lib.bpf_map__autocreate(self._ptr):
            # libbpf holds a placeholder fd for it: never hand that out as the map
            raise BPFError(_errno.ENOENT, f"map {self.name!r} was not created "
                                          "(its autocreate was turned off before load)")
        return fd

    def info(self) -> MapInfo:
        """Ask the kernel about the map."""
        return _map_info(self.fd, f"map {self.name!r}")

    @property
    def id(self) -> int:
        """The kernel's id of the map."""
        return self.info().id

    @property
    def percpu(self) -> bool:
        """True for per-CPU maps, whose values hold one slot per possible CPU."""
        return self.type in PERCPU_TYPES

    @property
    def value_buffer_size(self) -> int:
        """Bytes a lookup returns: ``value_size``, or per-CPU slots for per-CPU maps."""
        size = self.value_size
        if self.percpu:
            return (size + 7) // 8 * 8 * possible_cpus()
        return size

    # --- types --------------------------------------------------------------
    def _root(self) -> "Map":
        return self._parent if self._parent is not None else self

    def _load_codecs(self) -> Tuple[Codec, Codec]:
        """Key and value codecs: the user's, else from BTF, else raw bytes."""
        self._check()
        kc: Optional[Codec] = self._key_override
        vc: Optional[Codec] = self._value_override
        mtype = self.type
        ks, vs = self.key_size, self.value_size
        if self._typed and (kc is None or vc is None):
            btf, kid, vid = self._btf_ids()
            if btf is not None:
                # built only when the type is the map's size (a corrupt type's
                # absurd size is never allocated)
                if kc is None and kid:
                    c = btf.sized_codec(kid, ks, f"key of map {self.name!r}")
                    kc = c if c is not None and c.size == ks else None
                if vc is None and vid and mtype not in _FD_VALUE_TYPES:
                    c = btf.sized_codec(vid, vs, f"value of map {self.name!r}")
                    vc = c if c is not None and c.size == vs else None
        # (after BTF, whose error names the type) the codecs below allocate the size
        for what, size in (("key_size", ks), ("value_size", vs)):
            if size > MAX_TYPE_BYTES:
                raise ELFError(_errno.E2BIG, f"map {self.name!r}: its {what} {size} is more "
                                             f"than pylibbpf decodes ({MAX_TYPE_BYTES >> 20} "
                                             "MiB; no kernel map is that big: corrupt BTF?)")
        if self._typed:
            if vc is None and mtype in _FD_VALUE_TYPES:
                vc = FdCodec(vs)
            if vc is None and mtype == MapType.STACK_TRACE and vs % 8 == 0 \
                    and vs <= _MAX_STACK_BYTES:
                vc = StackCodec(vs // 8)
            if kc is None and mtype in _INDEX_KEY_TYPES and ks == 4:
                kc = IntCodec(4, False, "u32")
        if kc is None:
            kc = RawCodec(ks, f"key of map {self.name!r}")
        if vc is None:
            vc = RawCodec(self.value_buffer_size if self.percpu and not self._typed else vs,
                          f"value of map {self.name!r}")
        if mtype == MapType.LPM_TRIE and self._typed:
            kc = LpmKeyCodec(kc)
        if self.percpu and self._typed:
            vc = PerCPUCodec(vc, possible_cpus())
        # the kernel writes value_buffer_size bytes on lookup: never hand it less (and
        # keep nothing of a type that failed this, so no later call can use it)
        if vc.size != self.value_buffer_size:
            raise BPFError(_errno.EINVAL, f"value type {vc.name} of map {self.name!r} is "
                                          f"{vc.size} bytes, lookups need "
                                          f"{self.value_buffer_size}")
        # (_kc and _vc last: another thread that sees them set uses the rest at once)
        self._vsize = vc.size
        # records and ints are unpacked in C (one call, no intermediate tuple)
        lay = fast_layout(vc)
        self._vdecode = lay if lay.mode in (fast.L_INT, fast.L_STRUCT) else vc.decode
        self._fast_k = 0
        self._fast_kl = self._fast_vl = None
        # ints in, ints out in C (MapBase): key size (0: off), value size, sign bit or 0;
        # only once the sizes are known to be the map's own (the kernel writes that many)
        if type(kc) is IntCodec and type(vc) is IntCodec and kc.scalar and vc.scalar \
                and (not kc.signed) and sys.byteorder == "little" and mtype in _GIL_HELD_TYPES \
                and kc.size == ks and vc.size == vs:
            self._fast_s = vc.size * 8 - 1 if vc.signed else 0
            self._fast_v = vc.size
            self._fast_k = kc.size
        elif mtype in _GIL_HELD_TYPES and kc.size == ks and vc.size == vs \
                and max(ks, vs) <= _FAST_LAYOUT_BYTES:
            # other ints and records of a fixed layout: packed and unpacked in C
            klay = fast_layout(kc)
            if klay.mode in (fast.L_INT, fast.L_STRUCT) and lay.mode in (fast.L_INT,
                                                                          fast.L_STRUCT):
                self._fast_vl = lay
                self._fast_kl = klay
        self._kc, self._vc = kc, vc
        return kc, vc

    def _btf_ids(self) -> Tuple[Optional[BTF], int, int]:
        if self._ptr is not None and self._obj is not None:
            btf = btf_of_object(self._obj)
            if btf is None:
                return None, 0, 0
            kid = int(lib.bpf_map__btf_key_type_id(self._ptr))
            vid = int(lib.bpf_map__btf_value_type_id(self._ptr))
            if not kid and not vid:
                kid, vid = map_def_types(btf, self.name)
            return btf, kid, vid
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        if lib.bpf_map_get_info_by_fd(self.fd, info, size) < 0 or not info.btf_id:
            return None, 0, 0
        try:
            btf = BTF.from_kernel_id(int(info.btf_id))
        except BPFError:
            return None, 0, 0
        self._kernel_btf = btf
        return btf, int(info.btf_key_type_id), int(info.btf_value_type_id)

    @property
    def key_type(self) -> Codec:
        """The key codec (from BTF, the user, or raw bytes)."""
        return self._kc or self._load_codecs()[0]

    @property
    def value_type(self) -> Codec:
        """The value codec; for structs ``m.value_type(field=…)`` builds a value."""
        return self._vc or self._load_codecs()[1]

    def typed(self, key: Any = None, value: Any = None) -> "Map":
        """A view of this map with explicit types: a ctypes type, a struct format
        (``"<IQ"``) or a codec, for the key and/or the value (others stay as they are)."""
        self._check()
        view = Map(_obj=self._obj, _ptr=self._ptr, _fd=self._fd, _info=self._info,
                   _parent=self._root())
        per = self.percpu
        view._key_override = codec_for(key, what=f"key type of map {self.name!r}",
                                       size=self.key_size) if key is not None else None
        if value is not None:
            view._value_override = codec_for(value, what=f"value type of map {self.name!r}",
                                             size=self.value_size)
        if key is None:
            view._key_override = self.key_type
        if value is None:
            view._value_override = self.value_type.inner if per else self.value_type  # type: ignore[attr-defined]
        return view

    @property
    def raw(self) -> "Map":
        """This map with bytes keys and values (no decoding)."""
        self._check()
        view = Map(_obj=self._obj, _ptr=self._ptr, _fd=self._fd, _info=self._info,
                   _parent=self._root())
        view._typed = False
        return view

    # --- element access -----------------------------------------------------
    def _live_fd(self) -> int:
        r = self._parent if self._parent is not None else self
        fd = r._fdcache
        if fd >= 0:
            o = r._obj
            if not r._closed and (o is None or o._ptr is not None):
                return fd
        fd = r.fd
        if r._ptr is None or (r._obj is not None and r._obj._loaded):
            r._fdcache = fd
        return fd

    def _ekey(self, key: Any) -> bytes:
        kc = self._kc or self._load_codecs()[0]
        try:
            return kc.encode(key)
        except (TypeError, ValueError, OverflowError) as e:
            raise type(e)(f"key of map {self.name!r}: {e}") from None

    def _evalue(self, value: Any) -> bytes:
        vc = self._vc or self._load_codecs()[1]
        try:
            return vc.encode(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise type(e)(f"value of map {self.name!r}: {e}") from None

    def _buf(self) -> Tuple[bytearray, Any]:
        try:
            return self._bufs.pop()
        except IndexError:
            ba = bytearray(self._vsize)
            return ba, ffi.from_buffer(ba)

    def lookup(self, key: Any, default: Any = None, *, flags: int = 0) -> Any:
        """The value for ``key``, or ``default`` when it is missing."""
        fd = self._live_fd()
        k = self._ekey(key)
        pair = self._buf()
        ret = lib.bpf_map_lookup_elem_flags(fd, k, pair[1], flags)
        if ret:
            self._bufs.append(pair)
            if ret == -_errno.ENOENT:
                return default
            check_ret(ret, f"lookup in map {self.name!r}")
        value = self._vc.decode(pair[0])  # type: ignore[union-attr]
        self._bufs.append(pair)
        return value

    # m[k], m[k] = v and del m[k] are MapBase's C slots: int -> int maps are served
    # there, in one system call; everything else arrives here
    def _getitem(self, key: Any) -> Any:
        fd = self._live_fd()
        k = self._ekey(key)
        bufs = self._bufs
        pair = bufs.pop() if bufs else self._buf()
        ret = _lookup_elem(fd, k, pair[1])
        if ret:
            bufs.append(pair)
            if ret == -_errno.ENOENT:
                raise KeyError(key)
            check_ret(ret, f"lookup in map {self.name!r}")
        value = self._vdecode(pair[0])
        bufs.append(pair)
        return value

    def _setitem(self, key: Any, value: Any) -> None:
        fd = self._live_fd()
        k = self._ekey(key)
        v = self._evalue(value)
        ret = _update_elem(fd, k, v, 0)
        if ret:
            self._check_update(ret, f"update map {self.name!r}", key)

    def _check_update(self, ret: int, what: str, key: Any = None) -> None:
        """check_ret for an update, whose E2BIG means a full map or an index past
        the end (the kernel's "Argument list too long" names neither)."""
        if ret == -_errno.E2BIG:
            try:
                mtype: Any = self.type
            except ELFError:
                mtype = None
            n = self.max_entries
            if mtype in _INDEX_KEY_TYPES:
                at = f"index {key!r}" if key is not None else "an index"
                raise BPFError(_errno.E2BIG, f"{what}: {at} is out of range: the map has "
                                             f"max_entries {n} (indexes 0 to {n - 1})")
            hint = (" (flags=BPF_EXIST overwrites the oldest)"
                    if mtype in (MapType.QUEUE, MapType.STACK) else
                    " (delete entries or raise max_entries)")
            raise BPFError(_errno.E2BIG, f"{what}: the map is full: it holds its max_entries "
                                         f"({n}) elements{hint}")
        check_ret(ret, what)

    def update(self, *args: Any, flags: int = BPF_ANY, **kwargs: Any) -> None:  # type: ignore[override]
        """``update(key, value, flags=BPF_ANY)``, or ``update(mapping_or_pairs)`` in batches.

        ``flags``: BPF_ANY, BPF_NOEXIST (fails with BPFExistsError when present),
        BPF_EXIST (fails with BPFNotFoundError when missing), BPF_F_LOCK.
        """
        if len(args) == 2 and not kwargs:
            fd = self._live_fd()
            ret = lib.bpf_map_update_elem(fd, self._ekey(args[0]), self._evalue(args[1]), flags)
            if ret < 0:
                self._check_update(ret, f"update map {self.name!r}", args[0])
            return
        if len(args) > 1:
            raise TypeError("update() takes (key, value) or one mapping")
        for k in kwargs:
            raise TypeError(f"keyword {k!r} cannot be a map key; pass a dict")
        if not args:
            return
        src = args[0]
        if isinstance(src, dict):
            self.update_batch(list(src), list(src.values()), flags=flags)
            return
        pairs = list(src.items() if hasattr(src, "items") else src)
        self.update_batch([p[0] for p in pairs], [p[1] for p in pairs], flags=flags)

    def update_batch(self, keys: Sequence[Any], values: Sequence[Any], *,
                     flags: int = BPF_ANY) -> None:
        """Update many elements with BPF_MAP_UPDATE_BATCH (per element where the map
        type has no batch operations)."""
        if len(keys) != len(values):
            raise ValueError("update_batch() needs as many keys as values")
        if not keys:
            return
        fd = self._live_fd()
        kc, vc = self._kc or self._load_codecs()[0], self._vc
        assert vc is not None
        kb = self._encode_all(kc, keys, "key")
        vb = self._encode_all(vc, values, "value")
        n = len(keys)
        ks, vs = kc.size, vc.size
        if self._batch_ok and n > 1 and ks:
            o = opts("bpf_map_batch_opts", elem_flags=flags)
            count = ffi.new("__u32 *")
            done = 0
            while done < n:
                chunk = min(n - done, _BATCH)
                count[0] = chunk
                ret = lib.bpf_map_update_batch(fd, _at(kb, done * ks),
                                               _at(vb, done * vs), count, o)
                if ret < 0:
                    if done == 0 and count[0] == 0 and -ret in _NO_BATCH:
                        self._root()._batch_ok = False
                        break
                    at = done + int(count[0])
                    self._check_update(ret, f"batch update of map {self.name!r} "
                                            f"(element {at})", keys[at] if at < n else None)
                done += chunk
            else:
                return
        for i in range(n):
            ret = lib.bpf_map_update_elem(fd, kb[i * ks:(i + 1) * ks], vb[i * vs:(i + 1) * vs],
                                          flags)
            if ret < 0:
                self._check_update(ret, f"update map {self.name!r}", keys[i])

    def _encode_all(self, codec: Codec, values: Sequence[Any], what: str) -> bytes:
        try:
            if isinstance(codec, IntCodec) and codec.scalar:
                try:
                    return struct.pack(f"={len(values)}{codec.fmt}", *values)
                except struct.error:
                    pass
            return codec.encode_many(values)
        except (TypeError, ValueError, OverflowError) as e:
            raise type(e)(f"{what} of map {self.name!r}: {e}") from None

    def _delitem(self, key: Any) -> None:
        fd = self._live_fd()
        ret = lib.bpf_map_delete_elem(fd, self._ekey(key))
        if ret == -_errno.ENOENT:
            raise KeyError(key)
        check_ret(ret, f"delete from map {self.name!r}")

    def lookup_and_delete(self, key: Any, *, flags: int = 0) -> Any:
        """Remove ``key`` and return its value (KeyError when missing)."""
        fd = self._live_fd()
        k = self._ekey(key)
        ba, cd = self._buf()
        ret = lib.bpf_map_lookup_and_delete_elem_flags(fd, k, cd, flags)
        if ret == -_errno.ENOENT:
            raise KeyError(key)
        check_ret(ret, f"lookup and delete in map {self.name!r}")
        return self._vc.decode(ba)  # type: ignore[union-attr]

    # --- whole-map operations (batched) -------------------------------------
    def _snapshot(self, *, values: bool = True, delete: bool = False) -> Tuple[List[Any], List[Any]]:
        """Every (key, value) now, by batch lookup (or element by element)."""
        fd = self._live_fd()
        kc = self._kc or self._load_codecs()[0]
        vc = self._vc
        assert vc is not None
        ks, vs = kc.size, vc.size
        if self._batch_ok and ks:
            got = self._batch_read(fd, ks, vs, delete)
            if got is not None:
                kbuf, vbuf, n = got
                keys = kc.decode_many(kbuf, n)
                vals = vc.decode_many(vbuf, n) if values else []
                return keys, vals
        keys_raw = self._raw_keys(fd, ks)
        keys, vals = [], []
        pair = self._buf()
        for kr in keys_raw:
            if values or delete:
                fn = lib.bpf_map_lookup_and_delete_elem if delete else lib.bpf_map_lookup_elem
                ret = fn(fd, kr, pair[1])
                if ret == -_errno.ENOENT:
                    continue
                check_ret(ret, f"lookup in map {self.name!r}")
                if values:
                    vals.append(vc.decode(pair[0]))
            keys.append(kc.decode(kr))
        self._bufs.append(pair)
        return keys, vals

    def _batch_read(self, fd: int, ks: int, vs: int,
                    delete: bool) -> Optional[Tuple[bytes, bytes, int]]:
        chunk = max(1, min(self.max_entries, _BATCH))
        fn = lib.bpf_map_lookup_and_delete_batch if delete else lib.bpf_map_lookup_batch
        o = opts("bpf_map_batch_opts")
        tok_in = ffi.new("char[]", max(ks, 8))
        tok_out = ffi.new("char[]", max(ks, 8))
        count = ffi.new("__u32 *")
        kparts: List[bytes] = []
        vparts: List[bytes] = []
        total = 0
        first = True
        kbuf = ffi.new("char[]", chunk * ks)
        vbuf = ffi.new("char[]", chunk * vs)
        while True:
            count[0] = chunk
            ret = fn(fd, ffi.NULL if first else tok_in, tok_out, kbuf, vbuf, count, o)
            if ret < 0 and ret != -_errno.ENOENT:
                if ret == -_errno.ENOSPC and chunk < (1 << 22):
                    chunk *= 4
                    kbuf = ffi.new("char[]", chunk * ks)
                    vbuf = ffi.new("char[]", chunk * vs)
                    continue
                if first and -ret in _NO_BATCH:
                    self._root()._batch_ok = False
                    return None
                check_ret(ret, f"batch lookup in map {self.name!r}")
            n = int(count[0])
            if n:
                kparts.append(ffi.buffer(kbuf, n * ks)[:])
                vparts.append(ffi.buffer(vbuf, n * vs)[:])
                total += n
            if ret == -_errno.ENOENT:
                break
            first = False
            tok_in, tok_out = tok_out, tok_in
        if len(kparts) == 1:
            return kparts[0], vparts[0], total
        return b"".join(kparts), b"".join(vparts), total

    def _raw_keys(self, fd: int, ks: int) -> List[bytes]:
        """All keys, collected before anything is returned (so deletion meanwhile
        cannot derail the walk)."""
        keys: List[bytes] = []
        if not ks:
            return keys
        cur = ffi.new("char[]", ks)
        nxt = ffi.new("char[]", ks)
        ret = lib.bpf_map_get_next_key(fd, ffi.NULL, nxt)
        seen = set()
        while ret == 0:
            key = ffi.buffer(nxt, ks)[:]
            if key in seen:  # the walk restarted (a key was deleted meanwhile)
                break
            seen.add(key)
            keys.append(key)
            cur, nxt = nxt, cur
            ret = lib.bpf_map_get_next_key(fd, cur, nxt)
        if ret not in (0, -_errno.ENOENT):
            check_ret(ret, f"iterate map {self.name!r}")
        return keys

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot of the keys (safe against concurrent deletion)."""
        return iter(self._snapshot(values=False)[0])

    def keys(self) -> "KeysView[Any]":  # type: ignore[override]
        return _Keys(self, self._snapshot(values=False)[0])

    def items(self) -> "ItemsView[Any, Any]":  # type: ignore[override]
        """A snapshot of every (key, value), read in batches."""
        keys, vals = self._snapshot()
        return _Items(self, keys, vals)

    def values(self) -> "ValuesView[Any]":  # type: ignore[override]
        return _Values(self, self._snapshot()[1])

    def items_list(self) -> List[Tuple[Any, Any]]:
        """All (key, value) pairs present now."""
        return list(self.items())

    def pop_all(self) -> List[Tuple[Any, Any]]:
        """Remove and return every element (BPF_MAP_LOOKUP_AND_DELETE_BATCH)."""
        keys, vals = self._snapshot(delete=True)
        return list(zip(keys, vals))

    def __len__(self) -> int:
        if self.type in _ARRAY_TYPES:
            return self.max_entries
        return len(self._raw_keys(self._live_fd(), self.key_size)) if not self._batch_ok \
            else len(self._snapshot(values=False)[0])

    # k in m, m.get(k) and m.pop(k) are MapBase's (C): what it doesn't serve arrives here
    def _contains(self, key: object) -> bool:
        if self._fast_k and type(key) is int:  # int maps: a lookup in MapBase's C slot
            try:
                self[key]
                return True
            except (KeyError, TypeError):     # missing, or out of the key's range
                return False
        if self.type == MapType.BLOOM_FILTER:
            return self._bloom_has(key)
        try:
            return self.lookup(key, _MISSING) is not _MISSING
        except (TypeError, ValueError):
            return False

    def clear(self) -> None:
        """Remove every element (arrays: set every element to zero)."""
        fd = self._live_fd()
        mtype = self.type
        if mtype in (MapType.QUEUE, MapType.STACK):
            while self.pop(None) is not None:
                pass
            return
        kc = self._kc or self._load_codecs()[0]
        vc = self._vc
        assert vc is not None
        if mtype in _ARRAY_TYPES and mtype not in _FD_VALUE_TYPES:
            n = self.max_entries
            self.update_batch(list(range(n)), [bytes(vc.size)] * n)
            return
        ks = kc.size
        keys = self._snapshot(values=False)[0]
        kb = kc.encode_many(keys) if keys else b""
        n = len(keys)
        done = 0
        if self._batch_ok and n > 1:
            o = opts("bpf_map_batch_opts")
            count = ffi.new("__u32 *")
            while done < n:
                count[0] = n - done
                ret = lib.bpf_map_delete_batch(fd, _at(kb, done * ks), count, o)
                done += int(count[0])
                if ret == 0:
                    return
                if ret == -_errno.ENOENT:
                    done += 1  # deleted meanwhile: skip it
                    continue
                if -ret in _NO_BATCH and done == 0:
                    self._root()._batch_ok = False
                    break
                check_ret(ret, f"batch delete in map {self.name!r}")
            if done >= n:
                return
        for i in range(done, n):
            ret = lib.bpf_map_delete_elem(fd, kb[i * ks:(i + 1) * ks])
            if ret != -_errno.ENOENT:
                check_ret(ret, f"delete from map {self.name!r}")

    # --- per-CPU ------------------------------------------------------------
    def sum(self, key: Any) -> Any:
        """The per-CPU value of ``key`` summed over CPUs."""
        value = self[key]
        if not isinstance(value, PerCPU):
            raise BPFError(_errno.EINVAL, f"map {self.name!r} is not a per-CPU map")
        return value.sum()

    # --- queue / stack / bloom filter ---------------------------------------
    def push(self, value: Any, *, flags: int = BPF_ANY) -> None:
        """Queue/stack: add ``value`` (``flags=BPF_EXIST`` overwrites the oldest when
        full); bloom filter: add ``value``."""
        fd = self._live_fd()
        self._keyless("push", MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER)
        ret = lib.bpf_map_update_elem(fd, ffi.NULL, self._evalue(value), flags)
        if ret < 0:
            self._check_update(ret, f"push to map {self.name!r}")

    def _pop(self, *args: Any) -> Any:
        """Queue/stack: ``pop([default])`` removes and returns the next value
        (IndexError when empty, or ``default``). Other maps: ``pop(key[, default])``
        as dicts do (an atomic lookup-and-delete where the kernel has one)."""
        if self.type not in (MapType.QUEUE, MapType.STACK):
            if not 1 <= len(args) <= 2:
                raise TypeError(f"pop() takes a key and an optional default, got {len(args)} "
                                "arguments")
            try:
                return self.lookup_and_delete(args[0])
            except KeyError:
                if len(args) == 2:
                    return args[1]
                raise
            except BPFError as e:
                if e.errno not in _NO_BATCH:
                    raise
            value = self.lookup(args[0], _MISSING)
            if value is _MISSING:
                if len(args) == 2:
                    return args[1]
                raise KeyError(args[0])
            del self[args[0]]
            return value
        if len(args) > 1:
            raise TypeError("pop() of a queue/stack takes at most one default")
        default = args
        fd = self._live_fd()
        if self._vc is None:
            self._load_codecs()
        ba, cd = self._buf()
        ret = lib.bpf_map_lookup_and_delete_elem(fd, ffi.NULL, cd)
        if ret == -_errno.ENOENT:
            if default:
                return default[0]
            raise IndexError(f"pop from empty map {self.name!r}")
        check_ret(ret, f"pop from map {self.name!r}")
        return self._vc.decode(ba)  # type: ignore[union-attr]

    def peek(self, default: Any = None) -> Any:
        """Queue/stack: the next value without removing it (``default`` when empty)."""
        fd = self._live_fd()
        self._keyless("peek", MapType.QUEUE, MapType.STACK)
        if self._vc is None:
            self._load_codecs()
        ba, cd = self._buf()
        ret = lib.bpf_map_lookup_elem(fd, ffi.NULL, cd)
        if ret == -_errno.ENOENT:
            return default
        check_ret(ret, f"peek in map {self.name!r}")
        return self._vc.decode(ba)  # type: ignore[union-attr]

    def _keyless(self, op: str, *types: MapType) -> None:
        """Keyless operations pass no key: refuse them before the kernel sees NULL."""
        if self.type not in types:
            raise BPFError(_errno.EINVAL, f"{op} on map {self.name!r}: it is a "
                                          f"{self.type.name.lower()} map; {op} is for "
                                          + ", ".join(t.name.lower() for t in types) + " maps")

    def _bloom_has(self, value: Any) -> bool:
        fd = self._live_fd()
        ret = lib.bpf_map_lookup_elem(fd, ffi.NULL, self._evalue(value))
        if ret == -_errno.ENOENT:
            return False
        check_ret(ret, f"look up in bloom filter {self.name!r}")
        return True

    # --- map-in-map ---------------------------------------------------------
    def get_map(self, key: Any) -> "Map":
        """Map-in-map: the inner map stored at ``key`` (a standalone Map)."""
        return Map.from_id(self[key])

    def freeze(self) -> None:
        """Make the map read-only for user space (BPF_MAP_FREEZE)."""
        check_ret(lib.bpf_map_freeze(self.fd), f"freeze map {self.name!r}")

    # --- pinning ------------------------------------------------------------
    def pin(self, path: PathLike) -> None:
        """Pin the map in bpffs at ``path``."""
        path = as_path(path)
        what = f"pin map {self.name!r} at {path!r}"
        self._check()
        # refused here, before libbpf: it would create the parent directory
        # (wherever that is) and keep the refused path as the map's pin path
        check_pin(path, what, libbpf_makes_parent=self._ptr is not None)
        if self._ptr is not None:
            self.fd
            had = lib.bpf_map__pin_path(self._ptr) != ffi.NULL
            with libbpf_log() as log:
                ret = lib.bpf_map__pin(self._ptr, path.encode())
            if ret < 0 and not had:
                # libbpf keeps the path it failed with: later pins elsewhere would
                # fail with "already has pin path"
                lib.bpf_map__set_pin_path(self._ptr, ffi.NULL)
            check_ret(ret, what, libbpf_log=log.warnings)
        else:
            check_ret(lib.bpf_obj_pin(self.fd, path.encode()), what)

    def unpin(self, path: PathLike) -> None:
        """Remove the map's pin at ``path``."""
        path = as_path(path)
        self._check()
        what = f"unpin map {self.name!r} from {path!r}"
        if self._ptr is not None:
            check_ret(lib.bpf_map__unpin(self._ptr, path.encode()), what)
        else:
            try:
                os.unlink(path)
            except OSError as e:
                raise error_from_errno(e.errno or _errno.ENOENT, what) from None

    # --- lifetime -----------------------------------------------------------
    def close(self) -> None:
        """Close a standalone map's fd. An Object's maps are closed with it."""
        if self._obj is not None or self._closed or self._parent is not None:
            return
        self._closed = True
        self._fdcache = -1  # before the fd goes: the fast paths test only this
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __repr__(self) -> str:
        if self.closed:
            return "<pylibbpf.Map closed>"
        try:
            tname = self.type.name.lower()
        except ELFError:
            tname = str(int(lib.bpf_map__type(self._ptr)) if self._ptr is not None
                        else self._info.type if self._info is not None else "?")
        return (f"<pylibbpf.Map {self.name!r} type={tname} "
                f"key_size={self.key_size} value_size={self.value_size} "
                f"max_entries={self.max_entries}>")

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other
