"""ELF symbols for uprobes: list, match, resolve to file offsets; find libraries
and the files a process maps; USDT probes.

>>> from pylibbpf import elf
>>> elf.find_library("c")                                   # doctest: +SKIP
'/lib/x86_64-linux-gnu/libc.so.6'
>>> elf.resolve("c", "malloc").offset                       # doctest: +SKIP
625216
>>> print(elf.explain("c", "malloc"))                       # doctest: +SKIP
>>> [s.name for s in elf.functions("c", "getpg*")]          # doctest: +SKIP
['getpgid', 'getpgrp']

ELF headers are decoded with ``struct``; lookups run in C through the file's
own GNU/SysV hash table (``.dynsym``) or a hash built once (``.symtab``, kept in
pylibbpf's cache directory for large tables); indexes are cached per file
identity (device, inode, size, mtime).
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Union

from ._image import ElfImage, Segment
from ._index import Symbol, SymbolIndex, clear_cache, symbol_index
from ._paths import (DEBUG_DIRS, find_debug_file, find_library, ld_so_cache, process_maps,
                     process_root)
from ._resolve import (AmbiguousSymbolError, Resolution, SymbolNotFoundError, Target,
                       USDTNotFoundError, explain, explain_usdt, find_usdt, resolve,
                       resolve_binary, resolve_pattern, resolve_symbols)

if TYPE_CHECKING:
    from ._usdt import USDTProbe

__all__ = [
    "Symbol", "SymbolIndex", "ElfImage", "Segment", "Target", "Resolution", "USDTProbe",
    "SymbolNotFoundError", "AmbiguousSymbolError", "USDTNotFoundError",
    "symbol_index", "clear_cache", "functions", "resolve", "resolve_binary", "resolve_pattern",
    "resolve_symbols", "explain", "explain_usdt", "find_library", "find_usdt", "usdt_probes",
    "demangle", "ld_so_cache", "process_maps", "process_root", "find_debug_file", "DEBUG_DIRS",
]

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]


def functions(binary: PathLike, pattern: Optional[str] = None, *, regex: bool = False,
              demangled: Optional[bool] = None, pid: Optional[int] = None) -> List[Symbol]:
    """Function symbols (FUNC and GNU_IFUNC, from .symtab and .dynsym, or the
    separate debug file of a stripped binary) of ``binary`` whose name matches
    ``pattern`` (a glob; a regular expression searched with ``regex=True``;
    None lists all). ``demangled=True`` matches demangled C++/Rust names
    (default: when the pattern contains ``::`` or ``(``)."""
    target = resolve_binary(binary, pid=pid)
    idx = symbol_index(target.path)
    root = process_root(pid) if pid is not None else ""
    return idx.functions(pattern, regex=regex, demangled=demangled, root=root)


def usdt_probes(binary: PathLike, *, pid: Optional[int] = None) -> List[USDTProbe]:
    """Every USDT probe site of ``binary``."""
    from ._usdt import usdt_probes as probes

    return probes(symbol_index(resolve_binary(binary, pid=pid).path).image)


def demangle(name: str) -> str:
    """The demangled form of a C++ or Rust symbol name (``name`` itself when it
    is not mangled, or when no demangler is installed)."""
    from ._demangle import demangle as demangle_bytes

    return demangle_bytes(name.encode("utf-8", "surrogateescape")) or name


def __getattr__(name: str) -> Any:
    # USDTProbe's module is imported on first use: a uprobe attach by name needs
    # neither it nor the demangler (pylibbpf.elf._demangle, imported likewise)
    if name == "USDTProbe":
        from ._usdt import USDTProbe as cls

        globals()["USDTProbe"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | {"USDTProbe"})
