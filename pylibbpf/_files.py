"""Opening files a user names: only regular files, never a blocking read.

A FIFO (or a terminal, a socket, a character device) named where a file is
expected would make ``open()`` or the first ``read()`` wait for ever, inside
libbpf, libelf, clang or pyelftools. Every path a user gives pylibbpf to read
goes through :func:`regular_file` (before handing it to C code that opens it
itself) or :func:`open_regular` (before reading it in Python).
"""
from __future__ import annotations

import errno as _errno
import fcntl
import io
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Tuple, Type

from .errors import BPFError, BPFNotFoundError, error_from_errno

__all__ = ["regular_file", "open_regular", "read_head", "cache_base", "cache_dir",
           "write_cache_file", "DEFAULT_DEBUG_DIRS"]

#: where a separate debug file is looked for (pylibbpf.elf._paths.DEBUG_DIRS starts as it)
DEFAULT_DEBUG_DIRS = ("/usr/lib/debug",)

_KINDS = ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def _refuse(st: os.stat_result, path: str, what: str, cls: Type[BPFError]) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise cls(_errno.EISDIR, f"{what} {path!r} is a directory, not a regular file")
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "special file")
    raise cls(_errno.EINVAL, f"{what} {path!r} is a {kind}, not a regular file "
                             "(reading it could block for ever)")


def _os_error(e: OSError, path: str, what: str) -> BPFError:
    if isinstance(e, FileNotFoundError):
        return BPFNotFoundError(_errno.ENOENT, f"{what} {path!r} does not exist")
    hint = "this user cannot read the file" if e.errno in (_errno.EACCES, _errno.EPERM) else ""
    return error_from_errno(e.errno or _errno.EIO, f"read {what} {path!r}", hint=hint)


def regular_file(path: str, what: str, *, cls: Type[BPFError] = BPFError) -> os.stat_result:
    """The ``stat`` of ``path`` if it is a regular file (symbolic links followed);
    otherwise a :class:`BPFError` (``cls``) naming ``what`` and the path:
    BPFNotFoundError when it is missing. Nothing is opened."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise _os_error(e, path, what) from None
    _refuse(st, path, what, cls)
    return st


def _open_fd(path: str, what: str, cls: Type[BPFError],
             blocking: bool = True) -> Tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file ``path`` and its ``fstat``:
    checked first by ``stat``, then again on the opened descriptor (opened
    non-blocking, so a FIFO swapped in meanwhile can't block the open either),
    then made blocking for the reads unless ``blocking`` is false (reads of a
    regular file never block either way: two system calls fewer)."""
    regular_file(path, what, cls=cls)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise _os_error(e, path, what) from None
    try:
        st = os.fstat(fd)
        _refuse(st, path, what, cls)
        if blocking:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_regular(path: str, what: str, *, cls: Type[BPFError] = BPFError) -> BinaryIO:
    """``open(path, "rb")`` of a regular file, as :func:`regular_file` checks it
    (:func:`_open_fd`)."""
    fd, _st = _open_fd(path, what, cls)
    try:
        raw = io.FileIO(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    raw.name = path  # as open() names it (error messages show f.name)
    return io.BufferedReader(raw)


def cache_base() -> str:
    """pylibbpf's cache directory: ``$PYLIBBPF_CACHE``, else
    ``$XDG_CACHE_HOME/pylibbpf``, else ``~/.cache/pylibbpf``; a relative one is
    made absolute against the working directory, unnormalised."""
    base = os.environ.get("PYLIBBPF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pylibbpf")
    return base if os.path.isabs(base) else os.path.join(os.getcwd(), base)


def cache_dir() -> str:
    """The ELF caches' directory: ``elf`` in :func:`cache_base`."""
    return os.path.join(cache_base(), "elf")


def write_cache_file(dest: str, blob: bytes) -> None:
    """``blob`` into the cache file ``dest`` through a temporary file renamed into
    place (not the tempfile module: it imports shutil, with zlib, bz2 and lzma);
    the directories are made as needed, and a failure is silent."""
    tmp = None
    try:
        d = os.path.dirname(dest)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, dest)
        tmp = None
    except (OSError, ValueError):
        pass  # an unwritable cache is no cache
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def read_head(path: str, what: str, n: int, *,
              cls: Type[BPFError] = BPFError) -> Tuple[int, bytes]:
    """The size of the regular file ``path`` and its first ``n`` bytes (fewer
    when it is shorter), checked as :func:`open_regular` checks it, read with
    one ``pread`` and no Python file object (Object() reads an ELF header so)."""
    fd, st = _open_fd(path, what, cls, blocking=False)
    try:
        return st.st_size, os.pread(fd, n, 0)
    except OSError as e:
        raise error_from_errno(e.errno or _errno.EIO, f"read {what} {path!r}") from None
    finally:
        os.close(fd)
