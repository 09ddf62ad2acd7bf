"""``Map`` methods that attach something (struct_ops); each calls its kind's module."""
from __future__ import annotations


class MapAttachMixin:
    """Attach methods of maps, e.g. ``attach_struct_ops()``."""
