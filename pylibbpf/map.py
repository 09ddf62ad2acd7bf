"""``Map``: a BPF map as a Python mapping of bytes keys to bytes values.

Maps of an :class:`~pylibbpf.Object` are borrowed (configured before load,
freed with the Object); :meth:`Map.create`, :meth:`Map.open_pinned`,
:meth:`Map.from_fd` and :meth:`Map.from_id` give standalone maps that own their
file descriptor.
"""
from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Iterator, List, MutableMapping, Optional, Tuple,
                    Union)

from ._ffi import cstr, ffi, lib, libbpf_log, opts
from .attach._map_api import MapAttachMixin
from .errors import BPFError, ClosedError, check_ret, error_from_errno
from .types import MapType, _coerce

if TYPE_CHECKING:
    from .object import Object

__all__ = ["Map", "MapInfo", "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK"]

PathLike = Union[str, "os.PathLike[str]"]
Buffer = Union[bytes, bytearray, memoryview]

BPF_ANY = int(lib.BPF_ANY)
BPF_NOEXIST = int(lib.BPF_NOEXIST)
BPF_EXIST = int(lib.BPF_EXIST)
BPF_F_LOCK = int(lib.BPF_F_LOCK)

PERCPU_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY,
                          MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE})

_NCPUS: Optional[int] = None


def possible_cpus() -> int:
    """Number of possible CPUs (the length of per-CPU values)."""
    global _NCPUS
    if _NCPUS is None:
        _NCPUS = check_ret(lib.libbpf_num_possible_cpus(), "count possible CPUs")
    return _NCPUS


@dataclass(frozen=True)
class MapInfo:
    """What the kernel reports about a map (``bpf_map_info``)."""

    type: Union[MapType, int]
    id: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int


