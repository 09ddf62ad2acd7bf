"""sk_msg and sk_skb programs on a sockmap/sockhash: a sockmap bpf_link, or
BPF_PROG_ATTACH to the map (``legacy=True``).

The kernel copies a map's programs to a socket when the socket is added to
the map: detaching affects sockets added afterwards.
"""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple, Union

from .._ffi import lib, opts
from ..errors import BPFError, check_ret
from ..link import Link
from ..types import AttachType as A, MapType, ProgramType as P, _coerce
from ._common import require_type
from ._kinds import kind_refusal
from ._net import check_attach_type, expected_attach_type, fileno
from .raw import AttachQuery, legacy_attach, prog_query

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_sockmap", "sockmap_query", "SOCKMAP_ATTACH_TYPES"]

SOCKMAP_ATTACH_TYPES: Dict[A, Tuple[P, ...]] = {
    A.SK_MSG_VERDICT: (P.SK_MSG,),
    A.SK_SKB_STREAM_PARSER: (P.SK_SKB,),
    A.SK_SKB_STREAM_VERDICT: (P.SK_SKB,),
    A.SK_SKB_VERDICT: (P.SK_SKB,),
}


def _map_fd(target: Any) -> Tuple[int, str]:
    from ..map import Map

    if isinstance(target, Map):
        mtype = target.type
        if mtype not in (MapType.SOCKMAP, MapType.SOCKHASH):
            raise BPFError(_errno.EINVAL, f"map {target.name!r} is of type {mtype.name.lower()}; "
                                          "sk_msg/sk_skb programs need a sockmap or sockhash")
        return target.fd, f"map {target.name!r}"
    fd = fileno(target, "map")
    return fd, f"map fd {fd}"


def _attach_type(prog: "Program", attach_type: Union[A, str, int, None], what: str) -> A:
    if attach_type is not None:
        return _coerce(A, attach_type, "attach type")
    if prog.type == P.SK_MSG:
        return A.SK_MSG_VERDICT
    eat = expected_attach_type(prog)
    if eat in SOCKMAP_ATTACH_TYPES:
        assert eat is not None
        return eat
    raise BPFError(_errno.EINVAL, f"{what}: pass attach_type= (sk_skb_stream_parser, "
                                  "sk_skb_stream_verdict or sk_skb_verdict)")


def attach_sockmap(prog: "Program", map: Any, *,
                   attach_type: Union[A, str, int, None] = None,
                   legacy: bool = False) -> Link:
    what = f"attach program {prog.name!r} to a sockmap"
    require_type(prog, what, P.SK_MSG, P.SK_SKB)
    atype = _attach_type(prog, attach_type, what)
    check_attach_type(prog, atype, what, SOCKMAP_ATTACH_TYPES, "sockmap")
    map_fd, name = _map_fd(map)
    prog_fd = prog.fd
    what = f"attach {atype.name.lower()} program {prog.name!r} to {name}"
    desc = f"{atype.name.lower()} {prog.name!r} on {name}"
    if legacy:
        return legacy_attach(prog, map_fd, atype, what, desc + " (BPF_PROG_ATTACH)")
    link_fd = lib.bpf_link_create(prog_fd, map_fd, atype, opts("bpf_link_create_opts"))
    if link_fd < 0:   # before Linux 6.10: no sockmap links, legacy=True is the way
        kind_refusal("sockmap_link", -link_fd, f"{what} (legacy=True attaches with "
                                               "BPF_PROG_ATTACH)")
    check_ret(link_fd, what)
    return Link(made_from=prog, fd=link_fd, description=desc)


def sockmap_query(map: Any, attach_type: Union[A, str, int]) -> AttachQuery:
    """Which program a sockmap/sockhash has for ``attach_type``."""
    atype = _coerce(A, attach_type, "attach type")
    if atype not in SOCKMAP_ATTACH_TYPES:
        raise BPFError(_errno.EINVAL, f"{atype.name.lower()} is not a sockmap attach type")
    fd, name = _map_fd(map)
    return prog_query(fd, atype, f"query {atype.name.lower()} programs of {name}")
