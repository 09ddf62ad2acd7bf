"""Addresses to names, for stack traces: kernel addresses through
``/proc/kallsyms``, user addresses through ``/proc/PID/maps`` and the ELF
symbol index of :mod:`pylibbpf.elf` (C++ and Rust names demangled).

>>> from pylibbpf.symbolize import Symbolizer
>>> sym = Symbolizer()
>>> str(sym.kernel(ip))                            # doctest: +SKIP
'do_sys_openat2+0x20 [kernel]'
>>> [str(f) for f in sym.user_stack(pid, user_ips)]  # doctest: +SKIP
['malloc+0x1e [libc.so.6]', 'main+0x42 [myprog]']

:meth:`Symbolizer.stack` takes a stack as BPF recorded it (``bpf_get_stack``
with kernel and user parts): addresses in the upper half are the kernel's.

A ``Symbolizer`` caches kallsyms, each process's mappings (read when the
process is first seen, kept after it exits) and each file's symbols. Call
:meth:`Symbolizer.remember` on a short-lived process as soon as it is seen
(an exec event, its first sample) so its stacks resolve after it exits; a
frame that cannot be resolved says why in :attr:`Frame.reason`
(``"process 1234 exited before its mappings were read"``, …).
"""
from __future__ import annotations

import bisect
import io
import errno as _errno
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ._files import open_regular
from .elf import demangle, process_maps, symbol_index
from .errors import BPFNotFoundError
from .elf._paths import MapEntry, process_root

__all__ = ["Frame", "KernelSymbols", "ElfSymbols", "Symbolizer", "kernel_symbols"]


@dataclass(frozen=True)
class Frame:
    """One symbolized address: ``name+0xoffset [module]``."""

    address: int
    #: function name (demangled), or None when unknown
    name: Optional[str]
    offset: int
    #: ``"kernel"``, a kernel module's name, or the file's base name
    module: str
    #: why ``name`` is None (e.g. ``"process 1234 exited before its mappings
    #: were read"``); None for a resolved frame
    reason: Optional[str] = None

    def __str__(self) -> str:
        if self.name is None:
            text = f"{self.address:#x} [{self.module}]" if self.module else f"{self.address:#x}"
            return f"{text} ({self.reason})" if self.reason else text
        off = f"+{self.offset:#x}" if self.offset else ""
        return f"{self.name}{off} [{self.module}]"

    @property
    def function(self) -> str:
        """The name alone (``"[unknown]"`` when unknown), for folded stacks."""
        return self.name if self.name is not None else "[unknown]"


class KernelSymbols:
    """``/proc/kallsyms`` sorted by address (needs root: others see zeros)."""

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        entries: List[Tuple[int, str, str]] = []
        with io.TextIOWrapper(open_regular(path, "kernel symbol file")) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] not in "tTwW":
                    continue
                addr = int(parts[0], 16)
                if addr == 0:
                    continue
                mod = parts[3].strip("[]") if len(parts) > 3 else "kernel"
                entries.append((addr, parts[2], mod))
        entries.sort()
        self._addrs = [e[0] for e in entries]
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, address: int) -> Frame:
        """The function holding ``address`` (the nearest symbol below it)."""
        i = bisect.bisect_right(self._addrs, address) - 1
        if i < 0:
            why = ("/proc/kallsyms shows no addresses (reading them needs root)"
                   if not self._entries else "below every kernel symbol")
            return Frame(address, None, 0, "kernel", why)
        addr, name, mod = self._entries[i]
        return Frame(address, name, address - addr, mod)

    def address_of(self, name: str) -> Optional[int]:
        """The address of kernel function ``name`` (first match), or None."""
        for addr, n, _ in self._entries:
            if n == name:
                return addr
        return None


_kernel: Optional[KernelSymbols] = None


def kernel_symbols() -> KernelSymbols:
    """The process-wide :class:`KernelSymbols` (read once)."""
    global _kernel
    if _kernel is None:
        _kernel = KernelSymbols()
    return _kernel


