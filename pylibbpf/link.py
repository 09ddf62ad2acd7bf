"""``Link``: one attachment of a program to a hook.

A Link owns either a libbpf ``struct bpf_link *`` (from libbpf's attach
functions), a bare link file descriptor (from ``BPF_LINK_CREATE``), or, for
attachments the kernel has no link object for (XDP through netlink, legacy
struct_ops), just the knowledge of how to undo them.

Lifetime rules (the guide's "Who keeps a program attached"):

* A Link made from a program of an :class:`~pylibbpf.Object` is held by that
  Object: it stays attached while the Object is open, even when the Python
  handle is dropped (``prog.attach()`` with the result ignored traces, as in
  bcc), and is detached when the Object is closed (or garbage-collected).
  ``close()`` (or ``with link:``) detaches it earlier; it is idempotent.
* A program from ``Program.load_raw()`` holds its links the same way: they
  are detached by the program's ``close()``.
* Links opened with :meth:`Link.open_pinned`, :meth:`Link.from_id` or
  :meth:`Link.from_fd` belong to nobody else: closing (or garbage-collecting)
  them closes that handle.
* A pinned link stays attached after ``close()``, after its Object is closed
  and after the process exits, until its pin is removed (``unpin()``, or
  ``rm`` in bpffs) and every fd to it is closed. ``disconnect()`` lets a link
  live until the process exits.
* Composite attachments (USDT: one uprobe per call site, with no kernel link
  object) have ``fd == -1``; ``id``, ``info``, ``pin()`` and ``update()``
  raise :class:`~pylibbpf.NotSupportedError` saying why; ``detach()`` and
  ``close()`` remove every probe.
"""
from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union, overload
    from typing import Iterator as _Iter
    PathLike = Union[str, "os.PathLike[str]"]
else:
    def overload(f: object) -> object:  # typing.overload, not imported at run time
        return f

from ._owner import Closeable, LinkHolder
from ._bpffs import check_pin
from ._ffi import ffi, get_logger, lib, libbpf_log
from .errors import (BPFError, ClosedError, NotSupportedError, as_path, check_ptr, check_ret,
                     error_from_errno)
from .types import AttachType, LinkType

if TYPE_CHECKING:
    from .attach.iter import Iterator
    from .map import Map
    from .object import Object
    from .program import Program

__all__ = [
    "Link", "Links", "LinkInfo", "RawTracepointLinkInfo", "TracingLinkInfo", "CgroupLinkInfo",
    "IterLinkInfo", "NetnsLinkInfo", "XDPLinkInfo", "StructOpsLinkInfo", "NetfilterLinkInfo",
    "KprobeMultiLinkInfo", "UprobeMultiLinkInfo", "PerfEventLinkInfo", "TCXLinkInfo",
    "NetkitLinkInfo", "SockmapLinkInfo",
]


# --- what the kernel reports (struct bpf_link_info) --------------------------------
# The LinkInfo dataclasses live in _linkinfo.py, imported on first use (PEP 562):
# `pylibbpf.link.PerfEventLinkInfo` and `from pylibbpf.link import LinkInfo` work as
# before.
_INFO_NAMES = frozenset({
    "LinkInfo",
    "RawTracepointLinkInfo",
    "TracingLinkInfo",
    "CgroupLinkInfo",
    "IterLinkInfo",
    "NetnsLinkInfo",
    "XDPLinkInfo",
    "StructOpsLinkInfo",
    "NetfilterLinkInfo",
    "KprobeMultiLinkInfo",
    "UprobeMultiLinkInfo",
    "PerfEventLinkInfo",
    "TCXLinkInfo",
    "NetkitLinkInfo",
    "SockmapLinkInfo",
})

if TYPE_CHECKING:
    from ._linkinfo import (CgroupLinkInfo, IterLinkInfo, KprobeMultiLinkInfo, LinkInfo,
                            NetfilterLinkInfo, NetkitLinkInfo, NetnsLinkInfo,
                            PerfEventLinkInfo, RawTracepointLinkInfo, SockmapLinkInfo,
                            StructOpsLinkInfo, TCXLinkInfo, TracingLinkInfo,
                            UprobeMultiLinkInfo, XDPLinkInfo)


