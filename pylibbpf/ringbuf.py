"""``RingBuffer``: events from one or more BPF ring-buffer maps (and ``UserRingBuffer``).

libbpf hands each record to a small C collector (``_csrc/events.c``) that
copies it into one buffer per map. A C loop (``_csrc/fast.c``) then decodes
each record and calls the map's callback with it — or, in batch mode, the
callback gets every record of a poll at once in a NumPy structured array (a
list of bytes without NumPy).

Records are ``bytes`` unless the map is given a ``record_type``: a struct name
looked up in the object's BTF (``record_type="event"``), a codec, a ctypes
type or a struct format. An exception raised in a callback stops delivery and
is re-raised from :meth:`RingBuffer.poll`; records not yet delivered stay
queued for the next call.

Delivery is exactly-once, also under exceptions from signal handlers (Ctrl-C):
a record taken from the kernel stays pending until a callback started on it,
``read()``/``read_batch()`` returned it or an iterating loop received it, and is
never handed over twice (docs/robustness.md, "Signals").
"""
from __future__ import annotations

import errno as _errno
import functools
import struct
from collections import deque
from types import CodeType, FunctionType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (Any, AsyncIterator, Callable, Deque, Iterator, List, Optional, Sequence,
                        Tuple, Union)
    import asyncio

from ._owner import Closeable
from ._ffi import fast, ffi, lib, opts
from .btf import BTF, btf_of_object
from .errors import BPFError, ClosedError, check_ptr, check_ret, error_from_errno
from .map import Map
from .typed import Codec, codec_for, fast_layout
from .types import MapType

__all__ = ["RingBuffer", "UserRingBuffer", "record_codec"]

if TYPE_CHECKING:
    Callback = Callable[[Any], Optional[int]]
    RecordType = Union[str, Codec, type, None]


DEFAULT_MAX_BATCH = 65536


def record_codec(map: Map, record_type: RecordType) -> Optional[Codec]:
    """The codec for records of ``map``: a type name in the map's BTF, a codec,
    a ctypes type or a struct format; None for bytes.

    A record type that cannot describe a record (an empty name or format, a
    format of 0 bytes, a type of 0 bytes) raises BPFError (EINVAL) naming it."""
    if record_type is None:
        return None
    what = f"record_type {record_type!r} of map {map.name!r}"
    if isinstance(record_type, str):
        if not record_type.strip():
            raise BPFError(_errno.EINVAL, f"{what}: empty; give a type name from the "
                                          "object's BTF (e.g. 'event') or a struct format")
        if _looks_like_format(record_type):
            try:
                size = struct.calcsize(record_type)
            except struct.error as e:
                raise BPFError(_errno.EINVAL, f"{what}: not a valid struct format ({e})") \
                    from None
            if size == 0:
                raise BPFError(_errno.EINVAL, f"{what}: a struct format of 0 bytes")
    if isinstance(record_type, str) and not _looks_like_format(record_type):
        btf: Optional[BTF] = None
        if map._obj is not None:
            btf = btf_of_object(map._obj)
        else:
            btf = map._btf_ids()[0]
        if btf is None:
            raise BPFError(_errno.ENOENT, f"record_type {record_type!r}: map {map.name!r} "
                                          "has no BTF to look the type up in")
        codec = btf.codec(record_type)
    else:
        codec = codec_for(record_type, what=f"record_type of map {map.name!r}")
    if codec.size <= 0:
        raise BPFError(_errno.EINVAL, f"{what}: type {codec.name} has 0 bytes")
    return codec


def _looks_like_format(s: str) -> bool:
    return bool(s) and (s[0] in "<>=@!" or all(ch.isdigit() or ch in "xcbB?hHiIlLqQnNefdspP"
                                                 for ch in s))


_batch_module: Any = None


def _batchmod() -> Any:
    """pylibbpf._batch, imported on first use (a module-level lookup after that)."""
    global _batch_module
    if _batch_module is None:
        from . import _batch
        _batch_module = _batch
    return _batch_module


_numpy_module: Any = None


def _numpy() -> Any:
    """NumPy (imported on first use), or None without it."""
    global _numpy_module
    if _numpy_module is None:
        try:
            _numpy_module = __import__("numpy")
        except ImportError:
            return None
    return _numpy_module


