"""``Object``: a BPF ELF object, opened (configurable), then loaded, then closed."""
from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar,
                        Union)
    PathLike = Union[str, "os.PathLike[str]"]
    T = TypeVar("T")

from ._owner import Closeable, LinkHolder
from ._ffi import LogCapture, cstr, ffi, lib, libbpf_log, sync_log_level, to_str
from . import _featcache
from ._files import read_head, regular_file
from .errors import (LIBBPF_ERRNO_BASE, BPFError, BPFKeyError, BPFNotFoundError, ClosedError,
                     ELFError, as_path, error_from_errno, not_supported)
from .link import Link, Links
from .map import Map
from .program import Program, _load_error
from .btf import BTF
from .globals import GlobalSection
from .types import MapType
from .arena import Arena, _Release

__all__ = ["Object"]


EM_BPF = 247
_EM_NAMES = {3: "i386", 62: "x86-64", 40: "ARM", 183: "AArch64", 243: "RISC-V",
             8: "MIPS", 21: "PowerPC64", 22: "s390"}


def check_elf_header(data: bytes, size: int, label: str) -> None:
    """Reject what is not a 64-bit little/big-endian BPF relocatable ELF, naming ``label``.

    ``data`` holds at least the first 64 bytes (the whole ELF header) when the
    input is that long; ``size`` is the input's total size.
    """
    if size == 0:
        raise ELFError(_errno.ENOEXEC, f"{label}: empty file, not a BPF object")
    if data[:4] != b"\x7fELF":
        raise ELFError(_errno.ENOEXEC, f"{label}: not an ELF file (no ELF magic)")
    if size < 64:
        raise ELFError(_errno.ENOEXEC, f"{label}: truncated ELF file ({size} bytes, "
                                       "shorter than an ELF header)")
    if data[4] != 2:
        raise ELFError(_errno.ENOEXEC, f"{label}: not a 64-bit ELF file, not a BPF object")
    if data[5] not in (1, 2):
        raise ELFError(_errno.ENOEXEC, f"{label}: ELF file with invalid byte order")
    end = "<" if data[5] == 1 else ">"
    e_type, e_machine = struct.unpack_from(end + "HH", data, 16)
    if e_machine != EM_BPF:
        arch = _EM_NAMES.get(e_machine, f"machine {e_machine}")
        raise ELFError(_errno.ENOEXEC, f"{label}: an ELF file for {arch}, not a BPF object "
                                       "(compile with clang -target bpf)")
    if e_type != 1:
        raise ELFError(_errno.ENOEXEC, f"{label}: not a relocatable ELF object (type {e_type})")
    e_shoff, = struct.unpack_from(end + "Q", data, 40)
    e_shentsize, e_shnum = struct.unpack_from(end + "HH", data, 58)
    if e_shoff + e_shentsize * e_shnum > size or (e_shnum and e_shentsize < 64):
        raise ELFError(_errno.ENOEXEC, f"{label}: truncated or corrupt ELF file (section "
                                       f"headers end past its {size} bytes)")


BPF_F_LINK = 1 << 13

# (regular expressions are compiled by their first use, not with pylibbpf: re's cache)
_C_START = rb"\s*(#\s*(include|define|if|pragma)|//|/\*|struct |SEC\(|char LICENSE)"


def _looks_like_c(path: str, head: bytes) -> bool:
    """A C source file (by its name, or by how it starts) given where an object was due."""
    if path.endswith((".c", ".h")):
        return True
    import re

    return bool(re.match(_C_START, head))


def _precheck_error(err: int, msg: Any, label: str) -> ELFError:
    """The error of a refused pre-check: before opening the object,
    ``pylibbpf_object_open`` (_csrc/shims.c) refuses what libbpf (1.5 to 1.7)
    would crash or hang on while opening or loading it: BTF with reference
    cycles or impossible sizes (and what ``pylibbpf_btf_check`` refuses), a
    struct_ops variable past the end of its section, a struct_ops struct whose
    members lie outside it, a map in SEC(".maps") of type struct_ops (see
    ``pylibbpf_object_precheck``)."""
    if err == _errno.EBADMSG:
        # BTF libbpf would loop on (a typedef naming itself) or misread
        return ELFError(_errno.EINVAL, f"open BPF object {label}: corrupt BTF: {to_str(msg)}")
    return ELFError(_errno.EINVAL, f"open BPF object {label}: corrupt struct_ops data: "
                                   f"{to_str(msg)}")


