"""SO_REUSEPORT groups: a program that picks the socket of a reuseport group
(SO_ATTACH_REUSEPORT_EBPF on any socket of the group)."""
from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

from ..types import ProgramType
from ._common import require_type
from .socket_filter import SO_ATTACH_REUSEPORT_EBPF, _fileno, _setsockopt

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_reuseport", "detach_reuseport", "SO_DETACH_REUSEPORT_BPF"]

SO_DETACH_REUSEPORT_BPF = 68


def attach_reuseport(prog: "Program", sock: Union[socket.socket, int]) -> None:
    what = f"attach reuseport program {prog.name!r}"
    require_type(prog, what, ProgramType.SK_REUSEPORT, ProgramType.SOCKET_FILTER)
    _setsockopt(_fileno(sock), SO_ATTACH_REUSEPORT_EBPF, prog.fd, what)


def detach_reuseport(sock: Union[socket.socket, int]) -> None:
    _setsockopt(_fileno(sock), SO_DETACH_REUSEPORT_BPF, 0,
                "detach the reuseport program of a socket")
