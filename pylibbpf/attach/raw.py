"""BPF_PROG_ATTACH / BPF_PROG_DETACH on any target fd, and BPF_PROG_QUERY.

These are the "legacy" attachments without a bpf_link: the kernel keeps the
program attached until it is detached explicitly. The returned
:class:`~pylibbpf.Link` holds its own copies of the program and target fds and
detaches on ``close()``.
"""
from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple, Union

from .._ffi import ffi, lib, opts
from ..errors import BPFError, check_ret
from ..link import Link
from ..types import AttachType, _coerce
from ._net import fileno

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_raw", "prog_query", "AttachQuery", "legacy_flags"]

_FLAG_NAMES = {
    None: 0, "none": 0, "": 0,
    "override": lib.BPF_F_ALLOW_OVERRIDE, "allow_override": lib.BPF_F_ALLOW_OVERRIDE,
    "multi": lib.BPF_F_ALLOW_MULTI, "allow_multi": lib.BPF_F_ALLOW_MULTI,
}

#: target "fds" that are really interface indexes
IFINDEX_TYPES = (AttachType.TCX_INGRESS, AttachType.TCX_EGRESS,
                 AttachType.NETKIT_PRIMARY, AttachType.NETKIT_PEER)


def legacy_flags(flags: Union[str, int, None]) -> int:
    """BPF_PROG_ATTACH flags from ``None``/"override"/"multi" or an int."""
    if isinstance(flags, bool):
        raise TypeError("flags must be 'multi', 'override', None or an int, not bool")
    if isinstance(flags, int):
        if flags < 0 or flags > 0xFFFFFFFF:
            raise ValueError(f"flags must be a 32-bit unsigned int, not {flags}")
        return flags
    if flags is None or isinstance(flags, str):
        key = flags.lower().replace("-", "_") if flags else None
        if key in _FLAG_NAMES:
            return int(_FLAG_NAMES[key])
        raise ValueError(f"unknown attach flags {flags!r}; use 'multi', 'override' or None")
    raise TypeError(f"flags must be 'multi', 'override', None or an int, "
                    f"not {type(flags).__name__}")


def legacy_attach(prog: "Program", target_fd: int, attach_type: AttachType, what: str,
                  description: str, *, flags: int = 0,
                  replace: Optional["Program"] = None, own_target: bool = False) -> Link:
    """BPF_PROG_ATTACH ``prog`` to ``target_fd``; the Link detaches it on close.

    With ``own_target`` the Link takes over ``target_fd``; otherwise it keeps a dup.
    """
    prog_fd = prog.fd
    o = opts("bpf_prog_attach_opts", flags=flags)
    if replace is not None:
        if not flags & lib.BPF_F_ALLOW_MULTI:
            raise ValueError(f"{what}: replace= needs flags='multi'")
        o.flags = flags | lib.BPF_F_REPLACE
        o.replace_prog_fd = replace.fd
    check_ret(lib.bpf_prog_attach_opts(prog_fd, target_fd, attach_type, o), what)
    prog_dup = os.dup(prog_fd)
    target = target_fd if own_target else os.dup(target_fd)

    def detach() -> None:
        try:
            ret = lib.bpf_prog_detach2(prog_dup, target, attach_type)
            err = ffi.errno
        finally:
            os.close(prog_dup)
            os.close(target)
        # ENOENT: someone else detached it already
        if ret < 0 and err != _errno.ENOENT:
            check_ret(-err, f"detach {description}")

    return Link(made_from=prog, description=description, on_close=detach)


def attach_raw(prog: "Program", target: Any, attach_type: Union[AttachType, str, int], *,
               flags: Union[str, int, None] = 0,
               replace: Optional["Program"] = None) -> Link:
    """BPF_PROG_ATTACH to ``target`` (an fd, a socket, a Map …); close detaches."""
    atype = _coerce(AttachType, attach_type, "attach type")
    if atype in IFINDEX_TYPES:
        raise ValueError(f"{atype.name.lower()} attaches to an interface: use attach_tcx()"
                         " or attach_netkit()")
    fd = fileno(target, "target")
    bits = legacy_flags(flags)
    what = (f"attach program {prog.name!r} to fd {fd} as {atype.name.lower()} "
            "(BPF_PROG_ATTACH)")
    prog._check()
    return legacy_attach(prog, fd, atype, what,
                         f"{atype.name.lower()} {prog.name!r} on fd {fd} (BPF_PROG_ATTACH)",
                         flags=bits, replace=replace)


@dataclass(frozen=True)
class AttachQuery:
    """What BPF_PROG_QUERY reports about one hook.

    ``prog_ids`` in run order; ``link_ids`` (same order, 0 for a program attached
    without a link) where the hook reports them; ``attach_flags`` the hook's
    BPF_F_ALLOW_* flags; ``revision`` changes on every attach/detach (tcx, netkit).
    """

    attach_flags: int
    prog_ids: Tuple[int, ...]
    link_ids: Tuple[int, ...]
    prog_attach_flags: Tuple[int, ...]
    revision: int


def prog_query(target: int, attach_type: AttachType, what: str, *,
               effective: bool = False) -> AttachQuery:
    """BPF_PROG_QUERY on a target fd (or ifindex for tcx/netkit)."""
    qflags = lib.BPF_F_QUERY_EFFECTIVE if effective else 0
    for _ in range(8):  # the list may grow between the two calls
        o = opts("bpf_prog_query_opts", query_flags=qflags)
        check_ret(lib.bpf_prog_query_opts(target, attach_type, o), what)
        n = int(o.count)
        if n == 0:
            return AttachQuery(int(o.attach_flags), (), (), (), int(o.revision))
        ids = ffi.new("__u32[]", n)
        links = ffi.new("__u32[]", n)
        pflags = ffi.new("__u32[]", n)
        o = opts("bpf_prog_query_opts", query_flags=qflags, prog_ids=ids, count=n)
        if attach_type in IFINDEX_TYPES:
            o.link_ids = links
        elif not effective:
            o.prog_attach_flags = pflags
        ret = lib.bpf_prog_query_opts(target, attach_type, o)
        if ret < 0 and ffi.errno == _errno.ENOSPC:
            continue
        check_ret(ret, what)
        got = int(o.count)
        return AttachQuery(int(o.attach_flags), tuple(int(ids[i]) for i in range(got)),
                           tuple(int(links[i]) for i in range(got)),
                           tuple(int(pflags[i]) for i in range(got)), int(o.revision))
    raise BPFError(_errno.EAGAIN, f"{what}: the list kept changing")


def query_raw(target: Any, attach_type: Union[AttachType, str, int], *,
              effective: bool = False) -> AttachQuery:
    """BPF_PROG_QUERY: which programs are attached to ``target`` as ``attach_type``."""
    atype = _coerce(AttachType, attach_type, "attach type")
    fd = fileno(target, "target")
    return prog_query(fd, atype, f"query {atype.name.lower()} programs on fd {fd}",
                      effective=effective)
