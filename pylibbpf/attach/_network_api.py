"""``Program.attach_<kind>()`` methods for networking hooks; each calls its kind's module."""
from __future__ import annotations

import socket as _socket
from typing import TYPE_CHECKING, Any, Optional, Union, cast

if TYPE_CHECKING:
    from ..link import Link
    from ..program import Program


def _prog(self: Any) -> "Program":
    return cast("Program", self)


class NetworkAttachMixin:
    """Attach methods for socket, XDP, tc, cgroup and other networking hooks."""

    def attach_socket(self, sock: Union[_socket.socket, int]) -> None:
        """Attach this socket filter to ``sock`` (``SO_ATTACH_BPF``)."""
        from .socket_filter import attach_socket

        attach_socket(_prog(self), sock)

    def detach_socket(self, sock: Union[_socket.socket, int]) -> None:
        """Remove the BPF filter from ``sock`` (``SO_DETACH_BPF``)."""
        from .socket_filter import detach_socket

        detach_socket(_prog(self), sock)

    def attach_xdp(self, interface: Union[str, int], *, mode: Optional[str] = None,
                   legacy: bool = False, replace: bool = False) -> "Link":
        """Attach this XDP program to a network interface (by name or index).

        ``mode``: None (kernel's choice: driver if the driver supports it),
        ``"generic"``/``"skb"``, ``"driver"``/``"native"`` or ``"offload"``/``"hw"``.
        ``legacy=True`` attaches through netlink instead of a bpf_link; closing
        the returned Link then detaches it. ``replace`` (legacy only) replaces
        a program already attached instead of failing.
        """
        from .xdp import attach_xdp

        return attach_xdp(_prog(self), interface, mode=mode, legacy=legacy, replace=replace)