def _entry_point(callback: Any) -> Tuple[Any, int]:
    """(code, byte offset of its RESUME) of a Python callback, else (None, -1).

    An exception from a signal handler that surfaces at that first instruction
    means the callback never ran: the C delivery loop then keeps the record
    pending (see callback_not_started in _csrc/fast.c)."""
    fn = callback
    for _ in range(8):
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif isinstance(getattr(fn, "__func__", None), FunctionType):
            fn = fn.__func__
        else:
            break
    code = getattr(fn, "__code__", None)
    if not isinstance(code, CodeType):
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)
    if not isinstance(code, CodeType):
        return None, -1
    import dis  # only when a Python callback is added

    for ins in dis.get_instructions(code):
        if ins.opname == "RESUME":
            return code, ins.offset
    return None, -1


class _Source:
    """One map of a reader: its decoder, callback, C collector and pending records.

    Records move collector -> ``pending`` (per-record callbacks), the reader's
    queue (no callback) or ``batches`` (batch mode) in one C call each
    (``fast.commit``), so an exception from a signal handler can't fall between
    emptying the collector and storing its records."""

    def __init__(self, map: Map, codec: Optional[Codec], callback: Optional[Callable[..., Any]],
                 batch: bool, collector: Any, with_cpu: bool) -> None:
        self.map = map
        self.name = map.name
        self.codec = codec
        self.callback = callback
        self.entry = _entry_point(callback) if callback is not None else (None, -1)
        self.batch = batch
        self.coll = collector
        self.addr = int(ffi.cast("uintptr_t", collector))
        self.with_cpu = with_cpu
        self.stride = codec.size if codec is not None else 0
        self.pending: Deque[Any] = deque()  # pylibbpf._fast.Records batches
        self.target: Any = None
        self.batches: List[Any] = []        # (records, cpus)
        self.dtype: Any = None
        if codec is not None and batch:
            np = _numpy()
            if np is not None:
                try:
                    self.dtype = np.dtype(codec.np_descr())
                except Exception:
                    self.dtype = np.dtype(f"V{codec.size}")
        self.layout = fast_layout(codec)
        self.ring: Any = None       # _batch.RingMapping once batch() mapped the ring
        self.out: Any = None        # batch(): _batch.Pool of arrays records are copied into
        self.cpus_out: Any = None   # batch() of a perf buffer: a Pool for their CPUs

    def aim(self, max_records: int) -> None:
        """Batch mode with NumPy: collect the next records straight into an array."""
        c = self.coll
        if self.dtype is None or c.external or c.count:
            return
        np = _numpy()
        arr = np.empty(max_records, self.dtype)
        self.target = arr           # alive before the collector writes into it
        lib.pylibbpf_collector_target(c, ffi.from_buffer(arr), arr.nbytes)

    def take(self, queue: Deque[Any]) -> int:
        """Move what the C collector holds into ``pending``, ``queue`` or ``batches``;
        then raise the error the collector met, if any (its records are kept)."""
        c = self.coll
        n = int(c.count)
        if n:
            cpus = ffi.unpack(c.cpus, n) if self.with_cpu else None
            if c.external:
                arr = self.target
                arr = arr[:n] if n * 4 >= len(arr) else arr[:n].copy()
                fast.commit(self.batches, (arr, cpus), self.addr)
            elif self.batch and self.dtype is not None:
                np = _numpy()
                arr = np.empty(n, self.dtype)
                ffi.memmove(ffi.from_buffer(arr), c.buf, n * self.stride)
                fast.commit(self.batches, (arr, cpus), self.addr)
            else:
                data = ffi.buffer(c.buf, int(c.used))[:]
                sizes = ffi.buffer(c.sizes, 4 * n)[:] if not self.stride else None
                if self.batch:
                    if self.codec is None:  # bytes of each record's own size
                        recs: Any = list(fast.Records(self.layout, data, n, 0, sizes))
                    else:
                        mv = memoryview(data)
                        st = self.stride
                        recs = [mv[i * st:(i + 1) * st] for i in range(n)]
                    fast.commit(self.batches, (recs, cpus), self.addr)
                else:  # decoded one by one in C as they are delivered or iterated
                    dest = self.pending if self.callback is not None else queue
                    fast.commit(dest, fast.Records(self.layout, data, n, self.stride, sizes,
                                                   cpus), self.addr)
        if c.err:
            err, dropped = int(c.err), int(c.dropped)
            c.dropped = 0
            c.err = 0
            raise error_from_errno(
                err, f"collect records of map {self.name!r}: {dropped} record"
                     f"{'s' if dropped != 1 else ''} could not be stored and "
                     f"{'were' if dropped != 1 else 'was'} dropped")
        return n


