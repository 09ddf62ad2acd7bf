"""Zero-copy batch drains: ``with rb.batch() as arr:`` for RingBuffer and PerfBuffer.

Ring buffers: the reader maps the ring itself (its consumer page read-write,
producer page and data read-only; the kernel maps the data twice in a row, so
a record crossing the end is contiguous), walks the committed records in C
without consuming them and hands NumPy a strided structured view of the
records where they lie: no copy. When records are irregular (discarded ones
in between, or sizes that differ from the record type) they are copied once
into a reused array instead. The consumer position moves when the scope ends.

Perf buffers: the reader maps each CPU's ring itself too (a second mapping of
the same perf ring). A run of samples of one size that don't cross the end of
their ring is handed over as a strided view in place; samples that wrap,
differ in size or are shorter than the record type are copied once into a
reused array. One batch is one such run or one copied stretch, so a drain
loops until a batch comes back empty. Each ring's tail moves when the scope
ends.

A view kept past its scope would show whatever the kernel writes there next.
So a view still referenced when the scope ends is cut off from the ring: the
ring's mapping moves to a new address (``mremap``: page tables move, nothing
is mapped again) and the old range becomes zero pages: the view reads zeros
and never crashes. The memory stays mapped until the last view of it is gone.
Moving costs a few system calls, which a drain loop ``with rb.batch() as
arr:`` would pay on every batch (``arr`` is still bound when the block ends).
So when the only reference left is one name (the ``as`` target, as a rule),
the decision waits for the end of the next batch's scope (or the reader's
close): by then the loop has bound ``arr`` to the next batch and nothing
moves; if the old view is still alive then, it is cut off then.
"""
from __future__ import annotations

import errno as _errno
import mmap
import os
import sys
import weakref
from typing import Any, Callable, List, Optional, Tuple

from ._ffi import ffi, lib
from .errors import error_from_errno

#: the ring's mapping is aligned to this, so mremap moves whole page-table pages
_ALIGN = 2 << 20


def _address(buf: Any) -> int:
    c = ffi.from_buffer(buf)
    try:
        return int(ffi.cast("uintptr_t", c))
    finally:
        del c  # no export may outlive this call: export counts track views


class _Mapping:
    """Our own mapping of a ring (a ring buffer's, or one CPU's perf ring), at an
    aligned address inside anonymous memory we own, so it can move away from
    views kept past their scope."""

    name: str
    len: int
    page: int

    def _map(self, addr: int) -> int:
        raise NotImplementedError

    def _aim(self) -> None:
        """Recompute the pointers into the mapping after it moved."""

    def _setup(self, what: str) -> None:
        self.region, self.off = self._reserve(what)
        ret = self._map(self._addr())
        if ret < 0:
            self.close()
            raise error_from_errno(-ret, what)
        self._aim()
        self.baseline = sys.getrefcount(self.region)

    def _reserve(self, what: str) -> Tuple[Any, int]:
        """Anonymous read-only memory with room for the ring at an aligned offset."""
        try:
            region = mmap.mmap(-1, self.len + _ALIGN, flags=mmap.MAP_PRIVATE,
                               prot=mmap.PROT_READ)
        except OSError as e:
            raise error_from_errno(e.errno or _errno.ENOMEM, what) from None
        return region, (-_address(region)) % _ALIGN

    def _addr(self) -> int:
        return _address(self.region) + self.off

    def views(self) -> int:
        """How many arrays still reference the current mapping."""
        if self.region is None:
            return 0
        return sys.getrefcount(self.region) - self.baseline

    def retire(self) -> None:
        """Move the ring away from the views still referenced; they read zeros."""
        what = f"batch() of {self.name}: move the ring away from a kept view"
        new, off = self._reserve(what)
        old = self._addr()
        to = _address(new) + off
        ret = lib.pylibbpf_ring_move(ffi.cast("void *", old), ffi.cast("void *", to), self.len)
        if ret < 0:
            # the views keep seeing the ring: make them read zeros, and map it afresh
            lib.pylibbpf_blank(ffi.cast("void *", old), self.len)
            ret = self._map(to)
            if ret < 0:
                self.region = None
                raise error_from_errno(-ret, what)
        self.region, self.off = new, off
        del new  # the baseline counts the attribute's reference only
        self._aim()
        self.baseline = sys.getrefcount(self.region)

    def _unmap(self) -> None:
        region, self.region = self.region, None
        if region is not None and sys.getrefcount(region) > 2:  # ours (local) + argument
            lib.pylibbpf_blank(ffi.cast("void *", _address(region) + self.off), self.len)
        del region

    def close(self) -> None:
        """Unmap (views still referenced keep zero pages until they go)."""
        self._unmap()


