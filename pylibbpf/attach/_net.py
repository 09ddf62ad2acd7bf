"""Helpers shared by the networking attach kinds: targets (cgroups, network
namespaces, sockets, maps) opened and named, and the network namespace a
netlink attachment must be undone in."""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import socket
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, Optional, Tuple, Union

from .._ffi import lib
from ..errors import BPFError, BPFNotFoundError, as_path, error_from_errno
from ..types import AttachType, ProgramType

if TYPE_CHECKING:
    from ..program import Program

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]
    CgroupTarget = Union[str, "os.PathLike[str]", int]

CLONE_NEWNET = 0x40000000
_libc: Optional[ctypes.CDLL] = None


def _setns(fd: int, what: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise error_from_errno(err, f"enter network namespace ({what})")


def netns_inode() -> int:
    """The inode of this thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


@contextmanager
def in_netns(netns: Union[str, "os.PathLike[str]", int]) -> Iterator[None]:
    """Run the block, in this thread, inside a network namespace.

    ``netns`` is a name made with ``ip netns add`` (``/run/netns/NAME``), a path
    such as ``/proc/PID/ns/net``, or an open namespace fd. Sockets created and
    interfaces named inside the block belong to that namespace; attachments
    made there (XDP, tc) are undone there, wherever their Link is closed.
    """
    if isinstance(netns, bool):
        raise TypeError("netns must be a name, a path or a file descriptor, not bool")
    close_target = not isinstance(netns, int)
    if isinstance(netns, int):
        target, label = netns, f"fd {netns}"
    else:
        path = as_path(netns, "netns")
        if "/" not in path:
            path = f"/run/netns/{path}"
        label = path
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO: no wait
        except FileNotFoundError:
            raise BPFNotFoundError(_errno.ENOENT,
                                   f"no network namespace {netns!r} ({path})") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, label)
        try:
            yield
        finally:
            _setns(own, "back to the caller's")
    finally:
        os.close(own)
        if close_target:
            os.close(target)


class NetnsRef:
    """Remembers the network namespace this thread is in now, so that a netlink
    attachment (XDP, tc) is undone in the namespace where it was made, wherever
    the Link is closed. Holding it keeps that namespace alive."""

    def __init__(self) -> None:
        self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.inode = os.fstat(self.fd).st_ino

    @contextmanager
    def entered(self) -> Iterator[None]:
        if self.fd < 0:
            raise BPFError(_errno.EBADF, "network namespace reference is closed")
        if netns_inode() == self.inode:
            yield
            return
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(self.fd, f"inode {self.inode}")
            try:
                yield
            finally:
                _setns(own, "back to the caller's")
        finally:
            os.close(own)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def check_fd(fd: Any, name: str) -> int:
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"{name} must be an int file descriptor, not {type(fd).__name__}")
    if fd < 0:
        raise ValueError(f"{name} must be a file descriptor (>= 0), not {fd}")
    try:
        os.fstat(fd)
    except OSError as e:
        raise error_from_errno(e.errno or _errno.EBADF, f"{name} fd {fd}") from None
    return fd


def open_cgroup(cgroup: CgroupTarget) -> Tuple[int, str]:
    """A new fd of a cgroup v2 directory (given as path or fd) and its name."""
    if isinstance(cgroup, bool):
        raise TypeError("cgroup must be a path or a file descriptor, not bool")
    if isinstance(cgroup, int):
        check_fd(cgroup, "cgroup")
        return os.dup(cgroup), f"cgroup fd {cgroup}"
    if not isinstance(cgroup, (str, os.PathLike)):
        raise TypeError(f"cgroup must be a path or a file descriptor, "
                        f"not {type(cgroup).__name__}")
    path = os.fspath(cgroup)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BPFNotFoundError(_errno.ENOENT, f"no cgroup at {path!r}") from None
    except NotADirectoryError:
        raise BPFError(_errno.ENOTDIR, f"cgroup {path!r} is not a directory") from None
    except OSError as e:
        raise error_from_errno(e.errno or _errno.EINVAL, f"open cgroup {path!r}") from None
    return fd, f"cgroup {path!r}"


def open_netns(netns: Union[PathLike, int, None]) -> Tuple[int, str]:
    """A new fd of a network namespace: None (this thread's), a name under
    /run/netns, a path (/proc/PID/ns/net, a bind mount) or an fd."""
    if netns is None:
        return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC), \
            "the current network namespace"
    if isinstance(netns, bool):
        raise TypeError("netns must be a name, a path or a file descriptor, not bool")
    if isinstance(netns, int):
        check_fd(netns, "netns")
        return os.dup(netns), f"netns fd {netns}"
    if not isinstance(netns, (str, os.PathLike)):
        raise TypeError(f"netns must be a name, a path or a file descriptor, "
                        f"not {type(netns).__name__}")
    path = os.fspath(netns)
    if "/" not in path:
        path = f"/run/netns/{path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO: no wait
    except FileNotFoundError:
        raise BPFNotFoundError(_errno.ENOENT,
                               f"no network namespace at {path!r}") from None
    except OSError as e:
        raise error_from_errno(e.errno or _errno.EINVAL,
                               f"open network namespace {path!r}") from None
    return fd, f"network namespace {path!r}"


def fileno(sock: Any, name: str = "sock") -> int:
    """The fd of a socket, a file, a Map or an int."""
    if isinstance(sock, bool):
        raise TypeError(f"{name} must be a socket or a file descriptor, not bool")
    if isinstance(sock, int):
        return check_fd(sock, name)
    fd = getattr(sock, "fd", None)
    if isinstance(fd, int) and not isinstance(sock, socket.socket):
        return check_fd(fd, name)
    if hasattr(sock, "fileno"):
        fd = sock.fileno()
        if fd < 0:
            raise ValueError(f"{name} is closed")
        return int(fd)
    raise TypeError(f"{name} must be a socket or a file descriptor, not {type(sock).__name__}")


def expected_attach_type(prog: "Program") -> Optional[AttachType]:
    """The program's expected attach type when it comes from an Object."""
    prog._check()  # never hand libbpf a program of a closed Object
    if prog._ptr is None:
        return None
    try:
        return AttachType(lib.bpf_program__expected_attach_type(prog._ptr))
    except ValueError:
        return None


def check_attach_type(prog: "Program", attach_type: AttachType, what: str,
                      allowed: "dict[AttachType, Tuple[ProgramType, ...]]", kind: str) -> None:
    """Fail before any syscall when ``attach_type`` is not a ``kind`` hook or does
    not take programs of this type."""
    if attach_type not in allowed:
        raise BPFError(_errno.EINVAL, f"{what}: {attach_type.name.lower()} is not a {kind} "
                                      "attach type; use one of "
                       + ", ".join(t.name.lower() for t in allowed))
    types = allowed[attach_type]
    ptype = prog.type
    if ptype not in types:
        want = " or ".join(t.name.lower() for t in types)
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is of type "
                                      f"{ptype.name.lower()}, {attach_type.name.lower()} "
                                      f"needs {want}")
