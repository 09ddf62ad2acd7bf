"""Small helpers shared by the attach kinds."""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Optional, Type, Union

from ..errors import BPFError, BPFNotFoundError, error_from_errno
from ..types import ProgramType

if TYPE_CHECKING:
    from ..program import Program


def resolve_ifindex(interface: Union[str, int]) -> int:
    """An interface index from a name or an index; raises naming the interface."""
    import socket  # (network attachments only: not imported with every attach)
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


class during:
    """``with during(what):`` errors raised inside (finding files, reading
    ``/proc``, symbols) name ``what``.

    A pylibbpf error keeps its class and attributes and gets ``what:`` in front
    of its message; any other ``OSError`` becomes the pylibbpf error of its errno,
    naming the file it was about. (A class, not contextlib.contextmanager: contextlib
    is not imported with pylibbpf.)
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Optional[Type[BaseException]], e: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        what = self.what
        if isinstance(e, BPFError):
            if not str(e.strerror).startswith(what):
                e.strerror = f"{what}: {e.strerror}"
                e.args = (e.errno, e.strerror)
        elif isinstance(e, OSError):
            about = f" ({e.filename})" if e.filename is not None else ""
            hint = "a file this needs is not readable with your privileges" \
                if isinstance(e, PermissionError) else ""
            raise error_from_errno(e.errno or _errno.EIO, f"{what}{about}", hint=hint) from e
