"""``Map`` methods that attach something (struct_ops); each calls its kind's module."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from ..link import Link
    from ..map import Map


def _map(self: Any) -> "Map":
    m: Map = self  # (an Any; no typing.cast at run time)
    return m


class MapAttachMixin:
    """Attach methods of maps, e.g. ``attach_struct_ops()``."""

    def attach_struct_ops(self) -> "Link":
        """Register this struct_ops map (e.g. a ``tcp_congestion_ops``) with the
        kernel; closing the returned Link unregisters it."""
        from .struct_ops import attach_struct_ops

        return attach_struct_ops(_map(self))
