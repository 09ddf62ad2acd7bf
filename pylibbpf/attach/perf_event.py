"""Perf events: a program on a perf event fd (``attach_perf_event``), and
sampling events opened on every CPU (:func:`open_perf_events`,
``Program.attach_perf_events``).

``perf_event_open(2)`` is called through ctypes; ``struct perf_event_attr``
is laid out as in ``include/uapi/linux/perf_event.h`` (a stable ABI; the
kernel accepts any published size).
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import platform
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .._owner import Closeable
from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import (BPFError, BPFNotFoundError, ClosedError, NotSupportedError,
                      error_from_errno)
from ..link import Link, Links, _holder_of
from ..types import ProgramType
from ._args import check_cookie, object_program
from ._common import require_type
from ._kinds import event_sources

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_perf_event", "open_perf_events", "PerfEvents", "PerfEventLinks",
           "online_cpus", "PERF_EVENTS"]

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1

#: event names accepted by open_perf_events -> (perf type, config)
PERF_EVENTS = {
    # software events (always available)
    "cpu-clock": (PERF_TYPE_SOFTWARE, 0),
    "task-clock": (PERF_TYPE_SOFTWARE, 1),
    "page-faults": (PERF_TYPE_SOFTWARE, 2),
    "context-switches": (PERF_TYPE_SOFTWARE, 3),
    "cpu-migrations": (PERF_TYPE_SOFTWARE, 4),
    "minor-faults": (PERF_TYPE_SOFTWARE, 5),
    "major-faults": (PERF_TYPE_SOFTWARE, 6),
    "alignment-faults": (PERF_TYPE_SOFTWARE, 7),
    "emulation-faults": (PERF_TYPE_SOFTWARE, 8),
    "dummy": (PERF_TYPE_SOFTWARE, 9),
    "cgroup-switches": (PERF_TYPE_SOFTWARE, 11),
    # hardware events (need a hardware PMU)
    "cpu-cycles": (PERF_TYPE_HARDWARE, 0),
    "cycles": (PERF_TYPE_HARDWARE, 0),
    "instructions": (PERF_TYPE_HARDWARE, 1),
    "cache-references": (PERF_TYPE_HARDWARE, 2),
    "cache-misses": (PERF_TYPE_HARDWARE, 3),
    "branch-instructions": (PERF_TYPE_HARDWARE, 4),
    "branches": (PERF_TYPE_HARDWARE, 4),
    "branch-misses": (PERF_TYPE_HARDWARE, 5),
    "bus-cycles": (PERF_TYPE_HARDWARE, 6),
    "stalled-cycles-frontend": (PERF_TYPE_HARDWARE, 7),
    "stalled-cycles-backend": (PERF_TYPE_HARDWARE, 8),
    "ref-cycles": (PERF_TYPE_HARDWARE, 9),
}

_SYS_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "loongarch64": 241,
                        "s390x": 331, "ppc64le": 319, "ppc64": 319, "armv7l": 364,
                        "i686": 336, "i386": 336}
PERF_ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7
PERF_FLAG_FD_CLOEXEC = 1 << 3
_ATTR_DISABLED = 1 << 0
_PERF_EVENT_IOC_ENABLE = 0x2400
_PERF_EVENT_IOC_DISABLE = 0x2401
_ATTR_FREQ = 1 << 10

_libc: Optional[ctypes.CDLL] = None


def _perf_event_open(attr: bytes, pid: int, cpu: int, group_fd: int, flags: int) -> int:
    """The raw syscall; returns the fd or raises OSError."""
    global _libc
    nr = _SYS_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise NotSupportedError(_errno.ENOSYS, "perf_event_open: pylibbpf does not know its "
                                               f"syscall number on {platform.machine()!r}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _libc.syscall(ctypes.c_long(nr), buf, ctypes.c_int(pid), ctypes.c_int(cpu),
                       ctypes.c_int(group_fd), ctypes.c_ulong(flags))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(fd)


def online_cpus() -> List[int]:
    """The online CPUs (``/sys/devices/system/cpu/online``)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: List[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def _event(event: Union[str, Tuple[int, int]]) -> Tuple[str, int, int]:
    if isinstance(event, str):
        key = event.strip().lower().replace("_", "-")
        if key not in PERF_EVENTS:
            raise ValueError(f"unknown perf event {event!r}; known: "
                             + ", ".join(sorted(PERF_EVENTS)) + " (or a (type, config) pair)")
        ptype, config = PERF_EVENTS[key]
        return key, ptype, config
    if (isinstance(event, tuple) and len(event) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in event)):
        return f"type {event[0]} config {event[1]:#x}", event[0], event[1]
    raise TypeError(f"event must be a name such as 'cpu-clock' or a (type, config) pair, "
                    f"not {event!r}")


def _attr(ptype: int, config: int, sample_period: Optional[int],
          sample_freq: Optional[int]) -> bytes:
    flags = _ATTR_DISABLED
    if sample_freq is not None:
        flags |= _ATTR_FREQ
        period_or_freq = sample_freq
    else:
        period_or_freq = sample_period or 0
    attr = bytearray(PERF_ATTR_SIZE)
    # type, size, config, sample_period|sample_freq, sample_type, read_format, flag bits
    struct.pack_into("=IIQQQQQ", attr, 0, ptype, PERF_ATTR_SIZE, config, period_or_freq,
                     0, 0, flags)
    return bytes(attr)


