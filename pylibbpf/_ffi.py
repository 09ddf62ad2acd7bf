"""The only module that imports the compiled extension.

libbpf's print callback is routed to ``logging.getLogger("pylibbpf")``; a call
can also capture what libbpf prints while it runs (:func:`libbpf_log`), so an
exception can carry libbpf's own explanation.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Tuple

try:
    from ._libbpf import ffi, lib
except ImportError as e:  # pragma: no cover - build problem, not a runtime path
    raise ImportError(
        "pylibbpf's compiled extension pylibbpf._libbpf is missing; "
        "install the package with 'pip install .' (see README)"
    ) from e

if lib.pylibbpf_fast_install() != 0:  # pragma: no cover - the error was printed
    raise ImportError("pylibbpf: could not set up the module pylibbpf._fast")
import sys as _sys

fast: Any = _sys.modules["pylibbpf._fast"]

__all__ = ["ffi", "lib", "fast", "logger", "libbpf_log", "sync_log_level", "cstr", "opts", "to_str"]

logger = logging.getLogger("pylibbpf")

_LEVELS = {
    lib.LIBBPF_WARN: logging.WARNING,
    lib.LIBBPF_INFO: logging.INFO,
    lib.LIBBPF_DEBUG: logging.DEBUG,
}

_local = threading.local()


class LogCapture:
    """What libbpf printed during one call: (level, text) pairs."""

    def __init__(self) -> None:
        self.records: List[Tuple[int, str]] = []

    @property
    def warnings(self) -> List[str]:
        return [text.rstrip("\n") for level, text in self.records if level == lib.LIBBPF_WARN]

    def text(self) -> str:
        return "".join(text for _, text in self.records)


@ffi.def_extern()  # type: ignore[misc, untyped-decorator, unused-ignore]
def pylibbpf_print_cb(level: int, msg: Any) -> None:
    text = ffi.string(msg).decode("utf-8", "replace")
    stack: Optional[List[LogCapture]] = getattr(_local, "stack", None)
    if stack:
        stack[-1].records.append((level, text))
        # captured text ends up in an exception; keep it out of stderr
        logger.debug("%s", text.rstrip("\n"))
        return
    logger.log(_LEVELS.get(level, logging.DEBUG), "%s", text.rstrip("\n"))


def sync_log_level() -> None:
    """Let libbpf format only what the ``pylibbpf`` logger would emit."""
    if logger.isEnabledFor(logging.DEBUG):
        lib.pylibbpf_set_print_level(lib.LIBBPF_DEBUG)
    elif logger.isEnabledFor(logging.INFO):
        lib.pylibbpf_set_print_level(lib.LIBBPF_INFO)
    else:
        lib.pylibbpf_set_print_level(lib.LIBBPF_WARN)


@contextmanager
def libbpf_log() -> Iterator[LogCapture]:
    """Capture what libbpf prints in this thread while the block runs."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    cap = LogCapture()
    stack.append(cap)
    try:
        yield cap
    finally:
        stack.pop()


def to_str(ptr: Any) -> str:
    """A C string as str: "" for NULL; undecodable bytes are backslash-escaped."""
    if ptr == ffi.NULL:
        return ""
    return ffi.string(ptr).decode("utf-8", "backslashreplace")


def cstr(value: Optional[str], keep: List[Any]) -> Any:
    """A C string for ``value`` (or NULL); ``keep`` holds it alive."""
    if value is None:
        return ffi.NULL
    buf = ffi.new("char[]", value.encode())
    keep.append(buf)
    return buf


def opts(ctype: str, **fields: Any) -> Any:
    """Allocate a libbpf opts struct with ``sz`` set, as LIBBPF_OPTS does."""
    o = ffi.new(f"struct {ctype} *")
    o.sz = ffi.sizeof(f"struct {ctype}")
    for k, v in fields.items():
        setattr(o, k, v)
    return o


lib.pylibbpf_install_print()
sync_log_level()
