"""``Program.attach_<kind>()`` methods for kernel tracing hooks; each calls its kind's module."""
from __future__ import annotations


class TracingAttachMixin:
    """Attach methods for tracepoints, kprobes, trampolines, perf events, iterators."""
