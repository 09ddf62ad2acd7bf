"""tc: a direct-action cls_bpf filter on an interface's clsact qdisc (netlink).

The clsact qdisc is created when the interface has none, and destroyed when
the last of our filters on it goes, if we created it. A filter is removed in
the network namespace where it was added, wherever its Link is closed.
"""
from __future__ import annotations

import errno as _errno
import threading
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import check_ret, error_from_errno
from ..link import Link
from ..types import ProgramType
from ._common import require_type, resolve_ifindex
from ._net import NetnsRef
from .tcx import check_u32, ifname

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_tc", "tc_query", "TCLink"]

_POINTS = {"ingress": lib.BPF_TC_INGRESS, "egress": lib.BPF_TC_EGRESS}


@dataclass
class _Qdisc:
    created: bool
    users: int = 0
    netns: Optional[NetnsRef] = field(default=None, repr=False)


#: clsact qdiscs we hold filters on: (netns inode, ifindex) -> state
_QDISCS: Dict[Tuple[int, int], _Qdisc] = {}
_LOCK = threading.RLock()  # a Link finalized by the GC may close while we hold it


class TCLink(Link):
    """A tc filter: ``interface``, ``direction``, ``handle`` and ``priority``."""

    def __init__(self, *, description: str, interface: str, direction: str, handle: int,
                 priority: int, on_close: Callable[[], None], made_from: Any = None) -> None:
        super().__init__(description=description, on_close=on_close, made_from=made_from)
        self.interface = interface
        self.direction = direction
        self.handle = handle
        self.priority = priority


def _point(direction: str) -> int:
    if not isinstance(direction, str):
        raise TypeError(f"direction must be a str, not {type(direction).__name__}")
    key = direction.strip().lower()
    if key not in _POINTS:
        raise ValueError(f"unknown tc direction {direction!r}; use ingress or egress")
    return int(_POINTS[key])


def _hook(ifindex: int, point: int) -> object:
    return opts("bpf_tc_hook", ifindex=ifindex, attach_point=point)


def attach_tc(prog: "Program", interface: Union[str, int], *, direction: str = "ingress",
              priority: int = 0, handle: int = 0, replace: bool = False) -> TCLink:
    point = _point(direction)
    ifindex = resolve_ifindex(interface)
    if check_u32(priority, "priority") > 0xFFFF:
        raise ValueError(f"tc priority must be between 0 and 65535, not {priority}")
    check_u32(handle, "handle")
    name = ifname(ifindex)
    direction = direction.strip().lower()
    what = f"attach tc program {prog.name!r} to {name!r} {direction}"
    require_type(prog, what, ProgramType.SCHED_CLS)
    prog_fd = prog.fd
    netns = NetnsRef()
    key = (netns.inode, ifindex)
    try:
        with _LOCK, libbpf_log() as log:
            ret = lib.bpf_tc_hook_create(_hook(ifindex, point))
            if ret < 0 and ret != -_errno.EEXIST:
                check_ret(ret, f"{what}: create clsact qdisc", libbpf_log=log.warnings)
            state = _QDISCS.get(key)
            if ret == 0 or state is None:
                state = _QDISCS[key] = _Qdisc(created=ret == 0)
            o = opts("bpf_tc_opts", prog_fd=prog_fd, handle=handle, priority=priority,
                     flags=lib.BPF_TC_F_REPLACE if replace else 0)
            ret = lib.bpf_tc_attach(_hook(ifindex, point), o)
            if ret < 0:
                if state.users == 0:
                    _release(key, state, ifindex)
                hint = ("a filter with this handle and priority exists; pass replace=True"
                        if ret == -_errno.EEXIST else "")
                check_ret(ret, what, libbpf_log=log.warnings, hint=hint)
            state.users += 1
            got_handle, got_prio = int(o.handle), int(o.priority)
    except BaseException:
        netns.close()
        raise

    def detach() -> None:
        try:
            with _LOCK, netns.entered():
                d = opts("bpf_tc_opts", handle=got_handle, priority=got_prio)
                ret = lib.bpf_tc_detach(_hook(ifindex, point), d)
                state.users -= 1
                if state.users == 0:
                    _release(key, state, ifindex)
                if ret < 0 and ret != -_errno.ENOENT:
                    raise error_from_errno(-ret, f"detach tc program {prog_name!r} from "
                                                 f"{name!r} {direction}")
        finally:
            netns.close()

    prog_name = prog.name
    return TCLink(made_from=prog, description=f"tc {direction} {prog_name!r} on {name!r} handle "
                              f"{got_handle:#x} priority {got_prio}",
                  interface=name, direction=direction, handle=got_handle, priority=got_prio,
                  on_close=detach)


def _release(key: Tuple[int, int], state: _Qdisc, ifindex: int) -> None:
    """Our last filter is gone: destroy the qdisc if we created it (lock held)."""
    if _QDISCS.get(key) is state:
        del _QDISCS[key]
    if state.created:
        lib.bpf_tc_hook_destroy(_hook(ifindex, lib.BPF_TC_INGRESS | lib.BPF_TC_EGRESS))


def tc_query(interface: Union[str, int], *, direction: str = "ingress", handle: int,
             priority: int) -> int:
    """The id of the program in the tc filter at ``handle``/``priority`` (0 when none)."""
    point = _point(direction)
    ifindex = resolve_ifindex(interface)
    o = opts("bpf_tc_opts", handle=check_u32(handle, "handle"),
             priority=check_u32(priority, "priority"))
    with libbpf_log() as log:
        ret = lib.bpf_tc_query(_hook(ifindex, point), o)
    if ret in (-_errno.ENOENT, -_errno.EINVAL) and handle and priority:
        return 0
    check_ret(ret, f"query tc {direction} filter {handle:#x}/{priority} on "
                   f"{ifname(ifindex)!r}", libbpf_log=log.warnings)
    return int(o.prog_id)