def __getattr__(name: str) -> Any:
    if name in _INFO_NAMES:
        from . import _linkinfo
        value = getattr(_linkinfo, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Layout of struct bpf_link_info (include/uapi/linux/bpf.h, a stable ABI): type, id,
# prog_id (u32 each), then an 8-byte aligned union of per-type structs. cffi cannot
# name the union's anonymous members, so their offsets are listed here, by the
# member path offsetof() takes; tests/test_link.py checks them against the header.
OFFSETS: Dict[str, int] = {
    "raw_tracepoint.tp_name": 16, "raw_tracepoint.tp_name_len": 24,
    "tracing.attach_type": 16, "tracing.target_obj_id": 20, "tracing.target_btf_id": 24,
    "cgroup.cgroup_id": 16, "cgroup.attach_type": 24,
    "iter.target_name": 16, "iter.target_name_len": 24, "iter.map.map_id": 28,
    "iter.cgroup.cgroup_id": 32, "iter.cgroup.order": 40, "iter.task.tid": 32,
    "iter.task.pid": 36,
    "netns.netns_ino": 16, "netns.attach_type": 20,
    "xdp.ifindex": 16,
    "struct_ops.map_id": 16,
    "netfilter.pf": 16, "netfilter.hooknum": 20, "netfilter.priority": 24,
    "netfilter.flags": 28,
    "kprobe_multi.count": 24, "kprobe_multi.flags": 28, "kprobe_multi.missed": 32,
    "uprobe_multi.path": 16, "uprobe_multi.path_size": 48, "uprobe_multi.count": 52,
    "uprobe_multi.flags": 56, "uprobe_multi.pid": 60,
    "perf_event.type": 16,
    "perf_event.uprobe.file_name": 24, "perf_event.uprobe.name_len": 32,
    "perf_event.uprobe.offset": 36, "perf_event.uprobe.cookie": 40,
    "perf_event.kprobe.func_name": 24, "perf_event.kprobe.name_len": 32,
    "perf_event.kprobe.offset": 36, "perf_event.kprobe.addr": 40,
    "perf_event.kprobe.missed": 48, "perf_event.kprobe.cookie": 56,
    "perf_event.tracepoint.tp_name": 24, "perf_event.tracepoint.name_len": 32,
    "perf_event.tracepoint.cookie": 40,
    "perf_event.event.config": 24, "perf_event.event.type": 32,
    "perf_event.event.cookie": 40,
    "tcx.ifindex": 16, "tcx.attach_type": 20,
    "netkit.ifindex": 16, "netkit.attach_type": 20,
    "sockmap.map_id": 16, "sockmap.attach_type": 20,
}
#: sizeof(struct bpf_link_info) with every member above
INFO_SIZE = 64
_PERF_TYPES = {1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint",
               6: "event"}
#: link types whose program can be replaced with BPF_LINK_UPDATE
UPDATABLE_TYPES = frozenset({LinkType.CGROUP, LinkType.ITER, LinkType.NETNS, LinkType.XDP,
                             LinkType.TCX, LinkType.NETKIT, LinkType.SOCKMAP})


def _enum(cls: Any, value: int) -> Any:
    try:
        return cls(value)
    except ValueError:
        return value


def _info_size() -> int:
    return int(ffi.sizeof("struct bpf_link_info"))


class _InfoQuery:
    """One BPF_OBJ_GET_INFO_BY_FD call on a link, with optional name buffers."""

    def __init__(self, fd: int, what: str) -> None:
        self.fd = fd
        self.what = what
        self.keep: list[Any] = []

    def run(self, names: Optional[Dict[int, Tuple[int, int]]] = None) -> bytes:
        """``names``: offset of a string pointer -> (offset of its u32 length, size)
        of a buffer to point it at."""
        info = ffi.new("struct bpf_link_info *")
        raw = ffi.buffer(info)
        self.keep = []
        for off, (len_off, size) in (names or {}).items():
            buf = ffi.new("char[]", size)
            self.keep.append(buf)
            struct.pack_into("=Q", raw, off, int(ffi.cast("uintptr_t", buf)))
            struct.pack_into("=I", raw, len_off, size)
        size_p = ffi.new("__u32 *", _info_size())
        check_ret(lib.bpf_link_get_info_by_fd(self.fd, info, size_p), self.what)
        return bytes(raw)

    def string(self, data: bytes, off: int) -> str:
        ptr, = struct.unpack_from("=Q", data, off)
        if not ptr:
            return ""
        return ffi.string(ffi.cast("char *", ptr)).decode("utf-8", "replace")


def _get(data: bytes, member: str) -> int:
    """Member ``member`` of a bpf_link_info (u32, or u64 for ids, addresses, cookies)."""
    wide = member.rsplit(".", 1)[-1] in ("cgroup_id", "missed", "addr", "cookie", "config")
    fmt = "=Q" if wide else "=i" if member == "netfilter.priority" else "=I"
    return int(struct.unpack_from(fmt, data, OFFSETS[member])[0])


def _query_info(fd: int, what: str) -> LinkInfo:
    from ._linkinfo import (CgroupLinkInfo, IterLinkInfo, KprobeMultiLinkInfo, LinkInfo,
                            NetfilterLinkInfo, NetkitLinkInfo, NetnsLinkInfo,
                            PerfEventLinkInfo, RawTracepointLinkInfo, SockmapLinkInfo,
                            StructOpsLinkInfo, TCXLinkInfo, TracingLinkInfo,
                            UprobeMultiLinkInfo, XDPLinkInfo)
    q = _InfoQuery(fd, what)
    data = q.run()
    ltype = _enum(LinkType, _u32(data, 0))
    base = dict(type=ltype, id=_u32(data, 4), program_id=_u32(data, 8))
    if _info_size() < INFO_SIZE:  # headers older than the union we decode
        return LinkInfo(**base)

    def named(ptr: str, length: str) -> tuple[bytes, str]:
        """Ask again with a buffer for the string at ``ptr`` (the kernel said how long)."""
        need = _get(data, length)
        if not need:
            return data, ""
        again = q.run({OFFSETS[ptr]: (OFFSETS[length], need + 1)})
        return again, q.string(again, OFFSETS[ptr])

    def attach_type(member: str) -> Union[AttachType, int]:
        return _enum(AttachType, _get(data, member))  # type: ignore[no-any-return]

    if ltype == LinkType.RAW_TRACEPOINT:
        _, name = named("raw_tracepoint.tp_name", "raw_tracepoint.tp_name_len")
        return RawTracepointLinkInfo(**base, tp_name=name)
    if ltype == LinkType.TRACING:
        return TracingLinkInfo(**base, attach_type=attach_type("tracing.attach_type"),
                               target_obj_id=_get(data, "tracing.target_obj_id"),
                               target_btf_id=_get(data, "tracing.target_btf_id"))
    if ltype == LinkType.CGROUP:
        return CgroupLinkInfo(**base, cgroup_id=_get(data, "cgroup.cgroup_id"),
                              attach_type=attach_type("cgroup.attach_type"))
    if ltype == LinkType.ITER:
        full, name = named("iter.target_name", "iter.target_name_len")
        task_like = name.startswith("task")
        cgroup_like = name.startswith("cgroup")
        return IterLinkInfo(**base, target_name=name, map_id=_get(full, "iter.map.map_id"),
                            cgroup_id=_get(full, "iter.cgroup.cgroup_id") if cgroup_like else 0,
                            cgroup_order=_get(full, "iter.cgroup.order") if cgroup_like else 0,
                            tid=_get(full, "iter.task.tid") if task_like else 0,
                            pid=_get(full, "iter.task.pid") if task_like else 0)
    if ltype == LinkType.NETNS:
        return NetnsLinkInfo(**base, netns_ino=_get(data, "netns.netns_ino"),
                             attach_type=attach_type("netns.attach_type"))
    if ltype == LinkType.XDP:
        return XDPLinkInfo(**base, ifindex=_get(data, "xdp.ifindex"))
    if ltype == LinkType.STRUCT_OPS:
        return StructOpsLinkInfo(**base, map_id=_get(data, "struct_ops.map_id"))
    if ltype == LinkType.NETFILTER:
        return NetfilterLinkInfo(**base, pf=_get(data, "netfilter.pf"),
                                 hooknum=_get(data, "netfilter.hooknum"),
                                 priority=_get(data, "netfilter.priority"),
                                 flags=_get(data, "netfilter.flags"))
    if ltype == LinkType.KPROBE_MULTI:
        return KprobeMultiLinkInfo(**base, count=_get(data, "kprobe_multi.count"),
                                   flags=_get(data, "kprobe_multi.flags"),
                                   missed=_get(data, "kprobe_multi.missed"))
    if ltype == LinkType.UPROBE_MULTI:
        path = ""
        try:  # the path is a nicety; the counts come from the first query
            full = q.run({OFFSETS["uprobe_multi.path"]: (OFFSETS["uprobe_multi.path_size"],
                                                         4096)})
            path = q.string(full, OFFSETS["uprobe_multi.path"])
        except BPFError:
            pass
        return UprobeMultiLinkInfo(**base, path=path, count=_get(data, "uprobe_multi.count"),
                                   flags=_get(data, "uprobe_multi.flags"),
                                   pid=_get(data, "uprobe_multi.pid"))
    if ltype == LinkType.PERF_EVENT and _get(data, "perf_event.type"):
        # (kernels before 6.6 report no details of perf_event links: type 0, and the
        # plain LinkInfo below; pylibbpf.system.support("perf_event_link_info"))
        kind = _get(data, "perf_event.type")
        event_type = _PERF_TYPES.get(kind, str(kind))
        fields: Dict[str, Any] = dict(event_type=event_type, name="", offset=0, addr=0,
                                      missed=0, cookie=0, perf_type=0, config=0)
        if event_type in ("kprobe", "kretprobe"):
            full, name = named("perf_event.kprobe.func_name", "perf_event.kprobe.name_len")
            fields.update(name=name, offset=_get(full, "perf_event.kprobe.offset"),
                          addr=_get(full, "perf_event.kprobe.addr"),
                          missed=_get(full, "perf_event.kprobe.missed"),
                          cookie=_get(full, "perf_event.kprobe.cookie"))
        elif event_type in ("uprobe", "uretprobe"):
            full, name = named("perf_event.uprobe.file_name", "perf_event.uprobe.name_len")
            fields.update(name=name, offset=_get(full, "perf_event.uprobe.offset"),
                          cookie=_get(full, "perf_event.uprobe.cookie"))
        elif event_type == "tracepoint":
            full, name = named("perf_event.tracepoint.tp_name",
                               "perf_event.tracepoint.name_len")
            fields.update(name=name, cookie=_get(full, "perf_event.tracepoint.cookie"))
        elif event_type == "event":
            fields.update(config=_get(data, "perf_event.event.config"),
                          perf_type=_get(data, "perf_event.event.type"),
                          cookie=_get(data, "perf_event.event.cookie"))
        return PerfEventLinkInfo(**base, **fields)
    if ltype == LinkType.TCX:
        return TCXLinkInfo(**base, ifindex=_get(data, "tcx.ifindex"),
                           attach_type=attach_type("tcx.attach_type"))
    if ltype == LinkType.NETKIT:
        return NetkitLinkInfo(**base, ifindex=_get(data, "netkit.ifindex"),
                              attach_type=attach_type("netkit.attach_type"))
    if ltype == LinkType.SOCKMAP:
        return SockmapLinkInfo(**base, map_id=_get(data, "sockmap.map_id"),
                               attach_type=attach_type("sockmap.attach_type"))
    return LinkInfo(**base)


def _u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("=I", data, off)[0])