class RingMapping(_Mapping):
    """Our own mapping of one ring-buffer map, for zero-copy batches."""

    def __init__(self, map: Any) -> None:
        self.name = f"ring buffer {map.name!r}"
        self.size = size = int(map.max_entries)
        self.page = page = mmap.PAGESIZE
        self.len = page + 2 * size
        self.mask = size - 1
        self.scan_out = ffi.new("struct pylibbpf_scan *")
        self.region = None
        self._fd = -1
        what = f"map ring buffer {map.name!r} for batch()"
        try:
            self._fd = os.dup(map.fd)  # ours: the Object may close the map's fd first
            self.cons = mmap.mmap(self._fd, page)  # the consumer page, shared, read-write
        except OSError as e:
            if self._fd >= 0:
                os.close(self._fd)
            raise error_from_errno(e.errno or _errno.EINVAL, what) from None
        self._cons_buf = ffi.from_buffer(self.cons)
        self.cons_ptr = ffi.cast("uint64_t *", self._cons_buf)
        self._setup(what)

    def _map(self, addr: int) -> int:
        return int(lib.pylibbpf_ring_map_at(self._fd, ffi.cast("void *", addr), self.len,
                                            self.page))

    def _aim(self) -> None:
        a = self._addr()
        self.prod_ptr = ffi.cast("uint64_t *", a)
        self.data_ptr = ffi.cast("char *", a + self.page)

    def scan(self, rec_size: int, max_records: int) -> Any:
        s = self.scan_out
        lib.pylibbpf_ring_scan(self.cons_ptr, self.prod_ptr, self.data_ptr, self.size,
                               rec_size, max_records, s)
        return s

    def view(self, np: Any, dtype: Any, rec_size: int, begin: int, count: int) -> Any:
        stride = (rec_size + 8 + 7) & ~7
        offset = self.off + self.page + (begin & self.mask) + 8
        return np.ndarray((count,), dtype, buffer=self.region, offset=offset,
                          strides=(stride,))

    def copy(self, begin: int, end: int, rec_size: int, out: Any) -> int:
        return int(lib.pylibbpf_ring_copy(self.data_ptr, self.size, begin, end, rec_size,
                                          ffi.from_buffer(out)))

    def release(self, pos: int) -> None:
        lib.pylibbpf_ring_release(self.cons_ptr, pos)

    def close(self) -> None:
        """Unmap (views still referenced keep zero pages until they go)."""
        self._unmap()
        self._cons_buf = None
        self.cons_ptr = ffi.NULL
        try:
            self.cons.close()
        except BufferError:  # pragma: no cover - never exported
            pass
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class PerfMapping(_Mapping):
    """Our own mapping of one CPU's perf ring (header page and data), for views."""

    def __init__(self, name: str, fd: int, size: int) -> None:
        self.name = name
        self.size = size
        self.page = mmap.PAGESIZE
        self.len = self.page + size
        self.mask = size - 1
        self.region = None
        what = f"map {name} for batch()"
        try:
            self._fd = os.dup(fd)  # libbpf's fd goes when the perf buffer is freed
        except OSError as e:
            raise error_from_errno(e.errno or _errno.EBADF, what) from None
        try:
            self._setup(what)
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def _map(self, addr: int) -> int:
        # read-write like libbpf's own mapping of the same perf ring
        return int(lib.pylibbpf_map_at(self._fd, ffi.cast("void *", addr), self.len, 0, 1))

    def view(self, np: Any, dtype: Any, start: int, span: int, count: int) -> Any:
        # a sample: 8-byte perf_event_header, 4-byte size, then the data
        offset = self.off + self.page + (start & self.mask) + 12
        return np.ndarray((count,), dtype, buffer=self.region, offset=offset, strides=(span,))

    def close(self) -> None:
        self._unmap()
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class PerfRings:
    """The per-CPU perf rings of one PerfBuffer, mapped together on first use.

    Mapping a perf ring costs milliseconds for a big one (the kernel fills in
    every page table entry at mmap time: 1-3 ms for 16 MiB, more than reading
    the records), so all rings are mapped at once when the first batch starts,
    as libbpf maps its own when the buffer is made: a later batch never pays
    for a CPU whose ring it had not seen yet."""

    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self.maps: List[Optional[PerfMapping]] = [None] * count

    def map_all(self, ptr: Any, size: int) -> None:
        """Map every CPU's ring (``size`` bytes of data each) now. Best effort: a
        ring that can't be mapped now is tried again (and its error raised) by
        :meth:`get` when a batch needs it."""
        for idx in range(len(self.maps)):
            if self.maps[idx] is None:
                try:
                    self.get(ptr, idx, size)
                except Exception:
                    pass

    def get(self, ptr: Any, idx: int, size: int) -> PerfMapping:
        """CPU buffer ``idx`` (``size`` bytes of data) of the perf buffer ``ptr``."""
        m = self.maps[idx]
        if m is None:
            fd = int(lib.perf_buffer__buffer_fd(ptr, idx))
            if fd < 0:
                raise error_from_errno(-fd, f"map CPU buffer {idx} of {self.name} for batch()")
            m = self.maps[idx] = PerfMapping(f"CPU buffer {idx} of {self.name}", fd, size)
        return m

    def close(self) -> None:
        maps, self.maps = self.maps, []
        for m in maps:
            if m is not None:
                m.close()


