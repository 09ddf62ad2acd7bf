"""pylibbpf's exceptions, and the one place C return codes become them.

Every exception derives from :class:`BPFError`, itself an :class:`OSError`
carrying ``errno``. Subclasses also inherit the matching builtin, so
``except PermissionError`` or ``except FileNotFoundError`` work as expected.
"""
from __future__ import annotations

import errno as _errno
import os
from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, List, Optional, Type

__all__ = [
    "BPFError",
    "BPFPermissionError",
    "BPFNotFoundError",
    "BPFKeyError",
    "BPFExistsError",
    "NotSupportedError",
    "NoAttachTargetError",
    "VerifierError",
    "ELFError",
    "ClosedError",
    "check_ret",
    "check_ptr",
    "bad_ptr",
    "as_path",
    "error_from_errno",
]

# errnos libbpf defines beyond the kernel's (libbpf.h: enum libbpf_errno)
LIBBPF_ERRNO_BASE = 4000
LIBBPF_ERRNO_LIBELF = 4000
LIBBPF_ERRNO_FORMAT = 4001
LIBBPF_ERRNO_KVERSION = 4002
LIBBPF_ERRNO_ENDIAN = 4003
LIBBPF_ERRNO_INTERNAL = 4004
LIBBPF_ERRNO_RELOC = 4005
LIBBPF_ERRNO_LOAD = 4006
LIBBPF_ERRNO_VERIFY = 4007
LIBBPF_ERRNO_PROG2BIG = 4008
LIBBPF_ERRNO_KVER = 4009
LIBBPF_ERRNO_PROGTYPE = 4010
LIBBPF_ERRNO_WRNGPID = 4011
LIBBPF_ERRNO_INVSEQ = 4012
LIBBPF_ERRNO_NLPARSE = 4013

_LIBBPF_MESSAGES = {
    LIBBPF_ERRNO_LIBELF: "something wrong in libelf",
    LIBBPF_ERRNO_FORMAT: "BPF object format invalid",
    LIBBPF_ERRNO_KVERSION: "'version' section incorrect or lost",
    LIBBPF_ERRNO_ENDIAN: "endian mismatch",
    LIBBPF_ERRNO_INTERNAL: "internal error in libbpf",
    LIBBPF_ERRNO_RELOC: "relocation failed",
    LIBBPF_ERRNO_LOAD: "failed to load program",
    LIBBPF_ERRNO_VERIFY: "kernel verifier blocks program loading",
    LIBBPF_ERRNO_PROG2BIG: "program too big",
    LIBBPF_ERRNO_KVER: "incorrect kernel version",
    LIBBPF_ERRNO_PROGTYPE: "kernel doesn't support this program type",
    LIBBPF_ERRNO_WRNGPID: "wrong pid in netlink message",
    LIBBPF_ERRNO_INVSEQ: "invalid netlink sequence",
    LIBBPF_ERRNO_NLPARSE: "netlink parse error",
}

ENOTSUPP = 524  # the kernel's internal "not supported", leaks to user space
MAX_ERRNO = 4095  # errors are -1 .. -MAX_ERRNO (and ERR_PTRs in that range)
#: no valid user-space pointer is at or above this on any 64-bit Linux we support
_USER_PTR_LIMIT = 1 << 56


class DeferredLog(Sequence[str]):
    """libbpf's warnings captured during a failed call, parsed only when an error's
    ``libbpf_log`` is read: a failing attach in a loop never pays for it. ``capture``
    is the call's ``LogCapture`` (anything with a ``warnings`` list)."""

    __slots__ = ("_capture",)

    def __init__(self, capture: Any) -> None:
        self._capture = capture

    def __iter__(self) -> Iterator[str]:
        return iter(self._capture.warnings)

    def __len__(self) -> int:
        return len(self._capture.warnings)

    def __getitem__(self, i: Any) -> Any:
        return self._capture.warnings[i]


