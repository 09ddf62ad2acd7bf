"""``Program.attach_<kind>()`` methods for networking hooks; each calls its kind's module."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

if TYPE_CHECKING:  # (socket: only in annotations, not imported with pylibbpf)
    import socket as _socket
    from ..link import Link
    from ..program import Program
    from ..types import AttachType
    from .tc import TCLink
    from .tcx import Anchor


def _prog(self: Any) -> "Program":
    prog: Program = self  # (an Any; no typing.cast at run time)
    return prog


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

    def attach_cgroup(self, cgroup: Union[str, "os.PathLike[str]", int], *,
                      attach_type: Union["AttachType", str, int, None] = None,
                      legacy: bool = False, flags: Union[str, int, None] = None,
                      replace: Optional["Program"] = None) -> "Link":
        """Attach this program to a cgroup v2 (a directory path or an open fd).

        ``attach_type`` (e.g. ``"cgroup_inet_egress"``) defaults to the hook the
        program's SEC() names (``cgroup_skb/egress``, ``cgroup/connect4`` …).
        By default a bpf_link (several programs may share a hook). ``legacy=True``
        uses BPF_PROG_ATTACH with ``flags`` None (exclusive), ``"override"``
        (a sub-cgroup may override) or ``"multi"``; ``replace=prog`` (with
        ``"multi"``) swaps that program for this one. Closing the Link detaches.
        """
        from .cgroup import attach_cgroup

        return attach_cgroup(_prog(self), cgroup, attach_type=attach_type, legacy=legacy,
                             flags=flags, replace=replace)

    def attach_tc(self, interface: Union[str, int], *, direction: str = "ingress",
                  priority: int = 0, handle: int = 0, replace: bool = False) -> "TCLink":
        """Attach this tc (sched_cls) program as a direct-action filter on the
        interface's clsact qdisc, created if needed (removed with our last filter
        when we created it). ``priority``/``handle`` 0 let the kernel choose;
        the returned Link reports them. ``replace`` overwrites the filter there."""
        from .tc import attach_tc

        return attach_tc(_prog(self), interface, direction=direction, priority=priority,
                         handle=handle, replace=replace)

    def attach_tcx(self, interface: Union[str, int], *, direction: Optional[str] = None,
                   before: "Anchor" = None, after: "Anchor" = None,
                   expected_revision: int = 0) -> "Link":
        """Attach this tc program as a TCX link on ``interface`` (``"ingress"`` or
        ``"egress"``; default from SEC("tcx/ingress"|"tcx/egress")).

        Order: ``before``/``after`` a Program, a Link or a program id;
        ``before=True`` runs it first, ``after=True`` (or nothing) last.
        ``expected_revision`` makes the attach fail if the list changed meanwhile.
        """
        from .tcx import attach_tcx

        return attach_tcx(_prog(self), interface, direction=direction, before=before,
                          after=after, expected_revision=expected_revision)

    def attach_netkit(self, interface: Union[str, int], *, side: Optional[str] = None,
                      before: "Anchor" = None, after: "Anchor" = None,
                      expected_revision: int = 0) -> "Link":
        """Attach this program to a netkit device's ``"primary"`` or ``"peer"`` side
        (default from SEC("netkit/primary"|"netkit/peer")); ordering as attach_tcx().
        Raises NotSupportedError on kernels without netkit."""
        from .netkit import attach_netkit

        return attach_netkit(_prog(self), interface, side=side, before=before, after=after,
                             expected_revision=expected_revision)

    def attach_netns(self, netns: Union[str, "os.PathLike[str]", int, None] = None) -> "Link":
        """Attach this flow_dissector or sk_lookup program to a network namespace:
        None (the current one), a name in /run/netns, a path or an fd."""
        from .netns import attach_netns

        return attach_netns(_prog(self), netns)

    def attach_netfilter(self, *, family: Union[str, int] = "ipv4",
                         hook: Union[str, int] = "local_in", priority: int = 0,
                         defrag: bool = False, flags: int = 0) -> "Link":
        """Attach this netfilter program in the current network namespace.

        ``family`` "ipv4"/"ipv6"; ``hook`` "prerouting", "local_in", "forward",
        "local_out" or "postrouting"; ``defrag`` asks for defragmented packets.
        """
        from .netfilter import attach_netfilter

        return attach_netfilter(_prog(self), family=family, hook=hook, priority=priority,
                                defrag=defrag, flags=flags)

    def attach_sockmap(self, map: Any, *,
                       attach_type: Union["AttachType", str, int, None] = None,
                       legacy: bool = False) -> "Link":
        """Attach this sk_msg / sk_skb program to a sockmap or sockhash (a Map or fd).

        ``attach_type`` defaults from SEC() (sk_msg, sk_skb/stream_parser,
        sk_skb/stream_verdict, sk_skb/verdict). A sockmap link by default;
        ``legacy=True`` uses BPF_PROG_ATTACH. Only sockets added to the map after
        the attach run the program.
        """
        from .sockmap import attach_sockmap

        return attach_sockmap(_prog(self), map, attach_type=attach_type, legacy=legacy)

    def attach_reuseport(self, sock: Union[_socket.socket, int]) -> None:
        """Make this program pick the socket in ``sock``'s SO_REUSEPORT group
        (``SO_ATTACH_REUSEPORT_EBPF``; sk_reuseport or socket_filter programs)."""
        from .reuseport import attach_reuseport

        attach_reuseport(_prog(self), sock)

    def detach_reuseport(self, sock: Union[_socket.socket, int]) -> None:
        """Remove the BPF program of ``sock``'s SO_REUSEPORT group."""
        from .reuseport import detach_reuseport

        _prog(self)._check()
        detach_reuseport(sock)

    def attach_raw(self, target: Any, attach_type: Union["AttachType", str, int], *,
                   flags: Union[str, int, None] = 0,
                   replace: Optional["Program"] = None) -> "Link":
        """BPF_PROG_ATTACH this program to any target (an fd, a socket, a Map …)
        as ``attach_type`` with ``flags`` ("multi", "override" or BPF_F_* bits).
        Closing the returned Link runs BPF_PROG_DETACH."""
        from .raw import attach_raw

        return attach_raw(_prog(self), target, attach_type, flags=flags, replace=replace)