def _map_refusal(m: Map, err: int) -> str:
    """Why the kernel refused to create map ``m``, when that is a kind it lacks (a map
    type, or struct_ops maps with links): "" when the failure has another cause."""
    from .attach._kinds import NOT_KNOWN_ERRNOS
    from .system import map_type_support, support

    if err not in NOT_KNOWN_ERRNOS:
        return ""
    try:
        mtype = m.type
    except ValueError:
        return ""  # a map type number pylibbpf doesn't know (a corrupt object, say)
    if mtype == MapType.STRUCT_OPS and m.flags & BPF_F_LINK:
        sup = support("struct_ops_link")
        if not sup:
            return (f"map {m.name!r} (SEC(\".struct_ops.link\")): struct_ops_link: "
                    f"{sup.reason}; SEC(\".struct_ops\") maps register without a link")
    sup = map_type_support(mtype)
    if sup:
        return ""
    return f"map {m.name!r}: {sup.name} maps: {sup.reason}"


class _Names(Mapping[str, "T"]):
    """Read-only name → item mapping whose KeyError lists what there is."""

    def __init__(self, items: Dict[str, T], kind: str, owner: str,
                 fallback: Optional[Callable[[str], Optional[T]]] = None) -> None:
        self._items = items
        self._kind = kind
        self._owner = owner
        self._fallback = fallback

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            pass
        if self._fallback is not None and isinstance(name, str):
            item = self._fallback(name)
            if item is not None:
                return item
        known = ", ".join(sorted(self._items)) or "none"
        raise BPFKeyError(_errno.ENOENT, f"no {self._kind} {name!r} in object "
                                         f"{self._owner!r} (it has: {known})")

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<{self._kind}s of {self._owner!r}: {', '.join(self._items)}>"


# what libbpf prints about a failed load (patterns for re.search in _load_error)
_FAILED_PROG = r"prog '([^']+)': BPF program load failed"
_LOAD_LOG = r"(?s)prog '([^']+)': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --"
_FAILED_PREPARE = r"prog '([^']+)': failed to"
_FAILED_MAP = r"map '([^']+)': failed to create"
#: libbpf could not make the BPF token token_path asked for (bpf_object_prepare_token)
_TOKEN_FAILED = (r"failed \([^)]*\) to (create BPF token from|open BPF FS mount "
                 r"at) '([^']*)'")
_NO_KERNEL_TARGET = r"prog '([^']+)': failed to find kernel BTF type ID of '([^']+)'"
_NO_PROG_TARGET = (r"prog '([^']+)': failed to find BPF program \(FD (\d+)\) BTF ID "
                   r"for '([^']+)'")

def _unsized_map(m: Map) -> str:
    """The hint for a map the kernel refused (EINVAL) with a size left at 0, or ""."""
    from .map import zero_size_field

    try:
        mtype = m.type
    except ValueError:
        return ""
    field = zero_size_field(mtype, m.max_entries, m.value_size)
    if not field:
        return ""
    how = ("__uint(max_entries, N)" if field == "max_entries" else
           "__type(value, T) or __uint(value_size, N)")
    return (f"map {m.name!r} ({mtype.name.lower()}) has {field} 0: give it one in the BPF "
            f"source ({how}), or set obj.maps[{m.name!r}].{field} = N before load()")


def _close_names(name: str, names: Sequence[str]) -> List[str]:
    """Up to 5 of ``names`` close to ``name`` (prefiltered: difflib over ~100k
    kernel symbols would take seconds)."""
    import difflib

    stem = name[:4]
    pool = [n for n in names if n.startswith(stem) or name in n or (len(n) > 4 and n in name)]
    return difflib.get_close_matches(name, pool, n=5, cutoff=0.75)


