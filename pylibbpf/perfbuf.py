"""``PerfBuffer``: events from a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` map, one buffer per CPU.

Same model as :class:`~pylibbpf.RingBuffer`: a C collector batches records,
Python decodes them (``record_type``) and calls ``callback(record)`` — or
``callback(cpu, record)`` with ``with_cpu=True`` — or hands over whole batches
(``batch=True``). Lost samples are counted (:attr:`PerfBuffer.lost`) and
reported to ``lost_callback(cpu, count)``.
"""
from __future__ import annotations

import errno as _errno
import os
from _weakref import ref as _weak_ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple
    from .ringbuf import RecordType

from ._ffi import ffi, lib
from .errors import BPFError, check_ptr, check_ret, error_from_errno
from .map import Map, possible_cpus
from .ringbuf import _Reader, _Source, _batchmod, _numpy, record_codec
from .types import MapType

__all__ = ["PerfBuffer"]

#: batch(): a run of at least this many samples in place is handed over as a
#: view; shorter ones are copied with what surrounds them
_MIN_VIEW = 16
#: batch(): room for this many records at first when copying
_COPY_FIRST = 1024


def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


class _BatchState:
    """What batch() of a PerfBuffer reuses from one batch to the next (one
    batch at a time: a scope is open until its records are released)."""

    def __init__(self, pb: "PerfBuffer", src: _Source, nbuf: int) -> None:
        self.src = src
        self.bm = _batchmod()
        self.np = _numpy()
        self.nbuf = nbuf
        self.cpu_of = pb._buffer_cpus(nbuf)
        self.cpus = ffi.new("uint32_t[]", self.cpu_of)
        self.start = ffi.new("uint64_t[]", nbuf)   # each ring's tail when the batch began
        self.tails = ffi.new("uint64_t[]", nbuf)   # and how far the batch read
        self.run = ffi.new("struct pylibbpf_pb_run *")
        self.run.idx = max(nbuf - 1, 0)  # the first look starts at CPU buffer 0
        self.what = f"batch() of perf buffer on map {src.name!r}"
        self.guard = pb._view_guard()


