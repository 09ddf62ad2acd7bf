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
"""
from __future__ import annotations

import importlib
import errno as _errno
from collections import deque
from typing import (TYPE_CHECKING, Any, AsyncIterator, Callable, Deque, Iterator, List,
                    Optional, Sequence, Union)

if TYPE_CHECKING:
    import asyncio

from ._owner import Closeable
from ._ffi import fast, ffi, lib, opts
from .btf import BTF, btf_of_object
from .errors import BPFError, ClosedError, check_ptr, check_ret, error_from_errno
from .map import Map
from .typed import Codec, codec_for, fast_layout
from .types import MapType

__all__ = ["RingBuffer", "UserRingBuffer", "record_codec"]

Callback = Callable[[Any], Optional[int]]
RecordType = Union[str, Codec, type, None]

DEFAULT_MAX_BATCH = 65536


def record_codec(map: Map, record_type: RecordType) -> Optional[Codec]:
    """The codec for records of ``map``: a type name in the map's BTF, a codec,
    a ctypes type or a struct format; None for bytes."""
    if record_type is None:
        return None
    if isinstance(record_type, str) and not _looks_like_format(record_type):
        btf: Optional[BTF] = None
        if map._obj is not None:
            btf = btf_of_object(map._obj)
        else:
            btf = map._btf_ids()[0]
        if btf is None:
            raise BPFError(_errno.ENOENT, f"record_type {record_type!r}: map {map.name!r} "
                                          "has no BTF to look the type up in")
        return btf.codec(record_type)
    return codec_for(record_type, what=f"record_type of map {map.name!r}")


def _looks_like_format(s: str) -> bool:
    return bool(s) and (s[0] in "<>=@!" or all(ch.isdigit() or ch in "xcbB?hHiIlLqQnNefdspP"
                                                 for ch in s))


def _numpy() -> Any:
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


class _Source:
    """One map of a reader: its decoder, callback, C collector and pending records."""

    def __init__(self, map: Map, codec: Optional[Codec], callback: Optional[Callable[..., Any]],
                 batch: bool, collector: Any, with_cpu: bool) -> None:
        self.map = map
        self.name = map.name
        self.codec = codec
        self.callback = callback
        self.batch = batch
        self.coll = collector
        self.with_cpu = with_cpu
        self.stride = codec.size if codec is not None else 0
        self.pending: Deque[Any] = deque()  # pylibbpf._fast.Records batches
        self.target: Any = None
        self.batches: List[Any] = []
        self.dtype: Any = None
        if codec is not None and batch:
            np = _numpy()
            if np is not None:
                try:
                    self.dtype = np.dtype(codec.np_descr())
                except Exception:
                    self.dtype = np.dtype(f"V{codec.size}")
        self.layout = fast_layout(codec)

    def aim(self, max_records: int) -> None:
        """Batch mode with NumPy: collect the next records straight into an array."""
        if self.dtype is None or self.target is not None:
            return
        np = _numpy()
        arr = np.empty(max_records, self.dtype)
        lib.pylibbpf_collector_target(self.coll, ffi.from_buffer(arr), arr.nbytes)
        self.target = arr

    def take(self) -> int:
        """Move what the C collector holds into ``pending`` (or ``batches``)."""
        c = self.coll
        n = int(c.count)
        if not n:
            return 0
        if c.err:
            lib.pylibbpf_collector_reset(c)
            raise error_from_errno(int(c.err), f"collect records of map {self.name!r}")
        cpus = ffi.unpack(c.cpus, n) if self.with_cpu else None
        if self.target is not None:
            arr, self.target = self.target, None
            lib.pylibbpf_collector_target(c, ffi.NULL, 0)
            arr = arr[:n] if n * 4 >= len(arr) else arr[:n].copy()
            self.batches.append((arr, cpus))
            return n
        if self.batch and self.dtype is not None:
            np = _numpy()
            arr = np.empty(n, self.dtype)
            ffi.memmove(ffi.from_buffer(arr), c.buf, n * self.stride)
            lib.pylibbpf_collector_reset(c)
            self.batches.append((arr, cpus))
            return n
        data = ffi.buffer(c.buf, int(c.used))[:]
        sizes = ffi.buffer(c.sizes, 4 * n)[:] if not self.stride else None
        lib.pylibbpf_collector_reset(c)
        if self.batch:
            if self.codec is None:  # bytes of each record's own size
                recs: Any = list(fast.Records(self.layout, data, n, 0, sizes))
            else:
                mv = memoryview(data)
                st = self.stride
                recs = [mv[i * st:(i + 1) * st] for i in range(n)]
            self.batches.append((recs, cpus))
            return n
        # decoded one by one in C as they are delivered or iterated
        self.pending.append(fast.Records(self.layout, data, n, self.stride, sizes, cpus))
        return n


#: async iteration consumes at least this often, whatever readiness says
ASYNC_RECHECK_S = 0.25


class _Reader(Closeable):
    """What RingBuffer and PerfBuffer share: sources, delivery, iteration, asyncio."""

    _kind = "reader"

    def __init__(self) -> None:
        self._ptr: Any = None
        self._sources: List[_Source] = []
        self._queue: Deque[Iterator[Any]] = deque()
        self._closed = False  # the C buffer is made by the first add(): _ptr can't tell

    def _check(self) -> Any:
        if self._ptr is None:
            raise ClosedError(self._kind)
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    # --- delivery -----------------------------------------------------------
    def _collect(self) -> None:
        for src in self._sources:
            if src.coll.count:
                src.take()
                if src.callback is None and not src.batch:
                    while src.pending:
                        self._queue.append(src.pending.popleft())

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
            if src.batch:
                while src.batches:
                    recs, cpus = src.batches.pop(0)
                    done += len(recs)
                    ret = cb(recs, cpus) if src.with_cpu else cb(recs)
                    if ret:
                        return done
                continue
            pending = src.pending
            while pending:
                recs = pending[0]
                before = len(recs)
                try:
                    stop = recs.deliver(cb)  # the per-record loop, in C
                finally:
                    done += before - len(recs)
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

    def _wait(self, timeout_ms: int) -> int:
        raise NotImplementedError

    def _consume_c(self) -> int:
        raise NotImplementedError

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for records and handle them.

        Returns the number of records handled by callbacks (records of maps
        without a callback are queued for iteration). Ctrl-C interrupts the wait.
        """
        self._check()
        if self._has_pending():
            n = self._deliver()
            if n:
                return n
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
            raise TypeError(f"timeout_ms must be an int, not {type(timeout_ms).__name__}")
        ret = self._wait(timeout_ms)
        self._collect()
        if ret < 0 and ret != -_errno.EINTR:
            check_ret(ret, f"poll {self._kind}")
        return self._deliver()

    def consume(self) -> int:
        """Handle every record available now, without waiting; returns the count handled."""
        self._check()
        n = self._deliver() if self._has_pending() else 0
        ret = self._consume_c()
        self._collect()
        if ret < 0 and ret != -_errno.EINTR:
            check_ret(ret, f"consume {self._kind}")
        return n + self._deliver()

    def fileno(self) -> int:
        """An epoll file descriptor, readable when records are available."""
        raise NotImplementedError

    # --- records without callbacks --------------------------------------------
    def _next_queued(self) -> Any:
        q = self._queue
        while q:
            try:
                return next(q[0])
            except StopIteration:
                q.popleft()
        raise LookupError

    def read(self, timeout_ms: int = 0) -> List[Any]:
        """Records of maps without a callback: what is queued, else what arrives
        within ``timeout_ms``."""
        self._check()
        if not self._queue:
            self.poll(timeout_ms)
        out: List[Any] = []
        while self._queue:
            out.extend(self._queue.popleft())
        return out

    def records(self, timeout_ms: int = -1) -> Iterator[Any]:
        """Iterate over records of maps without a callback; stops after ``timeout_ms``
        without any (never, with -1), or when the buffer is closed meanwhile."""
        self._check()
        while True:
            try:
                yield self._next_queued()
                continue
            except LookupError:
                pass
            if self._ptr is None:
                return
            self.poll(timeout_ms)
            if not self._queue and timeout_ms >= 0:
                try:
                    yield self._next_queued()
                except LookupError:
                    return

    def __iter__(self) -> Iterator[Any]:
        """Records of maps without a callback, forever (until closed)."""
        return self.records(-1)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._arecords()

    async def _arecords(self) -> AsyncIterator[Any]:
        while self._ptr is not None:
            try:
                yield self._next_queued()
                continue
            except LookupError:
                pass
            # perf events signal readiness edge-like (polling a perf fd clears its
            # wake-up), so a wake-up can be spent without its records being read:
            # consume at least every ASYNC_RECHECK_S as well
            await self.wait_readable(ASYNC_RECHECK_S)
            if self._ptr is None:
                return
            self.consume()

    async def wait_readable(self, timeout: Optional[float] = None) -> bool:
        """Wait (in asyncio) until records are available; False after ``timeout`` s."""
        import asyncio  # only async users pay for importing it

        loop = asyncio.get_running_loop()
        fd = self.fileno()
        fut: "asyncio.Future[None]" = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, ready)
        try:
            if timeout is None:
                await fut
            else:
                try:
                    await asyncio.wait_for(fut, timeout)
                except asyncio.TimeoutError:
                    return False
            return True
        finally:
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
    def read_batch(self, timeout_ms: int = 0, map: Optional[Map] = None) -> Any:
        """Batch mode: every record of ``map`` (default: the first batch map) that is
        queued or arrives within ``timeout_ms``, as one NumPy structured array (a list
        of bytes/memoryviews without NumPy or without a record type)."""
        self._check()
        srcs = [s for s in self._sources if s.batch and (map is None or s.map is map)]
        if not srcs:
            raise BPFError(_errno.EINVAL, "read_batch() needs a map added with batch=True "
                                          "and no callback")
        src = srcs[0]
        if not src.batches:
            self.poll(timeout_ms)
        parts, src.batches = src.batches, []
        arrays = [p[0] for p in parts]
        if src.dtype is not None:
            np = _numpy()
            if not arrays:
                return np.empty(0, src.dtype)
            return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        out: List[Any] = []
        for a in arrays:
            out.extend(a)
        return out

    # --- lifetime -----------------------------------------------------------
    def _free(self, ptr: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free the buffer; pending records are dropped. Idempotent."""
        self._closed = True
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._free(ptr)
        for src in self._sources:
            if src.coll is not None:
                lib.pylibbpf_collector_free(src.coll)
                src.coll = None
            src.target = None
            for recs in src.pending:
                recs.discard()  # a callback may be delivering from it right now
            src.pending.clear()
            src.batches.clear()
        self._sources.clear()
        self._queue.clear()


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
            if self._ptr is None:
                ptr = lib.ring_buffer__new(fd, lib.pylibbpf_rb_collect_fn(), coll,
                                           opts("ring_buffer_opts"))
                self._ptr = check_ptr(ptr, ffi.errno, f"ring buffer on map {map.name!r}")
            else:
                check_ret(lib.ring_buffer__add(self._ptr, fd, lib.pylibbpf_rb_collect_fn(),
                                               coll),
                          f"add map {map.name!r} to ring buffer")
        except BaseException:
            lib.pylibbpf_collector_free(coll)
            raise
        self._sources.append(_Source(map, codec, callback, batch, coll, False))

    def _aim(self) -> None:
        for src in self._sources:
            if src.batch and src.dtype is not None:
                src.aim(self._max)

    def _wait(self, timeout_ms: int) -> int:
        self._aim()
        return int(lib.pylibbpf_rb_poll(self._ptr, timeout_ms, self._max))

    def _consume_c(self) -> int:
        self._aim()
        return int(lib.ring_buffer__consume_n(self._ptr, self._max))

    def fileno(self) -> int:
        return int(lib.ring_buffer__epoll_fd(self._check()))

    def _free(self, ptr: Any) -> None:
        lib.ring_buffer__free(ptr)


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