def _map_info(fd: int, what: str) -> MapInfo:
    info = ffi.new("struct bpf_map_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
    check_ret(lib.bpf_map_get_info_by_fd(fd, info, size), f"info of {what}")
    try:
        mtype: Union[MapType, int] = MapType(info.type)
    except ValueError:
        mtype = int(info.type)
    return MapInfo(type=mtype, id=int(info.id), name=ffi.string(info.name).decode(),
                   key_size=int(info.key_size), value_size=int(info.value_size),
                   max_entries=int(info.max_entries), flags=int(info.map_flags),
                   btf_id=int(info.btf_id))


class Map(MapAttachMixin, MutableMapping[bytes, bytes]):
    """A BPF map: ``m[key]``, ``m[key] = value``, ``del m[key]``, iteration.

    Keys and values are bytes of exactly ``key_size`` / ``value_size`` bytes
    (per-CPU maps: ``value_size`` rounded up to 8, times the number of possible
    CPUs). A missing key raises :class:`KeyError`.
    """

    def __init__(self, *, _obj: Optional["Object"] = None, _ptr: Any = None,
                 _fd: int = -1, _info: Optional[MapInfo] = None) -> None:
        self._obj = _obj
        self._ptr = _ptr
        self._fd = _fd
        self._info = _info
        self._closed = False
        self._initial: Any = None  # keeps a buffer given to set_initial_value alive

    # --- standalone maps ----------------------------------------------------
    @classmethod
    def create(cls, map_type: Union[MapType, str, int], key_size: int, value_size: int,
               max_entries: int, *, name: str = "", flags: int = 0,
               inner_map: Optional["Map"] = None, map_extra: int = 0,
               numa_node: Optional[int] = None) -> "Map":
        """Create a map in the kernel; the result owns its fd."""
        mtype = _coerce(MapType, map_type, "map type")
        for arg, val in (("key_size", key_size), ("value_size", value_size),
                         ("max_entries", max_entries), ("flags", flags)):
            if not isinstance(val, int) or isinstance(val, bool):
                raise TypeError(f"{arg} must be an int, not {type(val).__name__}")
            if not 0 <= val <= 0xFFFFFFFF:
                raise ValueError(f"{arg} must be between 0 and 2**32-1, not {val}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        o = opts("bpf_map_create_opts", map_flags=flags, map_extra=map_extra)
        if inner_map is not None:
            o.inner_map_fd = inner_map.fd
        if numa_node is not None:
            o.numa_node = numa_node
        keep: List[Any] = []
        what = f"create {mtype.name.lower()} map {name or '(unnamed)'!r}"
        fd = lib.bpf_map_create(mtype, cstr(name[:15], keep) if name else ffi.NULL,
                                key_size, value_size, max_entries, o)
        check_ret(fd, what)
        return cls._own_fd(fd, what)

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
        path = os.fspath(path)
        fd = lib.bpf_obj_get(path.encode())
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

    # --- state --------------------------------------------------------------
    @property
    def closed(self) -> bool:
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

    @property
    def name(self) -> str:
        """The map's name."""
        self._check()
        if self._ptr is not None:
            return ffi.string(lib.bpf_map__name(self._ptr)).decode()
        assert self._info is not None
        return self._info.name

    @property
    def type(self) -> MapType:
        """The map type."""
        self._check()
        if self._ptr is not None:
            return MapType(lib.bpf_map__type(self._ptr))
        assert self._info is not None
        return MapType(self._info.type)

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
        self._set_u32("bpf_map__set_max_entries", value, "max_entries")

    @property
    def flags(self) -> int:
        """BPF_F_* map flags; settable before load."""
        return self._u32("bpf_map__map_flags", "flags")

    @flags.setter
    def flags(self, value: int) -> None:
        self._set_u32("bpf_map__set_map_flags", value, "flags")

    @property
    def initial_value(self) -> bytes:
        """The initial contents of a global-data map (.rodata, .data, .bss).

        Settable before load, with exactly the map's value size in bytes.
        """
        self._check()
        if self._ptr is None:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} has no initial value")
        size = ffi.new("size_t *")
        p = lib.bpf_map__initial_value(self._ptr, size)
        if p == ffi.NULL:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} has no initial value "
                                          "(only global-data maps have one)")
        return bytes(ffi.buffer(p, size[0]))

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
            return self._fd
        fd = int(lib.bpf_map__fd(self._ptr))
        if fd < 0:
            raise BPFError(_errno.EINVAL, f"map {self.name!r} is not created yet "
                                          "(call Object.load())")
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

    # --- element access -----------------------------------------------------
    def _key(self, key: Any) -> bytes:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError(f"key of map {self.name!r} must be bytes-like, "
                            f"not {type(key).__name__}")
        key = bytes(key)
        if len(key) != self.key_size:
            raise ValueError(f"key of map {self.name!r} must be {self.key_size} bytes, "
                             f"got {len(key)}")
        return key

    def _value(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"value of map {self.name!r} must be bytes-like, "
                            f"not {type(value).__name__}")
        value = bytes(value)
        want = self.value_buffer_size
        if len(value) != want:
            raise ValueError(f"value of map {self.name!r} must be {want} bytes, "
                             f"got {len(value)}")
        return value

    def lookup(self, key: Buffer, default: Optional[bytes] = None, *,
               flags: int = 0) -> Optional[bytes]:
        """The value for ``key``, or ``default`` when it is missing."""
        fd = self.fd
        k = self._key(key)
        size = self.value_buffer_size
        buf = ffi.new("char[]", size)
        ret = lib.bpf_map_lookup_elem_flags(fd, k, buf, flags)
        if ret == -_errno.ENOENT:
            return default
        check_ret(ret, f"lookup in map {self.name!r}")
        return bytes(ffi.buffer(buf, size))

    def __getitem__(self, key: Buffer) -> bytes:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def update(self, *args: Any, flags: int = BPF_ANY, **kwargs: Any) -> None:  # type: ignore[override]
        """``update(key, value, flags=BPF_ANY)``, or ``update(mapping)`` as dicts do.

        ``flags``: BPF_ANY, BPF_NOEXIST (fails with BPFExistsError when present),
        BPF_EXIST (fails with BPFNotFoundError when missing), BPF_F_LOCK.
        """
        if len(args) == 2 and not kwargs:
            self._update(args[0], args[1], flags)
            return
        if len(args) > 1:
            raise TypeError("update() takes (key, value) or one mapping")
        items: Any = args[0].items() if args and hasattr(args[0], "items") else (args[0] if args else ())
        for k, v in items:
            self._update(k, v, flags)
        for k, v in kwargs.items():
            raise TypeError(f"map keys are bytes; keyword {k!r} cannot be one")

    def _update(self, key: Buffer, value: Buffer, flags: int) -> None:
        fd = self.fd
        k, v = self._key(key), self._value(value)
        check_ret(lib.bpf_map_update_elem(fd, k, v, flags), f"update map {self.name!r}")

    def __setitem__(self, key: Buffer, value: Buffer) -> None:
        self._update(key, value, BPF_ANY)

    def __delitem__(self, key: Buffer) -> None:
        fd = self.fd
        ret = lib.bpf_map_delete_elem(fd, self._key(key))
        if ret == -_errno.ENOENT:
            raise KeyError(key)
        check_ret(ret, f"delete from map {self.name!r}")

    def lookup_and_delete(self, key: Buffer) -> bytes:
        """Remove ``key`` and return its value (KeyError when missing)."""
        fd = self.fd
        k = self._key(key)
        size = self.value_buffer_size
        buf = ffi.new("char[]", size)
        ret = lib.bpf_map_lookup_and_delete_elem(fd, k, buf)
        if ret == -_errno.ENOENT:
            raise KeyError(key)
        check_ret(ret, f"lookup and delete in map {self.name!r}")
        return bytes(ffi.buffer(buf, size))

    def __iter__(self) -> Iterator[bytes]:
        fd = self.fd
        size = self.key_size
        cur = ffi.new("char[]", size)
        nxt = ffi.new("char[]", size)
        ret = lib.bpf_map_get_next_key(fd, ffi.NULL, nxt)
        while ret == 0:
            key = bytes(ffi.buffer(nxt, size))
            yield key
            cur, nxt = nxt, cur
            ret = lib.bpf_map_get_next_key(fd, cur, nxt)
        if ret != -_errno.ENOENT:
            check_ret(ret, f"iterate map {self.name!r}")

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            return False
        return self.lookup(key) is not None

    def items_list(self) -> List[Tuple[bytes, bytes]]:
        """All (key, value) pairs present now (keys deleted meanwhile are skipped)."""
        out = []
        for k in list(self):
            v = self.lookup(k)
            if v is not None:
                out.append((k, v))
        return out

    def freeze(self) -> None:
        """Make the map read-only for user space (BPF_MAP_FREEZE)."""
        check_ret(lib.bpf_map_freeze(self.fd), f"freeze map {self.name!r}")

    # --- pinning ------------------------------------------------------------
    def pin(self, path: PathLike) -> None:
        """Pin the map in bpffs at ``path``."""
        path = os.fspath(path)
        what = f"pin map {self.name!r} at {path!r}"
        if self._ptr is not None:
            self.fd
            with libbpf_log() as log:
                check_ret(lib.bpf_map__pin(self._ptr, path.encode()), what,
                          libbpf_log=log.warnings)
        else:
            check_ret(lib.bpf_obj_pin(self.fd, path.encode()), what)

    def unpin(self, path: PathLike) -> None:
        """Remove the map's pin at ``path``."""
        path = os.fspath(path)
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
        if self._obj is not None or self._closed:
            return
        self._closed = True
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> "Map":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self.closed:
            return "<pylibbpf.Map closed>"
        return (f"<pylibbpf.Map {self.name!r} type={self.type.name.lower()} "
                f"key_size={self.key_size} value_size={self.value_size} "
                f"max_entries={self.max_entries}>")

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other
