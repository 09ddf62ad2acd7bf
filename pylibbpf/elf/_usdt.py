"""USDT probes (SystemTap ``.note.stapsdt`` notes) of a binary."""
from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

from .._record import record
from ._image import ElfImage

__all__ = ["USDTProbe", "usdt_probes"]

_NT_STAPSDT = 3


_FIELDS = ("provider", "name", "arguments", "address", "offset", "semaphore",
           "semaphore_offset", "file")
_set = object.__setattr__


@record(_FIELDS)
class USDTProbe:
    """One USDT probe site (a provider:name may have several)."""

    __slots__ = _FIELDS
    provider: str
    name: str
    #: the argument specification, e.g. ``"-4@%edi 8@%rsi"``
    arguments: str
    #: virtual address of the probe site
    address: int
    #: file offset of the probe site
    offset: Optional[int]
    #: virtual address of the semaphore (0: none)
    semaphore: int
    #: file offset of the semaphore (0: none)
    semaphore_offset: int
    file: str

    def __init__(self, provider: str, name: str, arguments: str, address: int,
                 offset: Optional[int], semaphore: int, semaphore_offset: int,
                 file: str) -> None:
        _set(self, "provider", provider)
        _set(self, "name", name)
        _set(self, "arguments", arguments)
        _set(self, "address", address)
        _set(self, "offset", offset)
        _set(self, "semaphore", semaphore)
        _set(self, "semaphore_offset", semaphore_offset)
        _set(self, "file", file)

    @property
    def full_name(self) -> str:
        return f"{self.provider}:{self.name}"

    def __str__(self) -> str:
        off = "?" if self.offset is None else f"{self.offset:#x}"
        sema = f", semaphore at {self.semaphore:#x}" if self.semaphore else ""
        return (f"{self.full_name} at {self.address:#x} (file offset {off}{sema}) "
                f"args: {self.arguments or '(none)'}")


def usdt_probes(image: ElfImage) -> List[USDTProbe]:
    """Every USDT probe site in ``image``, in note order."""
    notes = image.notes(".note.stapsdt")
    if not notes:
        return []
    base_sec = image.section(".stapsdt.base")
    base_addr = base_sec.addr if base_sec is not None else 0
    word = 8 if image.elfclass == 64 else 4
    fmt = ("<" if image.little_endian else ">") + ("QQQ" if word == 8 else "III")
    out = []
    for owner, ntype, desc in notes:
        if owner != "stapsdt" or ntype != _NT_STAPSDT or len(desc) < 3 * word:
            continue
        pc, base, sema = struct.unpack_from(fmt, desc, 0)
        strings = desc[3 * word:].split(b"\0")
        if len(strings) < 2:
            continue
        provider = strings[0].decode("utf-8", "replace")
        name = strings[1].decode("utf-8", "replace")
        args = strings[2].decode("utf-8", "replace") if len(strings) > 2 else ""
        if base_addr and base:
            pc += base_addr - base  # prelink moved the binary
        seg = image.segment_for(pc)
        offset = None if seg is None else pc - seg.vaddr + seg.offset
        sema_off = 0
        if sema:
            for sec in image.sections:
                if sec.addr and sec.addr <= sema < sec.addr + sec.size:
                    sema_off = sema - sec.addr + sec.offset
                    break
        out.append(USDTProbe(provider, name, args, pc, offset, sema, sema_off, image.path))
    return out