class PerfBuffer(_Reader):
    """Consume a perf event array: ``PerfBuffer(map, callback, record_type="event")``.

    ``page_count`` pages (a power of two) per CPU buffer. ``poll``, ``consume``,
    ``fileno``, iteration, ``async for`` and batch mode work as for RingBuffer,
    with the same guarantees: exactly-once delivery under signals, ``close()``
    safe while another thread polls, ``record_type`` checked here. The buffer
    may outlive its Object: it holds its own fd of the map.
    """

    _kind = "PerfBuffer"

    def __init__(self, map: Map, callback: Optional[Callable[..., Any]] = None, *,
                 lost_callback: Optional[Callable[[int, int], Any]] = None,
                 record_type: RecordType = None, page_count: int = 8, batch: bool = False,
                 with_cpu: bool = False) -> None:
        super().__init__()
        if not isinstance(map, Map):
            raise TypeError(f"map must be a pylibbpf.Map, not {type(map).__name__}")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        if lost_callback is not None and not callable(lost_callback):
            raise TypeError("lost_callback must be callable")
        if not isinstance(page_count, int) or page_count < 1 or page_count & (page_count - 1):
            raise ValueError(f"page_count must be a power of two, not {page_count!r}")
        if map.type != MapType.PERF_EVENT_ARRAY:
            raise BPFError(_errno.EINVAL, f"map {map.name!r} is a {map.type.name.lower()} "
                                          "map, not a perf_event_array")
        codec = record_codec(map, record_type)
        self._ncpus = possible_cpus()
        self._page_count = page_count
        self._pstate: Optional[_BatchState] = None
        self._lost_cb = lost_callback
        self._lost_seen = 0
        self._lost_final = 0
        # libbpf keeps the map's fd to delete our entries when freed: give it a fd of
        # our own, so closing the Object first can't make it delete another map's
        # entries through a reused fd number
        self._map_fd = os.dup(map.fd)
        coll = ffi.NULL
        try:
            coll = lib.pylibbpf_collector_new(codec.size if codec is not None else 0,
                                              self._ncpus)
            if coll == ffi.NULL:
                raise error_from_errno(_errno.ENOMEM, f"perf buffer on map {map.name!r}")
            ptr = lib.pylibbpf_pb_new(self._map_fd, page_count, coll)
            if ptr == ffi.NULL:
                check_ptr(ptr, ffi.errno, f"perf buffer on map {map.name!r}")
            try:
                self._waker = self._make_waker(int(lib.perf_buffer__epoll_fd(ptr)),
                                               f"perf buffer on map {map.name!r}")
            except BaseException:
                lib.perf_buffer__free(ptr)
                raise
        except BaseException:
            if coll != ffi.NULL:
                lib.pylibbpf_collector_free(coll)
            fd, self._map_fd = self._map_fd, -1
            os.close(fd)
            raise
        self._cptr = self._ptr = ptr
        self._sources.append(_Source(map, codec, callback, batch, coll, with_cpu))

    def _report_lost(self) -> None:
        c = self._sources[0].coll if self._sources else None
        if c is None or c.lost_total == self._lost_seen:
            return
        self._lost_seen = int(c.lost_total)
        lost: Dict[int, int] = {}
        for cpu in range(self._ncpus):
            if c.lost[cpu]:
                lost[cpu] = int(c.lost[cpu])
                c.lost[cpu] = 0
        if self._lost_cb is not None:
            for cpu, cnt in lost.items():
                self._lost_cb(cpu, cnt)

    def _collect(self) -> None:
        super()._collect()
        self._report_lost()

    @property
    def lost(self) -> int:
        """Samples lost so far (the kernel found the CPU's buffer full)."""
        c = self._sources[0].coll if self._sources else None
        return int(c.lost_total) if c is not None else self._lost_final

    @property
    def buffer_count(self) -> int:
        """Number of per-CPU buffers."""
        ptr = self._enter()
        try:
            return int(lib.perf_buffer__buffer_cnt(ptr))
        finally:
            self._leave()

    def _wait(self, ptr: Any, timeout_ms: int) -> int:
        return int(lib.pylibbpf_pb_poll(ptr, self._waker, timeout_ms))

    def _consume_c(self, ptr: Any) -> int:
        return int(lib.perf_buffer__consume(ptr))

    def _epoll_fd(self, ptr: Any) -> int:
        return int(lib.perf_buffer__epoll_fd(ptr))

    def _free(self, ptr: Any) -> None:
        lib.perf_buffer__free(ptr)  # deletes its entries through our own fd of the map

    def _buffer_cpus(self, count: int) -> List[int]:
        """The CPU of each of libbpf's buffers: one per online CPU, in order."""
        cpus = getattr(self, "_cpus_of", None)
        if cpus is None or len(cpus) != count:
            try:
                with open("/sys/devices/system/cpu/online") as f:
                    spec = f.read().strip()
                online: List[int] = []
                for part in spec.split(","):
                    lo, _, hi = part.partition("-")
                    online.extend(range(int(lo), int(hi or lo) + 1))
            except (OSError, ValueError):
                online = []
            cpus = [c for c in online if c < self._ncpus][:count]
            if len(cpus) != count:
                cpus = list(range(count))
            self._cpus_of = cpus
        return cpus

    def _batch_state(self, src: _Source) -> "_BatchState":
        ptr = self._ptr
        st = _BatchState(self, src, int(lib.perf_buffer__buffer_cnt(ptr)))
        if src.ring is None:
            src.ring = st.bm.PerfRings(f"perf buffer on map {src.name!r}", st.nbuf)
            src.ring.map_all(ptr, self._page_count * _page_size())
        if src.out is None:
            src.out, src.cpus_out = st.bm.Pool(), st.bm.Pool()
        return st

    def _take_batch(self, src: _Source, timeout_ms: int,
                    max_records: int) -> Tuple[Any, Any, Callable[[], None]]:
        st = self._pstate
        if st is None or st.src is not src:
            st = self._pstate = self._batch_state(src)
        ptr = self._ptr
        np = st.np
        nbuf, start, tails, run = st.nbuf, st.start, st.tails, st.run
        stride = src.stride
        guard = st.guard

        coll = src.coll

        def release() -> None:
            p = self._cptr
            if p is not None:  # (else the collector is freed too)
                lib.pylibbpf_pb_release_all(p, nbuf, start, tails)
                if coll.lost_total != self._lost_seen:
                    self._report_lost()

        out: Any = None
        cpus: Any = None
        total = 0
        for attempt in (0, 1):
            # a long run of samples in place, on any CPU (one C call for all of
            # them, from the CPU after the last view's on): handed over as a view
            n = int(lib.pylibbpf_pb_next(ptr, nbuf, src.coll, st.cpus, start, tails, stride,
                                         max_records, _MIN_VIEW, run))
            if n < 0:
                check_ret(n, st.what)
            if n:
                i = run.idx
                m = src.ring.maps[i] or src.ring.get(ptr, i, int(run.size))
                begin = run.start
                arr = m.view(np, src.dtype, begin, run.span, n)
                cpu_arr = None
                if src.with_cpu:
                    cpu_arr = src.cpus_out.get(np, np.uint32, n)[:n]
                    cpu_arr.fill(st.cpu_of[i])
                tails[i] = begin + n * run.span
                ref = _weak_ref(arr)

                def release_view() -> None:
                    try:
                        p = self._cptr
                        if p is not None:  # (else the collector is freed too)
                            lib.pylibbpf_pb_release_all(p, nbuf, start, tails)
                            if coll.lost_total != self._lost_seen:
                                self._report_lost()
                    finally:
                        guard.scope_ended(m, ref)
                return arr, cpu_arr, release_view
            if run.avail:
                out, cpus, total = self._copy_batch(src, st, max_records)
            if (total or attempt or any(tails[k] != start[k] for k in range(nbuf))
                    or not self._wait_ready(timeout_ms)):
                break
        if out is None:  # nothing there: no copy to make
            arr = np.empty(0, src.dtype)
            cpu_arr = np.empty(0, np.uint32) if src.with_cpu else None
        else:
            arr = out[:total]
            cpu_arr = cpus[:total] if cpus is not None else None

        def release_copy() -> None:
            try:
                release()
            finally:
                guard.scope_ended(None, None)
        return arr, cpu_arr, release_copy

    def _copy_batch(self, src: _Source, st: "_BatchState",
                    max_records: int) -> Tuple[Any, Any, int]:
        """Copy samples that wrap, differ in size or come few at a time (up to
        the next run for a view) into a reused array: (array, cpus, count)."""
        ptr = self._ptr
        np = st.np
        stride = src.stride
        tails = st.tails
        need = int(st.run.avail) // ((12 + stride + 7) & ~7)
        if max_records:
            need = min(need, max_records)
        # a copied stretch is short as a rule (it ends where a run for a view
        # starts): don't make fresh memory for all that is there; the loop grows it
        out = src.out.get(np, src.dtype, max(min(need, _COPY_FIRST), 1))
        cpus = src.cpus_out.get(np, np.uint32, len(out)) if src.with_cpu else None
        total = 0
        for i in range(st.nbuf):
            while not max_records or total < max_records:
                cap = len(out) - total
                if max_records:
                    cap = min(cap, max_records - total)
                base = ffi.cast("char *", ffi.from_buffer(out)) + total * stride
                cbase = (ffi.cast("uint32_t *", ffi.from_buffer(cpus)) + total
                         if cpus is not None else ffi.NULL)
                n = int(lib.pylibbpf_pb_scan(ptr, i, src.coll, st.cpu_of[i], tails + i, base,
                                             stride, cap, cbase, _MIN_VIEW))
                if n < 0:
                    check_ret(n, st.what)
                total += n
                if n < cap:
                    break  # this CPU's buffer is read (or a run for a view is next)
                if max_records and total >= max_records:
                    break
                if total == len(out):  # full (records smaller than the type, or new
                    bigger = src.out.get(np, src.dtype, 2 * total + 1)  # ones): grow
                    bigger[:total] = out[:total]
                    out = bigger
                    if cpus is not None:
                        more = src.cpus_out.get(np, np.uint32, len(out))
                        more[:total] = cpus[:total]
                        cpus = more
        return out, cpus, total

    def _forget_collector(self, c: Any) -> None:
        self._lost_final = int(c.lost_total)

    def _released(self) -> None:
        self._pstate = None
        fd, self._map_fd = getattr(self, "_map_fd", -1), -1
        if fd >= 0:
            os.close(fd)
