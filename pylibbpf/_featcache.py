"""libbpf's kernel feature probes, their positive answers remembered per boot.

libbpf probes the kernel for each feature it uses (program names, global data,
BTF kinds, BPF links …) once per process: ~20 system calls, 0.7-1 ms of the
first load in a fresh process. ``_csrc/featcache.c`` answers the features this
boot's kernel is known to support without a probe; this module primes it from
the file ``features`` in pylibbpf's cache directory before a load and writes
the file when the process learned a new one. See featcache.c for what the
file's key covers and why only supported features are kept.
"""
from __future__ import annotations

import os

from ._ffi import ffi, lib
from ._files import cache_base, write_cache_file

#: the file last primed from, in this process (None: none yet)
_primed = None


def path() -> str:
    """The file: ``features`` in :func:`pylibbpf._files.cache_base`."""
    return os.path.join(cache_base(), "features")


def prime() -> None:
    """Before a load: what the file says this kernel supports, once per process
    and cache directory."""
    global _primed
    try:
        p = path()
    except (OSError, ValueError):    # no working directory, a NUL in $PYLIBBPF_CACHE …
        return
    if p != _primed:
        _primed = p
        lib.pylibbpf_features_prime(os.fsencode(p))


def remember() -> None:
    """After a load: write the file when this process found a feature supported
    that it did not hold."""
    if not lib.pylibbpf_features_learned():
        return
    buf = ffi.new("char[]", 1024)
    n = lib.pylibbpf_features_export(buf, 1024)
    if n > 0 and _primed is not None:
        write_cache_file(_primed, ffi.unpack(buf, n))
