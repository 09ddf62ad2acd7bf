"""Finding files: libraries by short name (as the dynamic loader does), the
exact files a process maps (through ``/proc/PID/root``, so containers work),
executables on ``PATH`` and separate debug files (build-id, .gnu_debuglink)."""
from __future__ import annotations

import errno as _errno
import os
import stat
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .._files import DEFAULT_DEBUG_DIRS, open_regular
from .._record import record
from ..errors import BPFError, BPFNotFoundError, BPFPermissionError

__all__ = ["find_library", "library_candidates", "ld_so_cache", "MapEntry", "process_maps",
           "process_root", "in_process_root", "find_debug_file", "DEBUG_DIRS",
           "default_library_dirs", "library_name_regex", "is_library_name", "check_pid"]

#: where separate debug files are looked for (build-id tree and debuglink mirror)
DEBUG_DIRS: List[str] = list(DEFAULT_DEBUG_DIRS)

LD_SO_CACHE = "/etc/ld.so.cache"
_CACHE_MAGIC_NEW = b"glibc-ld.so.cache1.1"
_CACHE_MAGIC_OLD = b"ld.so-1.7.0"


def default_library_dirs() -> List[str]:
    """The dynamic loader's trusted directories, multiarch ones first."""
    dirs = []
    machine = os.uname().machine
    triplets = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
                "armv7l": "arm-linux-gnueabihf", "s390x": "s390x-linux-gnu",
                "ppc64le": "powerpc64le-linux-gnu", "riscv64": "riscv64-linux-gnu",
                "i686": "i386-linux-gnu"}
    t = triplets.get(machine)
    if t:
        dirs += [f"/lib/{t}", f"/usr/lib/{t}"]
    dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"]
    return dirs


# --- ELF identity checks --------------------------------------------------------

def _elf_ident(path: str) -> Optional[Tuple[int, int, int]]:
    """(class, data encoding, e_machine) of an ELF file, or None when it is not one."""
    try:
        with open_regular(path, "library") as f:  # a FIFO's read would block
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0]
    return head[4], head[5], machine


_HOST_IDENT: Optional[Tuple[int, int, int]] = None


def _host_ident() -> Optional[Tuple[int, int, int]]:
    global _HOST_IDENT
    if _HOST_IDENT is None:
        _HOST_IDENT = _elf_ident("/proc/self/exe")
    return _HOST_IDENT


def _usable(path: str) -> bool:
    """An ELF file for this machine (not a linker script, not a foreign arch)."""
    ident = _elf_ident(path)
    if ident is None:
        return False
    host = _host_ident()
    return host is None or ident == host


# --- library names ---------------------------------------------------------------

def is_library_name(name: str) -> bool:
    return name.startswith("lib") or ".so" in name


def library_name_regex(name: str) -> "re.Pattern[str]":
    """Basenames a short or full library name stands for.

    ``c``, ``libc`` -> ``libc.so``, ``libc.so.6``, ``libc-2.31.so``;
    ``libc.so.6`` -> only itself (and versions below it, ``libc.so.6.0``).
    """
    import re  # not at import: ~3 ms of a first attach by name

    base = os.path.basename(name)
    if ".so" in base:
        return re.compile(re.escape(base) + r"(\.\d+)*$")
    stem = base[3:] if base.startswith("lib") else base
    return re.compile(rf"lib{re.escape(stem)}(\.so(\.\d+)*|-[\d.]+\.so)$")


def _versions_only(rest: str) -> bool:
    """``rest`` is ``(\\.\\d+)*``: nothing, or dot-separated decimal numbers."""
    return not rest or (rest[0] == "." and all(x.isdecimal() for x in rest[1:].split(".")))


def _library_name_matcher(name: str) -> "Callable[[str], bool]":
    """What ``library_name_regex(name).match`` accepts, without ``re`` (whose
    import is ~3 ms of a first attach by library name)."""
    base = os.path.basename(name)
    if ".so" in base:
        def match(b: str) -> bool:
            b = b[:-1] if b.endswith("\n") else b  # as "$" does
            return b.startswith(base) and _versions_only(b[len(base):])
        return match
    head = "lib" + (base[3:] if base.startswith("lib") else base)

    def match_stem(b: str) -> bool:
        b = b[:-1] if b.endswith("\n") else b
        if not b.startswith(head):
            return False
        rest = b[len(head):]
        if rest.startswith(".so") and _versions_only(rest[3:]):
            return True
        mid = rest[1:-3]
        return (rest.startswith("-") and rest.endswith(".so") and len(rest) >= 5
                and all(c == "." or c.isdecimal() for c in mid))
    return match_stem


