"""kprobes and kretprobes (one kernel function), kprobe_multi / kprobe.session
(many functions in one link) and ksyscall (a syscall's kernel entry point).

When an attach fails, the kernel is examined to say why: no kprobe support
at all (no ``kprobe`` perf PMU and no tracefs ``kprobe_events``), no
multi-kprobe links (a probe ``BPF_LINK_CREATE`` answers EOPNOTSUPP), or a
function that is not in ``/proc/kallsyms``.
"""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import (BPFError, BPFNotFoundError, DeferredLog, NotSupportedError,
                      error_from_errno)
from ..link import Link
from ..types import AttachType, ProgramType
from ._args import check_cookie, check_name, check_offset, object_program
from ._common import require_type
from ._kinds import (kernel_symbol_exists, kprobe_multi_unsupported_reason,
                     kprobe_unsupported_reason, missing_symbol_note, syscall_symbols)

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_kprobe", "attach_kprobe_multi", "attach_ksyscall"]

_KPROBE = int(ProgramType.KPROBE)
_KPROBE_OPTS = ffi.typeof("struct bpf_kprobe_opts *")
_KPROBE_OPTS_SIZE = ffi.sizeof("struct bpf_kprobe_opts")
_PLAIN_KPROBE_OPTS = ffi.new(_KPROBE_OPTS, {"sz": _KPROBE_OPTS_SIZE})


_CHECKED_SYMBOLS: Dict[str, None] = {}  # symbols check_name() accepted (bounded)


def attach_kprobe(prog: "Program", symbol: str, *, retprobe: bool = False, offset: int = 0,
                  cookie: int = 0) -> Link:
    # a failing attach is hot (an object full of kprobes on a kernel without them):
    # the common case is checked with plain C calls and no Python calls, the
    # message is built on failure
    if type(symbol) is not str or symbol not in _CHECKED_SYMBOLS:
        check_name(symbol, "symbol")
        if len(_CHECKED_SYMBOLS) >= 4096:
            _CHECKED_SYMBOLS.clear()
        _CHECKED_SYMBOLS[symbol] = None
    if type(offset) is not int or type(cookie) is not int or offset or cookie or retprobe:
        check_offset(offset)
        check_cookie(cookie)
        o = ffi.new(_KPROBE_OPTS, {"sz": _KPROBE_OPTS_SIZE, "bpf_cookie": cookie,
                                   "offset": offset, "retprobe": bool(retprobe)})
    else:
        o = _PLAIN_KPROBE_OPTS  # libbpf only reads it, during the call
    ptr, obj = prog._ptr, prog._obj
    if (ptr is None or obj is None or obj._ptr is None
            or lib.bpf_program__type(ptr) != _KPROBE or lib.bpf_program__fd(ptr) < 0):
        what = _kprobe_what(prog, symbol, retprobe, offset)
        require_type(prog, f"attach {what}", ProgramType.KPROBE)
        object_program(prog, f"attach {what}")
        prog.fd  # raises when not loaded
    with libbpf_log() as log:
        link = lib.bpf_program__attach_kprobe_opts(ptr, symbol.encode(), o)
        err = ffi.errno
    if link == ffi.NULL:
        raise _kprobe_error(err, "kretprobe" if retprobe else "kprobe", symbol,
                            _kprobe_what(prog, symbol, retprobe, offset), DeferredLog(log))
    return Link(made_from=prog, ptr=link,
                description=f"{'kretprobe' if retprobe else 'kprobe'} "
                            f"{_kprobe_target(symbol, offset)!r} ({prog._raw_name!r})")


def _kprobe_target(symbol: str, offset: int) -> str:
    return f"{symbol}+{offset:#x}" if offset else symbol


def _kprobe_what(prog: "Program", symbol: str, retprobe: bool, offset: int) -> str:
    return (f"{'kretprobe' if retprobe else 'kprobe'} on {_kprobe_target(symbol, offset)!r} "
            f"(program {prog._raw_name!r})")


def _kprobe_error(err: int, kind: str, symbol: str, what: str,
                  warnings: Sequence[str]) -> BPFError:
    reason = kprobe_unsupported_reason()
    if reason:
        return NotSupportedError(err, f"{what}: {reason}{missing_symbol_note(symbol)}",
                                 libbpf_log=warnings)
    if kernel_symbol_exists(symbol) is False:
        return BPFNotFoundError(err, f"{what}: no kernel function {symbol!r} "
                                     "(not in /proc/kallsyms)", libbpf_log=warnings)
    return error_from_errno(err, f"attach {what}", libbpf_log=warnings)