def _missing_target(section: str, target: str) -> str:
    """What kind of kernel target a SEC() names, and the closest that exist."""
    from .attach._kinds import kallsyms_index, tracefs_dir

    kind = section.split("/")[0].split(".")[0]
    close: List[str] = []
    if kind == "lsm":
        what = f"LSM hook {target!r} (kernel function bpf_lsm_{target})"
        idx = kallsyms_index()
        if idx is not None:
            close = _close_names(target, [n[8:] for n in idx.names() if n.startswith("bpf_lsm_")])
    elif kind == "tp_btf":
        what = f"tracepoint {target!r} (BTF type btf_trace_{target})"
        tracefs = tracefs_dir()
        if tracefs is not None:
            from .attach.tracepoint import tracepoints

            names = sorted({n for ns in tracepoints(os.path.join(tracefs, "events")).values()
                            for n in ns})
            close = _close_names(target, names)
    elif kind == "iter":
        what = f"iterator target {target!r} (kernel function bpf_iter_{target})"
    else:
        what = f"kernel function {target!r}"
        idx = kallsyms_index()
        if idx is not None:
            close = _close_names(target, idx.names())
    text = f"{what}, which is not in the BTF of the kernel or of its modules"
    if close:
        text += "\n  did you mean: " + ", ".join(close)
    return text