class BPFError(OSError):
    """Base class of every pylibbpf error. ``errno`` holds the C error code."""

    def __init__(self, errno: int, message: str, *, libbpf_log: Sequence[str] = ()) -> None:
        super().__init__(errno, message)
        self._libbpf_log: Any = (libbpf_log if type(libbpf_log) is DeferredLog
                                 else list(libbpf_log))

    @property
    def libbpf_log(self) -> List[str]:
        """libbpf's own warnings printed while the failing call ran (lines)."""
        log = self._libbpf_log
        if type(log) is DeferredLog:  # parsed when first read
            log = self._libbpf_log = list(log)
        return log  # type: ignore[no-any-return]

    @libbpf_log.setter
    def libbpf_log(self, value: Sequence[str]) -> None:
        self._libbpf_log = list(value)

    def __reduce__(self) -> Any:
        self.libbpf_log  # a deferred log becomes plain data before pickling
        return super().__reduce__()

    def __str__(self) -> str:
        text = str(self.strerror)
        if self.errno and self.errno > 0:
            text += f" [{errno_name(self.errno)}]"
        return text


class BPFPermissionError(BPFError, PermissionError):
    """The kernel refused for lack of privilege (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN …)."""


class BPFNotFoundError(BPFError, FileNotFoundError, LookupError):
    """A named thing does not exist: file, symbol, program, map, interface, pin …"""


class BPFKeyError(BPFNotFoundError, KeyError):
    """A name that a pylibbpf mapping doesn't hold (``obj.maps[name]``, ``obj[name]``,
    ``obj.programs[name]``): a :class:`BPFNotFoundError` that is also a ``KeyError``;
    the message lists the names there are."""


class BPFExistsError(BPFError, FileExistsError):
    """The target already exists (a pin path, a map key with NOEXIST, an attachment)."""


class NotSupportedError(BPFError):
    """This kernel (or this build) cannot do what was asked; the message names the feature."""

    #: why, without the operation's name (set where the cause is known)
    reason: str = ""
    #: the program whose load or attach the kernel refused (None when no program is)
    program: Optional[str] = None


class NoAttachTargetError(BPFError):
    """A program's SEC() does not say where to attach (``SEC("xdp")``,
    ``SEC("kprobe")`` …), so ``attach()`` cannot: ``method`` names the
    ``attach_<kind>()`` call that takes the target. ``errno`` is EOPNOTSUPP,
    as libbpf answers."""

    def __init__(self, message: str, *, program: str, section: str, method: str = "") -> None:
        super().__init__(_errno.EOPNOTSUPP, message)
        self.program = program
        self.section = section
        self.method = method


class ELFError(BPFError, ValueError):
    """The input is not a usable BPF ELF object; the message names the file."""


class ClosedError(BPFError, ValueError):
    """An operation on an object that was already closed."""

    def __init__(self, what: str) -> None:
        super().__init__(_errno.EBADF, f"{what} is closed")


class VerifierError(BPFError):
    """The kernel's verifier rejected a program.

    ``program`` is the program's name, ``log`` the whole verifier log; the
    message shows its last lines.
    """

    TAIL_LINES = 12

    def __init__(self, errno: int, program: str, log: str, *,
                 libbpf_log: Sequence[str] = ()) -> None:
        self.program = program
        self.log = log
        lines = [ln for ln in log.rstrip("\n").splitlines() if ln.strip()]
        tail = "\n".join("  " + ln for ln in lines[-self.TAIL_LINES:])
        message = f"verifier rejected program {program!r}: {strerror(errno)}"
        if tail:
            message += f"\nlast lines of the verifier log:\n{tail}"
        else:
            message += " (the verifier log is empty)"
        super().__init__(errno, message, libbpf_log=libbpf_log)