class PerfEvents(Closeable):
    """Perf events opened by :func:`open_perf_events`, one per CPU (or one per task).

    Owns the fds: ``close()`` closes them (idempotent; a context manager).
    ``attach(program)`` attaches a program to every event.
    """

    def __init__(self, fds: List[int], cpus: List[int], description: str) -> None:
        self._fds = fds
        self._closed = False
        #: the CPU of each event (-1: any CPU, for a per-process event)
        self.cpus = cpus
        self.description = description

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def fds(self) -> List[int]:
        """The perf event fds, in the order of :attr:`cpus`."""
        if self._closed:
            raise ClosedError(f"PerfEvents ({self.description})")
        return list(self._fds)

    def __len__(self) -> int:
        return len(self._fds)

    def __iter__(self) -> Iterator[int]:
        return iter(self.fds)

    def attach(self, program: "Program", *, cookie: int = 0,
               dont_enable: bool = False) -> "PerfEventLinks":
        """Attach ``program`` to every event; the result's ``close()`` detaches it
        (the events stay open: they belong to this object). ``dont_enable``
        leaves the events disabled: the program runs once :meth:`enable` is called."""
        return PerfEventLinks(_attach_each(program, self.fds, cookie, dont_enable), None)

    def enable(self) -> None:
        """Start counting and sampling on every event (``PERF_EVENT_IOC_ENABLE``)."""
        self._ioctl(_PERF_EVENT_IOC_ENABLE, "enable")

    def disable(self) -> None:
        """Stop every event (``PERF_EVENT_IOC_DISABLE``): an attached program stops running."""
        self._ioctl(_PERF_EVENT_IOC_DISABLE, "disable")

    def _ioctl(self, request: int, what: str) -> None:
        import fcntl

        for fd in self.fds:
            try:
                fcntl.ioctl(fd, request, 0)
            except OSError as e:
                raise error_from_errno(e.errno or _errno.EINVAL,
                                       f"{what} perf event fd {fd} ({self.description})") from None

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        fds, self._fds = self._fds, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<pylibbpf.PerfEvents {self.description} on {len(self._fds)} fds>"


class PerfEventLinks(Links):
    """A program attached to several perf events (one :class:`Link` each).

    Like every Link, they stay attached while the program's Object is open,
    even when this object is dropped. ``close()`` closes every link, and the
    events too when they were opened for it (``Program.attach_perf_events``).
    Idempotent; a context manager.
    """

    def __init__(self, links: List[Link], events: Optional[PerfEvents],
                 made_from: Any = None) -> None:
        super().__init__(links)
        self._events = events
        self._closed = False
        holder = _holder_of(made_from) if events is not None else None
        if holder is not None:
            holder._hold(self)  # the events live as long as the links
        self._holder = holder

    @property
    def links(self) -> List[Link]:
        if self._closed:
            raise ClosedError("PerfEventLinks")
        return list(self._links)

    @property
    def events(self) -> Optional[PerfEvents]:
        """The perf events this object owns (None when it does not own them)."""
        return self._events

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> Iterator[Link]:
        return iter(self.links)

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        links, self._links = self._links, []
        holder, self._holder = self._holder, None
        try:
            for link in reversed(links):
                link.close()
        finally:
            if self._events is not None:
                self._events.close()
            if holder is not None:
                holder._release(self)

    def __repr__(self) -> str:
        return f"<pylibbpf.PerfEventLinks {len(self._links)} links{' closed' if self._closed else ''}>"


def _check_int(value: Any, name: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def open_perf_events(event: Union[str, Tuple[int, int]] = "cpu-clock", *,
                     sample_period: Optional[int] = None, sample_freq: Optional[int] = None,
                     cpus: Optional[Iterable[int]] = None, pid: int = -1) -> PerfEvents:
    """Open a sampling perf event on every online CPU (or on ``cpus``).

    ``event``: a name from :data:`PERF_EVENTS` (software: ``"cpu-clock"``,
    ``"task-clock"``, ``"page-faults"`` …; hardware: ``"cycles"``,
    ``"instructions"`` …) or a raw ``(type, config)`` pair. Sampling: every
    ``sample_period`` events, or ``sample_freq`` times a second (default
    ``sample_freq=1000`` when neither is given). ``pid=-1`` watches every task
    on each CPU; a pid watches only that process (then ``cpus`` may be
    ``[-1]``: any CPU). The events are opened disabled; attaching a program
    enables them.
    """
    name, ptype, config = _event(event)
    if sample_period is not None and sample_freq is not None:
        raise ValueError("give sample_period or sample_freq, not both")
    if sample_period is not None:
        _check_int(sample_period, "sample_period", minimum=1)
    elif sample_freq is not None:
        _check_int(sample_freq, "sample_freq", minimum=1)
    else:
        sample_freq = 1000
    _check_int(pid, "pid", minimum=-1)
    cpu_list = online_cpus() if cpus is None else list(cpus)
    for cpu in cpu_list:
        _check_int(cpu, "cpu", minimum=-1)
    if not cpu_list:
        raise ValueError("cpus must not be empty")
    if pid == -1 and -1 in cpu_list:
        raise ValueError("cpu -1 (any CPU) needs a pid: an event cannot watch every task "
                         "on every CPU")
    attr = _attr(ptype, config, sample_period, sample_freq)
    fds: List[int] = []
    try:
        for cpu in cpu_list:
            try:
                fds.append(_perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC))
            except OSError as e:
                raise _open_error(e.errno or _errno.EINVAL, name, ptype, cpu, pid) from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    where = f"pid {pid}" if pid != -1 else "all tasks"
    return PerfEvents(fds, cpu_list, f"{name!r} ({where})")


