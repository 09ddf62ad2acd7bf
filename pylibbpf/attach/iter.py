"""bpf_iter: a program that walks kernel objects (tasks, map elements, …)
and prints into a seq_file. ``attach_iter`` makes the link;
:class:`Iterator` (``Link.open_iter()``) runs one walk and reads its output."""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Union

from .._owner import Closeable
from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import BPFError, ClosedError, error_from_errno
from ..link import Link
from ..types import AttachType, ProgramType
from ._args import object_program, section_target
from ._common import require_type

if TYPE_CHECKING:
    from ..map import Map
    from ..program import Program

__all__ = ["attach_iter", "Iterator"]

#: iterator targets that walk one map, given with map=
MAP_TARGETS = ("bpf_map_elem", "bpf_sk_storage_map", "sockmap")


#: cgroup iterator walk orders (enum bpf_cgroup_iter_order)
CGROUP_ORDERS = {
    "self_only": 1, "descendants_pre": 2, "descendants_post": 3, "ancestors_up": 4,
}


def attach_iter(prog: "Program", *, map: Optional["Map"] = None, tid: int = 0,
                pid: int = 0, cgroup: Union[str, "os.PathLike[str]", int, None] = None,
                order: Optional[str] = None) -> Link:
    what = f"attach iterator program {prog.name!r}"
    require_type(prog, what, ProgramType.TRACING)
    prog._check_has_ptr(what)
    if prog.expected_attach_type != AttachType.TRACE_ITER:
        raise BPFError(_errno.EINVAL, f"{what}: it is not an iterator (SEC {prog.section!r}); "
                                      "iterators have SEC(\"iter/<target>\")")
    target = section_target(prog, ("iter", "iter.s"))
    if target is not None:
        what = f"attach {target} iterator {prog.name!r}"
        if target in MAP_TARGETS and map is None:
            raise ValueError(f"{what}: a {target} iterator walks one map; give map=")
        if map is not None and target not in MAP_TARGETS:
            raise ValueError(f"{what}: map= is for {', '.join(MAP_TARGETS)} iterators")
    for name, value in (("tid", tid), ("pid", pid)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 32:
            raise ValueError(f"{name} must be a process/thread id, not {value!r}")
    if (tid or pid) and target is not None and not target.startswith("task"):
        raise ValueError(f"{what}: tid=/pid= are for task iterators")
    if tid and pid:
        raise ValueError("give tid or pid, not both")
    order_num = 0
    if cgroup is not None or order is not None:
        if target is not None and target != "cgroup":
            raise ValueError(f"{what}: cgroup=/order= are for cgroup iterators")
        key = (order or "descendants_pre").strip().lower().replace("-", "_")
        if key not in CGROUP_ORDERS:
            raise ValueError(f"unknown cgroup walk order {order!r}; use "
                             + ", ".join(CGROUP_ORDERS))
        order_num = CGROUP_ORDERS[key]
    object_program(prog, what)
    keep: List[Any] = []
    o = opts("bpf_iter_attach_opts")
    own_fd = -1
    if map is not None or tid or pid or order_num:
        info = ffi.new("union bpf_iter_link_info *")
        keep.append(info)
        if map is not None:
            info.map.map_fd = map.fd
            what += f" over map {map.name!r}"
        elif order_num:
            info.cgroup.order = order_num
            if isinstance(cgroup, bool):
                raise TypeError("cgroup must be a path, an fd or None, not bool")
            if isinstance(cgroup, int):
                if cgroup < 0:
                    raise ValueError(f"cgroup fd must be non-negative, not {cgroup}")
                info.cgroup.cgroup_fd = cgroup
                what += f" from cgroup fd {cgroup}"
            elif cgroup is not None:
                path = os.fspath(cgroup)
                if not isinstance(path, str):
                    raise TypeError("cgroup must be a path, an fd or None")
                try:
                    own_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
                except OSError as e:
                    raise error_from_errno(e.errno or _errno.ENOENT,
                                           f"{what}: open cgroup {path!r}") from None
                info.cgroup.cgroup_fd = own_fd
                what += f" from cgroup {path!r}"
        else:  # the same union: map_fd and task.tid share their bytes
            info.task.tid = tid
            info.task.pid = pid
        o.link_info = info
        o.link_info_len = ffi.sizeof("union bpf_iter_link_info")
    try:
        with libbpf_log() as log:
            ptr = lib.bpf_program__attach_iter(prog._ptr, o)
            err = ffi.errno
    finally:
        if own_fd >= 0:
            os.close(own_fd)  # the link holds its own reference to the cgroup
    del keep
    if ptr == ffi.NULL:
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=what[len("attach "):])


class Iterator(Closeable):
    """One walk of a bpf_iter link (``BPF_ITER_CREATE``): the program runs as
    the output is read. ``read()`` returns everything as bytes, ``read_text()``
    as text; iterate for lines. Closes its fd at EOF-read, on ``close()`` and
    as a context manager. Each :meth:`Link.open_iter` starts a fresh walk."""

    CHUNK = 1 << 16

    def __init__(self, link: Link) -> None:
        self._fd = -1
        what = f"open iterator of {link._description}"
        fd = lib.bpf_iter_create(link._link_fd(what))
        if fd < 0:
            raise error_from_errno(ffi.errno, what)
        self._fd = int(fd)
        self._what = link._description

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        if self._fd < 0:
            raise ClosedError(f"Iterator ({self._what})")
        return self._fd

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left with -1)."""
        fd = self.fileno()
        chunks: List[bytes] = []
        left = size
        while left != 0:
            try:
                data = os.read(fd, self.CHUNK if left < 0 else min(left, self.CHUNK))
            except OSError as e:
                raise error_from_errno(e.errno or _errno.EIO,
                                       f"read iterator ({self._what})") from None
            if not data:
                break
            chunks.append(data)
            if left > 0:
                left -= len(data)
        return b"".join(chunks)

    def read_text(self, encoding: str = "utf-8", errors: str = "replace") -> str:
        """All remaining output, decoded."""
        return self.read().decode(encoding, errors)

    def __iter__(self) -> "Iterator":
        self._pending = b""
        return self

    def __next__(self) -> str:
        pending: bytes = getattr(self, "_pending", b"")
        while b"\n" not in pending:
            data = self.read(self.CHUNK) if not self.closed else b""
            if not data:
                self._pending = b""
                if pending:
                    return pending.decode("utf-8", "replace")
                raise StopIteration
            pending += data
        line, _, rest = pending.partition(b"\n")
        self._pending = rest
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<pylibbpf.Iterator {self._what}{' closed' if self.closed else ''}>"
