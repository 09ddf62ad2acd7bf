"""BTF-typed tracing programs: fentry/fexit/fmod_ret and tp_btf
(``attach_trace``), LSM (``attach_lsm``) and freplace (``attach_freplace``).

fentry/fexit/fmod_ret, LSM and freplace run through BPF trampolines. A kernel
that refuses trampolines fails their *load* (EPERM with an empty verifier
log): ``Object.load()`` then raises :class:`~pylibbpf.NotSupportedError`
naming the kind (see ``_kinds.load_refusal``). tp_btf needs no
trampoline.

The target of an fentry/fexit/fmod_ret/LSM program usually comes from its
SEC(); an freplace program's target (a program and one of its global
functions) is given before load with ``Program.set_attach_target()`` or at
attach time with ``attach_freplace(target, function)``.
"""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import BPFError, BPFNotFoundError, error_from_errno
from ..link import Link
from ..types import AttachType, ProgramType
from ._args import check_cookie, check_name, object_program
from ._common import require_type
from ._kinds import require_kind

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_trace", "attach_lsm", "attach_freplace", "set_attach_target"]

_TRACE_KINDS = {
    AttachType.TRACE_FENTRY: "fentry",
    AttachType.TRACE_FEXIT: "fexit",
    AttachType.MODIFY_RETURN: "fmod_ret",
    AttachType.TRACE_RAW_TP: "tp_btf",
}


def attach_trace(prog: "Program", *, cookie: int = 0) -> Link:
    check_cookie(cookie)
    what = f"attach tracing program {prog.name!r}"
    require_type(prog, what, ProgramType.TRACING)
    prog._check_has_ptr(what)
    eat = prog.expected_attach_type
    kind = _TRACE_KINDS.get(eat)
    if kind is None:
        hint = "use attach_iter()" if eat == AttachType.TRACE_ITER else \
            "attach_trace() is for fentry, fexit, fmod_ret and tp_btf programs"
        raise BPFError(_errno.EINVAL, f"{what}: it is a {eat.name.lower()} program; {hint}")
    what = f"attach {kind} program {prog.name!r} (SEC {prog.section!r})"
    object_program(prog, what)
    if cookie and eat == AttachType.TRACE_RAW_TP:
        require_kind("raw_tracepoint_cookie", what)  # older kernels drop it silently
    o = opts("bpf_trace_opts", cookie=cookie)
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_trace_opts(prog._ptr, o)
        err = ffi.errno
    if ptr == ffi.NULL:
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"{kind} {prog.section!r} ({prog.name!r})")


def attach_lsm(prog: "Program") -> Link:
    what = f"attach LSM program {prog.name!r}"
    require_type(prog, what, ProgramType.LSM)
    prog._check_has_ptr(what)
    if prog.expected_attach_type == AttachType.LSM_CGROUP:
        raise BPFError(_errno.EINVAL, f"{what}: it is an lsm_cgroup program; attach it "
                                      "to a cgroup")
    object_program(prog, what)
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_lsm(prog._ptr)
        err = ffi.errno
    if ptr == ffi.NULL:
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"LSM {prog.section!r} ({prog.name!r})")


def _target_fd(target: Union["Program", int], what: str) -> int:
    from ..program import Program

    if isinstance(target, Program):
        return target.fd  # raises when closed or not loaded
    if isinstance(target, bool) or not isinstance(target, int):
        raise TypeError(f"target must be a Program or a program fd, "
                        f"not {type(target).__name__}")
    if target < 0:
        raise ValueError(f"target program fd must be non-negative, not {target}")
    return target


def _target_label(target: Union["Program", int]) -> str:
    from ..program import Program

    return repr(target.name) if isinstance(target, Program) else f"fd {target}"


def attach_freplace(prog: "Program", target: Union["Program", int, None] = None,
                    function: Optional[str] = None) -> Link:
    what = f"attach freplace program {prog.name!r}"
    require_type(prog, what, ProgramType.EXT)
    if (target is None) != (function is None):
        raise ValueError("give both target and function, or neither (then the target set "
                         "before load with set_attach_target() is used)")
    target_fd = 0
    if target is not None and function is not None:
        check_name(function, "function")
        what += f" to function {function!r} of program {_target_label(target)}"
        target_fd = _target_fd(target, what)
    object_program(prog, what)
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_freplace(
            prog._ptr, target_fd, function.encode() if function is not None else ffi.NULL)
        err = ffi.errno
    if ptr == ffi.NULL:
        if err in (_errno.ENOENT, _errno.ESRCH) and function is not None:
            raise BPFNotFoundError(err, f"{what}: the target program has no global "
                                        f"function {function!r} in its BTF",
                                   libbpf_log=log.warnings)
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    label = f"{function!r} of {_target_label(target)}" if target is not None else "load-time target"
    return Link(made_from=prog, ptr=ptr, description=f"freplace {label} ({prog.name!r})")


def set_attach_target(prog: "Program", target: Union["Program", int, None],
                      function: str) -> None:
    """Set, before load, which function a tracing/LSM/freplace program attaches to.

    ``target`` None: a kernel function (fentry/fexit/fmod_ret/LSM/tp_btf);
    a Program or program fd: one of that program's global functions (freplace,
    or fentry/fexit on a BPF program).
    """
    check_name(function, "function")
    label = "the kernel" if target is None else f"program {_target_label(target)}"
    what = f"set attach target of {prog.name!r} to function {function!r} of {label}"
    prog._check_not_loaded(what)
    target_fd = 0 if target is None else _target_fd(target, what)
    with libbpf_log() as log:
        ret = lib.bpf_program__set_attach_target(prog._ptr, target_fd, function.encode())
    if ret < 0:
        err = -ret
        if err in (_errno.ENOENT, _errno.ESRCH):
            where = "kernel BTF" if target is None else "the target program's BTF"
            raise BPFNotFoundError(err, f"{what}: no function {function!r} in {where}",
                                   libbpf_log=log.warnings)
        raise error_from_errno(err, what, libbpf_log=log.warnings)
