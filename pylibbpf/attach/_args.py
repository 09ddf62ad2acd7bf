"""Argument checks shared by the tracing attach kinds (before any syscall)."""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

from ..errors import BPFError

if TYPE_CHECKING:
    from ..program import Program

U64_MAX = (1 << 64) - 1


def check_cookie(value: Any, name: str = "cookie") -> int:
    """A BPF cookie: an int in 0 … 2**64-1 (``bpf_get_attach_cookie()`` returns it)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be between 0 and 2**64-1, not {value}")
    return value


def check_name(value: Any, name: str, *, allow_slash: bool = False) -> str:
    """A non-empty identifier-like string (a symbol, tracepoint or function name)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value or value.split() != [value]:  # empty, or holds white space
        raise ValueError(f"{name} must be a non-empty name without spaces, not {value!r}")
    if "\0" in value or (not allow_slash and "/" in value) or value in (".", ".."):
        raise ValueError(f"invalid {name} {value!r}")
    return value


def check_offset(value: Any, name: str = "offset") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be non-negative, not {value}")
    return value


def object_program(prog: "Program", what: str,
                   need: str = "this attach kind needs a program from an Object") -> None:
    """libbpf's attach functions need a program that came from an Object, loaded
    (``need`` says so when it was loaded raw)."""
    prog._check()
    if prog._ptr is None:
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} was loaded raw; {need}")
    prog.fd  # raises when not loaded


def section_target(prog: "Program", prefixes: tuple[str, ...]) -> Optional[str]:
    """What follows ``prefix/`` in the program's SEC(), or None."""
    sec = prog.section
    for prefix in prefixes:
        if sec.startswith(prefix + "/"):
            return sec[len(prefix) + 1:]
    return None
