"""``Link``: one attachment of a program to a hook.

A Link owns either a libbpf ``struct bpf_link *`` (from libbpf's attach
functions), a bare link file descriptor (from ``BPF_LINK_CREATE``), or, for
attachments the kernel has no link object for (XDP through netlink, legacy
struct_ops), just the knowledge of how to undo them.

Lifetime rules:

* ``close()`` detaches the program and frees the Link; it is idempotent, and a
  Link is a context manager.
* A Link that is garbage-collected is closed, and so detached: keep a
  reference for as long as the program should stay attached, ``pin()`` it, or
  call ``disconnect()`` to let it live until the process exits.
* A pinned link stays attached after ``close()``, after its Object is closed
  and after the process exits, until its pin is removed (``unpin()``, or
  ``rm`` in bpffs) and every fd to it is closed.
* Closing the Object a Link's program came from first is safe: the kernel
  keeps the program alive for as long as the link exists, and a Link holds no
  pointer into its Object. The program keeps running until the Link is
  closed (or GC'd). Only operations that need the Object's programs or maps
  (``update()`` with one of them) then raise :class:`ClosedError`.
"""
from __future__ import annotations

import errno as _errno
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union

from ._ffi import ffi, lib, libbpf_log
from .errors import (BPFError, ClosedError, NotSupportedError, check_ptr, check_ret,
                     error_from_errno)
from .types import AttachType, LinkType

if TYPE_CHECKING:
    from .attach.iter import Iterator
    from .map import Map
    from .program import Program

__all__ = [
    "Link", "LinkInfo", "RawTracepointLinkInfo", "TracingLinkInfo", "CgroupLinkInfo",
    "IterLinkInfo", "NetnsLinkInfo", "XDPLinkInfo", "StructOpsLinkInfo", "NetfilterLinkInfo",
    "KprobeMultiLinkInfo", "UprobeMultiLinkInfo", "PerfEventLinkInfo", "TCXLinkInfo",
    "NetkitLinkInfo", "SockmapLinkInfo",
]

PathLike = Union[str, "os.PathLike[str]"]


# --- what the kernel reports (struct bpf_link_info) --------------------------------

@dataclass(frozen=True)
class LinkInfo:
    """What the kernel reports about a link (``bpf_link_info``).

    :attr:`Link.info` returns a subclass with the fields of the link's type,
    e.g. :class:`PerfEventLinkInfo` for tracepoints, kprobes and perf events.
    """

    type: Union[LinkType, int]
    id: int
    program_id: int


@dataclass(frozen=True)
class RawTracepointLinkInfo(LinkInfo):
    """A raw tracepoint link: ``tp_name`` is the tracepoint (e.g. ``"sys_enter"``)."""

    tp_name: str


@dataclass(frozen=True)
class TracingLinkInfo(LinkInfo):
    """A tracing link (fentry/fexit/fmod_ret/tp_btf, LSM, freplace).

    ``target_obj_id`` is the target program's id for freplace, otherwise the id
    of the BTF object (vmlinux or a module) holding ``target_btf_id``.
    """

    attach_type: Union[AttachType, int]
    target_obj_id: int
    target_btf_id: int


@dataclass(frozen=True)
class CgroupLinkInfo(LinkInfo):
    cgroup_id: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class IterLinkInfo(LinkInfo):
    """A bpf_iter link: ``target_name`` is e.g. ``"task"`` or ``"bpf_map_elem"``.

    ``map_id`` is set for map iterators, ``cgroup_id``/``cgroup_order`` for
    cgroup iterators, ``tid``/``pid`` for task iterators limited to a task.
    """

    target_name: str
    map_id: int
    cgroup_id: int
    cgroup_order: int
    tid: int
    pid: int


@dataclass(frozen=True)
class NetnsLinkInfo(LinkInfo):
    netns_ino: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class XDPLinkInfo(LinkInfo):
    ifindex: int


@dataclass(frozen=True)
class StructOpsLinkInfo(LinkInfo):
    map_id: int


@dataclass(frozen=True)
class NetfilterLinkInfo(LinkInfo):
    pf: int
    hooknum: int
    priority: int
    flags: int


@dataclass(frozen=True)
class KprobeMultiLinkInfo(LinkInfo):
    count: int
    flags: int
    missed: int


@dataclass(frozen=True)
class UprobeMultiLinkInfo(LinkInfo):
    path: str
    count: int
    flags: int
    pid: int


@dataclass(frozen=True)
class PerfEventLinkInfo(LinkInfo):
    """A link to a perf event: tracepoint, kprobe, uprobe, or a sampling event.

    ``event_type`` is ``"tracepoint"``, ``"kprobe"``, ``"kretprobe"``,
    ``"uprobe"``, ``"uretprobe"`` or ``"event"``; ``name`` the tracepoint,
    function or file; ``perf_type``/``config`` describe an ``"event"``.
    """

    event_type: str
    name: str
    offset: int
    addr: int
    missed: int
    cookie: int
    perf_type: int
    config: int


