"""libbpf's kernel feature probes, their positive answers remembered per boot.

libbpf probes the kernel for each feature it uses (program names, global data,
BTF kinds, BPF links …) once per process: ~20 system calls, 0.7-1 ms of the
first load in a fresh process. ``_csrc/featcache.c`` answers the features this
boot's kernel is known to support without a probe. The process's first load
reads the file ``features`` in pylibbpf's cache directory (its path is taken
then, once); a load that found a new supported feature writes it, and so does
the interpreter's exit when attaching probed more. See featcache.c for what
the file's key covers and why only supported features are kept.
"""
from __future__ import annotations

import atexit
import os

from ._ffi import ffi, lib
from ._files import cache_base, write_cache_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

#: the file, from the process's first load on ("": no usable cache directory)
_path: Optional[str] = None


def path() -> str:
    """The file: ``features`` in :func:`pylibbpf._files.cache_base`."""
    return os.path.join(cache_base(), "features")


def first_load() -> Any:
    """What ``pylibbpf_object_load`` primes from: the file's path at the
    process's first load, NULL after it."""
    global _path
    if _path is not None:
        return ffi.NULL
    try:
        _path = path()
    except (OSError, ValueError):    # no working directory …
        _path = ""
        return ffi.NULL
    atexit.register(remember)        # what attaching probed, at exit
    return os.fsencode(_path)


def remember(learned: int = -1) -> None:
    """Write the file when this process found a feature supported that it did
    not hold (``learned``: how many, as ``pylibbpf_object_load`` returned;
    -1: ask)."""
    if learned < 0:
        learned = lib.pylibbpf_features_learned()
    if not learned or not _path:
        return
    buf = ffi.new("char[]", 1024)
    n = lib.pylibbpf_features_export(buf, 1024)
    if n > 0:
        write_cache_file(_path, ffi.unpack(buf, n))
