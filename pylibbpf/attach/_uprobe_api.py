"""``Program.attach_<kind>()`` methods for user-space probes; each calls its kind's module."""
from __future__ import annotations


class UprobeAttachMixin:
    """Attach methods for uprobes, uretprobes, uprobe_multi and USDT."""
