"""From what a user names (a binary or library, a symbol, maybe a pid) to the
file and offset a uprobe needs, with the reasons for every choice."""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple, Union

from .._files import regular_file
from .._record import record
from ..errors import BPFError, BPFNotFoundError, ELFError
from ._index import Symbol, SymbolIndex, split_version, symbol_index
from ._paths import (check_path, check_pid, find_library_explained, is_library_name,
                     first_library_candidate, process_exe, process_files, process_root, which)

if TYPE_CHECKING:
    from ._usdt import USDTProbe  # imported by the first USDT lookup

__all__ = ["Target", "Resolution", "SymbolNotFoundError", "AmbiguousSymbolError",
           "USDTNotFoundError", "resolve_binary", "resolve", "resolve_pattern",
           "resolve_symbols", "find_usdt", "explain", "explain_usdt"]

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]


class SymbolNotFoundError(BPFNotFoundError):
    """A symbol is not in a binary; ``suggestions`` lists close names."""

    def __init__(self, binary: str, symbol: str, message: str,
                 suggestions: Sequence[str] = ()) -> None:
        super().__init__(_errno.ENOENT, message)
        self.binary = binary
        self.symbol = symbol
        self.suggestions = list(suggestions)


class AmbiguousSymbolError(BPFError, LookupError):
    """A name matches several different functions; ``candidates`` lists them."""

    def __init__(self, binary: str, symbol: str, candidates: Sequence[Symbol]) -> None:
        lines = "\n".join(f"  {s} in {s.table}" for s in candidates[:12])
        more = f"\n  … and {len(candidates) - 12} more" if len(candidates) > 12 else ""
        super().__init__(_errno.EINVAL,
                         f"symbol {symbol!r} is ambiguous in {binary!r}: it matches "
                         f"{len(candidates)} functions at different addresses:\n{lines}{more}\n"
                         "  hint: name one exactly (name@VERSION, the mangled name, or a C++ "
                         "signature such as 'ns::f(int)'), or give an address")
        self.binary = binary
        self.symbol = symbol
        self.candidates = list(candidates)


class USDTNotFoundError(BPFNotFoundError):
    """No USDT probe provider:name; ``available`` lists the probes that exist."""

    def __init__(self, message: str, available: Sequence[str] = ()) -> None:
        super().__init__(_errno.ENOENT, message)
        self.available = list(available)


_set = object.__setattr__
_TARGET = ("given", "path", "pid", "how")
_RESOLUTION = ("target", "symbol", "address", "offset", "reasons")


@record(_TARGET)
class Target:
    """A binary as named by the user, and the file that stands for it."""

    __slots__ = _TARGET
    #: what the user gave (path, short library name, executable name)
    given: str
    #: the file to read and attach to (may go through /proc/PID/root)
    path: str
    pid: Optional[int]
    #: how ``path`` was found
    how: str

    def __init__(self, given: str, path: str, pid: Optional[int], how: str) -> None:
        _set(self, "given", given)
        _set(self, "path", path)
        _set(self, "pid", pid)
        _set(self, "how", how)


@record(_RESOLUTION)
class Resolution:
    """Where a probe goes: file, symbol, address, file offset, and why."""

    __slots__ = _RESOLUTION
    target: Target
    symbol: Optional[Symbol]
    address: Optional[int]
    offset: int
    reasons: Tuple[str, ...]

    def __init__(self, target: Target, symbol: Optional[Symbol], address: Optional[int],
                 offset: int, reasons: Tuple[str, ...]) -> None:
        _set(self, "target", target)
        _set(self, "symbol", symbol)
        _set(self, "address", address)
        _set(self, "offset", offset)
        _set(self, "reasons", reasons)

    @property
    def path(self) -> str:
        return self.target.path

    def explain(self) -> str:
        """A readable account of every decision."""
        head = f"{self.target.given!r}"
        if self.symbol is not None:
            head += f" symbol {self.symbol.versioned_name!r}"
        addr = "" if self.address is None else f", address {self.address:#x}"
        lines = [f"uprobe target {head}:", f"  file:   {self.target.path}",
                 f"  offset: {self.offset:#x}{addr}"]
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)

    __str__ = explain


