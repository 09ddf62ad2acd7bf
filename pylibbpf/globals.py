"""Global variables of a BPF object, typed from BTF.

``obj.rodata.min_duration_ns = 1000`` before load sets a ``const volatile``
global; ``obj.bss.counter`` / ``obj.data.x`` read (and write) the live values
after load through the memory libbpf maps for the section; ``obj.section(".data.foo")``
reaches custom data sections. Values are decoded/encoded with the variable's
BTF type (ints, enums, structs as records, arrays, ``char[]``).
"""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Tuple

from ._ffi import ffi, lib
from .btf import DataSecVar, btf_of_object
from .errors import BPFError, BPFNotFoundError, ClosedError, ELFError

if TYPE_CHECKING:
    from .map import Map
    from .object import Object

__all__ = ["GlobalSection", "ArenaSection", "section_of", "sections_of", "find_variable"]

#: the ELF section of ``__arena`` globals (they live in the object's arena map)
ARENA_SECTION = ".addr_space.1"



def _read_only_after_load(name: str) -> bool:
    return name.startswith(".rodata") or name == ".kconfig"


class GlobalSection:
    """The variables of one data section, as attributes (and items).

    Writable before load (every section: the initial value), and after load
    for ``.data``/``.bss``/``.data.*`` (the live memory shared with the
    programs). ``.rodata`` is frozen by load: writing it then raises. After a
    failed load nothing is writable (libbpf may have frozen the memory already).
    """

    __slots__ = ("_obj", "_map", "_name", "_vars", "_size")

    def __init__(self, obj: "Object", map: "Map", name: str) -> None:
        btf = btf_of_object(obj)
        if btf is None:
            raise BPFNotFoundError(_errno.ENOENT, f"object {obj.name!r} has no BTF: "
                                                  f"its section {name!r} has no types")
        try:
            size, vars_ = btf.datasec(name)
        except ELFError as e:  # corrupt BTF: say which section was being read
            if f"section {name!r}" in (e.strerror or ""):
                raise
            raise ELFError(e.errno or _errno.EINVAL,
                           f"read data section {name!r} of object {obj.name!r}: "
                           f"{e.strerror}") from None
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_map", map)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_vars", vars_)
        object.__setattr__(self, "_size", size)

    # --- memory ---------------------------------------------------------------
    def _mem(self) -> Tuple[Any, int]:
        if self._obj._ptr is None:
            raise ClosedError(f"section {self._name!r} (its Object was closed)")
        return self._map._initial_memory()

    def _var(self, name: str) -> DataSecVar:
        try:
            return self._vars[name]
        except KeyError:
            known = ", ".join(sorted(self._vars)) or "none"
            raise AttributeError(f"section {self._name!r} of {self._obj.name!r} has no "
                                 f"variable {name!r} (it has: {known})") from None

    def _read(self, var: DataSecVar) -> bytes:
        p, size = self._mem()
        if p != ffi.NULL and var.offset + var.size <= size:
            return ffi.buffer(p + var.offset, var.size)[:]
        # no mmap'ed memory: read the map's single value
        raw = self._map.raw[bytes(4)]
        data = bytes(raw[var.offset:var.offset + var.size])
        if len(data) != var.size:
            # the BTF places it past the section's memory (corrupt BTF)
            raise ELFError(_errno.EINVAL, f"{self._name}.{var.name} of {self._obj.name!r}: "
                                          f"its {var.size} bytes at offset {var.offset} lie "
                                          f"outside the section's {len(raw)} bytes "
                                          "(corrupt BTF)")
        return data

    def _write(self, var: DataSecVar, data: bytes) -> None:
        if self._obj._load_attempted and not self._obj.loaded:
            # libbpf may have mapped the section read-only before the failure (it
            # freezes .rodata once the map is created): writing there would crash
            raise BPFError(_errno.EBUSY, f"cannot set {self._name}.{var.name} of "
                                         f"{self._obj.name!r}: its load() failed, so the "
                                         "section is no longer writable (open the object "
                                         "again)")
        if (self._obj.loaded or self._obj._prepared) and _read_only_after_load(self._name):
            raise BPFError(_errno.EPERM, f"cannot set {self._name}.{var.name} of "
                                         f"{self._obj.name!r}: the section is read-only "
                                         "after load (set it before load())")
        p, size = self._mem()
        if p != ffi.NULL and var.offset + var.size <= size:
            ffi.memmove(p + var.offset, data, len(data))
            return
        if not self._obj.loaded:
            raise BPFError(_errno.EINVAL, f"section {self._name!r} has no initial value")
        m = self._map.raw
        whole = bytearray(m[bytes(4)])
        whole[var.offset:var.offset + var.size] = data
        m[bytes(4)] = bytes(whole)

    # --- access -----------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        var = self._var(name)
        return var.codec.decode(self._read(var))

    def __setattr__(self, name: str, value: Any) -> None:
        var = self._var(name)
        try:
            data = var.codec.encode(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise type(e)(f"{self._name}.{name}: {e}") from None
        self._write(var, data)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.__getattr__(name)
        except AttributeError as e:
            raise KeyError(str(e)) from None

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self._vars:
            raise KeyError(f"section {self._name!r} has no variable {name!r}")
        self.__setattr__(name, value)

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __dir__(self) -> List[str]:
        return list(self._vars)

    @property
    def name(self) -> str:
        return self._name

    @property
    def map(self) -> "Map":
        """The section's internal map."""
        return self._map

    def variables(self) -> Dict[str, DataSecVar]:
        """Name -> variable (offset, size, codec)."""
        return dict(self._vars)

    def to_dict(self) -> Dict[str, Any]:
        return {n: getattr(self, n) for n in self._vars}

    def __repr__(self) -> str:
        return f"<pylibbpf globals {self._name} of {self._obj.name!r}: {', '.join(self._vars)}>"


class ArenaSection(GlobalSection):
    """The ``__arena`` globals (section ``.addr_space.1``): before load, libbpf's
    initial copy; after load, the arena's own memory (see :mod:`pylibbpf.arena`)."""

    __slots__ = ()

    def _mem(self) -> Tuple[Any, int]:
        if self._obj._ptr is None:
            raise ClosedError(f"section {self._name!r} (its Object was closed)")
        if self._obj.loaded:
            return self._map.arena._globals_memory()
        return self._map._initial_memory()


def _arena_map(obj: "Object") -> "Map":
    from .types import MapType

    for m in obj.maps.values():
        if m._ptr is not None and m.type == MapType.ARENA:
            return m
    raise BPFNotFoundError(_errno.ENOENT, f"object {obj.name!r} has no arena map (__arena "
                                          "globals need one declared in SEC(\".maps\"))")


def section_of(obj: "Object", name: str) -> GlobalSection:
    """The :class:`GlobalSection` ``name`` (``.rodata``, ``.data``, ``.bss``,
    ``.data.foo``, ``.addr_space.1`` for ``__arena`` globals …) of ``obj``."""
    obj._check()
    # cached on the Object (sections refer back to it: see btf.btf_of_object)
    cache: Dict[str, GlobalSection] = obj.__dict__.setdefault("_sections_cache", {})
    sec = cache.get(name)
    if sec is None:
        if name == ARENA_SECTION:
            sec = ArenaSection(obj, _arena_map(obj), name)
            cache[name] = sec
            return sec
        try:
            m = obj.maps[name]
        except KeyError:
            raise BPFNotFoundError(_errno.ENOENT, f"object {obj.name!r} has no data section "
                                                  f"{name!r}") from None
        sec = GlobalSection(obj, m, name)
        cache[name] = sec
    return sec


def sections_of(obj: "Object") -> Dict[str, GlobalSection]:
    """Every data section of ``obj`` with typed variables (``.rodata``, ``.data``,
    ``.bss``, ``.data.foo`` …; not ``.kconfig``), by section name."""
    obj._check()
    out: Dict[str, GlobalSection] = {}
    for m in obj.maps.values():
        if m._ptr is None or not lib.bpf_map__is_internal(m._ptr):
            continue
        # libbpf names them "<object prefix>.rodata"; object names may hold dots too
        for i in [i for i, ch in enumerate(m.name) if ch == "."]:
            short = m.name[i:]
            if short == ".kconfig":
                break
            try:
                sec = section_of(obj, short)
            except BPFError:
                continue
            if sec.map is m:
                out[short] = sec
                break
    try:
        out[ARENA_SECTION] = section_of(obj, ARENA_SECTION)
    except BPFError:
        pass  # no arena, or no __arena globals
    return out


def find_variable(obj: "Object", name: str) -> Tuple[GlobalSection, DataSecVar]:
    """The section holding global variable ``name`` of ``obj`` and the variable
    (its offset, size and codec); ``sec[name] = value`` sets it.
    :class:`~pylibbpf.BPFNotFoundError` names the variables there are."""
    sections = sections_of(obj)
    for sec in sections.values():
        found = sec.variables().get(name)
        if found is not None:
            return sec, found
    known = ", ".join(sorted(v for sec in sections.values() for v in sec)) or "none"
    raise BPFNotFoundError(_errno.ENOENT, f"object {obj.name!r} has no global variable "
                                          f"{name!r} (it has: {known})")
