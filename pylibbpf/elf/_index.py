"""Function symbols of one binary: lookup by raw, versioned or demangled name,
glob/regex listing, with a separate debug file used for stripped binaries."""
from __future__ import annotations

import errno as _errno
import itertools
import operator
import os
import sys
from _thread import allocate_lock as _new_lock
from _weakref import ref as _weak_ref
from collections import OrderedDict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .._files import regular_file
from .._record import record
from ..errors import BPFNotFoundError, BPFPermissionError, ELFError
from ._image import (BINDINGS, FUNC_TYPES, SHN_UNDEF, TYPES, ElfImage, Identity, SymbolTable,
                     file_identity)
from ._paths import find_debug_file

__all__ = ["Symbol", "SymbolIndex", "symbol_index", "clear_cache", "split_version"]

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]


_FIELDS = ("name", "version", "default_version", "address", "size", "type", "binding",
           "offset", "table", "file", "_demangled")
_set = object.__setattr__


# A frozen record with __slots__ (pylibbpf/_record.py: no dataclasses to import):
# pylibbpf/_csrc/elfsym.c stores the fields of each Symbol it builds directly
@record(_FIELDS, compare=_FIELDS[:-1], repr=_FIELDS[:-1], defaults={"_demangled": None})
class Symbol:
    """A function symbol, with the file offset a uprobe needs."""

    __slots__ = _FIELDS
    #: raw (mangled) name, without version
    name: str
    #: symbol version (``"GLIBC_2.2.5"``) or None
    version: Optional[str]
    #: True for the default version (``name@@VER``), False for a hidden one (``name@VER``)
    default_version: bool
    #: st_value: the virtual address in the binary
    address: int
    size: int
    #: ``"FUNC"`` or ``"IFUNC"`` (a GNU indirect function: the address is its resolver)
    type: str
    #: ``"GLOBAL"``, ``"WEAK"``, ``"LOCAL"`` or ``"GNU_UNIQUE"``
    binding: str
    #: file offset of ``address`` in the binary, from its PT_LOAD segments
    offset: Optional[int]
    #: ``.symtab`` or ``.dynsym``
    table: str
    #: the file the symbol was read from (the binary, or its separate debug file)
    file: str
    _demangled: Optional[str]

    def __init__(self, name: str, version: Optional[str], default_version: bool, address: int,
                 size: int, type: str, binding: str, offset: Optional[int], table: str,
                 file: str, _demangled: Optional[str] = None) -> None:
        _set(self, "name", name)
        _set(self, "version", version)
        _set(self, "default_version", default_version)
        _set(self, "address", address)
        _set(self, "size", size)
        _set(self, "type", type)
        _set(self, "binding", binding)
        _set(self, "offset", offset)
        _set(self, "table", table)
        _set(self, "file", file)
        _set(self, "_demangled", _demangled)

    @property
    def demangled(self) -> str:
        """The demangled C++/Rust name, or the raw name when it is not mangled."""
        if self._demangled is not None:
            return self._demangled
        from ._demangle import demangle

        d = demangle(self.name.encode("utf-8", "surrogateescape"))
        object.__setattr__(self, "_demangled", d or self.name)
        return self._demangled or self.name

    @property
    def versioned_name(self) -> str:
        """``malloc@@GLIBC_2.2.5`` style name (the raw name when unversioned)."""
        if self.version is None:
            return self.name
        return f"{self.name}{'@@' if self.default_version else '@'}{self.version}"

    def __str__(self) -> str:
        off = "?" if self.offset is None else f"{self.offset:#x}"
        text = f"{self.versioned_name} at {self.address:#x} (file offset {off}, size {self.size})"
        if self.demangled != self.name:
            text += f" [{self.demangled}]"
        return text


def split_version(query: str) -> Tuple[str, Optional[str], Optional[bool]]:
    """``"malloc@@GLIBC_2.2.5"`` -> ("malloc", "GLIBC_2.2.5", True); ``"f@V"`` ->
    ("f", "V", None: either); ``"f"`` -> ("f", None, None)."""
    if "@@" in query:
        name, ver = query.split("@@", 1)
        return name, ver, True
    if "@" in query and not query.startswith("@"):
        name, ver = query.split("@", 1)
        return name, ver, None
    return query, None, None