# --- binaries ----------------------------------------------------------------------------

def resolve_binary(binary: PathLike, *, pid: Optional[int] = None) -> Target:
    """The file ``binary`` stands for: a path, a library name (``"c"``,
    ``"libssl.so.3"``) or an executable on ``PATH``. With ``pid`` the file that
    process maps (its executable or one of its libraries), reached through
    ``/proc/PID/root`` when it lives in another mount namespace (a container)."""
    if isinstance(binary, bytes) or not isinstance(binary, (str, os.PathLike)):
        raise TypeError(f"binary must be a path or a name (str), not {type(binary).__name__}")
    given = os.fspath(binary)
    if not given:
        raise ValueError("binary must not be empty")
    if pid is not None:
        check_pid(pid)
        return _binary_in_process(given, pid)
    if "/" in given:
        if not check_path(given, "binary"):
            raise BPFNotFoundError(_errno.ENOENT, f"binary {given!r} does not exist")
        if os.path.isdir(given):
            raise ELFError(_errno.EISDIR, f"binary {given!r} is a directory")
        regular_file(given, "binary", cls=ELFError)  # not a FIFO or device
        return Target(given, given, None, "given as a path")
    order = ("library", "executable") if is_library_name(given) else ("executable", "library")
    for kind in order:
        if kind == "executable":
            exe = which(given)
            if exe is not None:
                return Target(given, exe, None, f"executable {given!r} found on PATH")
        else:
            first = first_library_candidate(given)
            if first is not None:
                path, how = first
                return Target(given, path, None, f"library {given!r} found via {how}")
    raise BPFNotFoundError(_errno.ENOENT,
                           f"binary {given!r} not found: not a path, not an executable on PATH, "
                           "not a library in LD_LIBRARY_PATH, /etc/ld.so.cache or the default "
                           "library directories")


def _binary_in_process(given: str, pid: int) -> Target:
    root = process_root(pid)
    via = f" (reached through /proc/{pid}/root: the process has its own mount namespace)" \
        if root else ""
    if "/" in given:
        if given.startswith(f"/proc/{pid}/"):
            return Target(given, given, pid, "given as a path")
        for path, e in process_files(pid):
            if e.path == given and e.deleted:
                return Target(given, path, pid, f"{given!r} was deleted after pid {pid} "
                                                f"mapped it: using the mapping {path}")
        path = root + given
        if not check_path(path, f"binary of pid {pid}"):
            raise BPFNotFoundError(_errno.ENOENT, f"binary {given!r} does not exist for pid {pid}"
                                                  + (f" (looked at {path})" if root else ""))
        return Target(given, path, pid, f"path {given!r} as seen by pid {pid}{via}")
    exe_path, exe_inside = process_exe(pid)
    if os.path.basename(exe_inside) == given:
        return Target(given, exe_path, pid, f"{given!r} is the executable of pid {pid} "
                                            f"({exe_inside}){via}")
    try:
        path, how = find_library_explained(given, pid=pid)
    except BPFNotFoundError as e:
        raise BPFNotFoundError(_errno.ENOENT, f"binary {given!r}: not the executable of pid "
                                              f"{pid} ({exe_inside}), and {e.strerror}") from None
    return Target(given, path, pid, how)


# --- symbols -------------------------------------------------------------------------------

# name+0x10 (compiled by re's own cache on first use, not at import)
_PLUS_OFFSET = r"^(.+?)\+(0[xX][0-9a-fA-F]+|\d+)$"


def _root_for(target: Target) -> str:
    if target.pid is None:
        return ""
    root = process_root(target.pid)
    return root if target.path.startswith(root) else ""