#: the kernel's internal errnos (include/linux/errno.h) that reach user space from
#: bpf() now and then, ENOTSUPP above all: name and meaning (libbpf 1.7's errstr()
#: names only ENOTSUPP of these; os.strerror() says "Unknown error 524")
_KERNEL_ERRNOS = {
    512: ("ERESTARTSYS", "Interrupted system call, to be restarted"),
    513: ("ERESTARTNOINTR", "Interrupted system call, restarted"),
    514: ("ERESTARTNOHAND", "Interrupted system call, restarted without a handler"),
    515: ("ENOIOCTLCMD", "No such ioctl command"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted system call, restart by restart_syscall"),
    517: ("EPROBE_DEFER", "Driver probe deferred"),
    518: ("EOPENSTALE", "Stale open"),
    519: ("ENOPARAM", "Parameter not supported"),
    521: ("EBADHANDLE", "Illegal NFS file handle"),
    522: ("ENOTSYNC", "Update synchronization mismatch"),
    523: ("EBADCOOKIE", "Cookie is stale"),
    ENOTSUPP: ("ENOTSUPP", "Operation not supported"),
    525: ("ETOOSMALL", "Buffer or request is too small"),
    526: ("ESERVERFAULT", "Server fault"),
    527: ("EBADTYPE", "Type not supported by server"),
    528: ("EJUKEBOX", "Request initiated, but will not complete before timeout"),
    529: ("EIOCBQUEUED", "iocb queued, will get completion event"),
    530: ("ERECALLCONFLICT", "Conflict with recalled state"),
}

_LIBBPF_NAMES = {LIBBPF_ERRNO_LIBELF: "LIBELF", LIBBPF_ERRNO_FORMAT: "FORMAT",
                 LIBBPF_ERRNO_KVERSION: "KVERSION", LIBBPF_ERRNO_ENDIAN: "ENDIAN",
                 LIBBPF_ERRNO_INTERNAL: "INTERNAL", LIBBPF_ERRNO_RELOC: "RELOC",
                 LIBBPF_ERRNO_LOAD: "LOAD", LIBBPF_ERRNO_VERIFY: "VERIFY",
                 LIBBPF_ERRNO_PROG2BIG: "PROG2BIG", LIBBPF_ERRNO_KVER: "KVER",
                 LIBBPF_ERRNO_PROGTYPE: "PROGTYPE", LIBBPF_ERRNO_WRNGPID: "WRNGPID",
                 LIBBPF_ERRNO_INVSEQ: "INVSEQ", LIBBPF_ERRNO_NLPARSE: "NLPARSE"}


def errno_name(err: int) -> str:
    """The symbolic name of errno ``err`` (positive): ``"EINVAL"``, the kernel's
    internal ``"ENOTSUPP"`` (524) and its neighbours, libbpf's own
    ``"LIBBPF_ERRNO__FORMAT"`` …; the number as text when it has none."""
    err = abs(err)
    if err in _KERNEL_ERRNOS:
        return _KERNEL_ERRNOS[err][0]
    if err in _LIBBPF_NAMES:
        return f"LIBBPF_ERRNO__{_LIBBPF_NAMES[err]}"
    return _errno.errorcode.get(err, str(err))


def strerror(err: int) -> str:
    err = abs(err)
    if err in _LIBBPF_MESSAGES:
        return _LIBBPF_MESSAGES[err]
    if err in _KERNEL_ERRNOS:
        return _KERNEL_ERRNOS[err][1]
    return os.strerror(err)


def in_user_namespace() -> bool:
    """True when this process runs in a user namespace other than the initial one."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


#: what a permission error adds inside a user namespace
TOKEN_HINT = ("this process is in a user namespace, where CAP_BPF counts only through a "
              "BPF token: pass token_path= (a bpffs mounted with delegate_* options for "
              "this namespace; see pylibbpf.Token) or set LIBBPF_BPF_TOKEN_PATH")


_CLASS_BY_ERRNO: dict[int, Type[BPFError]] = {
    _errno.EPERM: BPFPermissionError,
    _errno.EACCES: BPFPermissionError,
    _errno.ENOENT: BPFNotFoundError,
    _errno.ESRCH: BPFNotFoundError,
    _errno.ENODEV: BPFNotFoundError,
    _errno.ENXIO: BPFNotFoundError,
    _errno.EEXIST: BPFExistsError,
    _errno.EOPNOTSUPP: NotSupportedError,
    _errno.ENOSYS: NotSupportedError,
    ENOTSUPP: NotSupportedError,
    LIBBPF_ERRNO_LIBELF: ELFError,
    LIBBPF_ERRNO_FORMAT: ELFError,
    LIBBPF_ERRNO_ENDIAN: ELFError,
    LIBBPF_ERRNO_PROGTYPE: NotSupportedError,
}


def error_from_errno(err: int, what: str, *, cls: Optional[Type[BPFError]] = None,
                     libbpf_log: Sequence[str] = (), hint: str = "") -> BPFError:
    """Build the exception for C error ``err`` (positive) raised by ``what``."""
    err = abs(err)
    if not 0 < err < MAX_ERRNO:
        # libbpf sometimes passes on a value that is no errno (e.g. a truncated size)
        what = f"{what} (libbpf returned the invalid error code {-err})"
        err = _errno.EINVAL
    cls = cls or _CLASS_BY_ERRNO.get(err, BPFError)
    message = f"{what}: {strerror(err)}"
    detail = [ln.strip().removeprefix("libbpf:").strip() for ln in libbpf_log if ln.strip()]
    if detail:
        message += "\n  libbpf: " + "\n  libbpf: ".join(detail[-4:])
    if hint:
        message += f"\n  hint: {hint}"
    if cls is BPFPermissionError and not hint:
        if in_user_namespace():
            message += f"\n  hint: {TOKEN_HINT}"
        else:
            message += ("\n  hint: loading and attaching BPF programs needs root or "
                        "CAP_BPF (+ CAP_PERFMON for tracing, CAP_NET_ADMIN for networking)")
    return cls(err, message, libbpf_log=libbpf_log)


#: libbpf's advice after any EPERM as root (``pr_perm_msg``); a NotSupportedError
#: says the kernel lacks the kind, so raising the memlock limit cannot help
_MEMLOCK_ADVICE = "try raising 'ulimit -l'"


def not_supported(err: int, what: str, reason: str, *, libbpf_log: Sequence[str] = (),
                  program: Optional[str] = None) -> NotSupportedError:
    """The NotSupportedError of ``what``, saying ``reason`` (kept as ``.reason``),
    about ``program`` (kept as ``.program``) when a program's load or attach was
    refused. libbpf's memlock advice is left out of its log."""
    log = [ln for ln in libbpf_log if _MEMLOCK_ADVICE not in ln]
    exc = error_from_errno(err, f"{what}: {reason}", cls=NotSupportedError, libbpf_log=log)
    assert isinstance(exc, NotSupportedError)
    exc.reason = reason
    exc.program = program
    return exc


def as_path(value: Any, name: str = "path") -> str:
    """``os.fspath`` whose TypeError names the parameter; bytes paths are decoded."""
    try:
        p = os.fspath(value)
    except TypeError:
        raise TypeError(f"{name} must be a str or an os.PathLike, "
                        f"not {type(value).__name__}") from None
    return os.fsdecode(p) if isinstance(p, bytes) else p


def check_ret(ret: int, what: str, **kw: Any) -> int:
    """Raise for a negative libbpf return code; return ``ret`` otherwise."""
    if ret < 0:
        raise error_from_errno(-ret, what, **kw)
    return ret


def bad_ptr(ptr: Any) -> Optional[int]:
    """None for a usable pointer, else the error it stands for.

    Besides NULL, this catches error pointers libbpf lets through: it only
    recognises -1..-4095 as errors, yet can wrap other negative values
    (e.g. a 64-bit size truncated to int) into a pointer.
    """
    from ._ffi import ffi

    if ptr == ffi.NULL:
        return 0
    addr = int(ffi.cast("uintptr_t", ptr))
    if addr >= _USER_PTR_LIMIT:
        return (1 << 64) - addr
    return None


def check_ptr(ptr: Any, err: int, what: str, **kw: Any) -> Any:
    """Raise when libbpf returned NULL or an error pointer; ``err`` is the saved ``errno``."""
    bad = bad_ptr(ptr)
    if bad is not None:
        raise error_from_errno(bad or err, what, **kw)
    return ptr