def _rank(basename: str) -> Tuple[int, int, Tuple[int, ...]]:
    """Sort key: a versioned soname (libc.so.6) before an unversioned dev link
    (libc.so, often a linker script), highest version first."""
    # the numbers after the last ".so" when only ".<digits>" follow it
    _head, so, tail = basename.rpartition(".so")
    parts = tail.split(".")[1:]
    versions = (tuple(int(x) for x in parts)
                if so and tail[:1] in ("", ".") and all(x.isdecimal() for x in parts) else ())
    return (0 if versions else 1, -len(versions), tuple(-v for v in versions))


def ld_so_cache(path: str = LD_SO_CACHE) -> List[Tuple[str, str, int]]:
    """Entries of ``/etc/ld.so.cache``: (soname, path, flags), in cache order."""
    try:
        with open_regular(path, "loader cache") as f:
            data = f.read()
    except OSError:
        return []
    start = data.find(_CACHE_MAGIC_NEW)
    if start < 0:
        return []
    if len(data) < start + 48:
        return []
    nlibs, _strlen = struct.unpack_from("=II", data, start + 20)
    out = []
    pos = start + 48
    for _ in range(nlibs):
        if pos + 24 > len(data):
            break
        flags, key, value = struct.unpack_from("=iII", data, pos)
        pos += 24
        out.append((_cstr(data, key), _cstr(data, value), flags))
    return out


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    return data[off:end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")


_cache_memo: Dict[Tuple[str, int, int], List[Tuple[str, str, int]]] = {}


def _cached_ld_so_cache(root: str = "") -> List[Tuple[str, str, int]]:
    path = root + LD_SO_CACHE
    try:
        st = os.stat(path)
    except OSError:
        return []
    key = (path, st.st_ino, st.st_mtime_ns)
    if key not in _cache_memo:
        _cache_memo.clear()
        _cache_memo[key] = ld_so_cache(path)
    return _cache_memo[key]


def library_candidates(name: str, *, root: str = "") -> List[Tuple[str, str]]:
    """Every file ``name`` could stand for, in the dynamic loader's order:
    ``LD_LIBRARY_PATH``, ``/etc/ld.so.cache``, then the default directories.

    Returns (path, where-found) pairs; ``root`` prefixes every path (a process's
    root directory).
    """
    return list(_library_candidates(name, root))


def first_library_candidate(name: str, *, root: str = "") -> Optional[Tuple[str, str]]:
    """``library_candidates(name, root=root)[0]`` (None when there is none),
    found without listing the directories searched after it."""
    return next(_library_candidates(name, root), None)


def _library_candidates(name: str, root: str) -> Iterator[Tuple[str, str]]:
    matches = _library_name_matcher(name)
    seen = set()

    def usable(path: str) -> Optional[str]:
        real = os.path.realpath(root + path) if root else os.path.realpath(path)
        if real in seen or not _usable(root + path if root else path):
            return None
        seen.add(real)
        return root + path if root else path

    def scan(d: str) -> Iterator[str]:
        try:
            entries = os.listdir(root + d)
        except OSError:
            return
        for b in sorted((e for e in entries if matches(e)), key=_rank):
            p = usable(os.path.join(d, b))
            if p is not None:
                yield p

    if not root:
        for d in filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")):
            for p in scan(d):
                yield p, "LD_LIBRARY_PATH"
    entries = [(so, p) for so, p, _fl in _cached_ld_so_cache(root) if matches(so)]
    for so, p in sorted(entries, key=lambda e: _rank(e[0])):
        found = usable(p)
        if found is not None:
            yield found, LD_SO_CACHE
    for d in default_library_dirs():
        for p in scan(d):
            yield p, "default library directory"


def find_library(name: str, *, pid: Optional[int] = None) -> str:
    """The file a library name stands for.

    ``name`` may be short (``"c"``, ``"ssl"``), a soname (``"libc.so.6"``) or a
    path. With ``pid``, the exact file mapped in that process is returned,
    reached through ``/proc/PID/root`` when the process lives in another mount
    namespace or root (a container).
    """
    return find_library_explained(name, pid=pid)[0]


def find_library_explained(name: str, *, pid: Optional[int] = None) -> Tuple[str, str]:
    """:func:`find_library` plus a sentence saying how the file was found."""
    if not isinstance(name, str) or not name:
        raise TypeError("library name must be a non-empty str")
    if pid is not None:
        check_pid(pid)
        return _library_in_process(name, pid)
    if "/" in name:
        if not check_path(name, "library"):
            raise BPFNotFoundError(_errno.ENOENT, f"library {name!r} does not exist")
        return name, "given as a path"
    first = first_library_candidate(name)
    if first is None:
        raise BPFNotFoundError(
            _errno.ENOENT, f"library {name!r} not found in LD_LIBRARY_PATH, "
                           f"{LD_SO_CACHE} or {', '.join(default_library_dirs())}")
    path, how = first
    return path, f"library {name!r} found via {how}"


# --- processes -----------------------------------------------------------------------

def proc_error(exc: OSError, pid: int, path: str) -> BPFError:
    """The pylibbpf error for ``exc``, raised reading ``path`` under ``/proc/PID``."""
    if isinstance(exc, BPFError):
        return exc
    if isinstance(exc, (FileNotFoundError, ProcessLookupError)):
        return BPFNotFoundError(_errno.ESRCH, f"no process with pid {pid} "
                                              f"(reading {path} failed: it exited?)")
    err = exc.errno or _errno.EIO
    if isinstance(exc, PermissionError):
        return BPFPermissionError(
            err, f"cannot read {path}: {os.strerror(err)}\n  hint: a process "
                 "of another user, or a more privileged one, can only be inspected by root with "
                 "CAP_SYS_PTRACE (which a container may withhold)")
    return BPFError(err, f"cannot read {path}: {os.strerror(err)}")


def check_pid(pid: int) -> None:
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(f"pid must be an int, not {type(pid).__name__}")
    if pid <= 0:
        raise ValueError(f"pid must be positive here, not {pid}")
    if not os.path.exists(f"/proc/{pid}"):
        raise BPFNotFoundError(_errno.ESRCH, f"no process with pid {pid}")


_MAP_FIELDS = ("start", "end", "perms", "offset", "inode", "path", "deleted")
_set = object.__setattr__


@record(_MAP_FIELDS)
class MapEntry:
    """One line of ``/proc/PID/maps``."""

    __slots__ = _MAP_FIELDS
    start: int
    end: int
    perms: str
    offset: int
    inode: int
    path: str
    deleted: bool

    def __init__(self, start: int, end: int, perms: str, offset: int, inode: int, path: str,
                 deleted: bool) -> None:
        _set(self, "start", start)
        _set(self, "end", end)
        _set(self, "perms", perms)
        _set(self, "offset", offset)
        _set(self, "inode", inode)
        _set(self, "path", path)
        _set(self, "deleted", deleted)


def process_maps(pid: int) -> List[MapEntry]:
    """The file-backed mappings of process ``pid``."""
    out = []
    path = f"/proc/{pid}/maps"
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise proc_error(e, pid, path) from None
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        path = parts[5]
        deleted = path.endswith(" (deleted)")
        if deleted:
            path = path[: -len(" (deleted)")]
        out.append(MapEntry(start, end, parts[1], int(parts[2], 16), int(parts[4]), path,
                            deleted))
    return out


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def process_root(pid: int) -> str:
    """``""`` when process ``pid`` sees the same files as we do, else
    ``/proc/PID/root`` (other mount namespace or chroot: a container)."""
    proot = f"/proc/{pid}/root"
    try:
        same_ns = os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    except PermissionError as e:  # its files would be out of reach too
        raise proc_error(e, pid, f"/proc/{pid}/ns/mnt") from None
    except OSError:
        same_ns = False
    if same_ns and _same_file(proot, "/"):
        return ""
    return proot


def in_process_root(pid: int, path: str) -> str:
    """``path`` as seen by process ``pid``, reachable from here."""
    return process_root(pid) + path


def _mapped_path(pid: int, entry: MapEntry) -> str:
    if entry.deleted:  # replaced on disk since it was mapped: use the mapping itself
        return f"/proc/{pid}/map_files/{entry.start:x}-{entry.end:x}"
    return in_process_root(pid, entry.path)


def process_files(pid: int) -> List[Tuple[str, MapEntry]]:
    """(reachable path, first mapping) of each distinct file mapped by ``pid``."""
    seen: Dict[Tuple[str, int], Tuple[str, MapEntry]] = {}
    for e in process_maps(pid):
        key = (e.path, e.inode)
        if key not in seen:
            seen[key] = (_mapped_path(pid, e), e)
    return list(seen.values())


def _proc_denied(pid: int, path: str) -> BPFPermissionError:
    return BPFPermissionError(_errno.EACCES, f"cannot read {path} of pid {pid}: this user "
                                             "may not inspect that process (it belongs to "
                                             "another user; that needs root or "
                                             "CAP_SYS_PTRACE)")


def check_path(path: str, what: str) -> bool:
    """True when ``path`` exists; False when it does not; raises when this user
    can't tell (a directory on the way it may not search), which is not absence."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        raise BPFPermissionError(_errno.EACCES, f"cannot reach {what} {path!r}: permission "
                                                "denied (a directory on the way is not "
                                                "searchable by this user)") from None
    except (OSError, ValueError):
        return False
    return True


def process_exe(pid: int) -> Tuple[str, str]:
    """(reachable path, path inside the process) of ``pid``'s executable."""
    path = f"/proc/{pid}/exe"
    try:
        inside = os.readlink(path)
    except OSError as e:
        raise proc_error(e, pid, path) from None
    if inside.endswith(" (deleted)"):
        return f"/proc/{pid}/exe", inside
    return in_process_root(pid, inside), inside


def _library_in_process(name: str, pid: int) -> Tuple[str, str]:
    files = process_files(pid)
    if "/" in name:
        for path, e in files:
            if e.path == name or os.path.realpath(in_process_root(pid, name)) == \
                    os.path.realpath(path):
                return path, f"{name!r} is mapped by pid {pid}"
        raise BPFNotFoundError(_errno.ENOENT, f"{name!r} is not mapped by pid {pid}")
    matches = _library_name_matcher(name)
    hits = [(p, e) for p, e in files if matches(os.path.basename(e.path))]
    if not hits:
        mapped = sorted({os.path.basename(e.path) for _, e in files
                         if ".so" in os.path.basename(e.path)})
        raise BPFNotFoundError(
            _errno.ENOENT, f"library {name!r} is not mapped by pid {pid}"
                           + (f"; it maps: {', '.join(mapped)}" if mapped else ""))
    path, e = hits[0]
    where = f" (reached through /proc/{pid}/root)" if path.startswith("/proc/") else ""
    return path, f"library {name!r} is {e.path!r} as mapped by pid {pid}{where}"


# --- separate debug files ------------------------------------------------------------

def _crc_ok(path: str, crc: int) -> bool:
    if not crc:
        return True
    import zlib  # only here: a .gnu_debuglink's CRC, when no build-id path matched

    value = 0
    try:
        with open_regular(path, "debug file") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                value = zlib.crc32(chunk, value)
    except OSError:
        return False
    return value == crc


def _realpath(path: str) -> str:
    """os.path.realpath of a path that exists, with realpath(3) when the C
    module is in (pylibbpf/_csrc/elfsym.c: os.path.realpath takes one lstat per
    component, from Python)."""
    mod = sys.modules.get("pylibbpf._elfsym")
    if mod is not None:
        try:
            res = mod.realpath(path)
        except ValueError:  # a NUL in the path: os.path.realpath's own answer
            res = None
        if res is not None:
            return res  # type: ignore[no-any-return]
    return os.path.realpath(path)


def find_debug_file(binary: str, build_id: Optional[str],
                    debuglink: Optional[Tuple[str, int]], *, root: str = "",
                    debug_dirs: Optional[Sequence[str]] = None) -> Tuple[Optional[str], List[str]]:
    """The separate debug file of ``binary``, and every place that was looked at.

    Order, as gdb does: ``<debug-dir>/.build-id/xx/yyyy.debug``, then the
    debuglink name beside the binary, in ``.debug/`` beside it, and under
    ``<debug-dir>/<binary's directory>/``. A debuglink match must have the CRC
    the binary records.
    """
    looked: List[str] = []
    dirs = list(DEBUG_DIRS if debug_dirs is None else debug_dirs)
    if build_id and len(build_id) > 2:
        for d in dirs:
            cand = os.path.join(root + d, ".build-id", build_id[:2], build_id[2:] + ".debug")
            looked.append(cand)
            if os.path.isfile(cand):
                return cand, looked
    if debuglink:
        name, crc = debuglink
        real = _realpath(binary)
        bdir = os.path.dirname(real)
        inside_dir = bdir[len(root):] if root and bdir.startswith(root) else bdir
        cands = [os.path.join(bdir, name), os.path.join(bdir, ".debug", name)]
        cands += [root + os.path.join(d, inside_dir.lstrip("/"), name) for d in dirs]
        for cand in cands:
            looked.append(cand)
            if os.path.isfile(cand) and _realpath(cand) != real \
                    and _crc_ok(cand, crc):
                return cand, looked
    return None, looked


def which(name: str, *, root: str = "") -> Optional[str]:
    """An executable on ``PATH`` (inside ``root`` when given), as
    ``shutil.which`` finds it: the first ``PATH`` entry holding a file of that
    name this user may execute (not a directory). Written out: ``shutil``
    imports its archive modules (zlib, bz2, lzma: ~3 ms of a first attach to
    ``"c"``)."""
    if root:
        for d in os.environ.get("PATH", os.defpath).split(":"):
            cand = os.path.join(root + d, name)
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
        return None
    if os.path.dirname(name):
        return name if _executable(name) else None
    dirs = os.environ.get("PATH")
    if dirs is None:
        try:
            dirs = os.confstr("CS_PATH")
        except (AttributeError, ValueError):
            dirs = None
        dirs = dirs or os.defpath
    seen = set()
    for d in dirs.split(os.pathsep) if dirs else ():
        if d in seen:
            continue
        seen.add(d)
        cand = os.path.join(d, name)
        if _executable(cand):
            return cand
    return None


def _executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return not stat.S_ISDIR(st.st_mode) and os.access(path, os.X_OK)
