"""uprobe.multi and uprobe.session: many user-space functions through one link,
at file offsets resolved by pylibbpf.elf (or recorded by an earlier process:
the offsets cache below)."""
from __future__ import annotations

import errno as _errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Union

from .._ffi import ffi, lib, libbpf_log, opts
from .._files import DEFAULT_DEBUG_DIRS, cache_dir
from ..errors import BPFError
from ..link import Link
from ..types import AttachType, ProgramType
from ._args import object_program
from ._common import during, require_type
from ._kinds import kind_refusal

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_uprobe_multi"]

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
    object_program(prog, what, "uprobes attach programs of an Object")
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
    c_offs: Any = None  # the C array of the offsets, when the cache had them
    with during(what):
        if pattern is not None:
            if cookies is not None:
                raise ValueError("cookies go with symbols or offsets, not with a pattern "
                                 "(its matches are not known in advance)")
            from ..elf import resolve_pattern

            target, syms = resolve_pattern(binary, pattern, pid=rpid)
            path, offs = target.path, [s.offset for s in syms if s.offset is not None]
        elif symbols is not None:
            if isinstance(symbols, str):
                raise TypeError("symbols must be a sequence of names, not a str")
            names = list(symbols)
            # a binary given by path whose names' offsets an earlier process
            # recorded (cached_offsets below: the same answers, without
            # importing pylibbpf.elf or indexing the file), else resolved here
            c_offs = cached_offsets(binary, names) if rpid is None else None
            if c_offs is not None:
                path, offs = os.fspath(binary), c_offs
            else:
                from ..elf._resolve import symbol_offsets

                target, offs = symbol_offsets(binary, names, pid=rpid)
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
    if c_offs is None:
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


# --- the offsets cache, read ----------------------------------------------------------
# A multi-uprobe attach by name to a binary given by path takes the offsets an
# earlier process recorded (pylibbpf/_csrc/elfsym.c: cached_offsets), without
# importing pylibbpf.elf or indexing the file. What the entries hold, when they
# are written and when they are not trusted: pylibbpf/elf/_diskcache.py.

# the modules whose code decides what a name resolves to (paths from pylibbpf/)
_RULES = ("elf/_image.py", "elf/_index.py", "elf/_resolve.py", "elf/_paths.py",
          "elf/_diskcache.py")
_S_IFMT, _S_IFREG = 0o170000, 0o100000
_rules_tag: Optional[str] = None


def _ident(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _state(path: str) -> str:
    """A place as ``os.path.isfile`` sees it, with the file's identity ("-": no file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "-"
    return _ident(st) if st.st_mode & _S_IFMT == _S_IFREG else "-"


def _rules() -> str:
    """The identity of the extension module and of the modules that resolve names."""
    global _rules_tag
    if _rules_tag is None:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        ext = sys.modules.get("pylibbpf._libbpf")
        files = [getattr(ext, "__file__", None) or "-"] + [os.path.join(here, r)
                                                            for r in _RULES]
        _rules_tag = "rules\x1f" + "\x1f".join(_state(p) for p in files)
    return _rules_tag


def _dirs_field() -> str:
    """``DEBUG_DIRS`` as an entry records it."""
    paths = sys.modules.get("pylibbpf.elf._paths")
    return "dirs\x1f" + "\x1f".join(getattr(paths, "DEBUG_DIRS", DEFAULT_DEBUG_DIRS))


def _usable_path(binary: object) -> Optional[str]:
    """``binary`` when it is an absolute path the cache can hold, else None."""
    if isinstance(binary, str):
        path = binary
    elif isinstance(binary, os.PathLike):
        try:
            path = os.fspath(binary)
        except Exception:  # the usual path raises what resolving it raises
            return None
        if not isinstance(path, str):
            return None
    else:
        return None
    if not path.startswith("/") or "\0" in path or "\n" in path:
        return None
    return path


def entry_path(path: str) -> Optional[str]:
    """The entry of the binary at ``path`` (None: a name too long for one)."""
    name = path.replace("%", "%25").replace("/", "%2F") + ".offsets"
    if len(name.encode("utf-8", "surrogateescape")) > 240:
        return None
    return os.path.join(cache_dir(), name)


def cached_entry(path: str) -> Optional[Dict[str, int]]:
    """The whole current entry of the binary at ``path`` ({name: offset}), or None."""
    from ..elf._index import _c_module

    mod = _c_module()
    entry = entry_path(path)
    if mod is None or entry is None or not hasattr(mod, "cached_offsets"):
        return None
    return mod.cached_offsets(entry, path, _rules(), _dirs_field())  # type: ignore


def cached_offsets(binary: object, symbols: List[Any]) -> Any:
    """The C array of the file offsets ``symbol_offsets(binary, symbols)``
    returns, from the cache; None when the binary is not an absolute path, the
    entry is missing or stale, or a name is not in it (the caller then resolves
    as usual)."""
    path = _usable_path(binary)
    fn = getattr(lib, "pylibbpf_cached_offsets", None)
    if path is None or not symbols or fn is None:
        return None
    entry = entry_path(path)
    try:
        names = "\0".join(symbols).encode()  # str names only, no lone surrogate
    except (TypeError, UnicodeError):
        return None
    if entry is None:
        return None
    out = ffi.new("unsigned long[]", len(symbols))
    enc = os.fsencode
    if fn(enc(entry), enc(path), enc(_rules()), enc(_dirs_field()), names, len(names),
          len(symbols), out) != 0:
        return None
    return out