def attach_ksyscall(prog: "Program", name: str, *, retprobe: bool = False,
                    cookie: int = 0) -> Link:
    check_name(name, "syscall name")
    check_cookie(cookie)
    kind = "kretsyscall" if retprobe else "ksyscall"
    what = f"{kind} on syscall {name!r} (program {prog.name!r})"
    require_type(prog, f"attach {what}", ProgramType.KPROBE)
    object_program(prog, f"attach {what}")
    o = opts("bpf_ksyscall_opts", bpf_cookie=cookie, retprobe=bool(retprobe))
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_ksyscall(prog._ptr, name.encode(), o)
        err = ffi.errno
    if ptr == ffi.NULL:
        reason = kprobe_unsupported_reason()
        if reason:
            raise NotSupportedError(err, f"{what}: {reason} (ksyscall attaches a kprobe "
                                         "to the syscall's kernel function)",
                                    libbpf_log=log.warnings)
        if syscall_symbols(name) == []:
            raise BPFNotFoundError(err, f"{what}: no syscall {name!r} in this kernel "
                                        f"(no __<arch>_sys_{name} in /proc/kallsyms)",
                                   libbpf_log=log.warnings)
        raise error_from_errno(err, f"attach {what}", libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"{kind} {name!r} ({prog.name!r})")


def attach_kprobe_multi(prog: "Program", pattern: Optional[str] = None, *,
                        symbols: Optional[Sequence[str]] = None,
                        cookies: Optional[Sequence[int]] = None,
                        retprobe: bool = False, session: bool = False) -> Link:
    if (pattern is None) == (symbols is None):
        raise ValueError("give either a glob pattern or symbols=[...], not both or neither")
    if pattern is not None:
        check_name(pattern, "pattern")
        if cookies is not None:
            raise ValueError("cookies need symbols=[...] (one cookie per symbol), not a pattern")
    syms: List[str] = []
    if symbols is not None:
        if isinstance(symbols, (str, bytes)):
            raise TypeError("symbols must be a sequence of names, not a single string")
        syms = [check_name(s, "symbol") for s in symbols]
        if not syms:
            raise ValueError("symbols must not be empty")
        if cookies is not None:
            if isinstance(cookies, (str, bytes)):
                raise TypeError("cookies must be a sequence of ints")
            cookies = [check_cookie(c, "cookies[]") for c in cookies]
            if len(cookies) != len(syms):
                raise ValueError(f"got {len(cookies)} cookies for {len(syms)} symbols; "
                                 "give one cookie per symbol")
    if retprobe and session:
        raise ValueError("retprobe and session exclude each other (a session probe runs "
                         "at entry and at return)")
    kind = "kprobe.session" if session else "kretprobe_multi" if retprobe else "kprobe_multi"
    desc = f"pattern {pattern!r}" if pattern is not None else (
        f"{syms[0]!r}" if len(syms) == 1 else f"{len(syms)} functions ({syms[0]!r}, …)")
    what = f"{kind} on {desc} (program {prog.name!r})"
    require_type(prog, f"attach {what}", ProgramType.KPROBE)
    object_program(prog, f"attach {what}")
    want = AttachType.TRACE_KPROBE_SESSION if session else AttachType.TRACE_KPROBE_MULTI
    have = prog.expected_attach_type
    if have != want:
        sec = "kprobe.session" if session else "kprobe.multi"
        raise BPFError(_errno.EINVAL,
                       f"attach {what}: the program was loaded for {have.name.lower()} "
                       f"(SEC {prog.section!r}); {kind} needs SEC({sec!r}) or "
                       f"expected_attach_type={want.name.lower()!r} before load")

    keep: List[Any] = []
    o = opts("bpf_kprobe_multi_opts", retprobe=bool(retprobe), session=bool(session))
    if syms:
        names = [ffi.new("char[]", s.encode()) for s in syms]
        arr = ffi.new("const char *[]", names)
        keep += [names, arr]
        o.syms = arr
        o.cnt = len(syms)
        if cookies is not None:
            carr = ffi.new("unsigned long long[]", list(cookies))
            keep.append(carr)
            o.cookies = carr
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_kprobe_multi_opts(
            prog._ptr, pattern.encode() if pattern is not None else ffi.NULL, o)
        err = ffi.errno
    del keep
    if ptr == ffi.NULL:
        reason = kprobe_multi_unsupported_reason(session)
        if reason:
            raise NotSupportedError(err, f"{what}: {reason}", libbpf_log=log.warnings)
        missing = [s for s in syms if kernel_symbol_exists(s) is False]
        if missing:
            raise BPFNotFoundError(err, f"{what}: not kernel functions (not in "
                                        f"/proc/kallsyms): {', '.join(missing)}",
                                   libbpf_log=log.warnings)
        if pattern is not None and err == _errno.ENOENT:
            raise BPFNotFoundError(err, f"{what}: no traceable kernel function matches "
                                        f"{pattern!r}", libbpf_log=log.warnings)
        raise error_from_errno(err, f"attach {what}", libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"{kind} {desc} ({prog.name!r})")
