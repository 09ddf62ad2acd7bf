"""Read what BPF programs print with ``bpf_printk()``: the kernel's trace pipe.

>>> from pylibbpf.trace_pipe import TracePipe
>>> with TracePipe() as tp:                                   # doctest: +SKIP
...     for ev in tp.read(timeout=1.0):
...         print(ev.pid, ev.comm, ev.message)

The trace pipe is one per machine and reading consumes it: two readers
share the lines between them. Lines that are not ``bpf_trace_printk`` output
(other tracers) come back with ``bpf=False``.
"""
from __future__ import annotations

import errno as _errno
import os
import re
import select
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional

from .errors import BPFNotFoundError, BPFPermissionError, error_from_errno

__all__ = ["TraceEvent", "TracePipe", "trace_pipe_path", "parse_line"]

_LINE = re.compile(r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
                   r"(?P<flags>\S+)\s+(?P<ts>[\d.]+):\s+(?P<func>[^:]+):\s?(?P<msg>.*)$")


@dataclass(frozen=True)
class TraceEvent:
    """One trace pipe line: the task that printed, where, when, and the message."""

    comm: str
    pid: int
    cpu: int
    flags: str
    timestamp: float
    #: the printing function, ``bpf_trace_printk`` for BPF programs
    function: str
    message: str
    line: str

    @property
    def bpf(self) -> bool:
        """True for lines printed by a BPF program."""
        return self.function.startswith("bpf_trace_printk")


def parse_line(line: str) -> Optional[TraceEvent]:
    """Parse one trace pipe line (None for lines in another format)."""
    m = _LINE.match(line.rstrip("\n"))
    if m is None:
        return None
    return TraceEvent(comm=m.group("comm").strip(), pid=int(m.group("pid")),
                      cpu=int(m.group("cpu")), flags=m.group("flags"),
                      timestamp=float(m.group("ts")), function=m.group("func").strip(),
                      message=m.group("msg"), line=line.rstrip("\n"))


def trace_pipe_path() -> str:
    """Where the trace pipe is (tracefs, or debugfs's tracing directory)."""
    denied = []
    for path in ("/sys/kernel/tracing/trace_pipe", "/sys/kernel/debug/tracing/trace_pipe"):
        try:
            os.stat(path)
        except PermissionError:
            denied.append(path)  # tracefs is there, but this user may not look in
            continue
        except OSError:
            continue
        return path
    if denied:
        raise BPFPermissionError(_errno.EACCES, f"cannot reach {denied[0]}: permission denied "
                                                "(tracefs is readable by root only: run as "
                                                "root)")
    raise BPFNotFoundError(_errno.ENOENT, "no trace_pipe: mount tracefs "
                                          "(mount -t tracefs tracefs /sys/kernel/tracing)")


class TracePipe:
    """The trace pipe, opened non-blocking; :meth:`read` waits up to a timeout."""

    def __init__(self, path: Optional[str] = None) -> None:
        self._fd: Optional[int] = None  # (so close() works if this fails below)
        self.path = path or trace_pipe_path()
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            raise error_from_errno(e.errno or _errno.EIO, f"open {self.path!r}") from None
        self._partial = b""

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("TracePipe is closed")
        return self._fd

    def read_lines(self, timeout: float = 0.0) -> List[str]:
        """The complete lines available now, waiting up to ``timeout`` seconds
        for the first one."""
        fd = self.fileno()
        deadline = time.monotonic() + timeout
        lines: List[str] = []
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = b""
            if chunk:
                data = self._partial + chunk
                *done, self._partial = data.split(b"\n")
                lines += [d.decode("utf-8", "replace") for d in done if d]
                continue
            left = deadline - time.monotonic()
            if lines or left <= 0:
                return lines
            select.select([fd], [], [], min(left, 0.1))

    def read(self, timeout: float = 0.0, *, bpf_only: bool = True) -> List[TraceEvent]:
        """Parsed :class:`TraceEvent` s available now (see :meth:`read_lines`)."""
        out = []
        for line in self.read_lines(timeout):
            ev = parse_line(line)
            if ev is not None and (ev.bpf or not bpf_only):
                out.append(ev)
        return out

    def __iter__(self) -> Iterator[TraceEvent]:
        """Every BPF line, forever (blocks between lines)."""
        while True:
            yield from self.read(1.0)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "TracePipe":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