class SymbolIndex:
    """The function symbols of one binary (plus its separate debug file)."""

    def __init__(self, image: ElfImage) -> None:
        self.image = image
        self.path = image.path
        self._debug: Optional[Tuple[Optional["SymbolIndex"], List[str]]] = None
        self._demangled: Optional[Tuple[Dict[str, List[str]], Dict[str, List[str]]]] = None
        self._lock = _new_lock()
        self._stripped = image.symtab is None
        self._fn_names: Dict[str, List[bytes]] = {}
        self._own_sources = [(self, t) for t in image.tables]
        self._fast: Dict[str, Any] = {}  # root -> pylibbpf._elfsym.Lookup, or None
        self._dyn_fast: Any = _MISSING  # the Lookup of _offsets' first pass, or None

    # --- debug file ------------------------------------------------------------
    @property
    def stripped(self) -> bool:
        """True when the binary has no ``.symtab`` (only exported symbols remain)."""
        return self._stripped

    def debug_index(self, *, root: str = "") -> Tuple[Optional["SymbolIndex"], List[str]]:
        """The separate debug file's index (or None) and where it was looked for."""
        if self._debug is None:
            path, looked = find_debug_file(self.path, self.image.build_id, self.image.debuglink,
                                           root=root)
            idx = None
            if path is not None:
                try:
                    idx = symbol_index(path)
                except OSError:
                    idx = None
            self._debug = (idx, looked)
        return self._debug

    def _sources(self, root: str = "") -> List[Tuple["SymbolIndex", SymbolTable]]:
        if not self._stripped:
            return self._own_sources
        out = list(self._own_sources)
        dbg, _ = self.debug_index(root=root)
        if dbg is not None:
            out += [(dbg, t) for t in dbg.image.tables if not t.is_dynamic]
        return out

    # --- making Symbols -------------------------------------------------------
    def _symbol(self, owner: "SymbolIndex", table: SymbolTable, i: int,
                name: Optional[bytes] = None,
                entry: Optional[Tuple[int, int, int, int, int, int]] = None) -> Symbol:
        _st_name, info, _other, _shndx, value, size = entry or table.entry(i)
        if name is None:
            name = table.name_at(i)
        version, default = table.version(i)
        seg = self.image.segment_for(value)
        offset = None if seg is None else value - seg.vaddr + seg.offset
        return Symbol(name=name.decode("utf-8", "surrogateescape"), version=version,
                      default_version=default, address=value, size=size,
                      type=TYPES.get(info & 0xF, str(info & 0xF)),
                      binding=BINDINGS.get(info >> 4, str(info >> 4)),
                      offset=offset, table=table.name, file=owner.path)

    # --- lookups ---------------------------------------------------------------
    def lookup(self, query: str, *, root: str = "") -> List[Symbol]:
        """Every defined function called ``query``: a raw name, optionally with
        ``@VERSION``/``@@VERSION``, or a demangled C++/Rust name (``ns::f`` or
        ``ns::f(int)``). Duplicates (the same symbol in .dynsym and .symtab) are
        dropped."""
        fast = self._fast.get(root, _MISSING)
        if fast is _MISSING:
            fast = self._fast_lookup(root)
        if fast is not None:
            # the search and merging below, in C (pylibbpf/_csrc/elfsym.c)
            syms = fast.lookup(query)
            if syms is not None:
                return syms  # type: ignore[no-any-return]
            if "@" in query and "\0" not in query:
                # a version filter keeps the same symbols before or after the merging
                name, version, default = split_version(query)
                syms = fast.lookup(name)
                if syms:
                    return [s for s in syms if s.version == version
                            and (default is None or s.default_version == default)]
        name, version, default = split_version(query)
        syms = self._lookup_raw(name.encode("utf-8", "surrogateescape"), root)
        if not syms and not name.startswith(("_Z", "_R")) and \
                any(c in name for c in ":(<~") and _demangle().demangler_available():
            syms = []
            for raw in self._demangled_candidates(name, root):
                syms += self._lookup_raw(raw.encode("utf-8", "surrogateescape"), root)
        if version is not None:
            syms = [s for s in syms if s.version == version
                    and (default is None or s.default_version == default)]
        return _dedupe(syms)

    def _offsets(self, names: Sequence[object]) -> List[Optional[int]]:
        """For each name, the file offset of the one address :meth:`lookup` finds
        for it (in a loadable segment), or None where a probe's resolution needs
        the Python path (its choices, reasons and errors): every name in C at once
        when the C lookup is built in."""
        # first the dynamic symbols alone: a name with one default version
        # (name@@VER, every glibc export) is answered from them, whatever the
        # file's .symtab or its debug file holds, so those are not read for it
        dyn = self._dyn_fast
        if dyn is _MISSING:
            dyn = self._dyn_fast = self._fast_lookup("", dynamic_only=True)
        out: List[Optional[int]] = (dyn.offsets(names, True) if dyn is not None
                                    else [None] * len(names))
        rest = [i for i, off in enumerate(out) if off is None]
        if rest:
            fast = self._fast.get("", _MISSING)
            if fast is _MISSING:
                fast = self._fast_lookup("")
            if fast is not None:
                for i, off in zip(rest, fast.offsets([names[i] for i in rest])):
                    out[i] = off
        return out

    def _fast_lookup(self, root: str, dynamic_only: bool = False) -> Any:
        """The C lookup over this index's sources (None when the C module is not
        built in, or a table is not in the machine's byte order); with
        ``dynamic_only``, over this file's dynamic symbols alone (for
        :meth:`_offsets`)."""
        fast = None
        mod = _c_module()
        if mod is not None:
            srcs: Optional[List[Any]] = []
            sources = ([(o, t) for o, t in self._own_sources if t.is_dynamic]
                       if dynamic_only else self._sources(root))
            for owner, table in sources:
                src = table.c_source(owner.path, mod.build_hash)
                if src is None or srcs is None:
                    srcs = None
                    break
                srcs.append(src)
            if srcs is not None:
                segs = [(s.vaddr, s.offset, s.filesz, s.memsz, s.executable)
                        for s in self.image.segments]
                fast = mod.Lookup(Symbol, _TYPE_NAMES, _BINDING_NAMES, segs, srcs, ELFError,
                                  self.path)
        if dynamic_only:
            return fast
        self._fast[root] = fast
        if fast is not None and not root and hasattr(fast, "lookup_all"):
            # From now on idx.lookup(...) is the C entry point itself (no Python
            # frame per call): it answers what fast.lookup answers and hands the
            # rest (another root, versions, demangled names) to this class's
            # lookup through _lookup_fallback.
            fast.set_fallback(_weak_ref(self), _lookup_fallback)
            setattr(self, "lookup", fast.lookup_all)
        return fast

    def _lookup_raw(self, name: bytes, root: str) -> List[Symbol]:
        out = []
        for owner, table in self._sources(root):
            for i in table.find(name):
                entry = table.entry(i)
                if (entry[1] & 0xF) in FUNC_TYPES and entry[3] != SHN_UNDEF and entry[4]:
                    out.append(self._symbol(owner, table, i, name, entry))
        return out

    def _demangled_maps(self, root: str) -> Tuple[Dict[str, List[str]], Dict[str, List[str]]]:
        dm = _demangle()
        demangle, normalize, strip_parameters = dm.demangle, dm.normalize, dm.strip_parameters
        fn_names = self._function_names(root)
        with self._lock:
            if self._demangled is None:
                full: Dict[str, List[str]] = {}
                base: Dict[str, List[str]] = {}
                for raw in fn_names:
                    if not raw.startswith((b"_Z", b"_R")):
                        continue
                    d = demangle(raw)
                    if d is None:
                        continue
                    r = raw.decode("utf-8", "surrogateescape")
                    full.setdefault(normalize(d), []).append(r)
                    base.setdefault(normalize(strip_parameters(d)), []).append(r)
                self._demangled = (full, base)
            return self._demangled

    def _demangled_candidates(self, name: str, root: str) -> List[str]:
        dm = _demangle()
        demangle, normalize, strip_parameters = dm.demangle, dm.normalize, dm.strip_parameters
        key = normalize(name)
        token = _source_name_token(name)
        if token is not None and self._demangled is None:
            # Only mangled names that spell the function's last identifier (as
            # <length><identifier>, in C++ and Rust alike) can match: demangle those.
            full: Dict[str, List[str]] = {}
            base: Dict[str, List[str]] = {}
            names = self._function_names(root)
            # itertools/operator keep the scan of every name in C
            for raw in itertools.compress(names, map(operator.contains, names,
                                                     itertools.repeat(token))):
                if raw.startswith((b"_Z", b"_R")):
                    d = demangle(raw)
                    if d is not None:
                        r = raw.decode("utf-8", "surrogateescape")
                        full.setdefault(normalize(d), []).append(r)
                        base.setdefault(normalize(strip_parameters(d)), []).append(r)
        else:
            full, base = self._demangled_maps(root)
        hits = full.get(key) or base.get(key) or []
        return list(dict.fromkeys(hits))

    def _function_names(self, root: str) -> List[bytes]:
        """Raw names of the defined functions, each once (computed once)."""
        with self._lock:
            cached = self._fn_names.get(root)
            if cached is None:
                out: List[bytes] = []
                for _owner, table in self._sources(root):
                    names = table.names()
                    out += [names[i] for i in table.function_indexes()]
                cached = self._fn_names[root] = list(dict.fromkeys(out))
            return cached

    def function_names(self, *, root: str = "") -> List[str]:
        """Raw names of every defined function (each once)."""
        return [n.decode("utf-8", "surrogateescape") for n in self._function_names(root)]

    def functions(self, pattern: Optional[str] = None, *, regex: bool = False,
                  demangled: Optional[bool] = None, root: str = "",
                  include_ifunc: bool = True) -> List[Symbol]:
        """Defined functions whose name matches ``pattern`` (a glob, or a regular
        expression with ``regex=True``; None lists all), in table order.

        ``demangled`` matches demangled names instead of raw ones; by default it
        is chosen from the pattern (``::`` or ``(`` in it mean demangled).
        """
        if demangled is None:
            demangled = pattern is not None and ("::" in pattern or "(" in pattern)
        demangle = _demangle().demangle
        rx: Optional["re.Pattern[str]"] = None
        if pattern is not None:
            if not regex:
                import fnmatch  # only here: ~0.3 ms of a first attach by name otherwise

                pattern = fnmatch.translate(pattern)
            import re  # not at import: ~3 ms of a first attach by name

            rx = re.compile(pattern)
        out: List[Symbol] = []
        seen = set()
        for owner, table in self._sources(root):
            names = table.names()
            for i in table.function_indexes():
                raw = names[i]
                if rx is not None:
                    if demangled:
                        text = demangle(raw) or raw.decode("utf-8", "surrogateescape")
                    else:
                        text = raw.decode("utf-8", "surrogateescape")
                    if not (rx.fullmatch(text) if not regex else rx.search(text)):
                        continue
                version, default = table.version(i)
                key = (raw, version, default)
                if key in seen:
                    continue
                seen.add(key)
                sym = self._symbol(owner, table, i, raw)
                if not include_ifunc and sym.type == "IFUNC":
                    continue
                out.append(sym)
        return _dedupe(out)

    def suggest(self, query: str, *, n: int = 5, root: str = "") -> List[str]:
        """Names close to ``query`` (raw and demangled), for "did you mean" hints."""
        import difflib

        dm = _demangle()
        demangle, demangler_available, strip_parameters = \
            dm.demangle, dm.demangler_available, dm.strip_parameters
        name = split_version(query)[0]
        raws = self.function_names(root=root)
        pool: List[str] = list(raws)
        use_demangled = any(c in name for c in ":(<~") and demangler_available()
        if use_demangled:
            full, _base = self._demangled_maps(root)
            pool = [d for d in (demangle(r.encode("utf-8", "surrogateescape")) for r in raws
                                if r.startswith(("_Z", "_R"))) if d]
            pool = list(dict.fromkeys(strip_parameters(p) for p in pool)) + pool
        low = name.lower()
        contains = [p for p in pool if low in p.lower() and p != name]
        contains.sort(key=lambda p: (len(p), p))
        lo, hi = len(name) * 0.5 - 2, len(name) * 1.5 + 2
        near = [p for p in pool if lo <= len(p) <= hi]
        close = difflib.get_close_matches(name, near, n=n, cutoff=0.6)
        out = list(dict.fromkeys(close + contains[:n]))
        return out[:n]