@dataclass(frozen=True)
class TCXLinkInfo(LinkInfo):
    ifindex: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class NetkitLinkInfo(LinkInfo):
    ifindex: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class SockmapLinkInfo(LinkInfo):
    map_id: int
    attach_type: Union[AttachType, int]


# Layout of struct bpf_link_info (include/uapi/linux/bpf.h, a stable ABI):
# type, id, prog_id (u32 each), then an 8-byte aligned union of per-type structs.
_U = 16
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

    def run(self, names: Optional[Dict[int, int]] = None) -> bytes:
        """``names``: offset of a pointer field -> buffer size to point it at.

        The u32 length field follows each pointer (8 bytes later).
        """
        info = ffi.new("struct bpf_link_info *")
        raw = ffi.buffer(info)
        self.keep = []
        for off, size in (names or {}).items():
            buf = ffi.new("char[]", size)
            self.keep.append(buf)
            struct.pack_into("=QI", raw, off, int(ffi.cast("uintptr_t", buf)), size)
        size_p = ffi.new("__u32 *", _info_size())
        check_ret(lib.bpf_link_get_info_by_fd(self.fd, info, size_p), self.what)
        return bytes(raw)

    def string(self, data: bytes, off: int) -> str:
        ptr, = struct.unpack_from("=Q", data, off)
        if not ptr:
            return ""
        return ffi.string(ffi.cast("char *", ptr)).decode("utf-8", "replace")


def _u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("=I", data, off)[0])


def _u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("=Q", data, off)[0])


def _query_info(fd: int, what: str) -> LinkInfo:
    q = _InfoQuery(fd, what)
    data = q.run()
    ltype = _enum(LinkType, _u32(data, 0))
    base = dict(type=ltype, id=_u32(data, 4), program_id=_u32(data, 8))
    if _info_size() < 64:  # headers older than the union we decode
        return LinkInfo(**base)

    def named(ptr_off: int) -> tuple[bytes, str]:
        need = _u32(data, ptr_off + 8)
        if not need:
            return data, ""
        again = q.run({ptr_off: max(need, 1) + 1})
        return again, q.string(again, ptr_off)

    if ltype == LinkType.RAW_TRACEPOINT:
        _, name = named(_U)
        return RawTracepointLinkInfo(**base, tp_name=name)
    if ltype == LinkType.TRACING:
        return TracingLinkInfo(**base, attach_type=_enum(AttachType, _u32(data, _U)),
                               target_obj_id=_u32(data, _U + 4),
                               target_btf_id=_u32(data, _U + 8))
    if ltype == LinkType.CGROUP:
        return CgroupLinkInfo(**base, cgroup_id=_u64(data, _U),
                              attach_type=_enum(AttachType, _u32(data, _U + 8)))
    if ltype == LinkType.ITER:
        full, name = named(_U)
        task_like = name.startswith("task")
        return IterLinkInfo(**base, target_name=name, map_id=_u32(full, _U + 12),
                            cgroup_id=0 if task_like else _u64(full, _U + 16),
                            cgroup_order=0 if task_like else _u32(full, _U + 24),
                            tid=_u32(full, _U + 16) if task_like else 0,
                            pid=_u32(full, _U + 20) if task_like else 0)
    if ltype == LinkType.NETNS:
        return NetnsLinkInfo(**base, netns_ino=_u32(data, _U),
                             attach_type=_enum(AttachType, _u32(data, _U + 4)))
    if ltype == LinkType.XDP:
        return XDPLinkInfo(**base, ifindex=_u32(data, _U))
    if ltype == LinkType.STRUCT_OPS:
        return StructOpsLinkInfo(**base, map_id=_u32(data, _U))
    if ltype == LinkType.NETFILTER:
        pf, hooknum, priority, flags = struct.unpack_from("=IIiI", data, _U)
        return NetfilterLinkInfo(**base, pf=pf, hooknum=hooknum, priority=priority,
                                 flags=flags)
    if ltype == LinkType.KPROBE_MULTI:
        return KprobeMultiLinkInfo(**base, count=_u32(data, _U + 8),
                                   flags=_u32(data, _U + 12), missed=_u64(data, _U + 16))
    if ltype == LinkType.UPROBE_MULTI:
        path = ""
        try:
            info = ffi.new("struct bpf_link_info *")
            raw = ffi.buffer(info)
            buf = ffi.new("char[]", 4096)
            struct.pack_into("=Q", raw, _U, int(ffi.cast("uintptr_t", buf)))
            struct.pack_into("=I", raw, _U + 32, 4096)
            size_p = ffi.new("__u32 *", _info_size())
            if lib.bpf_link_get_info_by_fd(fd, info, size_p) == 0:
                path = ffi.string(buf).decode("utf-8", "replace")
        except Exception:  # the path is a nicety; counts come from the first query
            path = ""
        return UprobeMultiLinkInfo(**base, path=path, count=_u32(data, _U + 36),
                                   flags=_u32(data, _U + 40), pid=_u32(data, _U + 44))
    if ltype == LinkType.PERF_EVENT:
        kind = _u32(data, _U)
        event_type = _PERF_TYPES.get(kind, str(kind))
        fields: Dict[str, Any] = dict(event_type=event_type, name="", offset=0, addr=0,
                                      missed=0, cookie=0, perf_type=0, config=0)
        if event_type in ("kprobe", "kretprobe"):
            full, name = named(_U + 8)
            fields.update(name=name, offset=_u32(full, _U + 20), addr=_u64(full, _U + 24),
                          missed=_u64(full, _U + 32), cookie=_u64(full, _U + 40))
        elif event_type in ("uprobe", "uretprobe"):
            full, name = named(_U + 8)
            fields.update(name=name, offset=_u32(full, _U + 20), cookie=_u64(full, _U + 24))
        elif event_type == "tracepoint":
            full, name = named(_U + 8)
            fields.update(name=name, cookie=_u64(full, _U + 24))
        elif event_type == "event":
            fields.update(config=_u64(data, _U + 8), perf_type=_u32(data, _U + 16),
                          cookie=_u64(data, _U + 24))
        return PerfEventLinkInfo(**base, **fields)
    if ltype == LinkType.TCX:
        return TCXLinkInfo(**base, ifindex=_u32(data, _U),
                           attach_type=_enum(AttachType, _u32(data, _U + 4)))
    if ltype == LinkType.NETKIT:
        return NetkitLinkInfo(**base, ifindex=_u32(data, _U),
                              attach_type=_enum(AttachType, _u32(data, _U + 4)))
    if ltype == LinkType.SOCKMAP:
        return SockmapLinkInfo(**base, map_id=_u32(data, _U),
                               attach_type=_enum(AttachType, _u32(data, _U + 4)))
    return LinkInfo(**base)


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