def _describe_file(idx: SymbolIndex) -> str:
    im = idx.image
    tables = ", ".join(f"{t.name} ({t.count} entries)" for t in im.tables) or "no symbol tables"
    bid = f", build-id {im.build_id}" if im.build_id else ""
    return f"{im.kind}{bid}; {tables}"


def _describe_segment(idx: SymbolIndex, address: int) -> str:
    seg = idx.image.segment_for(address)
    if seg is None:
        return f"address {address:#x} is in no PT_LOAD segment"
    flags = "".join(c if seg.flags & b else "-" for c, b in (("R", 4), ("W", 2), ("X", 1)))
    return (f"address {address:#x} lies in PT_LOAD [vaddr {seg.vaddr:#x}, file offset "
            f"{seg.offset:#x}, {flags}]: offset = {address:#x} - {seg.vaddr:#x} + "
            f"{seg.offset:#x} = {address - seg.vaddr + seg.offset:#x}")


def _check_code_offset(idx: SymbolIndex, target: Target, offset: int) -> None:
    """An explicit offset must land in code (an executable PT_LOAD segment)."""
    segs = idx.image.segments
    if segs and not any(seg.executable and seg.offset <= offset < seg.offset + seg.filesz
                        for seg in segs):
        code = ", ".join(f"{s.offset:#x}-{s.offset + s.filesz:#x}" for s in segs
                         if s.executable)
        raise ELFError(_errno.EINVAL, f"offset {offset:#x} of {target.given!r} is not in "
                                      f"code (executable segments at file offsets: {code})")


def _not_found(idx: SymbolIndex, target: Target, symbol: str, root: str) -> SymbolNotFoundError:
    where = f"{target.path!r}" if target.path == target.given else \
        f"{target.given!r} ({target.path})"
    msg = f"symbol {symbol!r} not found in {where}"
    if idx.stripped:
        dbg, looked = idx.debug_index(root=root)
        if dbg is None:
            msg += ("; the binary is stripped (no .symtab, only exported .dynsym symbols) and "
                    "no separate debug file was found")
            if looked:
                msg += " (looked at: " + ", ".join(looked[:6]) + ")"
        else:
            msg += f"; searched .dynsym and the debug file {dbg.path!r}"
    suggestions = idx.suggest(symbol, root=root)
    if suggestions:
        msg += "\n  did you mean: " + ", ".join(suggestions)
    return SymbolNotFoundError(target.given, symbol, msg, suggestions)


def _choose(idx: SymbolIndex, target: Target, query: str, syms: List[Symbol]) \
        -> Tuple[Symbol, List[str]]:
    reasons: List[str] = []
    by_addr = {s.address for s in syms}
    if len(syms) > 1:
        reasons.append(f"{len(syms)} entries match {query!r}: "
                       + ", ".join(f"{s.versioned_name}@{s.address:#x} ({s.binding})"
                                   for s in syms[:8]))
    if len(by_addr) == 1:
        pick = next((s for s in syms if s.table == ".dynsym"), syms[0])
        if len(syms) > 1:
            reasons.append("all are the same address (aliases or versions of one function)")
        return pick, reasons
    if split_version(query)[1] is None:
        defaults = [s for s in syms if s.version is not None and s.default_version]
        if len({s.address for s in defaults}) == 1:
            reasons.append(f"chose the default version {defaults[0].versioned_name!r}, as the "
                           "dynamic linker binds new references to it")
            return defaults[0], reasons
    globals_ = [s for s in syms if s.binding in ("GLOBAL", "GNU_UNIQUE")]
    if len({s.address for s in globals_}) == 1:
        reasons.append(f"chose the GLOBAL definition over {len(syms) - len(globals_)} "
                       "local/weak one(s)")
        return globals_[0], reasons
    raise AmbiguousSymbolError(target.given, query, syms)