class ElfSymbols:
    """The function symbols of one ELF file, by address (from its symbol index)."""

    def __init__(self, path: str) -> None:
        idx = symbol_index(path)
        self.image = idx.image
        syms = sorted({(s.address, s.size, s.name) for s in idx.functions(None)})
        self._addrs = [a for a, _, _ in syms]
        self._syms = syms
        self._demangled: Dict[str, str] = {}

    def lookup(self, vaddr: int) -> Optional[Tuple[str, int]]:
        """(demangled name, offset) of the function at virtual address ``vaddr``."""
        i = bisect.bisect_right(self._addrs, vaddr) - 1
        while i >= 0:
            addr, size, name = self._syms[i]
            if vaddr < addr + max(size, 1) or size == 0:
                d = self._demangled.get(name)
                if d is None:
                    d = self._demangled[name] = demangle(name)
                return d, vaddr - addr
            if i > 0 and self._addrs[i - 1] == addr:
                i -= 1  # an alias with a larger size
                continue
            return None
        return None


def _start_time(pid: int) -> Optional[int]:
    """Process ``pid``'s start time (clock ticks after boot), None when it is gone:
    with the pid, it tells one process from a later one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:  # comm (field 2) may hold spaces and parentheses: split after its last ')'
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


@dataclass
class _Process:
    """What a Symbolizer knows of one process: its executable mappings, read at
    first sight (or by :meth:`Symbolizer.remember`), kept after it exits."""

    pid: int
    start: Optional[int]
    maps: List[MapEntry]
    #: why ``maps`` is empty (could not be read), else None
    error: Optional[str] = None
    #: prefix that reaches the process's files ("" or /proc/PID/root), found
    #: while it ran (once it exits, /proc/PID no longer tells)
    root: str = ""

    def path(self, m: MapEntry) -> str:
        return (f"/proc/{self.pid}/map_files/{m.start:x}-{m.end:x}" if m.deleted
                else self.root + m.path)


class Symbolizer:
    """Kernel and user address symbolization with caches.

    A process's mappings are read the first time one of its addresses is
    symbolized and kept, so its later stacks still resolve after it exits
    (what bcc's ``BPF.sym`` users rely on). For a short-lived process, call
    :meth:`remember` when it is first seen (an exec event, its first sample):
    that also reads the symbols of every file it maps, which may be out of
    reach once it is gone (a container's files, a file deleted since mapped).
    A frame that stays unknown says why in :attr:`Frame.reason`.
    Cached processes are kept until :meth:`forget`.
    """

    def __init__(self) -> None:
        self._files: Dict[str, Optional[ElfSymbols]] = {}
        self._file_errors: Dict[str, str] = {}
        self._procs: Dict[int, _Process] = {}

    # --- kernel ------------------------------------------------------------------
    def kernel(self, address: int) -> Frame:
        """Symbolize one kernel address."""
        return kernel_symbols().lookup(address)

    def kernel_stack(self, ips: Sequence[int]) -> List[Frame]:
        """Symbolize kernel addresses (e.g. a stack-trace map value)."""
        return [self.kernel(ip) for ip in ips]

    # --- processes ---------------------------------------------------------------
    def _read(self, pid: int, start: Optional[int]) -> _Process:
        try:
            root = process_root(pid)
            maps = [m for m in process_maps(pid) if "x" in m.perms]
        except BPFNotFoundError:
            return _Process(pid, None, [], f"process {pid} exited before its mappings "
                                           "were read")
        except OSError as e:  # BPFPermissionError (another user's process) …
            return _Process(pid, start, [], str(e.strerror).split("\n")[0])
        return _Process(pid, start, maps, root=root)

    def _process(self, pid: int, *, refresh: bool = False) -> _Process:
        """The cached process ``pid``, (re)read when first seen, when the pid now
        belongs to another process, or with ``refresh`` while it runs."""
        proc = self._procs.get(pid)
        start = _start_time(pid)
        if proc is not None:
            if start is None:  # exited (or unreadable): keep what we know
                return proc
            if start == proc.start and not refresh and proc.error is None:
                return proc
        proc = self._read(pid, start)
        self._procs[pid] = proc
        return proc

    def remember(self, pid: int) -> None:
        """Read process ``pid``'s mappings and the symbols of every file it maps
        now, so that its stacks symbolize after it has exited.

        Raises :class:`~pylibbpf.BPFNotFoundError` when there is no such
        process, :class:`~pylibbpf.BPFPermissionError` when its mappings are
        not readable (another user's process, without CAP_SYS_PTRACE).
        """
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise TypeError(f"pid must be an int, not {type(pid).__name__}")
        start = _start_time(pid)
        if start is None:
            raise BPFNotFoundError(_errno.ESRCH, f"no process with pid {pid}")
        root = process_root(pid)  # these raise naming the pid
        maps = [m for m in process_maps(pid) if "x" in m.perms]
        proc = self._procs[pid] = _Process(pid, start, maps, root=root)
        for m in maps:
            self._elf(proc.path(m))

    def forget(self, pid: int) -> None:
        """Drop what is cached of ``pid`` (after it exec()ed, or exited and its
        stacks were read)."""
        self._procs.pop(pid, None)

    def _elf(self, path: str) -> Optional[ElfSymbols]:
        if path not in self._files:
            try:
                self._files[path] = ElfSymbols(path)
            except Exception as e:  # not an ELF file, unreadable, gone
                self._files[path] = None
                text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                self._file_errors[path] = str(text).split("\n")[0]
        return self._files[path]

    # --- user --------------------------------------------------------------------
    def _lookup(self, proc: _Process, address: int) -> Optional[Frame]:
        for m in proc.maps:
            if m.start <= address < m.end:
                module = os.path.basename(m.path)
                path = proc.path(m)
                elf = self._elf(path)
                if elf is None:
                    why = self._file_errors.get(path, f"cannot read {path}")
                    if _start_time(proc.pid) != proc.start:
                        why = f"process {proc.pid} exited before {m.path} was read ({why})"
                    return Frame(address, None, address - m.start, module, why)
                file_off = address - m.start + m.offset
                vaddr = elf.image.offset_to_address(file_off)
                hit = elf.lookup(vaddr) if vaddr is not None else None
                if hit is None:
                    return Frame(address, None, file_off, module,
                                 f"no function symbol covers offset {file_off:#x} of "
                                 f"{m.path}")
                return Frame(address, hit[0], hit[1], module)
        return None

    def _frames(self, pid: int, ips: Sequence[int]) -> List[Frame]:
        proc = self._process(pid)
        refreshed = False
        out = []
        for address in ips:
            frame = self._lookup(proc, address)
            if frame is None and proc.error is None and not refreshed \
                    and proc.start is not None and _start_time(pid) == proc.start:
                # mapped since we looked (dlopen): read the mappings again, once a stack
                proc, refreshed = self._process(pid, refresh=True), True
                frame = self._lookup(proc, address)
            if frame is None:
                frame = Frame(address, None, 0, "", proc.error or
                              f"no executable file mapping of process {pid} holds it")
            out.append(frame)
        return out

    def user(self, pid: int, address: int) -> Frame:
        """Symbolize one address of process ``pid``."""
        return self._frames(pid, [address])[0]

    def user_stack(self, pid: int, ips: Sequence[int]) -> List[Frame]:
        """Symbolize addresses of process ``pid`` (a ``BPF_F_USER_STACK`` stack)."""
        return self._frames(pid, ips)

    def stack(self, ips: Sequence[int], pid: Optional[int] = None) -> List[Frame]:
        """Kernel addresses (upper half) via kallsyms, the rest as ``pid``'s."""
        user = [ip for ip in ips if ip < 1 << 63]
        frames = iter(self._frames(pid, user) if pid and user else [])
        out = []
        for ip in ips:
            if ip >= 1 << 63:
                out.append(self.kernel(ip))
            elif pid:
                out.append(next(frames))
            else:
                out.append(Frame(ip, None, 0, "", "a user-space address, and no pid given"))
        return out
