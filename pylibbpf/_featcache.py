"""What a fresh process's first open and load need not find out again: libbpf's
kernel feature probes, their positive answers remembered per boot, and the
open's pre-check verdicts, remembered per file.

libbpf probes the kernel for each feature it uses (program names, global data,
BTF kinds, BPF links …) once per process: ~20 system calls, 0.7-1 ms of the
first load in a fresh process. ``_csrc/featcache.c`` answers the features this
boot's kernel is known to support without a probe. The process's first load
reads the file ``features`` in pylibbpf's cache directory (its path is taken
then, once); a load that found a new supported feature writes it, and so does
the interpreter's exit when attaching probed more. See featcache.c for what
the file's key covers and why only supported features are kept.

The open's pre-checks (``pylibbpf_object_precheck``: a first read of the
file's ELF and BTF, ~0.1 ms of a fresh process's first open) are skipped for a
file they accepted before, unchanged since: ``_csrc/verdicts.c`` keeps their
identities in the file ``prechecks``, read at the process's first open from a
path and written at exit when this process added to it. See verdicts.c for
what an identity holds and which files are never listed.
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
#: the pre-check verdicts' file, from the process's first open of a path on
_vpath: Optional[str] = None


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


def verdicts_path() -> str:
    """The pre-check verdicts' file: ``prechecks`` in :func:`pylibbpf._files.cache_base`."""
    return os.path.join(cache_base(), "prechecks")


def first_open() -> Any:
    """What ``pylibbpf_object_open`` primes its verdicts from: the file's path at
    the process's first open of a path, NULL after it."""
    global _vpath
    if _vpath is not None:
        return ffi.NULL
    try:
        _vpath = verdicts_path()
    except (OSError, ValueError):    # no working directory …
        _vpath = ""
        return ffi.NULL
    atexit.register(remember_verdicts)
    return os.fsencode(_vpath)


def remember_verdicts() -> None:
    """Write the verdicts' file when this process's pre-checks accepted a file
    it did not list."""
    if not _vpath or not lib.pylibbpf_verdicts_learned():
        return
    buf = ffi.new("char[]", 8192)
    n = lib.pylibbpf_verdicts_export(buf, 8192)
    if n > 0:
        write_cache_file(_vpath, ffi.unpack(buf, n))