_NO_RECORD = object()
_Handover = fast.Handover  # see _AsyncRecords


def _nothing() -> None:
    pass

#: async iteration consumes at least this often, whatever readiness says
ASYNC_RECHECK_S = 0.25


class _AsyncRecords:
    """``async for rec in buffer``: records of maps without a callback, until closed.

    Exactly-once like ``records()``: each record is taken by a C awaitable
    (``_fast.Handover``) in the call that hands it to the loop, and nothing runs
    between that and the ``return`` (no call, no backward jump: no point where an
    exception from a signal handler could surface with the record in hand)."""

    __slots__ = ("_buf",)

    def __init__(self, buf: "_Reader") -> None:
        self._buf = buf

    def __aiter__(self) -> "_AsyncRecords":
        return self

    async def __anext__(self) -> Any:
        buf = self._buf
        while buf._ptr is not None:
            if buf._out or buf._queue:
                rec = await _Handover(buf._queue, buf._out, _NO_RECORD)
                if rec is not _NO_RECORD:
                    return rec
                continue
            # perf events signal readiness edge-like (polling a perf fd clears its
            # wake-up), so a wake-up can be spent without its records being read:
            # consume at least every ASYNC_RECHECK_S as well
            await buf.wait_readable(ASYNC_RECHECK_S)
            if buf._ptr is None:
                break
            buf.consume()
        raise StopAsyncIteration