class Link:
    """An attached program. Use the ``Program.attach_*`` methods to make one.

    ``close()`` detaches (unless the link is pinned or disconnected) and is
    idempotent; a Link is a context manager, and garbage collection closes it
    too. See the module documentation for what happens when the Object of the
    program is closed first (nothing bad: the program stays attached until the
    Link is closed).
    """

    def __init__(self, *, ptr: Any = None, fd: int = -1, description: str = "link",
                 on_close: Optional[Callable[[], None]] = None,
                 on_release: Optional[Callable[[], None]] = None,
                 struct_ops: bool = False) -> None:
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
        self._pin_path: Optional[str] = None
        self._disconnected = False
        self._alive = True

    # --- construction -----------------------------------------------------
    @classmethod
    def _from_ptr(cls, ptr: Any, err: int, what: str, log: Any = None, *,
                  description: Optional[str] = None) -> "Link":
        check_ptr(ptr, err, what, libbpf_log=log.warnings if log else ())
        return cls(ptr=ptr, description=description or what)

    @classmethod
    def open_pinned(cls, path: PathLike) -> "Link":
        """Reopen a link pinned in bpffs at ``path``.

        The new Link refers to the same kernel link; closing it does not
        detach while the pin exists. ``unpin()`` on it removes ``path``.
        """
        path = os.fspath(path)
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
        if self._ptr is not None:
            return int(lib.bpf_link__fd(self._ptr))
        return self._fd

    def _link_fd(self, what: str) -> int:
        fd = self.fd
        if fd < 0:
            raise error_from_errno(_errno.EOPNOTSUPP,
                                   f"{what}: {self._description} is attached without a "
                                   "kernel link object (legacy attachment)")
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
        path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError("path must be a str or an os.PathLike of str")
        what = f"pin {self._description} at {path!r}"
        current = self.pin_path
        if current is not None:
            raise error_from_errno(_errno.EBUSY, f"{what}: already pinned at {current!r}")
        fd = self._link_fd(what)
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
        still needed. Link types without ``BPF_LINK_DETACH`` (tracepoints,
        perf events, raw tracepoints, tracing, iter) raise
        :class:`NotSupportedError`: close them instead.
        """
        self._check()
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
        try:
            if ptr is not None:
                lib.bpf_link__destroy(ptr)  # after disconnect(): frees, leaves it attached
            elif fd >= 0 and not self._disconnected:
                os.close(fd)
            if on_close is not None and not self._disconnected:
                on_close()
        finally:
            if on_release is not None:
                on_release()

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self.closed:
            return f"<pylibbpf.Link {self._description} closed>"
        return f"<pylibbpf.Link {self._description} fd={self.fd}>"
