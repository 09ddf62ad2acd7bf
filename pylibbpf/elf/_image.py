"""One ELF file, read fast: headers decoded with struct, symbol tables in bulk.

pyelftools builds a Python object per symbol, which costs about a second for a
library with tens of thousands of symbols, and importing it costs more than
indexing a small library. Here the ELF, section and program headers are
decoded with ``struct`` (each table checked against the file's size before it
is read); the symbol tables are then read as raw bytes and
decoded in bulk with C-implemented builtins (``memoryview.cast``, ``bytes.split``,
``dict(zip(...))``). ``.dynsym`` lookups go through the file's own GNU (or SysV)
hash table, as the dynamic loader does, so they need no index at all; ``.symtab``
(which has no hash table) gets a name -> entries dictionary.
"""
from __future__ import annotations

import errno as _errno
import itertools
import operator
import os
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .._files import open_regular
from .._record import record
from . import _diskcache
from ..errors import BPFError, ELFError, BPFNotFoundError, BPFPermissionError

__all__ = ["ElfImage", "Segment", "SectionInfo", "SymbolTable", "Identity", "file_identity"]

# symbol types and bindings (elf.h)
STT_FUNC = 2
STT_GNU_IFUNC = 10
FUNC_TYPES = (STT_FUNC, STT_GNU_IFUNC)
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
BINDINGS = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}
TYPES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON",
         6: "TLS", 10: "IFUNC"}
VERSYM_HIDDEN = 0x8000
DT_FLAGS_1 = 0x6FFFFFFB
DF_1_PIE = 0x08000000
PF_X = 1
PT_LOAD = 1
# the first read: the ELF and program headers (and the notes after them); every
# other table is read on its own at its exact size. A larger first read that
# also held the dynamic symbol tables cost more than it saved: in a fresh
# process each new page of a buffer is a page fault (~1-3 us), and the tables
# were then copied out of it.
_HEAD_BYTES = 4096
PT_DYNAMIC = 2
PT_INTERP = 3
_ELF_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_MACHINES = {3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64", 22: "EM_S390",
             40: "EM_ARM", 43: "EM_SPARCV9", 62: "EM_X86_64", 183: "EM_AARCH64",
             243: "EM_RISCV", 247: "EM_BPF", 258: "EM_LOONGARCH"}

#: (device, inode, size, mtime_ns): a file's identity for caching
Identity = tuple[int, int, int, int]  # (not typing.Tuple: typing is not imported at run time)


_set = object.__setattr__


def file_identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@record(("vaddr", "offset", "filesz", "memsz", "flags"))
class Segment:
    """A ``PT_LOAD`` program header."""

    __slots__ = ("vaddr", "offset", "filesz", "memsz", "flags")
    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int

    def __init__(self, vaddr: int, offset: int, filesz: int, memsz: int, flags: int) -> None:
        _set(self, "vaddr", vaddr)
        _set(self, "offset", offset)
        _set(self, "filesz", filesz)
        _set(self, "memsz", memsz)
        _set(self, "flags", flags)

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)

    def contains(self, address: int) -> bool:
        return self.vaddr <= address < self.vaddr + max(self.memsz, self.filesz)


if TYPE_CHECKING:
    class SectionInfo(NamedTuple):
        """The parts of a section header that the symbol index needs (a tuple:
        a file has dozens of sections, read on every first use of the file)."""

        index: int  # type: ignore[assignment]  # (shadows tuple.index)
        name: str
        type: int
        flags: int
        addr: int
        offset: int
        size: int
        link: int
        info: int
        entsize: int
