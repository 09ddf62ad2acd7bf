"""uprobe / uretprobe, uprobe.multi and uprobe.session, at file offsets resolved by
pylibbpf.elf.

libbpf is always given ``func_name=NULL`` and the offset pylibbpf computed, so
the resolution shown by :func:`pylibbpf.elf.explain` is the one used.
"""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Sequence, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..elf import resolve, resolve_pattern
from ..elf._resolve import symbol_offsets
from ..errors import BPFError
from ..link import Link
from ..types import AttachType, ProgramType
from ._common import during, require_type
from ._kinds import kind_refusal

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_uprobe", "attach_uprobe_multi"]

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]

_U64 = (1 << 64) - 1


def _check_int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def _check_pid(pid: Any) -> int:
    pid = _check_int(pid, "pid", -1, (1 << 31) - 1)
    return pid


def _bpf_program(prog: "Program", what: str) -> Any:
    prog._check()
    if prog._ptr is None:
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} was loaded raw; "
                                      "uprobes attach programs of an Object")
    prog.fd  # raises when not loaded
    return prog._ptr


_MULTI_TYPES = (AttachType.TRACE_UPROBE_MULTI, AttachType.TRACE_UPROBE_SESSION)


def _is_multi(prog: "Program") -> bool:
    try:
        return prog.expected_attach_type in _MULTI_TYPES
    except (BPFError, ValueError):
        return False


def _is_session(prog: "Program") -> bool:
    try:
        return prog.expected_attach_type == AttachType.TRACE_UPROBE_SESSION
    except (BPFError, ValueError):
        return False


def _display(binary: PathLike) -> str:
    return os.fspath(binary) if isinstance(binary, (str, os.PathLike)) else repr(binary)


def attach_uprobe(prog: "Program", binary: PathLike, symbol: Optional[str] = None, *,
                  offset: int = 0, pid: int = -1, retprobe: bool = False,
                  ref_ctr_offset: int = 0, cookie: int = 0) -> Link:
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"symbol {symbol!r}" if symbol is not None else f"offset {offset:#x}" \
        if isinstance(offset, int) else f"offset {offset!r}"
    what = f"attach {kind} {prog.name!r} to {_display(binary)!r} {target}"
    pid = _check_pid(pid)
    if pid > 0:
        what += f" in pid {pid}"
    _check_int(offset, "offset", 0, _U64)
    _check_int(ref_ctr_offset, "ref_ctr_offset", 0, _U64)
    _check_int(cookie, "cookie", 0, _U64)
    require_type(prog, what, ProgramType.KPROBE)
    if _is_multi(prog):
        if prog.section.startswith("usdt"):
            raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is a USDT program "
                                          f"(SEC({prog.section!r})); use attach_usdt()")
        kind = "uprobe.session" if _is_session(prog) else "uprobe.multi"
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is a {kind} "
                                      "program; use attach_uprobe_multi()")
    ptr = _bpf_program(prog, what)
    with during(what):
        res = resolve(binary, symbol, offset=offset, pid=pid if pid > 0 else None)
    keep: List[Any] = []
    path = ffi.new("char[]", res.path.encode("utf-8", "surrogateescape"))
    keep.append(path)
    o = opts("bpf_uprobe_opts", ref_ctr_offset=ref_ctr_offset, bpf_cookie=cookie,
             retprobe=bool(retprobe))
    o.func_name = ffi.NULL  # our offset is the one used
    if res.symbol is not None:
        what += f" ({res.path} offset {res.offset:#x})"
    with libbpf_log() as log:
        link_ptr = lib.bpf_program__attach_uprobe_opts(ptr, pid, path, res.offset, o)
        err = ffi.errno
    return Link._from_ptr(link_ptr, err, what, log, made_from=prog)


