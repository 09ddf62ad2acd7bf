"""Two persistent caches, under ``$PYLIBBPF_CACHE/elf`` (else
``$XDG_CACHE_HOME/pylibbpf/elf``, else ``~/.cache/pylibbpf/elf``). Entries are
written to a temporary file renamed into place; one that is truncated, corrupt
(each carries a CRC-32) or for another key is ignored and rewritten, never
trusted; a cache directory that cannot be written is simply not used.

**Name hashes** of symbol tables without one of their own (``.symtab``: the
dynamic linker's ``.gnu.hash`` covers ``.dynsym`` only), so that a new process
reads a large table's hash instead of building it: one file per table, named by
a digest of the file's identity (device, inode, size, mtime), the table's place
in it and the build-id, which the file holds again. Even a hash that passed
those checks only proposes entries: every lookup compares the name in the table
itself.

**Offsets of names** (:func:`remember_offsets`; read by ``pylibbpf/attach/uprobe_multi.py``),
so that a new process attaching a multi-uprobe by name to a binary given by path
neither imports :mod:`pylibbpf.elf` nor indexes the file and its debug file:
per binary, each name that :func:`~pylibbpf.elf._resolve.symbol_offsets` found
at one address by the C lookup, with that address's file offset (names with
several candidates, versioned or demangled queries and errors always take the
full resolution). An entry records everything those answers depend on, and is
used only while all of it is unchanged: the binary's identity and real path;
the identity of pylibbpf's extension module and of the modules that resolve
names (another pylibbpf, or an edited one, starts again); for a stripped
binary, ``DEBUG_DIRS`` and every place its separate debug file was looked for
(build-id and ``.gnu_debuglink`` paths) with what was there, so that a debug
file installed, removed or replaced since makes it stale. A binary modified in
the last 2 seconds gets no entry yet: rewritten in place within the file
system's timestamp granularity, it could keep its identity with other contents.
New names are added to a current entry; a tool that attaches to the same
functions at every start finds them all there from its second run on.
"""
from __future__ import annotations

import os
import struct
import sys
import time

from .._files import cache_dir, write_cache_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Sequence, Tuple

__all__ = ["cached_hash", "cache_dir", "remember_offsets", "MIN_ENTRIES"]

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
    write_cache_file(path, _head(key, len(blob), _zlib().crc32(blob)) + blob)


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


#: a binary modified less than this long ago (ns) gets no offsets entry yet
RACY_NS = 2_000_000_000
#: an offsets entry keeps at most this many names (a larger one starts again)
MAX_NAMES = 1 << 16
_OFFSETS_MAGIC = b"PLBOFF02"


def _offsets_head(path: str, st: os.stat_result, stripped: bool, looked: Sequence[str],
                  real: bool) -> List[str]:
    """The header lines of an offsets entry: what its answers depend on, as
    pylibbpf/_csrc/elfsym.c's cached_offsets checks them. ``real``: the
    binary's real path among them (the ``.gnu_debuglink`` candidates, looked at
    when no build-id path held a debug file, are beside it)."""
    from ..attach import uprobe_multi as u

    head = [u._rules(), path, os.path.realpath(path) if real else "-", u._ident(st),
            "stripped" if stripped else "-"]
    if stripped:
        head.append(u._dirs_field())
        head += [f"{p}\x1f{u._state(p)}" for p in looked]
    return head + [""] + [str(len(looked))] + list(looked)


def remember_offsets(binary: object, target_path: str, idx: Any, names: Sequence[object],
                     offsets: Sequence[Optional[int]]) -> None:
    """Add to the offsets entry of ``binary`` (``idx``: its SymbolIndex) the
    ``names`` whose offsets the C lookup found (``offsets``, None for the
    others) unless it has them all already; a missing or stale entry starts
    again."""
    from ..attach import uprobe_multi as u

    path = u._usable_path(binary)
    if path is None or target_path != path:
        return
    new = {n: o for n, o in zip(names, offsets) if type(n) is str and o is not None  # noqa: E721
           and n and "@" not in n and "\0" not in n and 0 <= o < 1 << 64}
    if not new:
        return
    try:
        "\0".join(new).encode("utf-8")  # names the reader can take (no lone surrogate)
        st = os.stat(path)
    except (OSError, ValueError):
        return
    have = u.cached_entry(path)
    if have is not None:
        if all(n in have for n in new):
            return
        if len(have) + len(new) <= MAX_NAMES:
            have.update(new)
            new = have
    if u._ident(st) != "%d:%d:%d:%d" % idx.image.identity:
        return  # the file changed under us: its next use writes the entry
    if st.st_mtime_ns > time.time_ns() - RACY_NS:
        # changed moments ago: rewritten in place within the file system's
        # timestamp granularity, it could keep this identity with other contents
        # (git's "racy clean" files). Recorded by a later attach.
        return
    stripped = bool(idx.stripped)
    looked: List[str] = []
    real = False
    if stripped:
        from ._paths import DEBUG_DIRS, find_debug_file

        image = idx.image
        dbg, looked = idx.debug_index()
        if find_debug_file(path, image.build_id, image.debuglink) != \
                ((dbg.path if dbg is not None else None), looked):
            # the answers came from another search (DEBUG_DIRS changed since, a
            # debug file appeared or went), or a debug file that could not be read
            return
        if dbg is not None:
            try:
                if os.stat(dbg.path).st_mtime_ns > time.time_ns() - RACY_NS:
                    return  # the debug file too (see above)
            except OSError:
                return
        # the build-id paths come first; past them, the debuglink ones, beside the real path
        real = len(looked) > (len(DEBUG_DIRS) if image.build_id and len(image.build_id) > 2
                              else 0)
    if any("\n" in p or "\x1f" in p or "\0" in p for p in looked):
        return
    head = "\n".join(_offsets_head(path, st, stripped, looked, real)) \
        .encode("utf-8", "surrogateescape")
    body = b"".join(o.to_bytes(8, sys.byteorder) for o in new.values()) + head + \
        "\0".join(new).encode("utf-8")
    body += b"\0" * (-len(body) % 8)
    total = sum(memoryview(body).cast("Q")) & 0xFFFFFFFFFFFFFFFF
    entry = u.entry_path(path)
    if entry is not None:
        write_cache_file(entry, _OFFSETS_MAGIC + total.to_bytes(8, "little")
               + b"".join(v.to_bytes(4, "little") for v in (len(new), len(head), len(body), 0))
               + body)
        _prune(os.path.dirname(entry))


#: offsets entries kept: past this many, the least recently written go
MAX_OFFSETS_ENTRIES = 256


def _prune(d: str) -> None:
    """Keep the offsets entries of the last binaries (temporary builds, say, add
    one each)."""
    try:
        with os.scandir(d) as it:
            entries = [e for e in it if e.name.endswith(".offsets")]
        if len(entries) <= MAX_OFFSETS_ENTRIES:
            return
        dated = sorted(((e.stat().st_mtime_ns, e.path) for e in entries), reverse=True)
        for _, p in dated[MAX_OFFSETS_ENTRIES * 3 // 4:]:
            os.unlink(p)
    except OSError:
        pass
