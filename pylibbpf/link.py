"""``Link``: one attachment of a program to a hook.

A Link owns either a libbpf ``struct bpf_link *`` (from libbpf's attach
functions) or a bare link file descriptor (from ``BPF_LINK_CREATE``). Closing it
detaches the program, unless the link was pinned or disconnected first.

Lifetime rules:

* ``close()`` is idempotent; a Link is a context manager.
* A Link that is garbage-collected is closed, and so detached: keep a
  reference for as long as the program should stay attached, or ``pin()`` it,
  or call ``disconnect()`` to let it live until the process exits.
* Closing the Object a Link's program came from first is safe: the kernel
  keeps the program alive for as long as the link exists.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ._ffi import ffi, lib, libbpf_log
from .errors import ClosedError, check_ptr, check_ret, error_from_errno
from .types import LinkType

if TYPE_CHECKING:
    from .program import Program

__all__ = ["Link", "LinkInfo"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class LinkInfo:
    """What the kernel reports about a link (``bpf_link_info``)."""

    type: Union[LinkType, int]
    id: int
    program_id: int


class Link:
    """An attached program. Use the ``Program.attach_*`` methods to make one."""

    def __init__(self, *, ptr: Any = None, fd: int = -1, description: str = "link",
                 on_close: Optional[Callable[[], None]] = None) -> None:
        self._ptr = ptr
        self._fd = fd
        self._description = description
        self._on_close = on_close
        self._pin_path: Optional[str] = None
        self._disconnected = False
        self._alive = True

    # --- construction -----------------------------------------------------
    @classmethod
    def _from_ptr(cls, ptr: Any, err: int, what: str, log: Any = None) -> "Link":
        check_ptr(ptr, err, what, libbpf_log=log.warnings if log else ())
        return cls(ptr=ptr, description=what)

    @classmethod
    def open_pinned(cls, path: PathLike) -> "Link":
        """Reopen a link pinned in bpffs at ``path``."""
        path = os.fspath(path)
        with libbpf_log() as log:
            ptr = lib.bpf_link__open(path.encode())
            err = ffi.errno
        link = cls._from_ptr(ptr, err, f"open pinned link {path!r}", log)
        link._pin_path = path
        return link

    # --- state ------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return not self._alive

    def _check(self) -> None:
        if self.closed:
            raise ClosedError(f"Link ({self._description})")

    @property
    def fd(self) -> int:
        """The link's file descriptor (``-1`` for legacy attachments without one)."""
        self._check()
        if self._ptr is not None:
            return int(lib.bpf_link__fd(self._ptr))
        return self._fd

    @property
    def pin_path(self) -> Optional[str]:
        """Where the link is pinned, or None."""
        self._check()
        if self._ptr is not None:
            p = lib.bpf_link__pin_path(self._ptr)
            return None if p == ffi.NULL else ffi.string(p).decode()
        return self._pin_path

    @property
    def info(self) -> LinkInfo:
        """Type, id and program id, as the kernel reports them."""
        fd = self.fd
        if fd < 0:
            raise error_from_errno(95, f"{self._description} has no link fd to query")
        info = ffi.new("struct bpf_link_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
        check_ret(lib.bpf_link_get_info_by_fd(fd, info, size), f"info of {self._description}")
        try:
            ltype: Union[LinkType, int] = LinkType(info.type)
        except ValueError:
            ltype = int(info.type)
        return LinkInfo(type=ltype, id=int(info.id), program_id=int(info.prog_id))

    # --- operations -------------------------------------------------------
    def pin(self, path: PathLike) -> None:
        """Pin the link in bpffs: it then outlives this object and the process."""
        self._check()
        path = os.fspath(path)
        what = f"pin {self._description} at {path!r}"
        with libbpf_log() as log:
            if self._ptr is not None:
                check_ret(lib.bpf_link__pin(self._ptr, path.encode()), what,
                          libbpf_log=log.warnings)
            else:
                if self._fd < 0:
                    raise error_from_errno(95, f"{what}: legacy attachment cannot be pinned")
                check_ret(lib.bpf_obj_pin(self._fd, path.encode()), what)
        self._pin_path = path

    def unpin(self) -> None:
        """Remove the link's pin; the link then lives as long as this object."""
        self._check()
        if self._ptr is not None:
            check_ret(lib.bpf_link__unpin(self._ptr), f"unpin {self._description}")
        elif self._pin_path is not None:
            try:
                os.unlink(self._pin_path)
            except OSError as e:
                raise error_from_errno(e.errno or 2, f"unpin {self._pin_path!r}") from None
        self._pin_path = None

    def update(self, program: "Program") -> None:
        """Atomically replace the attached program by ``program``."""
        self._check()
        what = f"update {self._description} to program {program.name!r}"
        if self._ptr is not None and program._ptr is not None:
            check_ret(lib.bpf_link__update_program(self._ptr, program._ptr), what)
        else:
            check_ret(lib.bpf_link_update(self.fd, program.fd, ffi.NULL), what)

    def detach(self) -> None:
        """Detach the program now (the kernel keeps a defunct link until close)."""
        self._check()
        if self._ptr is not None:
            check_ret(lib.bpf_link__detach(self._ptr), f"detach {self._description}")
        else:
            check_ret(lib.bpf_link_detach(self._fd), f"detach {self._description}")

    def disconnect(self) -> None:
        """Let the attachment outlive this object: ``close()`` won't detach it."""
        self._check()
        if self._ptr is not None:
            lib.bpf_link__disconnect(self._ptr)
        self._disconnected = True

    def close(self) -> None:
        """Detach (unless pinned or disconnected) and free. Idempotent."""
        if not self._alive:
            return
        ptr, fd, on_close = self._ptr, self._fd, self._on_close
        self._ptr, self._fd, self._on_close, self._alive = None, -1, None, False
        if ptr is not None:
            lib.bpf_link__destroy(ptr)
        elif fd >= 0:
            os.close(fd)
        if on_close is not None and not self._disconnected:
            on_close()

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fd}"
        return f"<pylibbpf.Link {self._description} {state}>"
