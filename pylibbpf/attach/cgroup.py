"""cgroup v2 hooks: a program on a cgroup, as a bpf_link or with BPF_PROG_ATTACH."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple, Union

from .._ffi import lib, opts
from ..errors import BPFError, check_ret
from ..link import Link
from ..types import AttachType as A, ProgramType as P, _coerce
from ._net import check_attach_type, expected_attach_type, open_cgroup
from .raw import AttachQuery, legacy_attach, legacy_flags, prog_query

if TYPE_CHECKING:
    from ..program import Program
    from ._net import CgroupTarget

__all__ = ["attach_cgroup", "cgroup_query", "CGROUP_ATTACH_TYPES"]

_SOCK_ADDR = (P.CGROUP_SOCK_ADDR,)

#: every cgroup attach type and the program types it takes
CGROUP_ATTACH_TYPES: Dict[A, Tuple[P, ...]] = {
    A.CGROUP_INET_INGRESS: (P.CGROUP_SKB,),
    A.CGROUP_INET_EGRESS: (P.CGROUP_SKB,),
    A.CGROUP_INET_SOCK_CREATE: (P.CGROUP_SOCK,),
    A.CGROUP_INET_SOCK_RELEASE: (P.CGROUP_SOCK,),
    A.CGROUP_INET4_POST_BIND: (P.CGROUP_SOCK,),
    A.CGROUP_INET6_POST_BIND: (P.CGROUP_SOCK,),
    A.CGROUP_INET4_BIND: _SOCK_ADDR,
    A.CGROUP_INET6_BIND: _SOCK_ADDR,
    A.CGROUP_INET4_CONNECT: _SOCK_ADDR,
    A.CGROUP_INET6_CONNECT: _SOCK_ADDR,
    A.CGROUP_UNIX_CONNECT: _SOCK_ADDR,
    A.CGROUP_UDP4_SENDMSG: _SOCK_ADDR,
    A.CGROUP_UDP6_SENDMSG: _SOCK_ADDR,
    A.CGROUP_UNIX_SENDMSG: _SOCK_ADDR,
    A.CGROUP_UDP4_RECVMSG: _SOCK_ADDR,
    A.CGROUP_UDP6_RECVMSG: _SOCK_ADDR,
    A.CGROUP_UNIX_RECVMSG: _SOCK_ADDR,
    A.CGROUP_INET4_GETPEERNAME: _SOCK_ADDR,
    A.CGROUP_INET6_GETPEERNAME: _SOCK_ADDR,
    A.CGROUP_UNIX_GETPEERNAME: _SOCK_ADDR,
    A.CGROUP_INET4_GETSOCKNAME: _SOCK_ADDR,
    A.CGROUP_INET6_GETSOCKNAME: _SOCK_ADDR,
    A.CGROUP_UNIX_GETSOCKNAME: _SOCK_ADDR,
    A.CGROUP_SYSCTL: (P.CGROUP_SYSCTL,),
    A.CGROUP_GETSOCKOPT: (P.CGROUP_SOCKOPT,),
    A.CGROUP_SETSOCKOPT: (P.CGROUP_SOCKOPT,),
    A.CGROUP_DEVICE: (P.CGROUP_DEVICE,),
    A.CGROUP_SOCK_OPS: (P.SOCK_OPS,),
}

#: program types with a single cgroup hook (no attach type needed)
_ONLY_HOOK = {P.CGROUP_SYSCTL: A.CGROUP_SYSCTL, P.CGROUP_DEVICE: A.CGROUP_DEVICE,
              P.SOCK_OPS: A.CGROUP_SOCK_OPS}


def _attach_type(prog: "Program", attach_type: Union[A, str, int, None], what: str) -> A:
    if attach_type is not None:
        return _coerce(A, attach_type, "attach type")
    ptype = prog.type
    if ptype in _ONLY_HOOK:
        return _ONLY_HOOK[ptype]
    eat = expected_attach_type(prog)
    if eat is not None and eat in CGROUP_ATTACH_TYPES and ptype in CGROUP_ATTACH_TYPES[eat]:
        return eat
    raise BPFError(22, f"{what}: pass attach_type=…; program {prog.name!r} "
                       f"({ptype.name.lower()}) does not say which cgroup hook it is for")


def attach_cgroup(prog: "Program", cgroup: CgroupTarget, *,
                  attach_type: Union[A, str, int, None] = None, legacy: bool = False,
                  flags: Union[str, int, None] = None,
                  replace: Optional["Program"] = None) -> Link:
    what = f"attach program {prog.name!r} to cgroup"
    atype = _attach_type(prog, attach_type, what)
    check_attach_type(prog, atype, what, CGROUP_ATTACH_TYPES, "cgroup")
    bits = legacy_flags(flags)
    if not legacy and (bits or replace is not None):
        raise ValueError(f"{what}: flags= and replace= are for legacy=True (BPF_PROG_ATTACH); "
                         "a cgroup link always allows several programs")
    prog_fd = prog.fd
    cg_fd, name = open_cgroup(cgroup)
    what = f"attach program {prog.name!r} to {name} as {atype.name.lower()}"
    desc = f"cgroup {atype.name.lower()} {prog.name!r} on {name}"
    if legacy:
        try:
            return legacy_attach(prog, cg_fd, atype, what, desc + " (BPF_PROG_ATTACH)",
                                 flags=bits, replace=replace, own_target=True)
        except BaseException:
            os.close(cg_fd)
            raise
    try:
        link_fd = lib.bpf_link_create(prog_fd, cg_fd, atype, opts("bpf_link_create_opts"))
        check_ret(link_fd, what)
    finally:
        os.close(cg_fd)
    return Link(made_from=prog, fd=link_fd, description=desc)


def cgroup_query(cgroup: CgroupTarget, attach_type: Union[A, str, int], *,
                 effective: bool = False) -> AttachQuery:
    """Which programs are attached to ``cgroup`` for ``attach_type``
    (``effective=True``: also those inherited from ancestors that run here)."""
    atype = _coerce(A, attach_type, "attach type")
    if atype not in CGROUP_ATTACH_TYPES:
        raise BPFError(22, f"{atype.name.lower()} is not a cgroup attach type")
    cg_fd, name = open_cgroup(cgroup)
    try:
        return prog_query(cg_fd, atype, f"query {atype.name.lower()} programs of {name}",
                          effective=effective)
    finally:
        os.close(cg_fd)
