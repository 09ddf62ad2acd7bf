"""BPF arenas (``BPF_MAP_TYPE_ARENA``, Linux 6.9+): memory shared by programs and
user space, reachable from Python without copies.

``obj.maps["arena"].arena`` (or ``obj.arena``) is an :class:`Arena`: its
:attr:`~Arena.memory` is a writable ``memoryview`` over the very pages the
programs use (libbpf's ``mmap`` of the arena map), and :meth:`Arena.numpy` wraps
a region of it as a NumPy array. What a program writes shows up in a view made
earlier, and what Python writes the program reads: nothing is copied.

Where things are:

* The arena spans ``max_entries`` pages starting at :attr:`Arena.address`, the
  same address in this process as in the programs' arena pointers (the map's
  ``map_extra`` when it is set, else wherever the kernel placed it). A pointer a
  program stores in the arena (or in a global) is such an address:
  :meth:`Arena.offset_of` turns it into an offset into :attr:`~Arena.memory`.
* ``__arena`` globals (ELF section ``.addr_space.1``) live in the arena: libbpf
  1.7 puts them on its last pages (at the start on kernels whose verifier
  limits map-value offsets). :attr:`Arena.globals` reads and writes them by
  name, and :meth:`Arena.global_offset` says where one lies in the memory.

Pages a program has not allocated: the first touch from Python (read or write)
makes the kernel allocate a zeroed page there, as for a program's
``bpf_arena_alloc_pages()`` (the page then counts as allocated). An arena
created with ``BPF_F_SEGV_ON_FAULT`` would kill the process with SIGSEGV
instead: pylibbpf refuses to hand out its memory.

libbpf maps only arenas it creates: the arena of a reused (pinned) map gives no
view (:class:`~pylibbpf.BPFError`), as libbpf's pointer for it is not the arena.

Lifetime: an Arena and every view or array made from it keep the arena's memory
mapped. ``Object.close()`` detaches the object's links and closes it for Python
at once; while such views are alive, libbpf's own release of the object (which
unmaps the arena) waits until the last of them is gone, so they never point at
unmapped memory. Calls on the :class:`Arena` itself raise
:class:`~pylibbpf.ClosedError` after the close.
"""
from __future__ import annotations

import errno as _errno
import mmap
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple

from ._ffi import ffi, lib
from .errors import BPFError, ClosedError

if TYPE_CHECKING:
    from .globals import GlobalSection
    from .map import Map
    from .object import Object

__all__ = ["Arena", "ARENA_SECTION", "BPF_F_SEGV_ON_FAULT"]

#: the ELF section of ``__arena`` globals
ARENA_SECTION = ".addr_space.1"
#: map flag: a fault on a page nobody allocated raises SIGSEGV instead of allocating
BPF_F_SEGV_ON_FAULT = 1 << 17
BPF_F_MMAPABLE = 1 << 10

PAGE_SIZE = mmap.PAGESIZE


class _Release:
    """Shared by an Object and the memory of its arena: the object's libbpf
    handle is closed by whichever lets go last (Object.close(), or the last
    view of the arena's memory being garbage-collected)."""

    __slots__ = ("views", "ptr", "keep")

    def __init__(self) -> None:
        self.views = 0
        self.ptr: Any = None       # the bpf_object, once Object.close() handed it over
        self.keep: List[Any] = []  # memory libbpf may read until then

    def acquire(self) -> None:
        self.views += 1

    def release(self, _cdata: Any = None) -> None:
        self.views -= 1
        if self.views == 0 and self.ptr is not None:
            ptr, self.ptr = self.ptr, None
            lib.bpf_object__close(ptr)
            self.keep = []

    def close_object(self, ptr: Any, keep: List[Any]) -> None:
        """Object.close(): close ``ptr`` now, or when the last arena view goes."""
        if self.views:
            self.ptr, self.keep = ptr, list(keep)
        else:
            lib.bpf_object__close(ptr)


def _ldimm64_full_range() -> bool:
    """Whether the verifier takes any map-value offset in an ld_imm64 (libbpf
    then puts ``__arena`` globals at the end of the arena). Probed the way libbpf
    does: a program with a 1 GiB offset into a one-byte array must fail with
    "invalid access to map value pointer", not "direct value offset of"."""
    global _FULL_RANGE
    if _FULL_RANGE is None:
        _FULL_RANGE = _probe_full_range()
    return _FULL_RANGE