def _open_error(err: int, name: str, ptype: int, cpu: int, pid: int) -> BPFError:
    what = f"open perf event {name!r} on CPU {cpu}" + (f" for pid {pid}" if pid != -1 else "")
    if ptype == PERF_TYPE_HARDWARE and err in (_errno.ENOENT, _errno.EOPNOTSUPP,
                                                _errno.ENODEV, _errno.EINVAL):
        pmus = event_sources()
        hw = [p for p in pmus if p.startswith("cpu") or "pmu" in p or p.startswith("arm")]
        if not hw:
            return NotSupportedError(err, f"{what}: this machine exposes no hardware PMU, so "
                                          "hardware perf events cannot be counted (PMUs in "
                                          "/sys/bus/event_source/devices: "
                                          f"{', '.join(pmus) or 'none'}); use a software "
                                          "event such as 'cpu-clock'")
    if err == _errno.ESRCH:
        return BPFNotFoundError(err, f"{what}: no process {pid}")
    if err == _errno.ENODEV and cpu >= 0:
        return BPFNotFoundError(err, f"{what}: CPU {cpu} is not online")
    if err == _errno.EACCES:
        return error_from_errno(err, what, hint="system-wide perf events need CAP_PERFMON "
                                "(or kernel.perf_event_paranoid <= 0)")
    return error_from_errno(err, what)


def attach_perf_event(prog: "Program", perf_fd: int, *, cookie: int = 0,
                      dont_enable: bool = False) -> Link:
    """Attach ``prog`` to the perf event ``perf_fd`` and enable the event (unless
    ``dont_enable``: then the caller enables it, ``PERF_EVENT_IOC_ENABLE``).

    The caller keeps ``perf_fd``: libbpf gets a duplicate, which the Link closes.
    """
    if isinstance(perf_fd, bool) or not isinstance(perf_fd, int):
        raise TypeError(f"perf_fd must be an int, not {type(perf_fd).__name__}")
    if perf_fd < 0:
        raise ValueError(f"perf_fd must be a file descriptor, not {perf_fd}")
    check_cookie(cookie)
    what = f"attach program {prog.name!r} to perf event fd {perf_fd}"
    require_type(prog, what, ProgramType.PERF_EVENT, ProgramType.TRACEPOINT,
                 ProgramType.KPROBE)
    object_program(prog, what)
    try:
        dup = os.dup(perf_fd)
    except OSError as e:
        raise error_from_errno(e.errno or _errno.EBADF, what) from None
    o = opts("bpf_perf_event_opts", bpf_cookie=cookie, dont_enable=bool(dont_enable))
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_perf_event_opts(prog._ptr, dup, o)
        err = ffi.errno
    if ptr == ffi.NULL:
        os.close(dup)
        if err in (_errno.EBADF, _errno.ENOTTY):
            raise BPFError(err, f"{what}: fd {perf_fd} is not a perf event",
                           libbpf_log=log.warnings)
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"perf event fd {perf_fd} ({prog.name!r})")


def attach_perf_events(prog: "Program", event: Union[str, Tuple[int, int]] = "cpu-clock", *,
                       sample_period: Optional[int] = None, sample_freq: Optional[int] = None,
                       cpus: Optional[Sequence[int]] = None, pid: int = -1,
                       cookie: int = 0, dont_enable: bool = False) -> PerfEventLinks:
    what = f"attach program {prog.name!r} to perf events"
    require_type(prog, what, ProgramType.PERF_EVENT)
    check_cookie(cookie)
    object_program(prog, what)
    events = open_perf_events(event, sample_period=sample_period, sample_freq=sample_freq,
                              cpus=cpus, pid=pid)
    try:
        links = _attach_each(prog, events.fds, cookie, dont_enable)
    except BaseException:
        events.close()
        raise
    return PerfEventLinks(links, events, made_from=prog)


def _attach_each(prog: "Program", fds: List[int], cookie: int,
                 dont_enable: bool = False) -> List[Link]:
    links: List[Link] = []
    try:
        for fd in fds:
            links.append(attach_perf_event(prog, fd, cookie=cookie, dont_enable=dont_enable))
    except BaseException:
        for link in links:
            link.close()
        raise
    return links
