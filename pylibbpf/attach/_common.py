"""Small helpers shared by the attach kinds."""
from __future__ import annotations

import errno as _errno
import socket
from typing import TYPE_CHECKING, Union

from ..errors import BPFError, BPFNotFoundError
from ..types import ProgramType

if TYPE_CHECKING:
    from ..program import Program


def resolve_ifindex(interface: Union[str, int]) -> int:
    """An interface index from a name or an index; raises naming the interface."""
    if isinstance(interface, bool) or not isinstance(interface, (str, int)):
        raise TypeError(f"interface must be a name or an index, not {type(interface).__name__}")
    if isinstance(interface, int):
        if interface <= 0:
            raise ValueError(f"interface index must be positive, not {interface}")
        try:
            socket.if_indextoname(interface)
        except OSError:
            raise BPFNotFoundError(_errno.ENODEV,
                                   f"no network interface with index {interface}") from None
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise BPFNotFoundError(_errno.ENODEV,
                               f"no network interface named {interface!r}") from None


def require_type(prog: "Program", what: str, *types: ProgramType) -> None:
    """Fail before any syscall when ``prog`` has the wrong type for ``what``."""
    ptype = prog.type
    if ptype not in types:
        want = " or ".join(t.name.lower() for t in types)
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is of type "
                                      f"{ptype.name.lower()}, this needs {want}")
