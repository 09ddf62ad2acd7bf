"""XDP: a program on a network interface, as a bpf_link or through netlink."""
from __future__ import annotations

import errno as _errno
import socket
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

from .._ffi import ffi, lib, opts
from ..errors import (ENOTSUPP, BPFError, NotSupportedError, check_ret, errno_name,
                      error_from_errno)
from ..link import Link
from ..types import AttachType, ProgramType
from ._common import require_type, resolve_ifindex
from ._net import NetnsRef

if TYPE_CHECKING:
    from ..program import Program

_MODES = {
    None: 0,
    "generic": lib.XDP_FLAGS_SKB_MODE, "skb": lib.XDP_FLAGS_SKB_MODE,
    "driver": lib.XDP_FLAGS_DRV_MODE, "native": lib.XDP_FLAGS_DRV_MODE,
    "drv": lib.XDP_FLAGS_DRV_MODE,
    "offload": lib.XDP_FLAGS_HW_MODE, "hw": lib.XDP_FLAGS_HW_MODE,
}


def mode_flags(mode: Optional[str]) -> int:
    if mode is not None and not isinstance(mode, str):
        raise TypeError(f"mode must be a str or None, not {type(mode).__name__}")
    key = mode.lower() if mode else None
    if key not in _MODES:
        raise ValueError(f"unknown XDP mode {mode!r}; use generic, driver or offload")
    return int(_MODES[key])


def _ifname(ifindex: int) -> str:
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return str(ifindex)


def _offload_error(err: int, what: str, name: str) -> BPFError:
    return error_from_errno(
        _errno.EOPNOTSUPP, f"{what}: XDP offload (hw) mode is not supported here",
        cls=NotSupportedError,
        hint=f"offload needs a NIC that runs BPF ({name!r} does not, or the program was not "
             f"loaded for it); the kernel said {errno_name(err)}")


def attach_xdp(prog: "Program", interface: Union[str, int], *, mode: Optional[str] = None,
               legacy: bool = False, replace: bool = False) -> Link:
    ifindex = resolve_ifindex(interface)
    flags = mode_flags(mode)
    name = _ifname(ifindex)
    what = f"attach XDP program {prog.name!r} to {name!r}" + (f" ({mode} mode)" if mode else "")
    require_type(prog, what, ProgramType.XDP)
    fd = prog.fd
    offload = bool(flags & lib.XDP_FLAGS_HW_MODE)
    if not legacy:
        if replace:
            raise ValueError("replace=True is for legacy (netlink) attachment; "
                             "update a link with Link.update()")
        o = opts("bpf_link_create_opts", flags=flags)
        link_fd = lib.bpf_link_create(fd, ifindex, AttachType.XDP, o)
        if link_fd < 0 and offload and -link_fd in _OFFLOAD_ERRNOS:
            raise _offload_error(-link_fd, what, name)
        check_ret(link_fd, what)
        return Link(made_from=prog, fd=link_fd, description=f"xdp {prog.name!r} on {name!r}")

    attach_flags = flags | (0 if replace else lib.XDP_FLAGS_UPDATE_IF_NOEXIST)
    ret = lib.bpf_xdp_attach(ifindex, fd, attach_flags, ffi.NULL)
    if ret < 0 and offload and -ret in _OFFLOAD_ERRNOS:
        raise _offload_error(-ret, what, name)
    check_ret(ret, what, hint="a program is attached already; pass replace=True"
              if ret == -_errno.EBUSY or ret == -_errno.EEXIST else "")
    prog_id = prog.info().id
    netns = NetnsRef()

    def detach() -> None:
        # detach only if our program is still the one attached in that mode,
        # in the network namespace where it was attached
        try:
            with netns.entered():
                current = xdp_query(ifindex)
                if current.prog_for(flags) == prog_id:
                    check_ret(lib.bpf_xdp_detach(ifindex, flags, ffi.NULL),
                              f"detach XDP program from {name!r}")
        finally:
            netns.close()

    return Link(made_from=prog, description=f"xdp (netlink) {prog.name!r} on {name!r}", on_close=detach)


_OFFLOAD_ERRNOS = (_errno.EINVAL, _errno.EOPNOTSUPP, ENOTSUPP, _errno.ENODEV)


@dataclass(frozen=True)
class XDPQuery:
    """Which XDP programs (by id, 0 for none) are attached to an interface."""

    prog_id: int
    driver_prog_id: int
    generic_prog_id: int
    offload_prog_id: int
    attach_mode: int

    def prog_for(self, flags: int) -> int:
        if flags & lib.XDP_FLAGS_SKB_MODE:
            return self.generic_prog_id
        if flags & lib.XDP_FLAGS_DRV_MODE:
            return self.driver_prog_id
        if flags & lib.XDP_FLAGS_HW_MODE:
            return self.offload_prog_id
        return self.prog_id


def xdp_query(interface: Union[str, int]) -> XDPQuery:
    """Ask which XDP programs are attached to ``interface``."""
    ifindex = resolve_ifindex(interface)
    o = opts("bpf_xdp_query_opts")
    check_ret(lib.bpf_xdp_query(ifindex, 0, o), f"query XDP on {_ifname(ifindex)!r}")
    return XDPQuery(prog_id=int(o.prog_id), driver_prog_id=int(o.drv_prog_id),
                    generic_prog_id=int(o.skb_prog_id), offload_prog_id=int(o.hw_prog_id),
                    attach_mode=int(o.attach_mode))


__all__ = ["attach_xdp", "xdp_query", "XDPQuery", "mode_flags"]