class _Reader(Closeable):
    """What RingBuffer and PerfBuffer share: sources, delivery, iteration, asyncio.

    Closing while another thread polls: each C call on the buffer runs between
    ``_enter()`` and ``_leave()``; ``close()`` marks the reader closed, wakes a
    waiting poller and leaves the freeing to the last thread leaving."""

    _kind = "reader"

    def __init__(self) -> None:
        self._ptr: Any = None    # the C buffer while open; None once closed
        self._cptr: Any = None   # the C buffer until freed (close may leave that to a poller)
        self._waker: Any = None  # struct pylibbpf_waker: close() wakes a waiting poll()
        self._sources: List[_Source] = []
        self._queue: Deque[Any] = deque()  # pylibbpf._fast.Records
        self._closed = False  # the C buffer is made by the first add(): _ptr can't tell
        import threading  # (imported by the first buffer, not with pylibbpf)

        self._lock = threading.RLock()
        self._users = 0
        self._out: List[Any] = []  # records read() took but did not return yet
        self._in_batch = False     # a batch() scope is open

    def _check(self) -> Any:
        if self._ptr is None:
            raise ClosedError(self._kind)
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def _enter(self) -> Any:
        """The C buffer, kept from being freed until ``_leave()``; ClosedError if closed."""
        with self._lock:
            if self._ptr is None:
                raise ClosedError(self._kind)
            self._users += 1
            return self._ptr

    def _leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users <= 0 and self._closed:
                self._release()

    def _make_waker(self, inner_fd: int, what: str) -> Any:
        w = ffi.new("struct pylibbpf_waker *")
        check_ret(lib.pylibbpf_waker_init(w, inner_fd), what)
        return w

    # --- delivery -----------------------------------------------------------
    def _collect(self) -> None:
        for src in self._sources:
            if src.coll is not None and (src.coll.count or src.coll.err):
                src.take(self._queue)

    def _deliver(self) -> int:
        """Hand pending records to callbacks; returns how many were handled.

        The loop over records runs in C (``any(map(callback, records))``): it
        stops at the first callback that returns a true value or raises, and
        the records after it stay pending."""
        done = 0
        for src in self._sources:
            cb = src.callback
            if cb is None:
                continue
            code, resume = src.entry
            if src.batch:
                if src.batches:
                    n, stop = fast.deliver_batches(src.batches, cb, src.with_cpu, code, resume)
                    done += n
                    if stop or self._ptr is None:
                        return done
                continue
            pending = src.pending
            while pending:
                recs = pending[0]
                before = recs.taken
                try:
                    stop = recs.deliver(cb, code, resume)  # the per-record loop, in C
                finally:
                    done += recs.taken - before
                if self._ptr is None:  # a callback closed this buffer
                    return done
                # pop the batch once spent (unless a re-entrant consume already did)
                if not recs and pending and pending[0] is recs:
                    pending.popleft()
                if stop:
                    return done
        return done

    def _has_pending(self) -> bool:
        return any(s.pending or (s.batches and s.callback is not None) for s in self._sources)

    def _wait(self, ptr: Any, timeout_ms: int) -> int:
        raise NotImplementedError

    def _consume_c(self, ptr: Any) -> int:
        raise NotImplementedError

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for records and handle them.

        Returns the number of records handled by callbacks (records of maps
        without a callback are queued for iteration). Ctrl-C interrupts the wait.

        Delivery is exactly-once: records taken from the kernel stay pending
        until handed to a callback, whatever exception interrupts this call
        (Ctrl-C, an exception from a signal handler, one from a callback), and
        the next call hands them over first. A record counts as delivered once
        its callback started running. If another thread closes the buffer
        meanwhile, the wait ends and this returns 0.
        """
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
            raise TypeError(f"timeout_ms must be an int, not {type(timeout_ms).__name__}")
        self._not_in_batch("poll()")
        ret = 0
        ptr = self._enter()
        try:
            self._collect()  # what an interrupted call left in the collectors
            if not self._has_pending():
                ret = self._wait(ptr, timeout_ms)
                self._collect()
        finally:
            self._leave()
        if self._ptr is None:  # closed by another thread meanwhile
            return 0
        if ret < 0 and ret != -_errno.EINTR:
            check_ret(ret, f"poll {self._kind}")
        return self._deliver()

    def consume(self) -> int:
        """Handle every record available now, without waiting; returns the count handled.

        Delivery is exactly-once, as for :meth:`poll`."""
        self._check()
        self._not_in_batch("consume()")
        n = self._deliver() if self._has_pending() else 0
        if self._ptr is None:  # a callback closed the buffer
            return n
        ptr = self._enter()
        try:
            ret = self._consume_c(ptr)
            self._collect()
        finally:
            self._leave()
        if self._ptr is None:
            return n
        if ret < 0 and ret != -_errno.EINTR:
            check_ret(ret, f"consume {self._kind}")
        return n + self._deliver()

    def fileno(self) -> int:
        """An epoll file descriptor, readable when records are available."""
        ptr = self._enter()
        try:
            return self._epoll_fd(ptr)
        finally:
            self._leave()

    def _epoll_fd(self, ptr: Any) -> int:
        raise NotImplementedError

    # --- records without callbacks --------------------------------------------
    def read(self, timeout_ms: int = 0) -> List[Any]:
        """Records of maps without a callback: what is queued, else what arrives
        within ``timeout_ms``. Exactly-once: an exception (e.g. from a signal
        handler) before this returns leaves every record queued, and the next
        read() or iteration hands it over."""
        self._check()
        if not self._queue and not self._out:
            self.poll(timeout_ms)
        q, out = self._queue, self._out
        while q:
            out.extend(q[0])     # taken into self._out in one C call: progress is kept
            q.popleft()          # (spent; harmless when an exception skips it)
        fresh: List[Any] = []
        self._out = fresh        # handed over: no call (so no exception) until the return
        return out

    def _leftovers(self) -> Iterator[Any]:
        """What an interrupted read() had taken, one record at a time (each
        taken as it is handed over: the iterator pops in C)."""
        try:
            yield from iter(functools.partial(self._out.pop, 0), _NO_RECORD)
        except IndexError:
            pass

    def records(self, timeout_ms: int = -1) -> Iterator[Any]:
        """Iterate over records of maps without a callback; stops after ``timeout_ms``
        without any (never, with -1), or when the buffer is closed meanwhile.

        Each record is taken as it is handed to the loop (``yield from`` a C
        iterator), so an exception, or leaving the loop, never loses or repeats one."""
        self._check()
        while True:
            if self._out:
                yield from self._leftovers()
            q = self._queue
            if q:
                recs = q[0]
                yield from recs
                if q and q[0] is recs:
                    q.popleft()
                continue
            if self._ptr is None:
                return
            self.poll(timeout_ms)
            if not self._queue and timeout_ms >= 0:
                return

    def __iter__(self) -> Iterator[Any]:
        """Records of maps without a callback, forever (until closed)."""
        return self.records(-1)

    def __aiter__(self) -> AsyncIterator[Any]:
        return _AsyncRecords(self)

    async def wait_readable(self, timeout: Optional[float] = None) -> bool:
        """Wait (in asyncio) until records are available; False after ``timeout`` s.

        Cancelling the waiting task always raises CancelledError in it, even
        when the buffer became readable just before (``asyncio.wait_for`` of
        Python <= 3.11 would lose that cancellation)."""
        import asyncio  # only async users pay for importing it

        loop = asyncio.get_running_loop()
        fd = self.fileno()
        fut: "asyncio.Future[bool]" = loop.create_future()

        def done(ready: bool) -> None:
            if not fut.done():
                fut.set_result(ready)

        loop.add_reader(fd, done, True)
        timer = loop.call_later(timeout, done, False) if timeout is not None else None
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            loop.remove_reader(fd)

    async def poll_async(self) -> int:
        """Wait in asyncio for records, then handle them like :meth:`consume`.

        Returns once something was handled (or queued for iteration); like async
        iteration, it also looks every ``ASYNC_RECHECK_S`` seconds, since perf
        events report readiness edge-like.
        """
        self._check()
        if self._has_pending():
            return self.consume()
        while True:
            await self.wait_readable(ASYNC_RECHECK_S)
            if self._ptr is None:
                return 0
            queued = len(self._queue)
            n = self.consume()
            if n or len(self._queue) > queued or self._has_batches():
                return n

    def _has_batches(self) -> bool:
        return any(s.batches for s in self._sources)

    # --- batch mode -----------------------------------------------------------
    def _not_in_batch(self, what: str) -> None:
        if self._in_batch:
            raise BPFError(_errno.EBUSY, f"{what} of {self._kind}: a batch() scope of this "
                                         "buffer is open; leave its with block first")

    def _batch_source(self, map: Optional[Map]) -> _Source:
        srcs = [s for s in self._sources if s.batch and s.callback is None
                and (map is None or s.map is map)]
        if not srcs:
            which = f"map {map.name!r}" if map is not None else "a map"
            raise BPFError(_errno.EINVAL, f"batch() of {self._kind} needs {which} added with "
                                          "batch=True, a record_type and no callback")
        src = srcs[0]
        if src.dtype is None:
            raise BPFError(_errno.EINVAL, f"batch() of {self._kind} on map {src.name!r} needs "
                                          "NumPy and a record_type (read_batch() works "
                                          "without)")
        return src

    def batch(self, map: Optional[Map] = None, *, timeout_ms: int = 0,
              max_records: Optional[int] = None) -> Any:
        """A scope over the records available now: ``with rb.batch() as arr: ...``.

        ``arr`` is a NumPy structured array (the map's ``record_type``) of every
        record of ``map`` (default: the first map added with ``batch=True`` and no
        callback) available now, or arriving within ``timeout_ms`` when none is;
        at most ``max_records`` (default: the reader's ``max_batch``, 65536 unless
        given; 0: no limit; batches that fit in the CPU caches are fastest). Ring buffers hand over a read-only
        view of the records where they lie in the ring (no copy). Perf buffers
        hand over a view of a run of same-size samples that don't wrap around
        their CPU's ring, and copy the others once into a reused array; a perf
        batch holds one run or one copied stretch, so drain in a loop until a
        batch is empty. The records are released to the kernel when the
        ``with`` block ends (also by an exception), so keep nothing of ``arr``
        past it: a view kept past its block reads zeros (held by more than one
        reference: from the block's end; by one name only, such as the ``as``
        target: from the end of the next batch's block or the reader's close).
        ``arr.copy()`` keeps records; :meth:`read_batch` returns arrays of their
        own.

        While the block runs, ``poll()``, ``consume()``, reading and another
        ``batch()`` on this buffer raise BPFError (EBUSY).
        """
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
            raise TypeError(f"timeout_ms must be an int, not {type(timeout_ms).__name__}")
        if max_records is None:
            max_records = getattr(self, "_max", DEFAULT_MAX_BATCH)
        if not isinstance(max_records, int) or max_records < 0:
            raise ValueError(f"max_records must be an int >= 0, not {max_records!r}")
        self._check()
        src = self._batch_source(map)
        return _batchmod().Batch(functools.partial(self._open_batch, src, timeout_ms,
                                                   max_records))

    def _open_batch(self, src: _Source, timeout_ms: int,
                    max_records: int) -> Tuple[Any, Any, Callable[[], None]]:
        with self._lock:
            self._not_in_batch("batch()")
            self._enter()
            self._in_batch = True
        try:
            if src.batches:  # records an earlier poll() took from the kernel: those first
                self._in_batch = False
                arr = self.read_batch(0, src.map)
                self._in_batch = True
                arr, cpus, release = arr, None, _nothing
            else:
                arr, cpus, release = self._take_batch(src, timeout_ms, max_records)
        except BaseException:
            self._in_batch = False
            self._leave()
            raise

        def close() -> None:
            try:
                release()
            finally:
                self._in_batch = False
                self._leave()
        return arr, cpus, close

    def _take_batch(self, src: _Source, timeout_ms: int,
                    max_records: int) -> Tuple[Any, Any, Callable[[], None]]:
        raise NotImplementedError

    def _view_guard(self) -> Any:
        g = self.__dict__.get("_guard")
        if g is None:
            g = self._guard = _batchmod().Guard()
        return g

    def _wait_ready(self, timeout_ms: int) -> bool:
        """Wait until the buffer is readable (or closed); False after timeout_ms."""
        if timeout_ms == 0 or self._waker is None:
            return False
        ret = int(lib.pylibbpf_waker_wait(self._waker, timeout_ms))
        if ret < 0 and ret != -_errno.EINTR:
            check_ret(ret, f"wait for records of {self._kind}")
        return ret > 0 and self._ptr is not None

    def read_batch(self, timeout_ms: int = 0, map: Optional[Map] = None) -> Any:
        """Batch mode: every record of ``map`` (default: the first batch map) that is
        queued or arrives within ``timeout_ms``, as one NumPy structured array (a list
        of bytes/memoryviews without NumPy or without a record type).
        Exactly-once: an exception before this returns leaves the records queued."""
        self._check()
        srcs = [s for s in self._sources if s.batch and (map is None or s.map is map)]
        if not srcs:
            raise BPFError(_errno.EINVAL, "read_batch() needs a map added with batch=True "
                                          "and no callback")
        src = srcs[0]
        if not src.batches:
            self.poll(timeout_ms)
        parts = src.batches
        np = _numpy() if src.dtype is not None else None
        while len(parts) > 1:  # merge pairwise; each merge is kept (one store), so
            (a, ca), (b, cb) = parts[0], parts[1]  # an exception loses no progress
            merged = (np.concatenate([a, b]) if np is not None else list(a) + list(b),
                      None if ca is None or cb is None else ca + cb)
            parts[0:2] = [merged]
        out: Any
        if parts:
            out = parts[0][0]
        elif np is not None:
            out = np.empty(0, src.dtype)
        else:
            out = []
        if np is None and not isinstance(out, list):
            out = list(out)
            parts[0:1] = [(out, parts[0][1])]
        fresh: List[Any] = []
        src.batches = fresh     # handed over: no call (so no exception) until the return
        return out

    # --- lifetime -----------------------------------------------------------
    def _free(self, ptr: Any) -> None:
        raise NotImplementedError

    def _released(self) -> None:
        """Subclass hook: after the C buffer and collectors were freed."""

    def _release(self) -> None:
        """Free the C buffer, the waker and the collectors (once: every step swaps first)."""
        ptr, self._cptr = self._cptr, None
        if ptr is not None:
            self._free(ptr)
        w, self._waker = self._waker, None
        if w is not None:
            lib.pylibbpf_waker_close(w)
        g = self.__dict__.get("_guard")
        if g is not None:
            g.close()
        for src in self._sources:
            c, src.coll = src.coll, None
            if c is not None:
                self._forget_collector(c)
                lib.pylibbpf_collector_free(c)
            src.target = None
            ring, src.ring = src.ring, None
            if ring is not None:
                ring.close()
            src.out = src.cpus_out = None
            for recs in src.pending:
                recs.discard()
            src.pending.clear()
            src.batches.clear()
        self._sources.clear()
        self._queue.clear()
        self._released()

    def _forget_collector(self, c: Any) -> None:
        """Subclass hook: read what is needed from a collector about to be freed."""

    def close(self) -> None:
        """Free the buffer; pending records are dropped. Idempotent.

        Safe while another thread is in :meth:`poll` or :meth:`consume`: that
        call is woken and returns 0, and the buffer is freed once it is out of
        the C code."""
        with self._lock:
            self._closed = True
            self._ptr = None
            for src in self._sources:
                for recs in src.pending:
                    recs.discard()  # a callback may be delivering from it right now
                src.pending.clear()
                src.batches.clear()
            self._queue.clear()
            self._out = []
            if self._users > 0:
                if self._waker is not None:
                    lib.pylibbpf_waker_wake(self._waker)
                return  # the last thread out of the C code frees
            self._release()

    def __del__(self) -> None:
        if "_lock" not in self.__dict__:
            return  # __init__ did not get that far
        try:
            self._users = 0  # nobody can be polling an unreachable reader
            self.close()
        except Exception:
            pass


class RingBuffer(_Reader):
    """Consume records from ring-buffer maps: ``RingBuffer(map, callback)``.

    ``add(map, callback)`` adds more maps. ``poll(timeout_ms)`` waits for and
    handles records, ``consume()`` handles what is there without waiting,
    ``fileno()`` gives an epoll fd for ``select``; ``for rec in rb`` and
    ``async for rec in rb`` iterate over records of maps added without a
    callback. A callback returning a non-zero int stops the current poll early.

    ``record_type`` decodes records (``"event"`` names a struct in the object's
    BTF); ``batch=True`` hands the callback (or :meth:`read_batch`) all records
    of one poll at once. ``max_batch`` bounds the records handled per poll.

    Delivery is exactly-once, also when Ctrl-C or another exception from a
    signal handler interrupts it (see :meth:`poll`). ``close()`` is safe while
    another thread polls: that poll returns 0. A ``record_type`` that can't
    describe a record raises BPFError (EINVAL) here, naming it.
    """

    _kind = "RingBuffer"

    def __init__(self, map: Optional[Map] = None, callback: Optional[Callback] = None, *,
                 record_type: RecordType = None, batch: bool = False,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__()
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive int, not {max_batch!r}")
        self._max = max_batch
        if map is not None:
            self.add(map, callback, record_type=record_type, batch=batch)

    def add(self, map: Map, callback: Optional[Callable[..., Any]] = None, *,
            record_type: RecordType = None, batch: bool = False) -> None:
        """Also consume ``map``, handing its records to ``callback`` (or to iteration)."""
        if self._closed:
            raise ClosedError(self._kind)
        if not isinstance(map, Map):
            raise TypeError(f"map must be a pylibbpf.Map, not {type(map).__name__}")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        if map.type != MapType.RINGBUF:
            raise BPFError(_errno.EINVAL, f"map {map.name!r} is a {map.type.name.lower()} "
                                          "map, not a ringbuf")
        codec = record_codec(map, record_type)
        fd = map.fd
        coll = lib.pylibbpf_collector_new(codec.size if codec is not None else 0, 0)
        if coll == ffi.NULL:
            raise error_from_errno(_errno.ENOMEM, f"ring buffer on map {map.name!r}")
        try:
            with self._lock:
                if self._closed:
                    raise ClosedError(self._kind)
                if self._ptr is None:
                    ptr = lib.ring_buffer__new(fd, lib.pylibbpf_rb_collect_fn(), coll,
                                               opts("ring_buffer_opts"))
                    ptr = check_ptr(ptr, ffi.errno, f"ring buffer on map {map.name!r}")
                    try:
                        waker = self._make_waker(int(lib.ring_buffer__epoll_fd(ptr)),
                                                 f"ring buffer on map {map.name!r}")
                    except BaseException:
                        lib.ring_buffer__free(ptr)
                        raise
                    self._waker = waker
                    self._cptr = self._ptr = ptr
                else:
                    ptr = self._enter()
                    try:
                        check_ret(lib.ring_buffer__add(ptr, fd, lib.pylibbpf_rb_collect_fn(),
                                                       coll),
                                  f"add map {map.name!r} to ring buffer")
                    finally:
                        self._leave()
        except BaseException:
            lib.pylibbpf_collector_free(coll)
            raise
        self._sources.append(_Source(map, codec, callback, batch, coll, False))

    def _aim(self) -> None:
        for src in self._sources:
            if src.batch and src.dtype is not None:
                src.aim(self._max)

    def _wait(self, ptr: Any, timeout_ms: int) -> int:
        self._aim()
        return int(lib.pylibbpf_rb_poll(ptr, self._waker, timeout_ms, self._max))

    def _consume_c(self, ptr: Any) -> int:
        self._aim()
        return int(lib.ring_buffer__consume_n(ptr, self._max))

    def _epoll_fd(self, ptr: Any) -> int:
        return int(lib.ring_buffer__epoll_fd(ptr))

    def _free(self, ptr: Any) -> None:
        lib.ring_buffer__free(ptr)

    def _take_batch(self, src: _Source, timeout_ms: int,
                    max_records: int) -> Tuple[Any, Any, Callable[[], None]]:
        bm = _batchmod()
        np = _numpy()
        rm = src.ring
        if rm is None:
            rm = src.ring = bm.RingMapping(src.map)
        size = src.stride
        s = rm.scan(size, max_records)
        if s.end == s.begin and self._wait_ready(timeout_ms):
            s = rm.scan(size, max_records)
        begin, end, count = int(s.begin), int(s.end), int(s.count)
        guard = self._view_guard()
        if count and s.regular:
            arr = rm.view(np, src.dtype, size, begin, count)
            import weakref  # (imported by the first view, not with pylibbpf)

            ref = weakref.ref(arr)

            def release() -> None:
                rm.release(end)
                guard.scope_ended(rm, ref)
            return arr, None, release
        if src.out is None:
            src.out = bm.Pool()
        out = src.out.get(np, src.dtype, count)
        if count:
            rm.copy(begin, end, size, out)
        arr = out[:count]

        def release_copy() -> None:
            rm.release(end)
            guard.scope_ended(None, None)
        return arr, None, release_copy


class UserRingBuffer(Closeable):
    """Send records from user space to BPF (``BPF_MAP_TYPE_USER_RINGBUF``).

    ``submit(record)`` copies one record into the ring (``record_type`` encodes
    it, bytes otherwise); with ``timeout_ms`` it waits for room.
    """

    def __init__(self, map: Map, *, record_type: RecordType = None) -> None:
        if not isinstance(map, Map):
            raise TypeError(f"map must be a pylibbpf.Map, not {type(map).__name__}")
        if map.type != MapType.USER_RINGBUF:
            raise BPFError(_errno.EINVAL, f"map {map.name!r} is a {map.type.name.lower()} "
                                          "map, not a user_ringbuf")
        self._ptr: Any = None
        self._map = map
        self._codec = record_codec(map, record_type)
        ptr = lib.user_ring_buffer__new(map.fd, opts("user_ring_buffer_opts"))
        self._ptr = check_ptr(ptr, ffi.errno, f"user ring buffer on map {map.name!r}")

    def submit(self, record: Any, *, timeout_ms: int = 0) -> None:
        """Copy ``record`` into the ring (BPFError ENOSPC when full and not waiting)."""
        if self._ptr is None:
            raise ClosedError("UserRingBuffer")
        if self._codec is not None:
            data = self._codec.encode(record)
        elif isinstance(record, (bytes, bytearray, memoryview)):
            data = bytes(record)
        else:
            raise TypeError(f"record must be bytes-like without a record_type, "
                            f"not {type(record).__name__}")
        if not data:
            raise ValueError("cannot submit an empty record")
        check_ret(lib.pylibbpf_urb_submit(self._ptr, data, len(data), timeout_ms),
                  f"submit to user ring buffer {self._map.name!r}")

    def submit_many(self, records: Sequence[Any]) -> None:
        for r in records:
            self.submit(r)

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.user_ring_buffer__free(ptr)

