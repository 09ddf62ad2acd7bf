"""Network-namespace hooks: flow_dissector and sk_lookup programs (a netns bpf_link)."""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

from .._ffi import lib, opts
from ..errors import BPFError, check_ret
from ..link import Link
from ..types import AttachType, ProgramType, _coerce
from ._common import require_type
from ._net import open_netns
from .raw import AttachQuery, prog_query

if TYPE_CHECKING:
    from ..program import Program
    from ._net import PathLike

__all__ = ["attach_netns", "netns_query"]

if TYPE_CHECKING:
    NetnsTarget = Union[PathLike, int, None]

_HOOK = {ProgramType.FLOW_DISSECTOR: AttachType.FLOW_DISSECTOR,
         ProgramType.SK_LOOKUP: AttachType.SK_LOOKUP}


def attach_netns(prog: "Program", netns: NetnsTarget = None) -> Link:
    """Attach a flow_dissector or sk_lookup program to a network namespace.

    ``netns``: None (this thread's), a name in /run/netns, a path such as
    /proc/PID/ns/net, or an open fd.
    """
    what = f"attach program {prog.name!r} to a network namespace"
    require_type(prog, what, *_HOOK)
    atype = _HOOK[prog.type]
    prog_fd = prog.fd
    ns_fd, name = open_netns(netns)
    what = f"attach {atype.name.lower()} program {prog.name!r} to {name}"
    try:
        link_fd = lib.bpf_link_create(prog_fd, ns_fd, atype, opts("bpf_link_create_opts"))
        check_ret(link_fd, what)
    finally:
        os.close(ns_fd)
    return Link(made_from=prog, fd=link_fd, description=f"{atype.name.lower()} {prog.name!r} on {name}")


def netns_query(netns: NetnsTarget, attach_type: Union[AttachType, str, int]) -> AttachQuery:
    """Which flow_dissector / sk_lookup programs a network namespace runs."""
    atype = _coerce(AttachType, attach_type, "attach type")
    if atype not in _HOOK.values():
        raise BPFError(_errno.EINVAL, f"{atype.name.lower()} is not a network namespace "
                                      "attach type; use flow_dissector or sk_lookup")
    ns_fd, name = open_netns(netns)
    try:
        return prog_query(ns_fd, atype, f"query {atype.name.lower()} programs of {name}")
    finally:
        os.close(ns_fd)