class Object(LinkHolder, Closeable):
    """A BPF object file (``.bpf.o``), from a path or from bytes.

    Open is cheap and configurable: list and tune :attr:`programs` and
    :attr:`maps`, then :meth:`load` (CO-RE relocation against the running
    kernel's BTF or ``btf_custom_path``, then verification). :meth:`close`
    frees everything; Objects are context managers. ``obj["name"]`` is the map
    ``obj.maps["name"]``, as in bcc; a name it lacks raises
    :class:`~pylibbpf.errors.BPFKeyError` (a ``KeyError``) listing its maps.

    Options: ``name`` (object name, defaults to the file name), ``btf_custom_path``
    (BTF to relocate against instead of the kernel's), ``kconfig`` (extra
    ``CONFIG_X=y`` lines for ``__kconfig`` externs), ``pin_root_path`` (where
    maps with ``LIBBPF_PIN_BY_NAME`` are pinned), ``kernel_log_level`` (verifier
    log level for every program), ``relaxed_maps``, ``token_path`` (a bpffs mounted
    with ``delegate_*`` options: load through a BPF token made from it, as a process
    in a user namespace must; ``""`` turns tokens off; unset, libbpf follows
    ``LIBBPF_BPF_TOKEN_PATH`` or tries ``/sys/fs/bpf`` quietly).
    """

    def __init__(self, source: Union[PathLike, bytes, bytearray, memoryview], *,
                 name: Optional[str] = None, btf_custom_path: Optional[PathLike] = None,
                 kconfig: Optional[str] = None, pin_root_path: Optional[PathLike] = None,
                 kernel_log_level: int = 0, relaxed_maps: bool = False,
                 token_path: Optional[PathLike] = None) -> None:
        self._ptr: Any = None
        self._keep: List[Any] = []  # memory libbpf may read while the object lives
        self._loaded = False
        self._prepared = False
        self._load_attempted = False
        self._elf_path: Optional[str] = None
        self._arena_release = _Release()  # see pylibbpf.arena: views outlive close()

        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if kconfig is not None and not isinstance(kconfig, str):
            raise TypeError(f"kconfig must be a str, not {type(kconfig).__name__}")
        if not isinstance(kernel_log_level, int) or isinstance(kernel_log_level, bool) \
                or not 0 <= kernel_log_level <= 0xFFFFFFFF:
            raise ValueError(f"kernel_log_level must be a non-negative int below 2**32, "
                             f"not {kernel_log_level!r}")

        # libbpf's open options, set by pylibbpf_object_open (_csrc/shims.c)
        o_name = cstr(name, self._keep)
        o_kconfig = cstr(kconfig, self._keep)
        o_btf = o_pin = o_token = ffi.NULL
        if btf_custom_path is not None:
            btf_path = as_path(btf_custom_path, "btf_custom_path")
            regular_file(btf_path, "BTF file", cls=ELFError)  # libbpf reads it at load
            o_btf = cstr(btf_path, self._keep)
        if pin_root_path is not None:
            o_pin = cstr(os.fspath(pin_root_path), self._keep)
        if token_path is not None:   # (unset: libbpf reads LIBBPF_BPF_TOKEN_PATH itself)
            o_token = cstr(as_path(token_path, "token_path"), self._keep)
        o_args = (o_name, o_kconfig, o_btf, o_pin, o_token, bool(relaxed_maps),
                  kernel_log_level)

        sync_log_level()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self._label = name or "<bytes>"
            check_elf_header(data[:64], len(data), self._label)
            buf = ffi.from_buffer(data)
            self._keep += [data, buf]  # libbpf reads the ELF from it until load
            label = self._label
            with libbpf_log() as log:
                ptr = lib.pylibbpf_object_open(ffi.NULL, buf, len(data), *o_args, ffi.NULL)
                err = ffi.errno
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not isinstance(path, str):
                raise TypeError("path must be a str or an os.PathLike of str")
            self._label = path
            self._elf_path = path  # read again for relocations (Program.disassemble)
            if "\0" in path:  # (os.open's ValueError; libbpf would cut the path there)
                raise ELFError(_errno.EINVAL, f"BPF object path {path!r} contains a NUL byte")
            # a FIFO or a device would block libbpf's (and libelf's) reads for ever
            size, head = read_head(path, "BPF object", 64, cls=ELFError)
            try:
                check_elf_header(head, size, repr(path))
            except ELFError as e:
                if _looks_like_c(path, head):
                    raise ELFError(e.errno or _errno.ENOEXEC,
                                   f"{e.strerror}; it looks like C source: compile and open "
                                   f"it with pylibbpf.Object.from_source({path!r})") from None
                raise
            label = repr(path)
            with libbpf_log() as log:
                ptr = lib.pylibbpf_object_open(path.encode(), ffi.NULL, 0, *o_args,
                                               _featcache.first_open())
                err = ffi.errno
        else:
            raise TypeError("source must be a path or bytes, "
                            f"not {type(source).__name__}")
        if ptr == ffi.NULL:   # (an error pointer libbpf let through is NULL too)
            refusal = lib.pylibbpf_refusal()
            if refusal[0] != b"\0":
                raise _precheck_error(err, refusal, label)
            raise self._open_error(err, log)
        self._ptr = ptr   # (the Program and Map objects are made at their first use)

    @classmethod
    def from_source(cls, source: Optional[PathLike] = None, *, text: Optional[str] = None,
                    cflags: Sequence[str] = (), include_dirs: Sequence[PathLike] = (),
                    **options: Any) -> "Object":
        """Compile the BPF C file ``source``, or the C source ``text`` (as bcc's
        ``BPF(text=…)``), with :func:`pylibbpf.compile` (cached by content) and
        open the object; ``options`` are :class:`Object`'s (``name`` also names
        the source written for ``text``).

        >>> with pylibbpf.Object.from_source("tool.bpf.c") as obj:   # doctest: +SKIP
        ...     obj.load()
        >>> obj = pylibbpf.Object.from_source(text=SOURCE, name="counter")  # doctest: +SKIP
        """
        from .compiler import compile

        if text is not None:
            if source is not None:
                raise TypeError("from_source() takes a source path or text=, not both")
            path = compile(text=text, name=options.get("name"), cflags=cflags,
                           include_dirs=include_dirs)
            if options.get("name") is None:
                options["name"] = "text"
            return cls(path, **options)
        if source is None:
            raise TypeError("from_source() needs a source path or text=")
        if options.get("name") is None:
            base = os.path.basename(os.fspath(source))
            options["name"] = base[:-len(".bpf.c")] if base.endswith(".bpf.c") \
                else os.path.splitext(base)[0]
        return cls(compile(source, cflags=cflags, include_dirs=include_dirs), **options)

    def _open_error(self, err: int, log: LogCapture) -> BPFError:
        what = f"open BPF object {self._label!r}"
        if err >= LIBBPF_ERRNO_BASE or err in (_errno.EINVAL, _errno.ENOEXEC, _errno.EIO,
                                               _errno.E2BIG, _errno.ENOTSUP):
            return error_from_errno(err, what, cls=ELFError, libbpf_log=log.warnings)
        return error_from_errno(err, what, libbpf_log=log.warnings)

    @property
    def _programs(self) -> Dict[str, Program]:
        """Programs by name, made at the first use (none once closed before it)."""
        d = self.__dict__.get("_prog_objs")
        return d if d is not None else self._collect()[0]

    @property
    def _maps(self) -> Dict[str, Map]:
        """Maps by name, made at the first use (none once closed before it)."""
        d = self.__dict__.get("_map_objs")
        return d if d is not None else self._collect()[1]

    def _collect(self) -> Tuple[Dict[str, Program], Dict[str, Map]]:
        programs: Dict[str, Program] = {}
        maps: Dict[str, Map] = {}
        obj = self._ptr
        if obj is None:
            return programs, maps
        next_program, program_name = lib.bpf_object__next_program, lib.bpf_program__name
        prog = next_program(obj, ffi.NULL)
        while prog:  # (a NULL cdata pointer is false)
            # libbpf's name never changes: error messages use this
            name = to_str(program_name(prog))
            programs[name] = Program(_obj=self, _ptr=prog, _name=name)
            prog = next_program(obj, prog)
        next_map, map_name = lib.bpf_object__next_map, lib.bpf_map__name
        m = next_map(obj, ffi.NULL)
        while m:
            maps[to_str(map_name(m))] = Map(_obj=self, _ptr=m)
            m = next_map(obj, m)
        # (two threads' first uses at once: both get the first one kept)
        return (self.__dict__.setdefault("_prog_objs", programs),
                self.__dict__.setdefault("_map_objs", maps))

    def _find_map(self, name: str) -> Optional[Map]:
        # libbpf also knows maps by their "real" name, e.g. ".rodata" or ".data.foo"
        if self._ptr is None:
            return None
        ptr = lib.bpf_object__find_map_by_name(self._ptr, name.encode())
        if ptr == ffi.NULL:
            return None
        for m in self._maps.values():
            if m._ptr == ptr:
                return m
        return None

    # --- state --------------------------------------------------------------
    def _check(self) -> None:
        if self._ptr is None:
            raise ClosedError(f"Object {getattr(self, '_label', '?')!r}")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._ptr is None

    @property
    def loaded(self) -> bool:
        """True after a successful :meth:`load`."""
        return self._loaded

    @property
    def name(self) -> str:
        """The object's name (from the file name unless given)."""
        self._check()
        return to_str(lib.bpf_object__name(self._ptr))

    @property
    def programs(self) -> Mapping[str, Program]:
        """Programs by name."""
        self._check()
        return _Names(self._programs, "program", self.name)

    @property
    def maps(self) -> Mapping[str, Map]:
        """Maps by name; global-data maps are also found as ``.rodata``, ``.bss`` …"""
        self._check()
        return _Names(self._maps, "map", self.name, self._find_map)

    def __getitem__(self, name: str) -> Map:
        """The map called ``name``, as bcc's ``b["name"]``: ``obj.maps[name]``.

        A missing name raises :class:`~pylibbpf.errors.BPFKeyError` (a ``KeyError``
        and a ``LookupError``) listing the object's maps."""
        maps = self.maps
        try:
            return maps[name]
        except BPFKeyError as e:
            if not (isinstance(name, str) and name in self._programs):
                raise
            raise BPFKeyError(_errno.ENOENT, f"{e.strerror}; {name!r} is a program: "
                                             f"obj.programs[{name!r}]") from None

    def __contains__(self, name: object) -> bool:
        """Whether the object has a map called ``name``."""
        return isinstance(name, str) and name in self.maps

    def __iter__(self) -> Iterator[str]:
        # without this, obj[0], obj[1] … would be tried by iter()
        raise TypeError("an Object is not iterable: iterate obj.maps or obj.programs")

    # --- global variables (pylibbpf.globals) ---------------------------------
    def section(self, name: str) -> "GlobalSection":
        """The typed variables of data section ``name`` (``.rodata``, ``.data``,
        ``.bss``, a custom ``.data.foo`` …)."""
        from .globals import section_of

        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        return section_of(self, name)

    @property
    def rodata(self) -> "GlobalSection":
        """``const volatile`` globals: set before load (``obj.rodata.x = 1``)."""
        return self.section(".rodata")

    @property
    def data(self) -> "GlobalSection":
        """Initialized globals (``.data``): read and write, also after load."""
        return self.section(".data")

    @property
    def bss(self) -> "GlobalSection":
        """Zero-initialized globals (``.bss``): read and write, also after load."""
        return self.section(".bss")

    @property
    def arena(self) -> "Arena":
        """The memory of the object's arena map (``BPF_MAP_TYPE_ARENA``), after load:
        ``obj.arena.memory``, ``obj.arena.numpy(…)``, ``obj.arena.globals.x``
        (see :class:`~pylibbpf.arena.Arena`)."""
        from .globals import _arena_map

        return _arena_map(self).arena

    @property
    def btf(self) -> "BTF":
        """The object's BTF: ``obj.btf.codec("struct event")`` decodes that type."""
        from .btf import btf_of_object

        btf = btf_of_object(self)
        if btf is None:
            raise BPFNotFoundError(_errno.ENOENT, f"object {self.name!r} has no BTF")
        return btf

    @property
    def kversion(self) -> int:
        """The kernel version the object declares (0 when none)."""
        self._check()
        return int(lib.bpf_object__kversion(self._ptr))

    @property
    def prepared(self) -> bool:
        """True after :meth:`prepare` (or :meth:`load`): the maps exist in the kernel."""
        return self._prepared or self._loaded

    @property
    def token_fd(self) -> int:
        """The fd of the BPF token libbpf made for this object's ``bpf()`` calls
        (``token_path``), -1 when it uses none (or before :meth:`prepare`/:meth:`load`)."""
        self._check()
        return int(lib.bpf_object__token_fd(self._ptr))

    # --- load ---------------------------------------------------------------
    def prepare(self) -> "Object":
        """The first half of :meth:`load` (libbpf's ``bpf_object__prepare()``):
        relocate (CO-RE), load the BTF and create the maps, without loading any
        program. The maps then have fds, kernel ids and their final sizes, and
        ``.data``/``.bss`` can still be set (``.rodata`` is frozen); program
        settings other than ``autoload`` and ``log_level`` are fixed.
        :meth:`load` finishes. Errors are :meth:`load`'s.
        """
        self._check()
        if self._load_attempted or self._prepared:
            raise BPFError(_errno.EBUSY, f"object {self.name!r} was already prepared or "
                                         "loaded (or that failed); open it again")
        self._check_btf(True)
        sync_log_level()
        with libbpf_log() as log:
            ret = lib.pylibbpf_object_load(self._ptr, 1, _featcache.first_load())
        if ret > 0:
            _featcache.remember(ret)
        if ret < 0:
            self._load_attempted = True
            raise self._load_error(-ret, log)
        self._prepared = True
        return self

    def load(self) -> "Object":
        """Relocate (CO-RE) and load all maps and autoload programs (after
        :meth:`prepare`: the programs).

        Raises :class:`VerifierError` naming the rejected program with its
        whole verifier log, or :class:`NotSupportedError` for kinds this
        kernel cannot load. An Object is loaded at most once.
        """
        self._check()
        if self._load_attempted:
            raise BPFError(_errno.EBUSY, f"object {self.name!r} was already loaded "
                                         "(or a load failed); open it again")
        # (the BTF was checked by prepare(); the arenas' placement is checked first, and
        # a refusal there leaves the object loadable)
        self._check_btf(not self._prepared, arenas=True)
        sync_log_level()
        with libbpf_log() as log:   # (libbpf's bpf_object__load, the feature file primed)
            ret = lib.pylibbpf_object_load(self._ptr, 0, _featcache.first_load())
        if ret > 0:
            _featcache.remember(ret)
        if ret < 0:
            raise self._load_error(-ret, log)
        self._loaded = True
        return self

    def _check_arena_placement(self) -> None:
        """libbpf maps an arena with a ``map_extra`` address MAP_FIXED: refuse one
        that would replace memory this process already maps (the interpreter's)."""
        from .arena import BPF_F_SEGV_ON_FAULT, PAGE_SIZE, mapped_ranges

        for m in self._maps.values():
            if m._ptr is None or lib.bpf_map__type(m._ptr) != lib.BPF_MAP_TYPE_ARENA or \
                    not lib.bpf_map__autocreate(m._ptr):
                continue
            size = ffi.new("size_t *")
            if lib.bpf_map__map_flags(m._ptr) & BPF_F_SEGV_ON_FAULT and \
                    lib.bpf_map__initial_value(m._ptr, size) != ffi.NULL and size[0]:
                # libbpf copies the globals' initial values into the fresh arena, whose
                # pages nobody allocated yet: with this flag that write is a SIGSEGV
                raise BPFError(_errno.EINVAL,
                               f"load {self.name!r}: arena map {m.name!r} has __arena "
                               "globals and BPF_F_SEGV_ON_FAULT: libbpf would write their "
                               "initial values into pages no program has allocated, which "
                               "kills this process (SIGSEGV); drop the flag or the globals")
            start = int(lib.bpf_map__map_extra(m._ptr))
            if not start:
                continue
            end = start + int(lib.bpf_map__max_entries(m._ptr)) * PAGE_SIZE
            if start % PAGE_SIZE:
                raise BPFError(_errno.EINVAL, f"load {self.name!r}: arena map {m.name!r}: "
                                              f"map_extra {start:#x} is not page-aligned")
            for lo, hi, what in mapped_ranges():
                if lo < end and start < hi:
                    raise BPFError(_errno.EEXIST,
                                   f"load {self.name!r}: arena map {m.name!r} at map_extra "
                                   f"{start:#x}-{end:#x} overlaps memory this process maps "
                                   f"({lo:#x}-{hi:#x} {what or '[anonymous]'}); libbpf would "
                                   "replace it: choose a free address, or 0")

    def _check_btf(self, check_btf: bool, arenas: bool = False) -> None:
        """Refuse BTF that would crash libbpf's CO-RE code or its struct_ops set-up
        (with ``check_btf``), and (with ``arenas``, for load) arena maps placed where
        they would break this process: one C call (pylibbpf_object_load_check in
        shims.c) unless the object has arena maps. For load, the object counts as
        attempted once its arenas' placement passed (a refused BTF then too), so
        that only an arena refusal leaves it loadable."""
        ret = lib.pylibbpf_object_load_check(self._ptr, check_btf)  # arenas << 8 | verdict
        if arenas:
            if ret >> 8:
                self._check_arena_placement()
            self._load_attempted = True
        if ret & 0xFF == 1:
            raise ELFError(_errno.EINVAL, f"{self._label!r}: corrupt BTF: "
                                          f"{to_str(lib.pylibbpf_refusal())}")
        if ret & 0xFF:
            raise ELFError(_errno.EINVAL, f"{self._label!r}: corrupt struct_ops data: "
                                          f"{to_str(lib.pylibbpf_refusal())}")

    def _load_error(self, err: int, log: LogCapture) -> BPFError:
        import re

        text = log.text()
        m = re.search(_TOKEN_FAILED, text)
        if m and m.group(1).startswith("open"):
            return error_from_errno(err, f"load BPF object {self.name!r}: open the bpffs "
                                         f"of token_path {m.group(2)!r}")
        if m:
            from .token import _token_error

            return _token_error(err, f"load BPF object {self.name!r}: create a BPF token "
                                     f"from token_path {m.group(2)!r}")
        m = re.search(_FAILED_PROG, text)
        if m:
            name = m.group(1)
            prog = self._programs.get(name)
            vlog = ""
            for lm in re.finditer(_LOAD_LOG, text):
                if lm.group(1) == name:
                    vlog = lm.group(2)
            if prog is not None and prog._log_buf is not None:
                vlog = prog.log or vlog
            warnings = [w for w in log.warnings if "PROG LOAD LOG" not in w]
            if prog is not None:
                # the attach type as a number: a corrupt object may carry one that
                # AttachType can't name
                eat = int(lib.bpf_program__expected_attach_type(prog._ptr))
                return _load_error(err, name, prog.type, vlog,
                                   f"load program {name!r} of {self.name!r}", warnings,
                                   section=prog.section, attach_type=eat)
        what = f"load BPF object {self.name!r}"
        m = re.search(_NO_KERNEL_TARGET, text)
        if m and m.group(1) in self._programs:
            prog = self._programs[m.group(1)]
            return BPFNotFoundError(
                err, f"load program {prog.name!r} of {self.name!r}: its SEC({prog.section!r}) "
                     f"attaches to {_missing_target(prog.section, m.group(2))}",
                libbpf_log=log.warnings)
        m = re.search(_NO_PROG_TARGET, text)
        if m and m.group(1) in self._programs:
            return BPFNotFoundError(
                err, f"load program {m.group(1)!r} of {self.name!r}: its target program "
                     f"(fd {m.group(2)}) has no function {m.group(3)!r} in its BTF (give "
                     "set_attach_target() a program and one of its global functions)",
                libbpf_log=log.warnings)
        m = re.search(_FAILED_MAP, text)
        if m and m.group(1) in self._maps:
            refusal = _map_refusal(self._maps[m.group(1)], err)
            if refusal:
                return not_supported(err, what, refusal, libbpf_log=log.warnings)
            hint = _unsized_map(self._maps[m.group(1)]) if err == _errno.EINVAL else ""
            if hint:
                return error_from_errno(err, what, libbpf_log=log.warnings, hint=hint)
        if err == _errno.ENOENT:
            return error_from_errno(err, what, cls=BPFError, libbpf_log=log.warnings)
        return error_from_errno(err, what, libbpf_log=log.warnings)

    # --- attach -------------------------------------------------------------
    def attach_all(self) -> Links:
        """Attach every loaded, auto-attachable program by its SEC() definition.

        Programs whose section does not say where to attach (``SEC("xdp")``,
        ``SEC("tc")`` …) or whose ``autoattach`` is off are skipped. On failure,
        links made so far are closed and the error is raised.

        Returns a :class:`Links`; like every Link, they stay attached while
        this Object is open even if the result is dropped. ``with
        obj.attach_all():`` detaches them at the end of the block.
        """
        self._check()
        if not self._loaded:
            raise BPFError(_errno.EINVAL, f"object {self.name!r} is not loaded; call load()")
        from .attach.section import attach_by_section

        links: List[Link] = []
        try:
            for prog in self._programs.values():
                if not prog.loaded or not prog.autoattach:
                    continue
                link = attach_by_section(prog, auto=True)
                if link is not None:
                    links.append(link)
        except BaseException:
            for link in links:
                link.close()
            raise
        return Links(links)

    @property
    def links(self) -> List[Link]:
        """The Links made from this Object's programs that are still open
        (oldest first); :meth:`close` detaches them."""
        self._check()
        return [a for a in self._held_attachments() if isinstance(a, Link)]

    # --- pinning ------------------------------------------------------------
    def pin_maps(self, path: PathLike) -> None:
        """Pin every map under the bpffs directory ``path``."""
        self._check()
        p = as_path(path)
        with libbpf_log() as log:
            ret = lib.bpf_object__pin_maps(self._ptr, p.encode())
        if ret < 0:
            raise error_from_errno(-ret, f"pin maps of {self.name!r} under {p!r}",
                                   libbpf_log=log.warnings)

    def unpin_maps(self, path: PathLike) -> None:
        """Remove the pins made by :meth:`pin_maps`."""
        self._check()
        p = as_path(path)
        ret = lib.bpf_object__unpin_maps(self._ptr, p.encode())
        if ret < 0:
            raise error_from_errno(-ret, f"unpin maps of {self.name!r} under {p!r}")

    # --- lifetime -----------------------------------------------------------
    def close(self) -> None:
        """Detach every Link made from this object's programs (pinned links
        stay attached), then unload and free everything. Idempotent.
        """
        self._close_held()
        for m in self.__dict__.get("_map_objs", {}).values():
            m._fdcache = -1  # before libbpf closes the fds: maps' fast paths test this
            m.__dict__.pop("_arena", None)
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            # libbpf unmaps the arena: while views of it are alive, that waits for
            # the last of them (pylibbpf.arena)
            self._arena_release.close_object(ptr, self._keep)
        self._keep.clear()

    def __repr__(self) -> str:
        if self._ptr is None:
            return f"<pylibbpf.Object {getattr(self, '_label', '?')!r} closed>"
        state = "loaded" if self._loaded else "opened"
        return (f"<pylibbpf.Object {self.name!r} {state}: {len(self._programs)} programs, "
                f"{len(self._maps)} maps>")