def resolve(binary: PathLike, symbol: Optional[str] = None, *, offset: int = 0,
            address: Optional[int] = None, pid: Optional[int] = None) -> Resolution:
    """Resolve a probe target to a file and file offset.

    ``symbol`` may be a raw name, ``name@VERSION``/``name@@VERSION``, a demangled
    C++/Rust name (``ns::f`` or ``ns::f(int)``) or ``name+0x10``; ``offset`` is added
    to it. Without a symbol, ``address`` (a virtual address in the binary) or
    ``offset`` (a file offset) says where the probe goes.
    """
    if symbol is not None and not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, not {type(symbol).__name__}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative int, not {offset!r}")
    if address is not None and (isinstance(address, bool) or not isinstance(address, int)
                                or address < 0):
        raise ValueError(f"address must be a non-negative int, not {address!r}")
    if symbol is not None and address is not None:
        raise ValueError("give a symbol or an address, not both")
    target = resolve_binary(binary, pid=pid)
    idx = symbol_index(target.path)
    root = _root_for(target)
    reasons = [target.how, f"{target.path}: {_describe_file(idx)}"]
    if symbol is not None and address is None:
        return _resolve_symbol(target, idx, root, reasons, symbol, offset)
    if symbol is None and address is None:
        reasons.append(f"explicit file offset {offset:#x}")
        _check_code_offset(idx, target, offset)
        addr = idx.image.offset_to_address(offset)
        return Resolution(target, None, addr, offset, tuple(reasons))
    if address is not None:
        reasons.append(_describe_segment(idx, address))
        base = idx.image.address_to_offset(address)
        if offset:
            reasons.append(f"plus offset {offset:#x}")
        _check_code_offset(idx, target, base + offset)
        return Resolution(target, None, address, base + offset, tuple(reasons))
    raise AssertionError("unreachable")  # pragma: no cover


def _find_symbol(target: Target, idx: SymbolIndex, root: str, symbol: str) \
        -> Tuple[Symbol, str, int, List[str]]:
    """The symbol a probe on ``symbol`` goes to, the name looked up, the bytes
    added to it (``name+0x10``) and why it was chosen among several; raises as
    :func:`resolve` does (not found, ambiguous, in no loadable segment)."""
    if not symbol:
        raise ValueError("symbol must not be empty")
    query, extra = symbol, 0
    if "+" in symbol:
        import re  # only for name+0x10 (re: ~3 ms of a first attach by name)

        m = re.match(_PLUS_OFFSET, symbol)
        if m and not idx.lookup(symbol, root=root):
            query, extra = m.group(1), int(m.group(2), 0)
    syms = idx.lookup(query, root=root)
    if not syms:
        raise _not_found(idx, target, query, root)
    why: List[str] = []
    if len(syms) == 1:
        sym = syms[0]  # what _choose picks, and says nothing, for one match
    else:
        sym, why = _choose(idx, target, query, syms)
    if sym.offset is None:
        raise ELFError(_errno.EINVAL, f"symbol {query!r} in {target.given!r} is at "
                                      f"{sym.address:#x}, in no loadable segment")
    return sym, query, extra, why


def _resolve_symbol(target: Target, idx: SymbolIndex, root: str, head: List[str], symbol: str,
                    offset: int) -> Resolution:
    """:func:`resolve` of ``symbol`` once the binary, its index and the first
    reasons are known (:func:`resolve_symbols` finds those once for every name)."""
    sym, _query, extra, why = _find_symbol(target, idx, root, symbol)
    assert sym.offset is not None
    reasons = head + why
    src = sym.table if sym.file == target.path else f"{sym.table} of debug file {sym.file}"
    desc = f"symbol {sym.versioned_name!r}"
    if sym.demangled != sym.name:
        desc += f" ({sym.demangled})"
    reasons.append(f"{desc}: {sym.binding} {sym.type} at {sym.address:#x}, size {sym.size}, "
                   f"from {src}")
    if sym.type == "IFUNC":
        reasons.append("note: this is a GNU indirect function: the address is its resolver, "
                       "which runs once when the dynamic linker binds the symbol")
    reasons.append(_describe_segment(idx, sym.address))
    total = extra + offset
    if total:
        reasons.append(f"plus {total:#x} bytes into the function")
        if sym.size and total >= sym.size:
            reasons.append(f"warning: {total:#x} is past the function's size {sym.size:#x}")
    return Resolution(target, sym, sym.address + total, sym.offset + total, tuple(reasons))


