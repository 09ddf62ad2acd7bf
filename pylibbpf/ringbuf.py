"""``RingBuffer``: events from one or more BPF ring-buffer maps.

Each record is handed to the map's callback as ``bytes``. An exception raised
in a callback stops consumption and is re-raised from :meth:`poll` /
:meth:`consume`.
"""
from __future__ import annotations

import errno as _errno
from typing import Any, Callable, List, Optional

from ._ffi import ffi, lib, opts
from .errors import BPFError, ClosedError, check_ptr, check_ret
from .map import Map
from .types import MapType

__all__ = ["RingBuffer"]

Callback = Callable[[bytes], Optional[int]]


class _Slot:
    """What the C callback's ctx points at: the callback and its ring buffer."""

    def __init__(self, rb: "RingBuffer", callback: Callback) -> None:
        self.rb = rb
        self.callback = callback


@ffi.def_extern()  # type: ignore[misc, untyped-decorator, unused-ignore]
def pylibbpf_ringbuf_cb(ctx: Any, data: Any, size: int) -> int:
    slot: _Slot = ffi.from_handle(ctx)
    try:
        ret = slot.callback(ffi.unpack(ffi.cast("char *", data), size))
        return int(ret) if ret else 0
    except BaseException as e:  # stored, re-raised when the C call returns
        slot.rb._error = e
        return -_errno.EINTR


class RingBuffer:
    """Consume records from ring-buffer maps: ``RingBuffer(map, callback)``.

    ``add(map, callback)`` adds more maps. ``poll(timeout_ms)`` waits for and
    handles records, ``consume()`` handles what is there without waiting,
    ``fileno()`` gives an epoll fd for ``select``. A callback returning a
    non-zero int stops the current poll early.
    """

    def __init__(self, map: Map, callback: Callback) -> None:
        self._ptr: Any = None
        self._slots: List[Any] = []  # handles libbpf holds pointers to
        self._maps: List[Map] = []
        self._error: Optional[BaseException] = None
        handle = self._slot(map, callback)
        ptr = lib.ring_buffer__new(map.fd, lib.pylibbpf_ringbuf_cb, handle,
                                   opts("ring_buffer_opts"))
        self._ptr = check_ptr(ptr, ffi.errno, f"ring buffer on map {map.name!r}")

    def _slot(self, map: Map, callback: Callback) -> Any:
        if not isinstance(map, Map):
            raise TypeError(f"map must be a pylibbpf.Map, not {type(map).__name__}")
        if not callable(callback):
            raise TypeError("callback must be callable")
        if map.type != MapType.RINGBUF:
            raise BPFError(_errno.EINVAL, f"map {map.name!r} is a {map.type.name.lower()} "
                                          "map, not a ringbuf")
        handle = ffi.new_handle(_Slot(self, callback))
        self._slots.append(handle)
        self._maps.append(map)
        return handle

    def add(self, map: Map, callback: Callback) -> None:
        """Also consume ``map``, handing its records to ``callback``."""
        self._check()
        handle = self._slot(map, callback)
        check_ret(lib.ring_buffer__add(self._ptr, map.fd, lib.pylibbpf_ringbuf_cb, handle),
                  f"add map {map.name!r} to ring buffer")

    def _check(self) -> None:
        if self._ptr is None:
            raise ClosedError("RingBuffer")

    def _finish(self, ret: int, what: str) -> int:
        err, self._error = self._error, None
        if err is not None:
            raise err
        if ret == -_errno.EINTR:
            return 0
        return check_ret(ret, what)

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) and handle records; returns their count."""
        self._check()
        return self._finish(lib.ring_buffer__poll(self._ptr, timeout_ms), "poll ring buffer")

    def consume(self) -> int:
        """Handle every record available now, without waiting; returns their count."""
        self._check()
        return self._finish(lib.ring_buffer__consume(self._ptr), "consume ring buffer")

    def fileno(self) -> int:
        """An epoll file descriptor, readable when records are available."""
        self._check()
        return int(lib.ring_buffer__epoll_fd(self._ptr))

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Free the ring buffer; pending records are dropped. Idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.ring_buffer__free(ptr)
        self._slots.clear()
        self._maps.clear()

    def __enter__(self) -> "RingBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