_FULL_RANGE: Optional[bool] = None


def _probe_full_range() -> bool:
    import os

    from ._ffi import opts

    map_fd = lib.bpf_map_create(lib.BPF_MAP_TYPE_ARRAY, b"plb_arr", 4, 1, 1, ffi.NULL)
    if map_fd < 0:
        return False
    try:
        # r1 = map_value(map_fd) + (1 << 30); exit
        insns = struct.pack("<BBhi", 0x18, 0x21, 0, map_fd) + \
            struct.pack("<BBhi", 0, 0, 0, 1 << 30) + struct.pack("<BBhi", 0x95, 0, 0, 0)
        log = ffi.new("char[]", 4096)
        o = opts("bpf_prog_load_opts", log_buf=log, log_size=4096, log_level=0)
        buf = ffi.new("char[]", insns)
        fd = lib.bpf_prog_load(lib.BPF_PROG_TYPE_SOCKET_FILTER, b"plb_probe", b"GPL",
                               ffi.cast("struct bpf_insn *", buf), len(insns) // 8, o)
        if fd >= 0:
            os.close(fd)
            return True
        return b"direct value offset of" not in ffi.string(log)
    finally:
        os.close(map_fd)


def _globals_offset(obj: "Object", map: "Map", gsize: int, size: int) -> int:
    """Where libbpf put the ``__arena`` globals: at the start of the arena, or on
    its last pages (libbpf 1.7, where the kernel takes any map-value offset).

    The loaded programs say it: libbpf adds the offset to every ``ld_imm64`` of a
    global (``BPF_PSEUDO_MAP_VALUE`` with the arena's fd); where their offsets
    cannot tell, the kernel is probed as libbpf probes it."""
    end = size - -(-gsize // PAGE_SIZE) * PAGE_SIZE
    if not gsize or end <= 0:
        return 0
    fd = int(lib.bpf_map__fd(map._ptr))
    seen = []
    for prog in obj._programs.values():
        if prog._ptr is None or lib.bpf_program__fd(prog._ptr) < 0:
            continue
        cnt = int(lib.bpf_program__insn_cnt(prog._ptr))
        raw = bytes(ffi.buffer(lib.bpf_program__insns(prog._ptr), cnt * 8))
        for i in range(cnt - 1):
            code, regs, _, imm = _INSN.unpack_from(raw, i * 8)
            if code == 0x18 and regs >> 4 == 2 and imm == fd:   # ld_imm64 map value
                seen.append(_INSN.unpack_from(raw, i * 8 + 8)[3] & 0xFFFFFFFF)
    if any(v >= gsize for v in seen):
        return end      # past the globals' own size: they were moved to the end
    if any(v < end for v in seen):
        return 0
    return end if _ldimm64_full_range() else 0


_INSN = struct.Struct("<BBhi")


def mapped_ranges() -> List[Tuple[int, int, str]]:
    """(start, end, what) of every mapping of this process (/proc/self/maps)."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                lo, _, hi = parts[0].partition("-")
                out.append((int(lo, 16), int(hi, 16), parts[5].strip() if len(parts) > 5 else ""))
    except OSError:
        pass
    return out


class Arena:
    """The memory of a loaded ``BPF_MAP_TYPE_ARENA`` map (see the module's notes)."""

    def __init__(self, map: "Map") -> None:
        obj = map._obj
        assert obj is not None and map._ptr is not None
        what = f"arena memory of map {map.name!r}"
        if not obj.loaded:
            raise BPFError(_errno.EINVAL, f"{what}: the arena exists once the Object is "
                                          "loaded (call load() first)")
        flags = int(lib.bpf_map__map_flags(map._ptr))
        if flags & BPF_F_SEGV_ON_FAULT:
            raise BPFError(_errno.EPERM, f"{what}: the arena was created with "
                                         "BPF_F_SEGV_ON_FAULT, so touching a page no program "
                                         "has allocated would kill this process (SIGSEGV); "
                                         "pylibbpf gives no view of it")
        size = ffi.new("size_t *")
        base = lib.bpf_map__initial_value(map._ptr, size)
        if base == ffi.NULL or int(lib.bpf_map__fd(map._ptr)) < 0:
            raise BPFError(_errno.ENODEV, f"{what}: the map was not created (autocreate "
                                          "off?) or is not memory-mapped")
        start = int(ffi.cast("uintptr_t", base))
        pages = int(lib.bpf_map__max_entries(map._ptr))
        if not any(lo == start and hi == start + pages * PAGE_SIZE and "bpf-map" in what
                   for lo, hi, what in mapped_ranges()):
            # libbpf maps only arenas it creates: for a reused (pinned) map its
            # pointer is its own copy of the globals, far smaller than the arena
            raise BPFError(_errno.ENODEV, f"{what}: the arena is not mapped in this "
                                          "process (libbpf maps only arenas it creates, "
                                          "not reused or pinned ones)")
        self._map = map
        self._name = map.name
        self._obj: "Object" = obj
        self._pages = int(lib.bpf_map__max_entries(map._ptr))
        self._size = self._pages * PAGE_SIZE
        self._address = int(ffi.cast("uintptr_t", base))
        self._globals_size = int(size[0])
        self._globals_offset = _globals_offset(obj, map, self._globals_size, self._size)
        release = obj._arena_release
        # the buffer keeps this cdata alive; when the last view of it is gone,
        # release() lets the Object's close finish (see _Release)
        self._mem = ffi.gc(ffi.cast("char *", base), release.release)
        release.acquire()
        self._buf = ffi.buffer(self._mem, self._size)
        self._section: Optional["GlobalSection"] = None

    def _check(self) -> None:
        if self._obj._ptr is None:
            raise ClosedError(f"arena {self._map_name()!r} (its Object was closed; views "
                              "made before stay valid)")

    def _map_name(self) -> str:
        return self._name

    @property
    def memory(self) -> memoryview:
        """A writable ``memoryview`` (format ``B``) over the whole arena: no copy."""
        self._check()
        return memoryview(self._buf)

    def numpy(self, dtype: Any = "uint8", *, offset: int = 0, count: int = -1) -> Any:
        """A NumPy array over the arena's memory from byte ``offset`` (``count``
        items of ``dtype``; -1: as many as fit): writable, no copy."""
        import numpy as np

        self._check()
        self._range(offset, 0)
        return np.frombuffer(self._buf, dtype=dtype, count=count, offset=offset)

    def _range(self, offset: int, size: int) -> None:
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if not 0 <= offset <= self._size - size:
            raise ValueError(f"offset {offset} (+{size} bytes) is outside arena "
                             f"{self._map_name()!r} ({self._size} bytes)")

    @property
    def address(self) -> int:
        """Where the arena starts, in this process and in the programs' arena pointers."""
        self._check()
        return self._address

    @property
    def size(self) -> int:
        """Bytes: ``pages * page_size``."""
        return self._size

    @property
    def pages(self) -> int:
        """The map's ``max_entries``: how many pages the arena spans."""
        return self._pages

    @property
    def page_size(self) -> int:
        return PAGE_SIZE

    @property
    def map(self) -> "Map":
        return self._map

    def offset_of(self, address: int) -> int:
        """The offset into :attr:`memory` of ``address``, a pointer into the arena
        as a program stores it. Raises ValueError for an address outside it."""
        self._check()
        if isinstance(address, bool) or not isinstance(address, int):
            raise TypeError(f"address must be an int, not {type(address).__name__}")
        off = address - self._address
        if not 0 <= off < self._size:
            raise ValueError(f"address {address:#x} is not in arena {self._map_name()!r} "
                             f"({self._address:#x}-{self._address + self._size:#x})")
        return off

    @property
    def globals(self) -> "GlobalSection":
        """The ``__arena`` globals, by name (``arena.globals.counter``), read and
        written in the arena itself."""
        self._check()
        from .globals import section_of

        return section_of(self._obj, ARENA_SECTION)

    @property
    def globals_offset(self) -> int:
        """Where the ``__arena`` globals start in :attr:`memory`."""
        return self._globals_offset

    def global_offset(self, name: str) -> int:
        """The offset into :attr:`memory` of ``__arena`` global ``name``."""
        sec = self.globals
        var = sec.variables().get(name)
        if var is None:
            raise KeyError(f"arena {self._map_name()!r} has no __arena global {name!r} "
                           f"(it has: {', '.join(sorted(sec.variables())) or 'none'})")
        return self._globals_offset + var.offset

    def _globals_memory(self) -> Tuple[Any, int]:
        return self._mem + self._globals_offset, self._globals_size

    def __repr__(self) -> str:
        state = "closed" if self._obj._ptr is None else f"at {self._address:#x}"
        return f"<pylibbpf.Arena {self._map_name()!r} {self._pages} pages {state}>"