def resolve_pattern(binary: PathLike, pattern: str, *, pid: Optional[int] = None,
                    regex: bool = False, demangled: Optional[bool] = None) \
        -> Tuple[Target, List[Symbol]]:
    """The functions whose names match a glob (or regex): one per file offset
    (aliases dropped), GNU indirect-function resolvers left out."""
    if not isinstance(pattern, str) or not pattern:
        raise TypeError("pattern must be a non-empty str")
    target = resolve_binary(binary, pid=pid)
    idx = symbol_index(target.path)
    root = _root_for(target)
    syms = idx.functions(pattern, regex=regex, demangled=demangled, root=root,
                         include_ifunc=False)
    out: List[Symbol] = []
    seen = set()
    for s in syms:
        if s.offset is None or s.offset in seen:
            continue
        seen.add(s.offset)
        out.append(s)
    if not out:
        what = "regular expression" if regex else "pattern"
        msg = f"no function matches {what} {pattern!r} in {target.given!r}"
        if target.path != target.given:
            msg += f" ({target.path})"
        import re

        plain = re.sub(r"[*?\[\]^$.+(){}|\\]", "", pattern)
        suggestions = idx.suggest(plain, root=root) if plain else []
        if suggestions:
            msg += "\n  did you mean: " + ", ".join(suggestions)
        raise SymbolNotFoundError(target.given, pattern, msg, suggestions)
    return target, out


def _symbols_target(binary: PathLike, symbols: Sequence[str], pid: Optional[int]) \
        -> Tuple[Target, Target, SymbolIndex]:
    if isinstance(symbols, str) or not symbols:
        raise TypeError("symbols must be a non-empty sequence of names")
    target = resolve_binary(binary, pid=pid)
    # each name as resolve(target.path, name) would, with the file found and its
    # index made once for all of them
    inner = resolve_binary(target.path)
    return target, inner, symbol_index(inner.path)


def _check_symbol(s: object) -> None:
    if s is not None and not isinstance(s, str):
        raise TypeError(f"symbol must be a str, not {type(s).__name__}")


def resolve_symbols(binary: PathLike, symbols: Sequence[str], *,
                    pid: Optional[int] = None) -> Tuple[Target, List[Resolution]]:
    """:func:`resolve` for each name of ``symbols`` (the binary is found once)."""
    target, inner, idx = _symbols_target(binary, symbols, pid)
    head = [inner.how, f"{inner.path}: {_describe_file(idx)}"]
    out = []
    for s in symbols:
        _check_symbol(s)
        if s is None:
            out.append(resolve(inner.path, None))
        else:
            out.append(_resolve_symbol(inner, idx, "", head, s, 0))
    return target, out


def symbol_offsets(binary: PathLike, symbols: Sequence[str], *,
                   pid: Optional[int] = None) -> Tuple[Target, List[int]]:
    """The file offsets :func:`resolve_symbols` finds (the same choices and
    errors), without writing each one's reasons: what a multi-uprobe attach
    needs."""
    target, inner, idx = _symbols_target(binary, symbols, pid)
    # the names found at one address, in C at once; the others (and their errors,
    # in the names' order) as resolve() finds them
    fast = idx._offsets(symbols)
    out = list(fast)
    for i, off in enumerate(out):
        if off is not None:
            continue
        s = symbols[i]
        _check_symbol(s)
        if s is None:
            out[i] = resolve(inner.path, None).offset
        else:
            sym, _query, extra, _why = _find_symbol(inner, idx, "", s)
            out[i] = sym.offset + extra  # type: ignore[operator]  # checked: not None
    if pid is None:
        # for the next process: these names' offsets without indexing the file
        from ._diskcache import remember_offsets

        try:
            remember_offsets(binary, target.path, idx, symbols, fast)
        except (OSError, ValueError):  # a cache that cannot be written is no cache
            pass
    return target, out  # type: ignore[return-value]  # every None replaced