def _demangle() -> Any:
    """pylibbpf.elf._demangle, imported by the first lookup that needs it (a
    lookup by raw name, as a uprobe attach makes, does not)."""
    from . import _demangle as mod

    return mod


def _lookup_fallback(index: SymbolIndex, query: str, root: str) -> List[Symbol]:
    """What the C entry point (SymbolIndex.lookup once bound to it) leaves to Python."""
    return SymbolIndex.lookup(index, query, root=root)


_TYPE_NAMES = [TYPES.get(k, str(k)) for k in range(16)]
_BINDING_NAMES = [BINDINGS.get(k, str(k)) for k in range(16)]
_elfsym: Any = None
_MISSING = object()


def _c_module() -> Any:
    """pylibbpf._elfsym (the lookups in C), or None when the extension lacks it."""
    global _elfsym
    if _elfsym is None:
        mod: Any = sys.modules.get("pylibbpf._elfsym")
        if mod is None:
            try:
                from .._ffi import lib

                install = getattr(lib, "pylibbpf_elfsym_install", None)
                if install is not None and install() == 0:
                    mod = sys.modules.get("pylibbpf._elfsym")
            except ImportError:  # pragma: no cover - the extension is not built
                mod = None
        _elfsym = mod if mod is not None else False
    return _elfsym or None