def _fd_kind(fd: int) -> str:
    """"link", "map", "program" or "BPF object" for a bpf fd, from its fdinfo."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            text = f.read()
    except OSError:
        return "link"  # cannot tell; let the kernel decide
    if "link_type:" in text or "link_id:" in text:
        return "link"
    if "map_type:" in text:
        return "map"
    if "prog_type:" in text:
        return "program"
    return "BPF object"


# --- the Link ------------------------------------------------------------------------

#: why a USDT attachment has no link fd, id or info
USDT_COMPOSITE = ("a USDT attachment is one uprobe per call site (each its own perf event), "
                  "with no single kernel link object")

class Link(Closeable):
    """An attached program. Use the ``Program.attach_*`` methods to make one.

    The Object the program came from holds the Link: it stays attached until
    ``close()`` (or the end of a ``with link:`` block) or until the Object is
    closed, whichever comes first. Dropping the Python handle never detaches.
    ``close()`` detaches (unless the link is pinned or disconnected) and is
    idempotent. See the module documentation for the whole set of rules.
    """

    def __init__(self, *, ptr: Any = None, fd: int = -1, description: str = "link",
                 on_close: Optional[Callable[[], None]] = None,
                 on_release: Optional[Callable[[], None]] = None,
                 struct_ops: bool = False, made_from: Any = None,
                 needs_owner: bool = False, composite: Optional[str] = None) -> None:
        #: libbpf's struct bpf_link *, owned (bpf_link__destroy), or None
        self._ptr = ptr
        #: a link fd owned by this Link when there is no libbpf link
        self._fd = fd
        self._description = description
        #: undoes an attachment that has no kernel link (called by close/detach)
        self._on_close = on_close
        #: frees what the Link owns besides the link (always called once, on close)
        self._on_release = on_release
        #: ptr is a libbpf struct_ops link (bpf_link__update_map is valid on it)
        self._struct_ops = struct_ops
        #: why this attachment has no single kernel link (USDT: many uprobes), or None
        self._composite = composite
        self._pin_path: Optional[str] = None
        self._disconnected = False
        self._alive = True
        #: the Object (or standalone Program) that holds this Link: it keeps the
        #: Link attached while it lives and closes it when it closes
        self._holder = _holder_of(made_from)
        #: libbpf's link points into the Object's memory (USDT): it cannot be
        #: destroyed normally once the Object was closed
        self._needs_owner = needs_owner and self._holder is not None
        if self._holder is not None:
            self._holder._hold(self)

    # --- construction -----------------------------------------------------
    @classmethod
    def _from_ptr(cls, ptr: Any, err: int, what: str, log: Any = None, *,
                  description: Optional[str] = None, made_from: Any = None,
                  needs_owner: bool = False, composite: Optional[str] = None) -> "Link":
        check_ptr(ptr, err, what, libbpf_log=log.warnings if log else ())
        return cls(ptr=ptr, description=description or what, made_from=made_from,
                   needs_owner=needs_owner, composite=composite)

    @classmethod
    def open_pinned(cls, path: PathLike) -> "Link":
        """Reopen a link pinned in bpffs at ``path``.

        The new Link refers to the same kernel link; closing it does not
        detach while the pin exists. ``unpin()`` on it removes ``path``.
        """
        path = as_path(path)
        if not isinstance(path, str):
            raise TypeError("path must be a str or an os.PathLike of str")
        what = f"open pinned link {path!r}"
        if not os.path.exists(path):
            raise error_from_errno(_errno.ENOENT, f"{what}: no such pin")
        with libbpf_log() as log:
            ptr = lib.bpf_link__open(path.encode())
            err = ffi.errno
        link = cls._from_ptr(ptr, err, what, log, description=f"pinned link {path!r}")
        link._pin_path = path
        kind = _fd_kind(link.fd)
        if kind != "link":
            link.close()  # libbpf's "detach" of a reopened pin only closes the fd
            raise BPFError(_errno.EINVAL, f"{what}: that pin is a {kind}, not a link")
        ltype = link.info.type
        name = ltype.name.lower() if isinstance(ltype, LinkType) else "unknown"
        link._description = f"pinned {name} link {path!r}"
        return link

    @classmethod
    def from_id(cls, link_id: int) -> "Link":
        """Open the link with kernel id ``link_id`` (e.g. from ``bpftool link``).

        The new Link holds one more reference: closing it detaches only when it
        was the last one (no pin, no other fd)."""
        if isinstance(link_id, bool) or not isinstance(link_id, int):
            raise TypeError(f"link_id must be an int, not {type(link_id).__name__}")
        if not 0 < link_id < 1 << 32:
            raise ValueError(f"link ids are between 1 and 2**32-1, not {link_id}")
        fd = lib.bpf_link_get_fd_by_id(link_id)
        if fd < 0:
            err = ffi.errno
            if err == _errno.ENOENT:
                raise error_from_errno(err, f"open link id {link_id}: no such link")
            raise error_from_errno(err, f"open link id {link_id}")
        return cls._adopt_fd(int(fd), f"link id {link_id}")

    @classmethod
    def from_fd(cls, fd: int) -> "Link":
        """A Link for a link fd; the fd is duplicated, the caller keeps its own."""
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"fd must be an int, not {type(fd).__name__}")
        try:
            dup = os.dup(fd)
        except OSError as e:
            raise error_from_errno(e.errno or _errno.EBADF, f"link fd {fd}") from None
        kind = _fd_kind(dup)
        if kind != "link":
            os.close(dup)
            raise BPFError(_errno.EINVAL, f"fd {fd} is a {kind}, not a BPF link")
        return cls._adopt_fd(dup, f"link fd {fd}")

    @classmethod
    def _adopt_fd(cls, fd: int, label: str) -> "Link":
        link = cls(fd=fd, description=label)
        try:
            ltype = link.info.type
        except BPFError:
            link.close()
            raise
        name = ltype.name.lower() if isinstance(ltype, LinkType) else "unknown"
        link._description = f"{name} {label}"
        return link

    # --- state ------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return not self._alive

    def _check(self) -> None:
        if self.closed:
            raise ClosedError(f"Link ({self._description})")

    @property
    def fd(self) -> int:
        """The link's file descriptor (``-1`` for attachments without a kernel link)."""
        self._check()
        if self._composite is not None:
            return -1
        if self._ptr is not None:
            return int(lib.bpf_link__fd(self._ptr))
        return self._fd

    def _link_fd(self, what: str) -> int:
        fd = self.fd
        if fd < 0:
            why = self._composite or "it is attached without a kernel link object " \
                                     "(legacy attachment)"
            raise error_from_errno(_errno.EOPNOTSUPP,
                                   f"{what}: {self._description}: {why}; only close() "
                                   "and detach() apply to it", cls=NotSupportedError)
        return fd

    @property
    def pin_path(self) -> Optional[str]:
        """Where the link is pinned, or None."""
        self._check()
        if self._ptr is not None:
            p = lib.bpf_link__pin_path(self._ptr)
            return None if p == ffi.NULL else ffi.string(p).decode()
        return self._pin_path

    @property
    def info(self) -> LinkInfo:
        """What the kernel reports: type, ids, and the fields of the link's type
        (a :class:`LinkInfo` subclass such as :class:`PerfEventLinkInfo`)."""
        fd = self._link_fd("link info")
        return _query_info(fd, f"info of {self._description}")

    @property
    def id(self) -> int:
        """The kernel's id of the link."""
        return self.info.id

    # --- operations -------------------------------------------------------
    def pin(self, path: PathLike) -> None:
        """Pin the link in bpffs at ``path``: it then stays attached after
        ``close()``, after its Object is closed and after the process exits."""
        self._check()
        path = as_path(path)
        if not isinstance(path, str):
            raise TypeError("path must be a str or an os.PathLike of str")
        what = f"pin {self._description} at {path!r}"
        current = self.pin_path
        if current is not None:
            raise error_from_errno(_errno.EBUSY, f"{what}: already pinned at {current!r}")
        fd = self._link_fd(what)
        check_pin(path, what, libbpf_makes_parent=self._ptr is not None)
        with libbpf_log() as log:
            if self._ptr is not None:
                check_ret(lib.bpf_link__pin(self._ptr, path.encode()), what,
                          libbpf_log=log.warnings)
            else:
                check_ret(lib.bpf_obj_pin(fd, path.encode()), what)
        self._pin_path = path

    def unpin(self) -> None:
        """Remove the link's pin; the link then lives as long as this object."""
        self._check()
        path = self.pin_path
        if path is None:
            raise error_from_errno(_errno.EINVAL, f"unpin {self._description}: not pinned")
        what = f"unpin {self._description} from {path!r}"
        if self._ptr is not None:
            check_ret(lib.bpf_link__unpin(self._ptr), what)
        else:
            try:
                os.unlink(path)
            except OSError as e:
                raise error_from_errno(e.errno or _errno.ENOENT, what) from None
        self._pin_path = None

    def update(self, new: Union["Program", "Map"]) -> None:
        """Atomically replace the attached program by ``new``.

        Link types that support it: cgroup, iter, netns, xdp, tcx, netkit,
        sockmap. A struct_ops link is updated with another struct_ops
        :class:`~pylibbpf.Map` of the same type instead.
        """
        self._check()
        from .map import Map
        from .program import Program

        if isinstance(new, Map):
            self._update_map(new)
            return
        if not isinstance(new, Program):
            raise TypeError(f"update() takes a Program (or a struct_ops Map), "
                            f"not {type(new).__name__}")
        what = f"update {self._description} to program {new.name!r}"
        prog_fd = new.fd  # raises when the program (or its Object) is closed or not loaded
        fd = self._link_fd(what)
        ret = lib.bpf_link_update(fd, prog_fd, ffi.NULL)
        if ret < 0:
            err = -ret
            if err in (_errno.EINVAL, _errno.EOPNOTSUPP):
                ltype = self._type_or_none()
                if ltype is not None and ltype not in UPDATABLE_TYPES:
                    name = ltype.name.lower() if isinstance(ltype, LinkType) else str(ltype)
                    raise error_from_errno(
                        _errno.EOPNOTSUPP,
                        f"{what}: {name} links cannot be updated with another program "
                        "(the kernel supports it for cgroup, iter, netns, xdp, tcx, netkit "
                        "and sockmap links); close this link and attach the new program",
                        cls=NotSupportedError)
            raise error_from_errno(err, what, hint="the new program must have the same "
                                   "type and attach type as the attached one"
                                   if err == _errno.EINVAL else "")

    def _update_map(self, new: "Map") -> None:
        from .types import MapType

        what = f"update {self._description} to struct_ops map {new.name!r}"
        if new.type != MapType.STRUCT_OPS:
            raise BPFError(_errno.EINVAL, f"{what}: map {new.name!r} is of type "
                                          f"{new.type.name.lower()}, not struct_ops")
        if not self._struct_ops or self._ptr is None:
            raise BPFError(_errno.EINVAL, f"{what}: only a link made by "
                                          "Map.attach_struct_ops() can take a new map")
        if new._ptr is None:
            raise BPFError(_errno.EINVAL, f"{what}: the map must come from a loaded Object")
        new.fd  # raises when closed or not created
        with libbpf_log() as log:
            ret = lib.bpf_link__update_map(self._ptr, new._ptr)
        check_ret(ret, what, libbpf_log=log.warnings)

    def _type_or_none(self) -> Optional[Union[LinkType, int]]:
        try:
            return self.info.type
        except BPFError:
            return None

    def detach(self) -> None:
        """Detach the program now, even if the link is pinned or shared.

        The kernel keeps a defunct link until it is closed; ``close()`` is
        still needed. A composite attachment (USDT) has no kernel link to
        detach: ``detach()`` closes it. Link types without ``BPF_LINK_DETACH`` (tracepoints,
        perf events, raw tracepoints, tracing, iter) raise
        :class:`NotSupportedError`: close them instead.
        """
        self._check()
        if self._composite is not None:
            self.close()  # no kernel link to detach: remove every probe now
            return
        if self._ptr is None and self._fd < 0:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()
            return
        what = f"detach {self._description}"
        fd = self.fd
        if lib.bpf_link_detach(fd) < 0:
            err = ffi.errno
            if err == _errno.EOPNOTSUPP:
                ltype = self._type_or_none()
                name = ltype.name.lower() if isinstance(ltype, LinkType) else "this type of"
                raise error_from_errno(err, f"{what}: the kernel cannot detach {name} links "
                                            "while they are open; close() the link instead",
                                       cls=NotSupportedError)
            raise error_from_errno(err, what)

    def disconnect(self) -> None:
        """Let the attachment outlive this object: ``close()`` (and GC) will then
        free the Python side only, and the program stays attached until the
        process exits (its link fd is deliberately left open)."""
        self._check()
        if self._ptr is not None:
            lib.bpf_link__disconnect(self._ptr)
        self._disconnected = True

    def open_iter(self) -> "Iterator":
        """Start a walk of this bpf_iter link: an :class:`~pylibbpf.Iterator`
        whose ``read()``/``read_text()`` return what the program printed."""
        from .attach.iter import Iterator

        return Iterator(self)

    def close(self) -> None:
        """Detach (unless pinned or disconnected) and free. Idempotent."""
        if not getattr(self, "_alive", False):
            return
        ptr, fd, on_close, on_release = self._ptr, self._fd, self._on_close, self._on_release
        self._ptr, self._fd, self._on_close, self._on_release = None, -1, None, None
        self._alive = False
        holder, self._holder = self._holder, None
        try:
            if ptr is not None and self._needs_owner and holder is not None \
                    and getattr(holder, "closed", False):
                # libbpf would read the freed Object (USDT links): free our part only
                lib.bpf_link__disconnect(ptr)
                lib.bpf_link__destroy(ptr)
                if not self._disconnected:
                    get_logger().warning("%s was closed after its Object %r: its probes "
                                         "stay attached until the process exits",
                                         self._description, getattr(holder, "_label", "?"))
            elif ptr is not None:
                lib.bpf_link__destroy(ptr)  # after disconnect(): frees, leaves it attached
            elif fd >= 0 and not self._disconnected:
                os.close(fd)
            if on_close is not None and not self._disconnected:
                on_close()
        finally:
            if holder is not None:
                holder._release(self)
            if on_release is not None:
                on_release()

    def __repr__(self) -> str:
        if self.closed:
            return f"<pylibbpf.Link {self._description} closed>"
        return f"<pylibbpf.Link {self._description} fd={self.fd}>"


