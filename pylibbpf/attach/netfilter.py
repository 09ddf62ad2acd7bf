"""Netfilter hooks: a BPF_PROG_TYPE_NETFILTER program in this network namespace."""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import BPFError, check_ptr
from ..link import Link
from ..types import ProgramType
from ._common import require_type
from ._kinds import kind_refusal

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_netfilter", "NFPROTO", "NF_HOOKS"]

#: <linux/netfilter.h> protocol families
NFPROTO: Dict[str, int] = {"ipv4": 2, "inet4": 2, "ip": 2, "ipv6": 10, "inet6": 10,
                           "ip6": 10}
#: <linux/netfilter.h> enum nf_inet_hooks
NF_HOOKS: Dict[str, int] = {"prerouting": 0, "pre_routing": 0, "input": 1, "local_in": 1,
                            "forward": 2, "output": 3, "local_out": 3,
                            "postrouting": 4, "post_routing": 4}
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


def _lookup(value: Union[str, int], table: Dict[str, int], name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a name or a number, not bool")
    if isinstance(value, int):
        if value not in table.values():
            raise ValueError(f"unknown netfilter {name} {value}; known: "
                             + ", ".join(f"{k}={v}" for k, v in table.items()))
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_")
        if key in table:
            return table[key]
        raise ValueError(f"unknown netfilter {name} {value!r}; known: " + ", ".join(table))
    raise TypeError(f"{name} must be a name or a number, not {type(value).__name__}")


def attach_netfilter(prog: "Program", *, family: Union[str, int] = "ipv4",
                     hook: Union[str, int] = "local_in", priority: int = 0,
                     defrag: bool = False, flags: int = 0) -> Link:
    pf = _lookup(family, NFPROTO, "family")
    hooknum = _lookup(hook, NF_HOOKS, "hook")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, not {type(priority).__name__}")
    if not _INT_MIN < priority < _INT_MAX:
        raise ValueError(f"netfilter priority must be strictly between {_INT_MIN} and "
                         f"{_INT_MAX}, not {priority}")
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
        raise ValueError(f"flags must be a non-negative int, not {flags!r}")
    bits = flags | (lib.BPF_F_NETFILTER_IP_DEFRAG if defrag else 0)
    fam = "ipv4" if pf == 2 else "ipv6"
    hname = [k for k, v in NF_HOOKS.items() if v == hooknum][-1]
    what = (f"attach netfilter program {prog.name!r} to {fam} {hname} "
            f"priority {priority}")
    require_type(prog, what, ProgramType.NETFILTER)
    prog.fd  # raises when not loaded
    if prog._ptr is None:
        raise BPFError(_errno.EINVAL, f"{what}: only programs from an Object can be "
                                      "attached to netfilter")
    o = opts("bpf_netfilter_opts", pf=pf, hooknum=hooknum, priority=priority, flags=bits)
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_netfilter(prog._ptr, o)
        err = ffi.errno
    if ptr == ffi.NULL:
        kind_refusal("netfilter", err, what, log.warnings)
    check_ptr(ptr, err, what, libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"netfilter {prog.name!r} {fam} {hname} "
                                     f"priority {priority}")