else:
    _SECTION_FIELDS = ("index", "name", "type", "flags", "addr", "offset", "size", "link",
                       "info", "entsize")

    class SectionInfo(tuple):
        """The parts of a section header that the symbol index needs (a tuple:
        a file has dozens of sections, read on every first use of the file)."""

        # What typing.NamedTuple makes (fields, repr, _asdict, _replace, _make,
        # pickling), written out: NamedTuple's class creation alone was ~0.3 ms
        # of a first attach_uprobe_multi(symbols=...).
        __slots__ = ()
        _fields = _SECTION_FIELDS
        _field_defaults: Dict[str, Any] = {}
        __match_args__ = _SECTION_FIELDS

        def __new__(cls, index, name, type, flags, addr, offset, size, link, info, entsize):
            return tuple.__new__(cls, (index, name, type, flags, addr, offset, size, link, info,
                                       entsize))

        @classmethod
        def _make(cls, iterable):
            result = tuple.__new__(cls, iterable)
            if len(result) != 10:
                raise TypeError(f"Expected 10 arguments, got {len(result)}")
            return result

        def _replace(self, **kwds):
            result = self._make(map(kwds.pop, _SECTION_FIELDS, self))
            if kwds:
                raise ValueError(f"Got unexpected field names: {list(kwds)!r}")
            return result

        def _asdict(self):
            return dict(zip(_SECTION_FIELDS, self))

        def __repr__(self):
            return "SectionInfo(" + ", ".join(
                f"{n}={v!r}" for n, v in zip(_SECTION_FIELDS, self)) + ")"

        def __getnewargs__(self):
            return tuple(self)

    for _i, _n in enumerate(_SECTION_FIELDS):
        setattr(SectionInfo, _n, property(operator.itemgetter(_i),
                                          doc=f"Alias for field number {_i}"))
    del _i, _n


# section types (elf.h)
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_HASH = 5
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHT_GNU_HASH = 0x6FFFFFF6
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_GNU_VERSYM = 0x6FFFFFFF
SHF_COMPRESSED = 0x800

_NATIVE_LITTLE = sys.byteorder == "little"
_INC = (1).__add__

# GNU hash in bulk: h = 5381 * 33**n + sum(c_i * 33**(n-1-i)) mod 2**32, with the
# powers made by the first call (lookups normally run in C: pylibbpf/_csrc/elfsym.c)
_POW_N = 1024
_POWS: List[int] = []
_REV_POWS: List[int] = []  # [33**(N-1), ..., 33**0]


def _make_powers() -> None:
    pows = [1]
    for _ in range(_POW_N):
        pows.append(pows[-1] * 33 & 0xFFFFFFFF)
    _REV_POWS[:] = pows[_POW_N - 1::-1]
    _POWS[:] = pows


def gnu_hash(name: bytes) -> int:
    """The GNU hash of a symbol name (DT_GNU_HASH)."""
    n = len(name)
    if n <= _POW_N:
        if not _POWS:
            _make_powers()
        return (5381 * _POWS[n] + sum(map(operator.mul, name, _REV_POWS[_POW_N - n:]))) \
            & 0xFFFFFFFF
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def sysv_hash(name: bytes) -> int:
    """The SysV ELF hash of a symbol name (DT_HASH)."""
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