def explain(binary: PathLike, symbol: Optional[str] = None, *, offset: int = 0,
            address: Optional[int] = None, pid: Optional[int] = None) -> str:
    """A dry run: which file, symbol, address and offset a uprobe would use, and why."""
    return resolve(binary, symbol, offset=offset, address=address, pid=pid).explain()


# --- USDT ----------------------------------------------------------------------------------

def _usdt_in(path: str, provider: str, name: str) -> Tuple[List[USDTProbe], List[USDTProbe]]:
    from ._usdt import usdt_probes

    try:
        probes = usdt_probes(symbol_index(path).image)
    except (ELFError, OSError):
        return [], []
    return [p for p in probes if p.provider == provider and p.name == name], probes


def find_usdt(binary: Optional[PathLike], provider: str, name: str, *,
              pid: Optional[int] = None) -> Tuple[Target, List[USDTProbe]]:
    """The binary holding USDT probe ``provider:name`` and its sites.

    With ``binary=None`` and a ``pid``, the process's executable and every
    library it maps are searched.
    """
    for v, what in ((provider, "provider"), (name, "name")):
        if not isinstance(v, str) or not v:
            raise TypeError(f"USDT {what} must be a non-empty str")
    if binary is None:
        if pid is None:
            raise ValueError("give a binary, or a pid whose files are searched")
        check_pid(pid)
        exe_path, exe_inside = process_exe(pid)
        files = [(exe_path, exe_inside)] + [(p, e.path) for p, e in process_files(pid)]
        available: List[str] = []
        seen = set()
        for path, inside in files:
            if inside in seen:
                continue
            seen.add(inside)
            hits, probes = _usdt_in(path, provider, name)
            if hits:
                return Target(inside, path, pid, f"USDT {provider}:{name} found in {inside!r}, "
                                                 f"mapped by pid {pid}"), hits
            available += [f"{p.full_name} ({os.path.basename(inside)})" for p in probes]
        raise _usdt_error(f"no USDT probe {provider}:{name} in pid {pid}'s executable or "
                          "libraries", provider, name, list(dict.fromkeys(available)))
    target = resolve_binary(binary, pid=pid)
    hits, probes = _usdt_in(target.path, provider, name)
    if not hits:
        where = target.given if target.path == target.given else \
            f"{target.given} ({target.path})"
        raise _usdt_error(f"no USDT probe {provider}:{name} in {where!r}", provider, name,
                          list(dict.fromkeys(p.full_name for p in probes)))
    return target, hits


def _usdt_error(msg: str, provider: str, name: str, available: List[str]) -> USDTNotFoundError:
    import difflib

    if not available:
        msg += " (it has no USDT probes: no .note.stapsdt section)"
    else:
        close = difflib.get_close_matches(f"{provider}:{name}", available, n=5, cutoff=0.5)
        msg += "\n  " + ("did you mean: " + ", ".join(close) if close else
                         "available: " + ", ".join(available[:20]))
    return USDTNotFoundError(msg, available)


def explain_usdt(binary: Optional[PathLike], provider: str, name: str, *,
                 pid: Optional[int] = None) -> str:
    """A dry run for a USDT probe: which file, and each probe site's offset."""
    target, hits = find_usdt(binary, provider, name, pid=pid)
    lines = [f"USDT {provider}:{name}:", f"  file: {target.path}", f"  - {target.how}"]
    lines += [f"  site {i}: {p}" for i, p in enumerate(hits)]
    return "\n".join(lines)
