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

A ``Symbolizer`` caches kallsyms, each process's mappings and each file's
symbols; processes that have exited by the time the stack is read symbolize
as ``[unknown]`` (read stacks while the workload runs, or keep it alive).
"""
from __future__ import annotations

import bisect
import io
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ._files import open_regular
from .elf import demangle, process_maps, symbol_index
from .elf._paths import MapEntry, in_process_root

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

    def __str__(self) -> str:
        if self.name is None:
            return f"{self.address:#x} [{self.module}]" if self.module else f"{self.address:#x}"
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
            return Frame(address, None, 0, "kernel")
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


class Symbolizer:
    """Kernel and user address symbolization with caches."""

    def __init__(self) -> None:
        self._files: Dict[str, Optional[ElfSymbols]] = {}
        self._maps: Dict[int, List[MapEntry]] = {}

    # --- kernel ------------------------------------------------------------------
    def kernel(self, address: int) -> Frame:
        """Symbolize one kernel address."""
        return kernel_symbols().lookup(address)

    def kernel_stack(self, ips: Sequence[int]) -> List[Frame]:
        """Symbolize kernel addresses (e.g. a stack-trace map value)."""
        return [self.kernel(ip) for ip in ips]

    # --- user --------------------------------------------------------------------
    def _mappings(self, pid: int) -> List[MapEntry]:
        maps = self._maps.get(pid)
        if maps is None:
            try:
                maps = [m for m in process_maps(pid) if "x" in m.perms]
            except OSError:
                maps = []
            self._maps[pid] = maps
        return maps

    def forget(self, pid: int) -> None:
        """Drop the cached mappings of ``pid`` (after it exec()ed or exited)."""
        self._maps.pop(pid, None)

    def _elf(self, path: str) -> Optional[ElfSymbols]:
        if path not in self._files:
            try:
                self._files[path] = ElfSymbols(path)
            except Exception:  # not an ELF file, unreadable, gone
                self._files[path] = None
        return self._files[path]

    def user(self, pid: int, address: int) -> Frame:
        """Symbolize one address of process ``pid``."""
        for m in self._mappings(pid):
            if m.start <= address < m.end:
                module = os.path.basename(m.path)
                path = (f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}" if m.deleted
                        else in_process_root(pid, m.path))
                elf = self._elf(path)
                if elf is None:
                    return Frame(address, None, address - m.start, module)
                file_off = address - m.start + m.offset
                vaddr = elf.image.offset_to_address(file_off)
                hit = elf.lookup(vaddr) if vaddr is not None else None
                if hit is None:
                    return Frame(address, None, file_off, module)
                return Frame(address, hit[0], hit[1], module)
        return Frame(address, None, 0, "")

    def user_stack(self, pid: int, ips: Sequence[int]) -> List[Frame]:
        """Symbolize addresses of process ``pid`` (a ``BPF_F_USER_STACK`` stack)."""
        return [self.user(pid, ip) for ip in ips]

    def stack(self, ips: Sequence[int], pid: Optional[int] = None) -> List[Frame]:
        """Kernel addresses (upper half) via kallsyms, the rest as ``pid``'s."""
        out = []
        for ip in ips:
            if ip >= 1 << 63:
                out.append(self.kernel(ip))
            elif pid:
                out.append(self.user(pid, ip))
            else:
                out.append(Frame(ip, None, 0, ""))
        return out
