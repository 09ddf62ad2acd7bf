"""C++ and Rust symbol demangling, through libraries (never by hand).

C++ (Itanium ABI, ``_Z…``) goes through ``cxxfilt`` (libstdc++'s
``__cxa_demangle``); Rust (legacy ``_ZN…17h<hash>E`` and v0 ``_R…``) through
``pyderust`` (bindings to the rustc-demangle crate, without the hash). Both are optional at import time: without them names stay
mangled and a warning is logged once.
"""
from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

__all__ = ["demangle", "strip_parameters", "normalize", "demangler_available"]

# compiled by the first demangle() (_load), not when pylibbpf.elf is imported
_RUST_LEGACY: Any = None  # re.Pattern[bytes]: a legacy Rust name, _ZN...17h<hash>E
_RUST_HASH: Any = None  # re.Pattern[str]: its ::h<hash> suffix, once demangled

_cxx: Optional[Callable[[bytes], bytes]] = None
_rust: Optional[Callable[[str], str]] = None
_loaded = False


def _load() -> None:
    global _cxx, _rust, _loaded, _RUST_LEGACY, _RUST_HASH
    if _loaded:
        return
    _RUST_LEGACY = re.compile(rb"^_ZN.*17h[0-9a-f]{16}E$")
    _RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")
    _loaded = True
    missing = []
    try:
        import cxxfilt

        _cxx = cxxfilt.demangleb
    except Exception as e:  # ImportError, or libstdc++ not found by cxxfilt
        missing.append(f"cxxfilt ({e})")
    try:
        import pyderust

        _rust = pyderust.demangle
    except Exception as e:
        missing.append(f"pyderust ({e})")
    if missing:
        import logging  # (only for this warning)

        logging.getLogger("pylibbpf").warning("pylibbpf.elf: demangling unavailable: %s",
                                              ", ".join(missing))


def demangler_available() -> bool:
    _load()
    return _cxx is not None


def demangle(name: bytes) -> Optional[str]:
    """The demangled form of a raw symbol name, or None when it is not mangled."""
    if not name.startswith((b"_Z", b"_R")):
        return None
    _load()
    try:
        if name.startswith(b"_R") or _RUST_LEGACY.match(name):
            if _rust is not None:
                return _RUST_HASH.sub("", _rust(name.decode("ascii")))
            if name.startswith(b"_R"):
                return None
        if _cxx is not None and name.startswith(b"_Z"):
            return _RUST_HASH.sub("", _cxx(name).decode("utf-8", "replace")) \
                if _RUST_LEGACY.match(name) else _cxx(name).decode("utf-8", "replace")
    except Exception:  # not a valid mangled name after all
        return None
    return None


def strip_parameters(demangled: str) -> str:
    """``ns::f(int) const`` -> ``ns::f``; template arguments stay."""
    s = demangled.rstrip()
    if not s.endswith(")") and not re.search(r"\)\s*(const|volatile|&|&&|\s)*$", s):
        return s
    # find the '(' that opens the last top-level parameter list
    depth = 0
    for i in range(len(s) - 1, -1, -1):
        c = s[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                return s[:i]
    return s


def normalize(name: str) -> str:
    """A form of a demangled name to compare by: no spaces."""
    return name.replace(" ", "")