def attach_uprobe_multi(prog: "Program", binary: PathLike, pattern: Optional[str] = None, *,
                        symbols: Optional[Sequence[str]] = None,
                        offsets: Optional[Sequence[int]] = None,
                        cookies: Optional[Sequence[int]] = None, pid: int = -1,
                        retprobe: bool = False, session: Optional[bool] = None) -> Link:
    if session is None:
        session = _is_session(prog)
    if retprobe and session:
        raise ValueError("retprobe and session exclude each other (a session program runs "
                         "at entry and at return)")
    kind = "uprobe.session" if session else "uretprobe.multi" if retprobe else "uprobe.multi"
    given = sum(x is not None for x in (pattern, symbols, offsets))
    if given != 1:
        raise ValueError("attach_uprobe_multi needs exactly one of pattern, symbols, offsets")
    desc = (f"pattern {pattern!r}" if pattern is not None else
            f"{len(symbols or ())} symbols" if symbols is not None else
            f"{len(offsets or ())} offsets")
    what = f"attach {kind} {prog.name!r} to {_display(binary)!r} {desc}"
    pid = _check_pid(pid)
    if pid > 0:
        what += f" in pid {pid}"
    require_type(prog, what, ProgramType.KPROBE)
    if not _is_multi(prog):
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is not a uprobe.multi "
                                      "program (declare it SEC(\"uprobe.multi\"), "
                                      "SEC(\"uretprobe.multi\") or SEC(\"uprobe.session\")); "
                                      "use attach_uprobe()")
    if bool(session) != _is_session(prog):
        sec = "uprobe.session" if session else "uprobe.multi"
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} was loaded for "
                                      f"{prog.expected_attach_type.name.lower()} "
                                      f"(SEC({prog.section!r})); {kind} needs SEC({sec!r})")
    ptr = _bpf_program(prog, what)
    rpid = pid if pid > 0 else None
    with during(what):
        if pattern is not None:
            if cookies is not None:
                raise ValueError("cookies go with symbols or offsets, not with a pattern "
                                 "(its matches are not known in advance)")
            target, syms = resolve_pattern(binary, pattern, pid=rpid)
            path, offs = target.path, [s.offset for s in syms if s.offset is not None]
        elif symbols is not None:
            if isinstance(symbols, str):
                raise TypeError("symbols must be a sequence of names, not a str")
            target, offs = symbol_offsets(binary, list(symbols), pid=rpid)
            path = target.path
        else:
            assert offsets is not None
            if isinstance(offsets, (str, bytes)):
                raise TypeError("offsets must be a sequence of ints")
            offs = [_check_int(o, "offset", 0, _U64) for o in offsets]
            if not offs:
                raise ValueError("offsets must not be empty")
            from ..elf import resolve_binary

            path = resolve_binary(binary, pid=rpid).path
    cookie_list: Optional[List[int]] = None
    if cookies is not None:
        cookie_list = [_check_int(c, "cookie", 0, _U64) for c in cookies]
        if len(cookie_list) != len(offs):
            raise ValueError(f"cookies has {len(cookie_list)} entries for {len(offs)} probes")
    keep: List[Any] = []
    c_path = ffi.new("char[]", path.encode("utf-8", "surrogateescape"))
    c_offs = ffi.new("unsigned long[]", offs)
    keep += [c_path, c_offs]
    o = opts("bpf_uprobe_multi_opts", offsets=c_offs, cnt=len(offs), retprobe=bool(retprobe),
             session=bool(session))
    if cookie_list is not None:
        c_cookies = ffi.new("__u64[]", cookie_list)
        keep.append(c_cookies)
        o.cookies = c_cookies
    what += f" ({len(offs)} probes in {path})"
    with libbpf_log() as log:
        link_ptr = lib.bpf_program__attach_uprobe_multi(ptr, pid, c_path, ffi.NULL, o)
        err = ffi.errno
    if link_ptr == ffi.NULL:
        kind_refusal("uprobe_session" if session else "uprobe_multi", err, what, log.warnings)
    return Link._from_ptr(link_ptr, err, what, log, made_from=prog)