class Guard:
    """Cuts views kept past their scope off their ring (see the module docstring):
    at once when more than one reference holds them, else at the end of the
    next scope if the view is still alive then."""

    def __init__(self) -> None:
        self.pending: Optional[Tuple[Any, _Mapping]] = None

    def scope_ended(self, mapping: Optional[_Mapping], ref: Any) -> None:
        """After a scope's records were released; ``ref`` a weak reference to its
        view of ``mapping`` (both None for a copied batch)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            old = pending[0]()
            if old is not None and pending[1].region is not None:
                del old
                pending[1].retire()
            else:
                del old
        if mapping is None or mapping.region is None:
            return
        n = mapping.views()
        if n <= 0:
            return
        arr = ref()
        # references to the view: the caller's name, ours (local + argument)
        if n == 1 and arr is not None and sys.getrefcount(arr) <= 3:
            self.pending = (ref, mapping)
            return
        del arr
        mapping.retire()

    def close(self) -> None:
        self.pending = None


class Pool:
    """Reused arrays for copied batches.

    The array of the last batch is usually still bound to the caller's ``with
    ... as arr`` variable when the next batch starts, so two arrays take turns;
    an array a caller kept (still referenced after that) is left to the caller
    and replaced. Reuse matters: fresh memory costs a page fault per page."""

    def __init__(self) -> None:
        self.arrays: List[Any] = []

    def get(self, np: Any, dtype: Any, count: int) -> Any:
        """An array of at least ``count`` records that nobody else holds."""
        arrays = self.arrays
        for i in range(len(arrays)):
            if len(arrays[i]) >= count and sys.getrefcount(arrays[i]) <= 2:  # list, argument
                return arrays[i]
        if count == 0:
            return np.empty(0, dtype)
        new = np.empty(max(count, 1024), dtype)
        self.arrays = (arrays + [new])[-3:]  # the oldest ones go (a caller may keep them)
        return new


class Batch:
    """The scope of one batch: ``with reader.batch() as arr:``.

    ``arr`` is a NumPy structured array of the records (read-only for a
    zero-copy view); ``cpus`` (perf buffers made with
    ``with_cpu=True``) the CPU of each record. The records are released to the
    kernel when the ``with`` block ends, also when it ends by an exception:
    they count as delivered once the block started. Don't keep ``arr`` past
    the block: a kept zero-copy view reads zeros afterwards — at once when
    more than one reference holds it, else from the end of the next batch's
    block (copy with ``arr.copy()`` to keep records, or use ``read_batch()``).
    """

    def __init__(self, opener: Callable[[], Tuple[Any, Any, Callable[[], None]]]) -> None:
        self._opener: Optional[Callable[[], Tuple[Any, Any, Callable[[], None]]]] = opener
        self._close: Optional[Callable[[], None]] = None
        self.array: Any = None
        self.cpus: Any = None

    def __enter__(self) -> Any:
        opener, self._opener = self._opener, None
        if opener is None:
            from .errors import BPFError
            raise BPFError(_errno.EINVAL, "a batch scope can be entered once; call "
                                          "batch() again for the next records")
        self.array, self.cpus, self._close = opener()
        return self.array

    def __exit__(self, *exc: Any) -> None:
        close, self._close = self._close, None
        self.array = self.cpus = None  # before close(): it checks who still holds views
        if close is not None:
            close()
