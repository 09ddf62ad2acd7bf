"""A persistent cache of the name hashes built for symbol tables without one of
their own (``.symtab``: the dynamic linker's ``.gnu.hash`` covers ``.dynsym``
only), so that a new process reads a large table's hash instead of building it.

Entries live in ``$PYLIBBPF_CACHE/elf`` (else ``$XDG_CACHE_HOME/pylibbpf/elf``,
else ``~/.cache/pylibbpf/elf``), one file per table, named by a digest of the
file's identity (device, inode, size, mtime), the table's place in it and the
build-id. Each holds that key again, the hash's length and its CRC-32: a file
that is truncated, corrupt, or for another key is ignored and rewritten, never
trusted. Writes go to a temporary file renamed into place; a cache directory
that cannot be written is simply not used. Even a hash that passed those checks
only proposes entries: every lookup compares the name in the table itself.
"""
from __future__ import annotations

import os
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Tuple

__all__ = ["cached_hash", "cache_dir", "MIN_ENTRIES"]

#: tables with fewer entries build their hash faster than a cache file is read
MIN_ENTRIES = 4096
_MAGIC = b"PLBSYMH1"
# magic, dev, ino, size, mtime_ns, section offset, section size, entry size,
# build-id (hex, NUL-padded), hash length, CRC-32 of the hash
_HEAD = struct.Struct("<8sQQQqQQI40sQI")

if TYPE_CHECKING:
    Key = Tuple[int, int, int, int, int, int, int, str]


def _zlib() -> Any:
    """zlib's crc32 and adler32: pylibbpf._elfsym's (the C module, set up when
    pylibbpf.elf._index is imported), so that a first index need not import
    the zlib module (~0.3 ms), else the zlib module's."""
    mod = sys.modules.get("pylibbpf._elfsym")
    if mod is not None and hasattr(mod, "crc32"):
        return mod
    import zlib

    return zlib


def cache_dir() -> str:
    base = os.environ.get("PYLIBBPF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pylibbpf")
    if not os.path.isabs(base):
        base = os.path.join(os.getcwd(), base)
    return os.path.join(base, "elf")


def _head(key: Key, length: int, crc: int) -> bytes:
    dev, ino, size, mtime, off, secsize, entsize, build_id = key
    return _HEAD.pack(_MAGIC, dev & (2**64 - 1), ino & (2**64 - 1), size, mtime, off, secsize,
                      entsize, build_id.encode("ascii", "replace")[:40], length, crc)


def _path(key: Key) -> str:
    # CRC-32 and Adler-32 of the key: 64 bits without importing hashlib (~5 ms in a
    # fresh process, paid by its first index). Two keys with one name only cost a
    # miss: each file holds its key and is checked against it.
    raw = repr(key).encode()
    z = _zlib()
    digest = f"{z.crc32(raw):08x}{z.adler32(raw):08x}"
    return os.path.join(cache_dir(), digest + ".symhash")


def _load(path: str, key: Key, valid: Callable[[bytes], bool]) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
            if len(head) != _HEAD.size:
                return None
            magic, *_rest, length, crc = _HEAD.unpack(head)
            if head != _head(key, length, crc) or length > (1 << 34):
                return None
            blob = f.read(length + 1)
    except (OSError, ValueError, struct.error):
        return None
    if len(blob) != length or _zlib().crc32(blob) != crc or not valid(blob):
        return None
    return blob


def _store(path: str, key: Key, blob: bytes) -> None:
    tmp = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        import tempfile  # only here: a write, once per table and machine

        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(_head(key, len(blob), _zlib().crc32(blob)))
            f.write(blob)
        os.replace(tmp, path)
        tmp = None
    except (OSError, ValueError):
        pass  # an unwritable cache is no cache
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def cached_hash(key: Key, build: Callable[[], bytes],
                valid: Callable[[bytes], bool]) -> bytes:
    """The hash stored for ``key`` when there is an intact one that ``valid``
    accepts, else ``build()``, stored for the next process."""
    path = _path(key)
    blob = _load(path, key, valid)
    if blob is None:
        blob = build()
        _store(path, key, blob)
    return blob
