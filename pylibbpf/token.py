"""BPF tokens: delegated BPF privileges inside a user namespace (Linux 6.9+).

A BPF token is created (``BPF_TOKEN_CREATE``) from a BPF file system that root
mounted with ``delegate_cmds=`` / ``delegate_maps=`` / ``delegate_progs=`` /
``delegate_attachs=`` options *for* a user namespace: a process holding CAP_BPF
in that namespace (but none in the initial one) can then load the programs and
create the maps the mount delegates, by passing the token with each ``bpf()``
command. :class:`~pylibbpf.Object` does this for you with ``token_path=`` (or
libbpf's ``LIBBPF_BPF_TOKEN_PATH``); :class:`Token` is the low-level handle for
:meth:`Program.load_raw` and :meth:`Map.create`. The guide's "BPF tokens"
section and :func:`pylibbpf.testing.delegated_bpffs` show how such a mount is made.
"""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

from ._ffi import ffi, lib, opts
from ._owner import Closeable
from .errors import BPFError, ClosedError, as_path, error_from_errno, not_supported

__all__ = ["Token", "BPF_F_TOKEN_FD"]

#: ``map_flags`` / ``prog_flags`` / ``btf_flags`` bit saying "token_fd is set" (uapi bpf.h)
BPF_F_TOKEN_FD = 1 << 16

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]


class Token(Closeable):
    """A BPF token created from a delegating bpffs: its mount point (a path) or an
    open file descriptor of its root (``fsmount()``'s, say; the fd is not taken over).

    >>> with pylibbpf.Token("/run/bpf-delegated") as token:          # doctest: +SKIP
    ...     prog = pylibbpf.Program.load_raw("socket_filter", insns, token=token)

    Raises :class:`~pylibbpf.NotSupportedError` on kernels without tokens (before
    6.9) and where the bpffs delegates nothing (ENOENT), or the process is in the
    initial user namespace or in another one than the mount's (EOPNOTSUPP).
    """

    def __init__(self, bpffs: Union[PathLike, int], *, flags: int = 0) -> None:
        self._fd = -1
        if isinstance(bpffs, bool) or not isinstance(flags, int):
            raise TypeError("bpffs must be a path or a file descriptor; flags an int")
        own_fd = -1
        if isinstance(bpffs, int):
            label = f"bpffs fd {bpffs}"
            fs_fd = bpffs
        else:
            path = as_path(bpffs, "bpffs")
            label = repr(path)
            try:
                own_fd = fs_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as e:
                raise error_from_errno(e.errno or _errno.EIO,
                                       f"create BPF token: open bpffs {path!r}") from None
        try:
            o = opts("bpf_token_create_opts", flags=flags)
            fd = lib.bpf_token_create(fs_fd, o)
            err = ffi.errno
        finally:
            if own_fd >= 0:
                os.close(own_fd)
        self.label = label
        if fd < 0:
            raise _token_error(err, f"create BPF token from {label}")
        self._fd = int(fd)

    @property
    def fd(self) -> int:
        """The token's file descriptor."""
        if self._fd < 0:
            raise ClosedError(f"BPF token of {self.label}")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<Token {self.label} {state}>"


def _token_error(err: int, what: str) -> BPFError:
    from .system import support

    if err in (_errno.EINVAL, _errno.ENOSYS):
        sup = support("bpf_token")
        if not sup:
            return not_supported(err, what, f"bpf_token: {sup.reason}")
    if err == _errno.ENOENT:
        return not_supported(err, what, "the bpffs delegates nothing (mount it with "
                             "delegate_cmds=/delegate_maps=/delegate_progs=/"
                             "delegate_attachs= options)")
    if err == _errno.EOPNOTSUPP:
        return not_supported(err, what, "a BPF token is made only inside a user namespace "
                             "other than the initial one, and only the one the bpffs was "
                             "created in")
    if err == _errno.EINVAL:
        return error_from_errno(err, what, hint="give the root directory of a bpffs mount")
    return error_from_errno(err, what)


def token_fd_of(token: Optional[Any]) -> int:
    """The fd of ``token`` (a :class:`Token`, or an int fd), 0 for None."""
    if token is None:
        return 0
    if isinstance(token, Token):
        return token.fd
    if isinstance(token, int) and not isinstance(token, bool) and token > 0:
        return token
    raise TypeError(f"token must be a pylibbpf.Token or a file descriptor, not {token!r}")
