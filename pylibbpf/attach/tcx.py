"""TCX: tc programs on an interface's ingress/egress as bpf_links, in an
ordered list (Linux 6.6+). netkit devices use the same ordering (netkit.py)."""
from __future__ import annotations

import errno as _errno
import socket
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import BPFError, check_ptr, check_ret
from ..link import Link
from ..types import AttachType, ProgramType
from ._common import require_type, resolve_ifindex
from ._kinds import kind_refusal
from ._net import expected_attach_type
from .raw import AttachQuery, prog_query

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_tcx", "tcx_query", "Anchor"]

#: where to insert: None (at the end), True (first for ``before``, last for
#: ``after``), a Program, a Link, or a program id
Anchor = Union[None, bool, "Program", Link, int]

_TCX = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}


def ifname(ifindex: int) -> str:
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return str(ifindex)


def direction_type(direction: Optional[str], table: Dict[str, AttachType],
                   prog: "Program", kind: str) -> AttachType:
    if direction is None:
        eat = expected_attach_type(prog)
        if eat in table.values():
            assert eat is not None
            return eat
        raise BPFError(_errno.EINVAL, f"attach {kind} program {prog.name!r}: pass "
                       f"direction= ({' or '.join(table)}); its SEC() does not say")
    if not isinstance(direction, str):
        raise TypeError(f"direction must be a str, not {type(direction).__name__}")
    key = direction.strip().lower()
    if key not in table:
        raise ValueError(f"unknown {kind} direction {direction!r}; use "
                         + " or ".join(table))
    return table[key]


def _anchor(before: Anchor, after: Anchor) -> tuple[int, int, int, str]:
    """(flags, relative_fd, relative_id, text) for an insertion point."""
    from ..program import Program

    if before is not None and before is not False and after is not None and after is not False:
        raise ValueError("pass before= or after=, not both")
    flag, anchor = ((lib.BPF_F_BEFORE, before) if before is not None and before is not False
                    else (lib.BPF_F_AFTER, after) if after is not None and after is not False
                    else (0, None))
    word = "before" if flag == lib.BPF_F_BEFORE else "after"
    if anchor is None:
        return 0, 0, 0, ""
    if anchor is True:
        return flag, 0, 0, " first" if flag == lib.BPF_F_BEFORE else " last"
    if isinstance(anchor, Program):
        return flag, anchor.fd, 0, f" {word} program {anchor.name!r}"
    if isinstance(anchor, Link):
        return flag | lib.BPF_F_LINK, anchor.fd, 0, f" {word} link {anchor.fd}"
    if isinstance(anchor, int) and not isinstance(anchor, bool):
        if anchor <= 0:
            raise ValueError(f"a program id is positive, not {anchor}")
        return flag, 0, anchor, f" {word} program id {anchor}"
    raise TypeError(f"{word}= must be a Program, a Link, a program id or True, "
                    f"not {type(anchor).__name__}")


def mprog_attach(prog: "Program", interface: Union[str, int], atype: AttachType,
                 before: Anchor, after: Anchor, expected_revision: int, kind: str,
                 libbpf_fn: str, opts_type: str) -> Link:
    ifindex = resolve_ifindex(interface)
    name = ifname(ifindex)
    flags, rel_fd, rel_id, where = _anchor(before, after)
    if isinstance(expected_revision, bool) or not isinstance(expected_revision, int) \
            or expected_revision < 0:
        raise ValueError(f"expected_revision must be a non-negative int, "
                         f"not {expected_revision!r}")
    what = (f"attach {kind} program {prog.name!r} to {name!r} "
            f"{atype.name.lower().split('_')[-1]}{where}")
    require_type(prog, what, ProgramType.SCHED_CLS)
    prog_fd = prog.fd
    desc = f"{atype.name.lower()} {prog.name!r} on {name!r}"
    if prog._ptr is not None and expected_attach_type(prog) == atype:
        o = opts(opts_type, flags=flags, relative_fd=rel_fd, relative_id=rel_id,
                 expected_revision=expected_revision)
        with libbpf_log() as log:
            ptr = getattr(lib, libbpf_fn)(prog._ptr, ifindex, o)
            err = ffi.errno
        if ptr == ffi.NULL:
            kind_refusal(kind, err, what, log.warnings)
        check_ptr(ptr, err, what, libbpf_log=log.warnings)
        return Link(made_from=prog, ptr=ptr, description=desc)
    # any other program (raw, or a SEC() that doesn't name the hook): BPF_LINK_CREATE
    o = opts("bpf_link_create_opts", flags=flags)
    rel = getattr(o, kind)  # the tcx / netkit member of the union
    rel.relative_fd, rel.relative_id, rel.expected_revision = rel_fd, rel_id, expected_revision
    link_fd = lib.bpf_link_create(prog_fd, ifindex, atype, o)
    if link_fd < 0:
        kind_refusal(kind, ffi.errno, what)
    check_ret(link_fd, what)
    return Link(made_from=prog, fd=link_fd, description=desc)


def attach_tcx(prog: "Program", interface: Union[str, int], *,
               direction: Optional[str] = None, before: Anchor = None, after: Anchor = None,
               expected_revision: int = 0) -> Link:
    atype = direction_type(direction, _TCX, prog, "tcx")
    return mprog_attach(prog, interface, atype, before, after, expected_revision, "tcx",
                        "bpf_program__attach_tcx", "bpf_tcx_opts")


def tcx_query(interface: Union[str, int], direction: str) -> AttachQuery:
    """The tcx programs (and their links) on ``interface``, in run order."""
    ifindex = resolve_ifindex(interface)
    if not isinstance(direction, str) or direction.lower() not in _TCX:
        raise ValueError(f"unknown tcx direction {direction!r}; use ingress or egress")
    return prog_query(ifindex, _TCX[direction.lower()],
                      f"query tcx {direction} programs of {ifname(ifindex)!r}")


def check_u32(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be between 0 and 2**32-1, not {value}")
    return value