# The C module is set up with this one, as an extension module is when imported
# (a type and a module object: ~50 us that a first index would otherwise pay).
_c_module()

# compiled by re's own cache on first use, not when the module is imported
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*$"


def _source_name_token(query: str) -> Optional[bytes]:
    """``b"4sdiv"`` for ``llvm::APInt::sdiv(...)``: how the last identifier of a
    demangled name appears in its mangled form; None when it is not a plain
    identifier (operators, destructors, templates of it)."""
    head = _demangle().strip_parameters(query.strip())
    last = head.rsplit("::", 1)[-1].strip()
    if "<" in last:
        last = last.split("<", 1)[0].strip()
    import re

    if not re.match(_IDENT, last) or last.startswith("operator"):
        return None
    return f"{len(last)}{last}".encode()


def _dedupe(syms: Sequence[Symbol]) -> List[Symbol]:
    """Drop the copies of a symbol found in more than one table: a .symtab entry
    without version that repeats a versioned .dynsym one is merged into it."""
    best: "OrderedDict[Tuple[str, int, Optional[str], bool], Symbol]" = OrderedDict()
    versioned = {(s.name, s.address) for s in syms if s.version is not None}
    for s in syms:
        if s.version is None and (s.name, s.address) in versioned:
            continue
        best.setdefault((s.name, s.address, s.version, s.default_version), s)
    return list(best.values())


