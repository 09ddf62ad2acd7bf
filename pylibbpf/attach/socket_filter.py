"""Socket filters: a SOCKET_FILTER program on a socket (SO_ATTACH_BPF)."""
from __future__ import annotations

import socket
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

from ..errors import error_from_errno
from ..types import ProgramType
from ._common import require_type

if TYPE_CHECKING:
    from ..program import Program

# <asm-generic/socket.h>; Python's socket module does not name them
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # == SO_DETACH_FILTER
SO_ATTACH_REUSEPORT_EBPF = 52


def _fileno(sock: Union[socket.socket, int]) -> int:
    if isinstance(sock, bool):
        raise TypeError("sock must be a socket or a file descriptor, not bool")
    if isinstance(sock, int):
        return sock
    if hasattr(sock, "fileno"):
        fd = sock.fileno()
        if fd < 0:
            raise ValueError("sock is closed")
        return int(fd)
    raise TypeError(f"sock must be a socket or a file descriptor, not {type(sock).__name__}")


def _setsockopt(fd: int, opt: int, value: int, what: str) -> None:
    s = socket.socket(fileno=fd)
    try:
        s.setsockopt(socket.SOL_SOCKET, opt, struct.pack("i", value))
    except OSError as e:
        raise error_from_errno(e.errno or 22, what) from None
    finally:
        s.detach()


def attach_socket(prog: "Program", sock: Union[socket.socket, int]) -> None:
    what = f"attach socket filter {prog.name!r}"
    require_type(prog, what, ProgramType.SOCKET_FILTER)
    _setsockopt(_fileno(sock), SO_ATTACH_BPF, prog.fd, what)


def detach_socket(prog: "Program", sock: Union[socket.socket, int]) -> None:
    what = f"detach socket filter {prog.name!r}"
    prog._check()
    _setsockopt(_fileno(sock), SO_DETACH_BPF, 0, what)