class Links(Sequence[Link]):
    """Several links, e.g. from :meth:`Object.attach_all`: a sequence of
    :class:`Link`, and a context manager whose exit (or :meth:`close`) closes
    them all, newest first.

    Dropping a ``Links`` detaches nothing: its links are held by the Object
    their programs came from, like every Link.
    """

    def __init__(self, links: Iterable[Link] = ()) -> None:
        self._links: List[Link] = list(links)

    @overload
    def __getitem__(self, index: int) -> Link: ...

    @overload
    def __getitem__(self, index: slice) -> List[Link]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Link, List[Link]]:
        return self._links[index]

    def __len__(self) -> int:
        return len(self._links)

    def __iter__(self) -> _Iter[Link]:
        return iter(list(self._links))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Links, list, tuple)):
            return self._links == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def closed(self) -> bool:
        """True when every link is closed."""
        return all(link.closed for link in self._links)

    def close(self) -> None:
        """Close (detach) every link, newest first. Idempotent."""
        first: Optional[BaseException] = None
        for link in reversed(self._links):
            try:
                link.close()
            except Exception as e:  # close the rest, then raise the first failure
                first = first or e
        if first is not None:
            raise first

    def __enter__(self) -> "Links":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._links and self.closed else ""
        return f"<pylibbpf.Links {len(self._links)} links{state}>"


def _holder_of(made_from: Any) -> Optional[LinkHolder]:
    """The Object of a program or map, or a standalone program itself."""
    if made_from is None:
        return None
    obj = getattr(made_from, "_obj", None)
    holder = obj if obj is not None else made_from
    if not isinstance(holder, LinkHolder) or getattr(holder, "closed", False):
        return None
    return holder