# --- cache --------------------------------------------------------------------------

_CACHE_SIZE = 32
_cache: "OrderedDict[Identity, SymbolIndex]" = OrderedDict()
_cache_lock = _new_lock()


def symbol_index(path: PathLike) -> SymbolIndex:
    """The symbol index of the ELF file at ``path``, cached per file identity
    (device, inode, size, mtime): a rebuilt file is read again."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BPFNotFoundError(_errno.ENOENT, f"binary {p!r} does not exist") from None
    except PermissionError:
        raise BPFPermissionError(_errno.EACCES, f"cannot reach binary {p!r}: permission "
                                                "denied (a directory on the way is not "
                                                "searchable by this user)") from None
    except (OSError, ValueError) as e:
        raise ELFError(getattr(e, "errno", None) or _errno.EINVAL,
                       f"cannot read binary {p!r}: {e}") from None
    st = regular_file(p, "binary", cls=ELFError)  # a FIFO's read would block for ever
    key = file_identity(st)
    with _cache_lock:
        idx = _cache.get(key)
        if idx is not None:
            _cache.move_to_end(key)
            return idx
    idx = SymbolIndex(ElfImage(p, st=st))
    with _cache_lock:
        _cache[key] = idx
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return idx


def clear_cache() -> None:
    """Forget every cached index."""
    with _cache_lock:
        _cache.clear()