class SymbolTable:
    """One ``.symtab`` or ``.dynsym``: raw entries plus a way to find names fast."""

    def __init__(self, image: "ElfImage", section: SectionInfo, data: bytes, strtab: bytes,
                 versym: Optional[bytes], versions: Dict[int, str],
                 hash_section: Optional[Tuple[int, bytes]]) -> None:
        self.image = image
        self.section = section
        self.name = section.name or ("dynsym" if section.type == SHT_DYNSYM else "symtab")
        self.is_dynamic = section.type == SHT_DYNSYM
        e64 = image.elfclass == 64
        bo = "<" if image.little_endian else ">"
        self.entsize = 24 if e64 else 16
        self.count = len(data) // self.entsize
        self._data = data[: self.count * self.entsize]
        self._strtab = strtab
        # (st_name, st_info, st_other, st_shndx, st_value, st_size)
        self._fmt = struct.Struct(bo + ("IBBHQQ" if e64 else "IIIBBH"))
        self._e64 = e64
        self._native = image.little_endian == _NATIVE_LITTLE
        self._versions = versions
        self._versym: Optional[Sequence[int]] = None
        self._versym_raw: Optional[bytes] = None
        self._own_hash: Optional[bytes] = None
        if versym is not None and len(versym) >= 2 * self.count:
            vs = versym[: 2 * self.count]
            self._versym_raw = vs
            self._versym = (memoryview(vs).cast("H") if self._native
                            else [v[0] for v in struct.iter_unpack(bo + "H", vs)])
        self._names: Optional[List[bytes]] = None
        self._by_name: Optional[Dict[bytes, int]] = None
        self._dups: Dict[bytes, List[int]] = {}
        self._gnu: Optional[Tuple[int, int, Any, Any]] = None
        self._sysv: Optional[Tuple[int, Any, Any]] = None
        self._st_name_view: Any = None
        if hash_section is not None and self._native:
            self._setup_hash(*hash_section)
        # without a hash table, the name dictionary is built by the first find()

    # --- building ---------------------------------------------------------
    def _st_names(self) -> List[int]:
        if self._native:
            return memoryview(self._data).cast("I")[0::self.entsize // 4].tolist()
        bo = "<" if self.image.little_endian else ">"
        return [t[0] for t in struct.iter_unpack(f"{bo}I{self.entsize - 4}x", self._data)]

    def names(self) -> List[bytes]:
        """Every entry's name (bytes, without version), in table order."""
        if self._names is None:
            st_name = self._st_names()
            parts = self._strtab.split(b"\0")
            starts = itertools.accumulate(map(_INC, map(len, parts)), initial=0)
            by_offset = dict(zip(starts, parts))
            names = list(map(by_offset.get, st_name))
            if None in names:  # a name that is the tail of another (linker string merging)
                strtab = self._strtab
                for i, (nm, off) in enumerate(zip(names, st_name)):
                    if nm is None:
                        end = strtab.find(b"\0", off)
                        names[i] = strtab[off:end] if end >= 0 else strtab[off:]
            self._names = names  # type: ignore[assignment]
        return self._names  # type: ignore[return-value]

    def _build_dict(self) -> None:
        names = self.names()
        by_name = dict(zip(names, range(len(names))))
        if len(by_name) != len(names):
            winners = set(by_name.values())
            for i in sorted(set(range(len(names))).difference(winners)):
                nm = names[i]
                self._dups.setdefault(nm, [by_name[nm]]).append(i)
        self._by_name = by_name

    def _bad_hash(self, kind: int, why: str) -> ELFError:
        what = ".gnu.hash" if kind == SHT_GNU_HASH else ".hash"
        return ELFError(_errno.ENOEXEC, f"{self.image.path!r} is not a valid ELF file: the "
                                        f"{what} of {self.name} {why}")

    def _setup_hash(self, kind: int, data: bytes) -> None:
        """Check the dynamic linker's hash table against the symbol table: a
        malformed one (sizes that do not fit, a symbol table too short for it)
        is an ELFError, as the index would otherwise miss or misread symbols."""
        e64 = self._e64
        if kind == SHT_GNU_HASH:
            if len(data) < 16:
                raise self._bad_hash(kind, f"is {len(data)} bytes, shorter than its header")
            nbuckets, symoffset, bloom_size, _shift = struct.unpack_from("=4I", data, 0)
            if nbuckets == 0:
                raise self._bad_hash(kind, "has no buckets")
            if symoffset > self.count:
                raise self._bad_hash(kind, f"starts at symbol {symoffset} of {self.count}")
            start = 16 + bloom_size * (8 if e64 else 4)
            end = start + 4 * nbuckets
            nchain = self.count - symoffset
            if end + 4 * nchain > len(data):
                raise self._bad_hash(kind, f"needs {end + 4 * nchain} bytes ({nbuckets} "
                                           f"buckets, a {bloom_size}-word bloom filter, "
                                           f"{nchain} chain words) but has {len(data)}")
            mv = memoryview(data)
            self._gnu = (nbuckets, symoffset, mv[start:end].cast("I"),
                         mv[end:end + 4 * nchain].cast("I"))
        elif kind == SHT_HASH:
            if len(data) < 8:
                raise self._bad_hash(kind, f"is {len(data)} bytes, shorter than its header")
            nbucket, nchain = struct.unpack_from("=2I", data, 0)
            if nbucket == 0:
                raise self._bad_hash(kind, "has no buckets")
            if nchain != self.count:
                raise self._bad_hash(kind, f"has {nchain} chain entries for {self.count} "
                                           "symbols")
            if 8 + 4 * (nbucket + nchain) > len(data):
                raise self._bad_hash(kind, f"needs {8 + 4 * (nbucket + nchain)} bytes "
                                           f"({nbucket} buckets, {nchain} chain entries) but "
                                           f"has {len(data)}")
            mv = memoryview(data)
            self._sysv = (nbucket, mv[8:8 + 4 * nbucket].cast("I"),
                          mv[8 + 4 * nbucket:8 + 4 * (nbucket + nchain)].cast("I"))
        if self._gnu is not None or self._sysv is not None:
            self._st_name_view = memoryview(self._data).cast("I")

    # --- lookups ----------------------------------------------------------
    def _name_is(self, i: int, name_z: bytes) -> bool:
        return self._strtab.startswith(name_z, self._st_name_view[i * (self.entsize // 4)])

    def find(self, name: bytes) -> List[int]:
        """Indexes of every entry called ``name`` (all versions)."""
        if self._gnu is not None:
            nbuckets, symoffset, buckets, chain = self._gnu
            h = gnu_hash(name)
            i = buckets[h % nbuckets]
            out: List[int] = []
            if i < symoffset:
                return out
            name_z = name + b"\0"
            h |= 1
            limit = len(chain) + symoffset
            while True:
                if i >= limit:
                    raise self._bad_hash(SHT_GNU_HASH, "has a chain that runs past the last "
                                                       "symbol")
                h2 = chain[i - symoffset]
                if (h2 | 1) == h and self._name_is(i, name_z):
                    out.append(i)
                if h2 & 1:
                    break
                i += 1
            return out
        if self._sysv is not None:
            nbucket, sbuckets, chains = self._sysv
            i = sbuckets[sysv_hash(name) % nbucket]
            out = []
            name_z = name + b"\0"
            seen = 0
            while i != 0:
                if i >= len(chains):
                    raise self._bad_hash(SHT_HASH, "has a chain link past its end")
                seen += 1
                if seen > len(chains):
                    raise self._bad_hash(SHT_HASH, "has a chain that loops")
                if self._name_is(i, name_z):
                    out.append(i)
                i = chains[i]
            return out
        if self._by_name is None:
            self._build_dict()
        assert self._by_name is not None
        dup = self._dups.get(name)
        if dup is not None:
            return list(dup)
        i2 = self._by_name.get(name)
        return [] if i2 is None else [i2]

    def _name_hash(self, build_hash: Any) -> bytes:
        """pylibbpf/_csrc/elfsym.c's hash of this table's names: built, or for a
        large table read from the persistent cache (``_diskcache``)."""
        def build() -> bytes:
            return build_hash(self._data, self._e64, self._strtab)  # type: ignore[no-any-return]

        def valid(blob: bytes) -> bool:  # u32 nbuckets (a power of two), buckets, chains
            nb = int.from_bytes(blob[:4], sys.byteorder) if len(blob) >= 4 else 0
            return nb > 0 and nb & (nb - 1) == 0 and len(blob) == 4 * (1 + nb + self.count)

        if self.count < _diskcache.MIN_ENTRIES:
            return build()
        dev, ino, size, mtime = self.image.identity
        key = (dev, ino, size, mtime, self.section.offset, self.section.size, self.entsize,
               self.image.build_id or "")
        return _diskcache.cached_hash(key, build, valid)

    def c_source(self, file: str, build_hash: Any) -> Optional[Tuple[Any, ...]]:
        """This table as pylibbpf._elfsym.Lookup takes it (None: not for the C
        path, a byte order other than the machine's)."""
        if not self._native:
            return None
        vs = self._versym_raw
        if self._gnu is not None:
            nb, so, buckets, chain = self._gnu
            return (self._data, self._e64, self._strtab, 1, buckets, chain, nb, so, vs,
                    self._versions, self.name, file)
        if self._sysv is not None:
            nb, sbuckets, chains = self._sysv
            return (self._data, self._e64, self._strtab, 2, sbuckets, chains, nb, 0, vs,
                    self._versions, self.name, file)
        if self._own_hash is None:
            self._own_hash = self._name_hash(build_hash)
        blob = self._own_hash
        nb = int.from_bytes(blob[:4], sys.byteorder)
        mv = memoryview(blob)
        return (self._data, self._e64, self._strtab, 3, mv[4:4 + 4 * nb], mv[4 + 4 * nb:], nb,
                0, vs, self._versions, self.name, file)

    def entry(self, i: int) -> Tuple[int, int, int, int, int, int]:
        """(st_name, st_info, st_other, st_shndx, st_value, st_size) of entry ``i``."""
        t = self._fmt.unpack_from(self._data, i * self.entsize)
        if self._e64:
            return t  # type: ignore[no-any-return]
        st_name, value, size, info, other, shndx = t
        return (st_name, info, other, shndx, value, size)

    def name_at(self, i: int) -> bytes:
        off = self.entry(i)[0]
        end = self._strtab.find(b"\0", off)
        return self._strtab[off:end] if end >= 0 else self._strtab[off:]

    def version(self, i: int) -> Tuple[Optional[str], bool]:
        """(version name or None, is-default) of entry ``i``."""
        if self._versym is None:
            return None, True
        v = self._versym[i]
        idx = v & 0x7FFF
        if idx <= 1:
            return None, True
        return self._versions.get(idx), not (v & VERSYM_HIDDEN)

    def is_function(self, i: int) -> bool:
        _, info, _, shndx, value, _ = self.entry(i)
        return (info & 0xF) in FUNC_TYPES and shndx != SHN_UNDEF and value != 0

    def function_indexes(self) -> List[int]:
        """Indexes of the defined functions (FUNC and GNU_IFUNC), in table order."""
        if self._native:
            mv = memoryview(self._data)
            if self._e64:
                infos = mv[4::24]
                shndx = mv.cast("H")[3::12].tolist()
            else:
                infos = mv[12::16]
                shndx = mv.cast("H")[7::8].tolist()
            types = bytes(infos).translate(_FUNC_TYPE_TABLE)
            return [i for i in _iter_nonzero(types) if shndx[i] != SHN_UNDEF]
        return [i for i in range(self.count) if self.is_function(i)]


# maps st_info -> 1 when its type (low nibble) is FUNC or GNU_IFUNC
_FUNC_TYPE_TABLE = bytes(1 if (b & 0xF) in FUNC_TYPES else 0 for b in range(256))


def _iter_nonzero(data: bytes) -> Iterator[int]:
    find = data.find
    i = find(1)
    while i >= 0:
        yield i
        i = find(1, i + 1)


def _open(path: str) -> BinaryIO:
    """The binary, opened; a FIFO or device (whose reads could block) is refused."""
    return open_regular(path, "binary", cls=ELFError)


class ElfImage:
    """The facts about one ELF file that probes need: type, load segments,
    build-id, debug link, symbol tables and notes.

    Build one with :func:`pylibbpf.elf.image` (cached per file identity).
    """

    def __init__(self, path: str, *, st: Optional[os.stat_result] = None,
                 use_hash_tables: bool = True) -> None:
        self.path = path
        self._use_hash = use_hash_tables
        with _open(path) as f:
            st = st or os.fstat(f.fileno())
            self.identity: Identity = file_identity(st)
            try:
                # the headers at the start of the file in one small read; each
                # table afterwards in one read of its own size (see _HEAD_BYTES)
                self._fsize = os.fstat(f.fileno()).st_size
                self._head = os.pread(f.fileno(), min(self._fsize, _HEAD_BYTES), 0)
                self._read_headers(f)
                self.tables = self._read_tables(f)
                del self._head
            except BPFError:
                raise
            except (struct.error, ValueError, KeyError, IndexError,
                    OverflowError, MemoryError, RecursionError, OSError) as e:
                # header fields, links and counts of a malformed file (the reading
                # itself checks each read against the file's size)
                why = str(e) if isinstance(e, ValueError) and str(e) \
                    else f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                raise ELFError(_errno.ENOEXEC, f"{path!r} is not a valid ELF file: {why}") \
                    from None
        self._notes: Optional[List[Tuple[str, int, bytes]]] = None

    # --- headers -----------------------------------------------------------
    def _read(self, f: BinaryIO, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``: from the first read when they lie in it,
        else as _read_at (checked against the file's size first)."""
        if 0 <= offset and 0 <= size and offset + size <= len(self._head):
            return self._head[offset:offset + size]
        return _read_at(f, offset, size, self._fsize)

    def _bad(self, why: str) -> ELFError:
        return ELFError(_errno.ENOEXEC, f"{self.path!r} is not a valid ELF file: {why}")

    def _read_headers(self, f: BinaryIO) -> None:
        """ELF, program and section headers, decoded with struct (no per-field
        objects): every table is checked against the file's size first."""
        ident = self._head[:64]
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise self._bad("Magic number does not match")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise self._bad(f"unknown ELF class {ident[4]} or data encoding {ident[5]}")
        e64 = ident[4] == 2
        self.elfclass = 64 if e64 else 32
        self.little_endian = ident[5] == 1
        bo = "<" if self.little_endian else ">"
        ehdr = struct.Struct(bo + ("HHIQQQIHHHHHH" if e64 else "HHIIIIIHHHHHH"))
        if len(ident) < 16 + ehdr.size:
            raise self._bad("the ELF header is truncated")
        (e_type, e_machine, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = ehdr.unpack_from(ident, 16)
        self.machine = _MACHINES.get(e_machine, str(e_machine))
        self.elf_type = _ELF_TYPES.get(e_type, str(e_type))
        size = self._fsize
        shdr = struct.Struct(bo + ("IIQQQQIIQQ" if e64 else "IIIIIIIIII"))
        phdr = struct.Struct(bo + ("IIQQQQQQ" if e64 else "IIIIIIII"))
        # section 0 holds the real counts when they do not fit the ELF header
        first: Optional[Tuple[int, ...]] = None
        if shoff:
            if shentsize < shdr.size:
                raise self._bad(f"section header size {shentsize} < {shdr.size}")
            first = shdr.unpack(self._read(f, shoff, shdr.size))
            if shnum == 0:
                shnum = first[5]
            if shstrndx == 0xFFFF:
                shstrndx = first[6]
        else:
            shnum = 0
        if phnum == 0xFFFF and first is not None:
            phnum = first[7]
        phdrs: List[Tuple[int, ...]] = []
        if phnum and phoff:
            if phentsize < phdr.size:
                raise self._bad(f"program header size {phentsize} < {phdr.size}")
            raw = self._read(f, phoff, phnum * phentsize)
            for i in range(phnum):
                t = phdr.unpack_from(raw, i * phentsize)
                if e64:  # type, flags, offset, vaddr, paddr, filesz, memsz, align
                    phdrs.append((t[0], t[1], t[2], t[3], t[5], t[6]))
                else:    # type, offset, vaddr, paddr, filesz, memsz, flags, align
                    phdrs.append((t[0], t[6], t[1], t[2], t[4], t[5]))
        # (type, flags, offset, vaddr, filesz, memsz)
        self.segments: Tuple[Segment, ...] = tuple(
            Segment(p[3], p[2], p[4], p[5], p[1]) for p in phdrs if p[0] == PT_LOAD)
        self.has_interp = any(p[0] == PT_INTERP for p in phdrs)
        self._dynamic = [(p[2], p[4]) for p in phdrs if p[0] == PT_DYNAMIC]
        shdrs: List[Tuple[int, ...]] = []
        if shnum:
            if shnum * shentsize > size:
                raise self._bad(f"{shnum} section headers do not fit in the file")
            raw = self._read(f, shoff, shnum * shentsize)
            shdrs = [shdr.unpack_from(raw, i * shentsize) for i in range(shnum)]
        names = b""
        if shdrs and shstrndx < len(shdrs):
            shstr = shdrs[shstrndx]  # name, type, flags, addr, offset, size, link, info, ...
            if shstr[1] != SHT_NOBITS:
                names = self._read(f, shstr[4], shstr[5])
        elif shdrs and shstrndx:
            raise self._bad(f"section name table index {shstrndx} of {len(shdrs)} sections")
        self.sections: List[SectionInfo] = []
        for i, h in enumerate(shdrs):
            off = h[0]
            end = names.find(b"\0", off)
            name = names[off:end if end >= 0 else len(names)].decode("utf-8", "replace")
            self.sections.append(SectionInfo(i, name, h[1], h[2], h[3], h[4], h[5], h[6], h[7],
                                             h[9]))
        self._by_name = {s.name: s for s in reversed(self.sections)}
        self.build_id: Optional[str] = None
        self.debuglink: Optional[Tuple[str, int]] = None
        bid = self._by_name.get(".note.gnu.build-id")
        if bid is not None and bid.type == SHT_NOTE:
            for name, ntype, desc in _parse_notes(self._read(f, bid.offset, bid.size),
                                                  self.little_endian):
                if name == "GNU" and ntype == 3:
                    self.build_id = desc.hex()
        self.pie = False
        if self.elf_type == "ET_DYN" and self._dynamic:
            off, dsize = self._dynamic[0]
            raw = self._read(f, off, min(dsize, 1 << 20))
            word = 8 if self.elfclass == 64 else 4
            fmt = bo + ("qQ" if word == 8 else "iI")
            for tag, val in struct.iter_unpack(fmt, raw[: len(raw) // (2 * word) * 2 * word]):
                if tag == 0:
                    break
                if tag == DT_FLAGS_1 and val & DF_1_PIE:
                    self.pie = True
        dl = self._by_name.get(".gnu_debuglink")
        if dl is not None and dl.type != SHT_NOBITS:
            raw = self._read(f, dl.offset, dl.size)
            end = raw.find(b"\0")
            if end > 0:
                crc_at = (end + 4) & ~3
                crc = struct.unpack_from(bo + "I", raw, crc_at)[0] \
                    if crc_at + 4 <= len(raw) else 0
                self.debuglink = (raw[:end].decode("utf-8", "surrogateescape"), crc)

    def section(self, name: str) -> Optional[SectionInfo]:
        return self._by_name.get(name)

    def read_section(self, sec: SectionInfo) -> bytes:
        if sec.type == SHT_NOBITS or sec.size == 0:
            return b""
        with _open(self.path) as f:
            return _read_at(f, sec.offset, sec.size)

    # --- symbol tables -----------------------------------------------------
    def _read_tables(self, f: BinaryIO) -> List[SymbolTable]:
        tables: List[SymbolTable] = []
        secs = self.sections
        for sec in secs:
            if sec.type not in (SHT_SYMTAB, SHT_DYNSYM) or sec.size == 0:
                continue
            if sec.flags & SHF_COMPRESSED or sec.link >= len(secs):
                continue
            strsec = secs[sec.link]
            if strsec.type == SHT_NOBITS or strsec.flags & SHF_COMPRESSED:
                continue
            data = self._read(f, sec.offset, sec.size)
            strtab = self._read(f, strsec.offset, strsec.size)
            versym = None
            versions: Dict[int, str] = {}
            hash_section: Optional[Tuple[int, bytes]] = None
            if sec.type == SHT_DYNSYM:
                for other in secs:
                    if other.link != sec.index or other.type == SHT_NOBITS:
                        continue
                    if other.type == SHT_GNU_VERSYM:
                        versym = self._read(f, other.offset, other.size)
                    elif other.type in (SHT_GNU_VERDEF, SHT_GNU_VERNEED):
                        pass
                    elif other.type == SHT_GNU_HASH:
                        hash_section = (SHT_GNU_HASH, self._read(f, other.offset, other.size))
                    elif other.type == SHT_HASH and hash_section is None \
                            and other.entsize in (0, 4):
                        hash_section = (SHT_HASH, self._read(f, other.offset, other.size))
                if versym is not None:
                    versions = self._read_versions(f, strsec.index, strtab)
            if not self._use_hash:
                hash_section = None
            tables.append(SymbolTable(self, sec, data, strtab, versym, versions, hash_section))
        return tables

    def _read_versions(self, f: BinaryIO, strndx: int, strtab: bytes) -> Dict[int, str]:
        """Version index -> name, from .gnu.version_d and .gnu.version_r."""
        out: Dict[int, str] = {}
        bo = "<" if self.little_endian else ">"
        strtabs: Dict[int, bytes] = {strndx: strtab}

        def string(link: int, off: int) -> str:
            if link not in strtabs:
                if link >= len(self.sections):
                    raise ELFError(_errno.ENOEXEC, f"{self.path!r} is not a valid ELF file: "
                                                   f"a version section links to section "
                                                   f"{link} of {len(self.sections)}")
                s = self.sections[link]
                strtabs[link] = self._read(f, s.offset, s.size)
            tab = strtabs[link]
            end = tab.find(b"\0", off)
            return tab[off:end if end >= 0 else len(tab)].decode("utf-8", "replace")

        for sec in self.sections:
            if sec.type == SHT_GNU_VERDEF:
                raw = self._read(f, sec.offset, sec.size)
                pos = 0
                for _ in range(sec.info or 1 << 16):
                    if pos + 20 > len(raw):
                        break
                    _v, flags, ndx, cnt, _h, aux, nxt = struct.unpack_from(bo + "HHHHIII", raw, pos)
                    if cnt and pos + aux + 8 <= len(raw) and not flags & 1:  # not VER_FLG_BASE
                        vda_name = struct.unpack_from(bo + "I", raw, pos + aux)[0]
                        out[ndx & 0x7FFF] = string(sec.link, vda_name)
                    if not nxt:
                        break
                    pos += nxt
            elif sec.type == SHT_GNU_VERNEED:
                raw = self._read(f, sec.offset, sec.size)
                pos = 0
                for _ in range(sec.info or 1 << 16):
                    if pos + 16 > len(raw):
                        break
                    _v, cnt, _file, aux, nxt = struct.unpack_from(bo + "HHIII", raw, pos)
                    apos = pos + aux
                    for _j in range(cnt):
                        if apos + 16 > len(raw):
                            break
                        _hh, _fl, other, name, anext = struct.unpack_from(bo + "IHHII", raw, apos)
                        out[other & 0x7FFF] = string(sec.link, name)
                        if not anext:
                            break
                        apos += anext
                    if not nxt:
                        break
                    pos += nxt
        return out

    @property
    def symtab(self) -> Optional[SymbolTable]:
        for t in self.tables:
            if not t.is_dynamic:
                return t
        return None

    @property
    def dynsym(self) -> Optional[SymbolTable]:
        for t in self.tables:
            if t.is_dynamic:
                return t
        return None

    # --- addresses ---------------------------------------------------------
    @property
    def kind(self) -> str:
        """What kind of ELF file: non-PIE executable, PIE executable or shared library."""
        if self.elf_type == "ET_EXEC":
            return "non-PIE executable (ET_EXEC: absolute addresses)"
        if self.elf_type == "ET_DYN":
            if self.pie:
                return "PIE executable (ET_DYN, DF_1_PIE)"
            return "shared library (ET_DYN)"
        return str(self.elf_type)

    def segment_for(self, address: int) -> Optional[Segment]:
        """The PT_LOAD segment holding ``address`` (executable segments first)."""
        best: Optional[Segment] = None
        for seg in self.segments:
            if seg.contains(address) and address < seg.vaddr + seg.filesz:
                if seg.executable:
                    return seg
                best = best or seg
        return best

    def address_to_offset(self, address: int) -> int:
        """The file offset of virtual ``address`` (raises if no PT_LOAD holds it)."""
        seg = self.segment_for(address)
        if seg is None:
            raise ELFError(_errno.EINVAL, f"address {address:#x} is in no loadable segment "
                                          f"of {self.path!r}")
        return address - seg.vaddr + seg.offset

    def offset_to_address(self, offset: int) -> Optional[int]:
        for seg in self.segments:
            if seg.offset <= offset < seg.offset + seg.filesz:
                return offset - seg.offset + seg.vaddr
        return None

    # --- notes -------------------------------------------------------------
    def notes(self, section: str) -> List[Tuple[str, int, bytes]]:
        sec = self.section(section)
        if sec is None or sec.type != SHT_NOTE:
            return []
        return _parse_notes(self.read_section(sec), self.little_endian)


def _read_at(f: BinaryIO, offset: int, size: int, fsize: Optional[int] = None) -> bytes:
    # a corrupt header's offset or size is checked against the file before any
    # read (a huge size would be allocated, a huge offset overflows)
    fd = f.fileno()
    if fsize is None:
        fsize = os.fstat(fd).st_size
    if offset < 0 or size < 0 or offset + size > fsize:
        raise ELFError(_errno.ENOEXEC, f"{getattr(f, 'name', '?')!r}: section at {offset:#x} "
                                       f"({size} bytes) runs past the end of the file")
    data = os.pread(fd, size, offset)  # one system call, no buffer in between
    while len(data) < size:
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            raise ELFError(_errno.ENOEXEC, f"{getattr(f, 'name', '?')!r}: section at "
                                           f"{offset:#x} runs past the end of the file")
        data += more
    return data


def _parse_notes(raw: bytes, little: bool) -> List[Tuple[str, int, bytes]]:
    """(owner name, type, descriptor) of each ELF note in ``raw``."""
    out: List[Tuple[str, int, bytes]] = []
    bo = "<" if little else ">"
    pos = 0
    while pos + 12 <= len(raw):
        namesz, descsz, ntype = struct.unpack_from(bo + "III", raw, pos)
        pos += 12
        name = raw[pos:pos + namesz].rstrip(b"\0").decode("utf-8", "replace")
        pos += (namesz + 3) & ~3
        desc = raw[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        out.append((name, ntype, desc))
    return out
