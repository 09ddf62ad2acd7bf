#!/usr/bin/env python3
"""Structure-aware fuzzer: BPF objects and ordinary ELF files, mutated where
pylibbpf's parsers look (not at random bytes).

BPF objects (``*.bpf.o`` seeds): BTF type records (kind, vlen, sizes, type
ids, array counts, member offsets, string offsets), the BTF header, ``.BTF.ext``
func/line info records, relocation entries, the ``.maps`` definitions (the
BTF arrays that carry type/max_entries/key_size/value_size), the symbol table.
Each input is opened, its programs listed, its maps' key/value types decoded,
its globals (``.rodata``/``.data``/``.bss``) read, and (sometimes) loaded.

Ordinary ELF files (other seeds): ``.dynsym``/``.symtab`` entries, the string
tables' offsets, ``.gnu.version``/``.gnu.version_d``/``.gnu.version_r`` records,
``.gnu.hash``/``.hash`` headers and section links, read through
:func:`pylibbpf.elf.functions`, ``symbol_index`` and ``resolve``, and the
multi-uprobe resolution (``symbol_offsets``, every name in C at once) against
``resolve`` name by name (a different offset is a mismatch).

Inputs run in worker child processes with an address-space limit
(``--memory``, RLIMIT_AS) and a per-input time limit (``--hang``). Crashes
(signals), hangs, memory blow-ups (MemoryError, or peak RSS growing by more
than ``--rss`` MiB on one input) and escapes (any exception that is not a
``pylibbpf.BPFError``) and mismatches are failures; each saves its input under ``--out``.

    python fuzz/fuzz_structured.py --seconds 600 tests/.build/*.bpf.o /usr/bin/true

Prints one JSON line: inputs tried, crashes, hangs, escapes, memory, mismatches, saved.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_objects import MAP_BYTES_CAP, cap_maps, mutate as byte_mutate  # noqa: E402

HUGE32 = [0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF,
          0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x01000000, 0x00100000, 0x40000000]

# --- ELF layout (64-bit little-endian, what clang and gcc emit here) ----------

Section = Tuple[int, str, int, int, int, int, int, int]  # hdr, name, type, off, size, link, info, entsize


def sections(data: bytes) -> List[Section]:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    if shentsize != 64 or shoff + shnum * 64 > len(data):
        return []
    raw = []
    for i in range(shnum):
        h = shoff + i * 64
        name, typ, _fl, _addr, off, size, link, info, _al, ent = \
            struct.unpack_from("<IIQQQQIIQQ", data, h)
        raw.append((h, name, typ, off, size, link, info, ent))
    strs = b""
    if shstrndx < len(raw):
        _, _, _, o, s, _, _, _ = raw[shstrndx]
        strs = data[o:o + s]
    out = []
    for h, name, typ, off, size, link, info, ent in raw:
        end = strs.find(b"\0", name)
        nm = strs[name:end].decode("latin-1") if 0 <= name < len(strs) and end >= 0 else ""
        out.append((h, nm, typ, off, size, link, info, ent))
    return out


def by_name(secs: List[Section], name: str) -> Optional[Section]:
    for s in secs:
        if s[1] == name:
            return s
    return None


class Fields:
    """Candidate (offset, width, kind) fields of an input, found by walking its structures."""

    def __init__(self) -> None:
        self.fields: Dict[str, List[Tuple[int, int]]] = {}

    def add(self, group: str, off: int, width: int = 4) -> None:
        self.fields.setdefault(group, []).append((off, width))


def btf_fields(data: bytes, base: int, size: int, f: Fields) -> Dict[str, int]:
    """Walk the BTF at file offset ``base``: the header and every type record."""
    meta = {"types": 0, "str_len": 0}
    if size < 24:
        return meta
    magic, _ver, _fl, hdr_len = struct.unpack_from("<HBBI", data, base)
    if magic != 0xEB9F or hdr_len < 24:
        return meta
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, base + 8)
    for i in range(4):
        f.add("btf_hdr", base + 8 + 4 * i)
    meta["str_len"] = str_len
    pos = base + hdr_len + type_off
    end = min(pos + type_len, base + size, len(data))
    tid = 0
    while pos + 12 <= end:
        tid += 1
        name_off, info, size_type = struct.unpack_from("<III", data, pos)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        f.add("btf_name", pos)
        f.add("btf_info", pos + 4)
        f.add("btf_size_type", pos + 8)
        f.add(f"btf_kind{kind}", pos + 8)
        p = pos + 12
        if kind == 1:      # INT: encoding/offset/bits
            f.add("btf_int", p)
            p += 4
        elif kind == 3:    # ARRAY: elem_type, index_type, nelems
            f.add("btf_array_type", p)
            f.add("btf_array_type", p + 4)
            f.add("btf_nelems", p + 8)
            p += 12
        elif kind in (4, 5):  # STRUCT/UNION members: name, type, offset
            for k in range(vlen):
                f.add("btf_name", p + 12 * k)
                f.add("btf_member_type", p + 12 * k + 4)
                f.add("btf_member_off", p + 12 * k + 8)
            p += 12 * vlen
        elif kind == 6:    # ENUM
            for k in range(vlen):
                f.add("btf_name", p + 8 * k)
                f.add("btf_enum_val", p + 8 * k + 4)
            p += 8 * vlen
        elif kind == 13:   # FUNC_PROTO params: name, type
            for k in range(vlen):
                f.add("btf_name", p + 8 * k)
                f.add("btf_member_type", p + 8 * k + 4)
            p += 8 * vlen
        elif kind == 14:   # VAR linkage
            f.add("btf_var", p)
            p += 4
        elif kind == 15:   # DATASEC vars: type, offset, size
            for k in range(vlen):
                f.add("btf_member_type", p + 12 * k)
                f.add("btf_datasec_off", p + 12 * k + 4)
                f.add("btf_datasec_size", p + 12 * k + 8)
            p += 12 * vlen
        elif kind == 17:   # DECL_TAG component_idx
            f.add("btf_var", p)
            p += 4
        elif kind == 19:   # ENUM64
            for k in range(vlen):
                f.add("btf_name", p + 12 * k)
                f.add("btf_enum_val", p + 12 * k + 4)
                f.add("btf_enum_val", p + 12 * k + 8)
            p += 12 * vlen
        pos = p
    meta["types"] = tid
    return meta


def map_def_fields(data: bytes, base: int, size: int, f: Fields) -> None:
    """The ``.maps`` definitions: arrays whose element count is a map attribute
    (``__uint(max_entries, N)`` is ``int (*max_entries)[N]``), found as every
    ARRAY nelems that is a small-ish number reached through a PTR member."""
    # without resolving the graph, the array records right after a PTR are the
    # usual clang layout; every array count is a candidate, weighted by kind
    for off, w in list(f.fields.get("btf_nelems", [])):
        f.add("map_def", off, w)


def btf_ext_fields(data: bytes, base: int, size: int, f: Fields) -> None:
    if size < 32:
        return
    magic, _v, _fl, hdr_len = struct.unpack_from("<HBBI", data, base)
    if magic != 0xEB9F:
        return
    fi_off, fi_len, li_off, li_len = struct.unpack_from("<IIII", data, base + 8)
    for i in range(4):
        f.add("ext_hdr", base + 8 + 4 * i)
    if hdr_len >= 32:
        f.add("ext_hdr", base + 24)
        f.add("ext_hdr", base + 28)
    for off, length, group in ((fi_off, fi_len, "ext_func"), (li_off, li_len, "ext_line")):
        start = base + hdr_len + off
        end = min(start + length, base + size, len(data))
        if start + 4 > end:
            continue
        rec, = struct.unpack_from("<I", data, start)
        f.add(group + "_recsize", start)
        p = start + 4
        while p + 8 <= end and rec and rec < 64:
            _sec, num = struct.unpack_from("<II", data, p)
            f.add("ext_secname", p)
            f.add(group + "_num", p + 4)
            p += 8
            for k in range(num):
                r = p + k * rec
                if r + rec > end:
                    break
                for w in range(0, rec, 4):
                    f.add(group, r + w)
            p += num * rec


def rel_fields(data: bytes, sec: Section, f: Fields) -> None:
    _h, _n, _t, off, size, _l, _i, _e = sec
    for r in range(off, min(off + size, len(data)) - 15, 16):
        f.add("rel_offset", r, 8)
        f.add("rel_sym", r + 12)
        f.add("rel_type", r + 8)


def sym_fields(data: bytes, sec: Section, f: Fields, group: str) -> None:
    _h, _n, _t, off, size, _l, _i, _e = sec
    for r in range(off, min(off + size, len(data)) - 23, 24):
        f.add(group + "_name", r)
        f.add(group + "_info", r + 4, 1)
        f.add(group + "_shndx", r + 6, 2)
        f.add(group + "_value", r + 8, 8)
        f.add(group + "_size", r + 16, 8)


def version_fields(data: bytes, sec: Section, f: Fields) -> None:
    _h, _n, typ, off, size, _l, info, _e = sec
    end = min(off + size, len(data))
    if typ == 0x6FFFFFFF:       # versym: u16 per symbol
        for p in range(off, end - 1, 2):
            f.add("versym", p, 2)
    elif typ == 0x6FFFFFFD:     # verdef
        p = off
        for _ in range(64):
            if p + 20 > end:
                break
            f.add("verdef", p + 2, 2)       # flags
            f.add("verdef", p + 4, 2)       # ndx
            f.add("verdef", p + 6, 2)       # cnt
            f.add("verdef", p + 12)         # aux
            f.add("verdef", p + 16)         # next
            aux, nxt = struct.unpack_from("<II", data, p + 12)
            if p + aux + 8 <= end:
                f.add("verdef", p + aux)    # vda_name
                f.add("verdef", p + aux + 4)
            if not nxt:
                break
            p += nxt
    elif typ == 0x6FFFFFFE:     # verneed
        p = off
        for _ in range(64):
            if p + 16 > end:
                break
            cnt, = struct.unpack_from("<H", data, p + 2)
            f.add("verneed", p + 2, 2)
            f.add("verneed", p + 8)
            f.add("verneed", p + 12)
            aux, nxt = struct.unpack_from("<II", data, p + 8)
            a = p + aux
            for _j in range(min(cnt, 64)):
                if a + 16 > end:
                    break
                for w in (6, 8, 12):
                    f.add("verneed", a + w, 2 if w == 6 else 4)
                an, = struct.unpack_from("<I", data, a + 12)
                if not an:
                    break
                a += an
            if not nxt:
                break
            p += nxt


def hash_fields(data: bytes, sec: Section, f: Fields) -> None:
    """The header words of .hash / .gnu.hash (counts, symbol offset, bloom size),
    and words spread over their buckets and chains (indexes a lookup follows)."""
    _h, _n, _t, off, size, _l, _i, _e = sec
    for w in range(0, min(16, size), 4):
        if off + w + 4 <= len(data):
            f.add("hash", off + w)
    step = max(4, (size // 24) & ~3)
    for w in range(16, size - 3, step):
        if off + w + 4 <= len(data):
            f.add("hash_word", off + w)


def analyse(data: bytes) -> Tuple[Fields, List[Section], Dict[str, int]]:
    f = Fields()
    secs = sections(data)
    meta: Dict[str, int] = {"types": 0, "str_len": 0}
    for s in secs:
        h, name, typ, off, size, link, info, ent = s
        f.add("shdr_link", h + 40)
        f.add("shdr_info", h + 44)
        f.add("shdr_size", h + 32, 8)
        f.add("shdr_offset", h + 24, 8)
        f.add("shdr_entsize", h + 56, 8)
        if off + size > len(data) and typ != 8:
            continue
        if name == ".BTF":
            meta = btf_fields(data, off, size, f)
        elif name == ".BTF.ext":
            btf_ext_fields(data, off, size, f)
        elif typ in (4, 9):  # RELA / REL
            rel_fields(data, s, f)
        elif typ == 2:
            sym_fields(data, s, f, "sym")
        elif typ == 11:
            sym_fields(data, s, f, "dynsym")
        elif typ in (0x6FFFFFFF, 0x6FFFFFFD, 0x6FFFFFFE):
            version_fields(data, s, f)
        elif typ in (5, 0x6FFFFFF6):
            hash_fields(data, s, f)
    bt = by_name(secs, ".BTF")
    if bt is not None:
        map_def_fields(data, bt[3], bt[4], f)
    return f, secs, meta


def value_for(rng: random.Random, group: str, old: int, width: int, meta: Dict[str, int],
              data_len: int) -> int:
    mask = (1 << (8 * width)) - 1
    r = rng.random()
    ntypes = meta.get("types", 0)
    str_len = meta.get("str_len", 0)
    if group in ("btf_size_type", "btf_member_type", "btf_array_type") or \
            group.startswith("btf_kind"):
        choices = [0, ntypes, ntypes + 1, ntypes - 1 if ntypes else 0,
                   rng.randrange(ntypes + 1) if ntypes else 0, old + 1, old - 1 if old else 0,
                   0xFFFFFFFF, 0x7FFFFFFF, 1 << 30, 1 << 20, 1 << 24, 0x10000]
    elif group == "btf_nelems" or group == "map_def":
        choices = [0, 1, old * 2, old + 1, 1 << 20, 1 << 24, 1 << 28, 1 << 31, 0xFFFFFFFF,
                   0x7FFFFFFF, 0x40000000, 0x10000000, 4096, 33]
    elif group == "btf_name" or group == "ext_secname":
        choices = [0, str_len, str_len - 1 if str_len else 0, str_len + 1, 0xFFFFFFFF,
                   rng.randrange(str_len + 1), old + 1]
    elif group == "btf_info":
        kind = rng.randrange(0, 21)
        vlen = rng.choice([0, 1, 2, old & 0xFFFF, (old & 0xFFFF) + 1, 0xFFFF])
        kflag = rng.randrange(2)
        return (kflag << 31) | (kind << 24) | vlen if r < 0.5 else \
            (old & ~0xFFFF) | vlen if r < 0.8 else (old & 0x80FFFFFF) | (kind << 24)
    elif group == "btf_member_off":
        choices = [0, 1, 3, old + 8, old + 1, 0xFFFFFFFF, 0x80000000 | old, (1 << 24) | old,
                   (8 << 24) | old, old * 8, 0x00FFFFFF]
    elif group in ("btf_datasec_off", "btf_datasec_size"):
        choices = [0, 1, old + 1, old + 4096, 0xFFFFFFFF, 0x7FFFFFFF, old * 2, 1 << 30]
    elif group.startswith("sym") or group.startswith("dynsym"):
        choices = [0, 1, old + 1, old ^ 1, mask, mask - 1, 0xFF, 0xFFF1, 0xFFF2, 0xFF00,
                   0x12, 0x1A, data_len, rng.randrange(mask + 1)]
    elif group.startswith("rel"):
        choices = [0, 1, old + 1, old + 8, old ^ 1, mask, mask >> 1, old << 1, 0xFFFF]
    elif group.startswith("shdr"):
        choices = [0, 1, old + 1, old - 1 if old else 0, data_len, data_len + 1, mask,
                   mask >> 1, 1 << 40, rng.randrange(64)]
    elif group == "hash_word":  # a bucket head or chain link: an index, or a chain end bit
        choices = [0, 1, old + 1, old - 1 if old else 0, old ^ 1, old | 1, old & ~1, mask,
                   mask - 1, 0xFFFF, 0x10000, data_len, rng.randrange(mask + 1)]
    else:
        choices = [0, 1, 2, old + 1, old - 1 if old else 0, mask, mask >> 1, 16, 20, 24,
                   old * 2, data_len, rng.randrange(mask + 1)] + HUGE32[:6]
    return rng.choice(choices) & mask


BPF_GROUPS = ["btf_name", "btf_info", "btf_size_type", "btf_nelems", "btf_array_type",
              "btf_member_type", "btf_member_off", "btf_enum_val", "btf_var", "btf_int",
              "btf_datasec_off", "btf_datasec_size", "btf_hdr", "btf_kind3", "btf_kind4",
              "btf_kind1", "map_def", "ext_hdr", "ext_func", "ext_line", "ext_func_recsize",
              "ext_line_recsize", "ext_func_num", "ext_line_num", "ext_secname",
              "rel_offset", "rel_sym", "rel_type", "sym_name", "sym_info", "sym_shndx",
              "sym_value", "sym_size", "shdr_link", "shdr_size", "shdr_info"]
ELF_GROUPS = ["dynsym_name", "dynsym_info", "dynsym_shndx", "dynsym_value", "dynsym_size",
              "sym_name", "sym_info", "sym_shndx", "sym_value", "sym_size", "versym",
              "verdef", "verneed", "hash", "hash_word", "shdr_link", "shdr_info", "shdr_size",
              "shdr_offset", "shdr_entsize"]


def structured_mutate(rng: random.Random, seed: bytes, analysis: Tuple[Fields, List[Section],
                                                                          Dict[str, int]],
                      groups: List[str]) -> bytes:
    f, _secs, meta = analysis
    data = bytearray(seed)
    avail = [g for g in groups if f.fields.get(g)]
    if not avail or rng.random() < 0.08:
        return byte_mutate(rng, seed)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5])):
        g = rng.choice(avail)
        off, width = rng.choice(f.fields[g])
        if off + width > len(data):
            continue
        old = int.from_bytes(data[off:off + width], "little")
        new = value_for(rng, g, old, width, meta, len(data))
        data[off:off + width] = new.to_bytes(width, "little")
    return bytes(data)


# --- the worker -----------------------------------------------------------------

def _try(out: Callable[[str], None], what: str, fn: Callable[[], object]) -> None:
    import pylibbpf

    try:
        fn()
    except pylibbpf.BPFError:
        pass
    except MemoryError as e:
        out(f"memory {what}: MemoryError {e}")
    except Exception as e:  # an escape
        out(f"escape {what}: {type(e).__name__}: {e}")


def exercise_object(data: bytes, rng: random.Random, out: Callable[[str], None],
                    load_ratio: float) -> None:
    import pylibbpf

    def run() -> None:
        with pylibbpf.Object(data, name="fuzz") as obj:
            def progs() -> None:
                for p in obj.programs.values():
                    (p.name, p.type, p.section, p.expected_attach_type)

            def maps() -> None:
                for m in obj.maps.values():
                    _try(out, "map.type", lambda: m.type)
                    _try(out, "map.key_type", lambda: m.key_type)
                    _try(out, "map.value_type", lambda: m.value_type)

            def globals_(sfx: str = "") -> None:
                for m in list(obj.maps.values()):
                    name = m.name
                    sec = name[name.find("."):] if "." in name else ""
                    if sec.startswith((".rodata", ".data", ".bss")):
                        _try(out, f"section{sfx}", lambda: obj.section(sec).to_dict())

            _try(out, "programs", progs)
            _try(out, "maps", maps)
            _try(out, "globals", globals_)
            if rng.random() < load_ratio:
                cap_maps(obj)
                obj.load()
                _try(out, "globals after load", lambda: globals_(" after load"))
                _try(out, "maps after load", maps)
    _try(out, "object", run)


def symbol_offsets_all(path: str, names: List[str]) -> object:
    from pylibbpf.elf._resolve import symbol_offsets

    return symbol_offsets(path, names)


_AGE = 0


def exercise_elf(data: bytes, path: str, names: List[str], out: Callable[[str], None]) -> None:
    from pylibbpf import elf

    with open(path, "wb") as fh:
        fh.write(data)
    # an mtime of its own in the past: the offsets cache records the file (a file
    # modified moments ago gets no entry) and never takes one input for another
    global _AGE
    _AGE += 1
    t = time.time_ns() - 86400 * 10**9 + _AGE * 1000
    os.utime(path, ns=(t, t))
    elf.clear_cache()
    _try(out, "elf.functions", lambda: elf.functions(path))
    _try(out, "elf.symbol_index", lambda: [elf.symbol_index(path).lookup(n) for n in names])
    for n in names[:3]:
        _try(out, "elf.resolve", lambda: elf.resolve(path, n))

    def offsets_as_resolve() -> None:
        # the multi-uprobe resolution (names in C at once) against resolve(), name
        # by name: for the names resolve() finds, the same offsets
        import pylibbpf
        from pylibbpf.elf._resolve import symbol_offsets

        want = {}
        for n in names:
            try:
                want[n] = elf.resolve(path, n).offset
            except pylibbpf.BPFError:
                pass
        good = [n for n in names if n in want]
        if not good:
            return
        elf.clear_cache()
        for n, off in zip(good, symbol_offsets(path, good)[1]):
            if off != want[n]:
                out(f"mismatch elf.symbol_offsets: {n!r} at {off:#x}, resolve() says "
                    f"{want[n]:#x}")
                return
        # what the offsets cache recorded for them (the attach's path), likewise
        from pylibbpf.attach.uprobe_multi import cached_offsets

        for n in good:
            got = cached_offsets(os.path.abspath(path), [n])
            if got is not None and got[0] != want[n]:
                out(f"mismatch offsets cache: {n!r} at {got[0]:#x}, resolve() says "
                    f"{want[n]:#x}")
                return
    _try(out, "elf.symbol_offsets", lambda: symbol_offsets_all(path, names))
    _try(out, "elf.symbol_offsets", offsets_as_resolve)
    _try(out, "elf.functions pattern", lambda: elf.functions(path, "lib_*"))


def seed_symbols(data: bytes) -> List[str]:
    names = []
    for s in sections(data):
        if s[2] in (2, 11):
            link = sections(data)[s[5]] if s[5] < len(sections(data)) else None
            if link is None:
                continue
            strtab = data[link[3]:link[3] + link[4]]
            for r in range(s[3], min(s[3] + s[4], len(data)) - 23, 24):
                nm, info = struct.unpack_from("<IB", data, r)
                if info & 0xF == 2:
                    end = strtab.find(b"\0", nm)
                    if end > nm:
                        names.append(strtab[nm:end].decode("latin-1"))
    return sorted(set(names))[:8] or ["main"]


def is_bpf(data: bytes) -> bool:
    return len(data) > 20 and struct.unpack_from("<H", data, 18)[0] == 247  # EM_BPF


def child(seed_paths: List[str], rng_seed: int, current: str, memory_mib: int, rss_mib: int,
          load_ratio: float, stop_after: int = 0, only: Optional[List[int]] = None,
          elf_share: float = 0.3) -> None:
    if memory_mib:
        lim = memory_mib << 20
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    import pylibbpf  # noqa: F401  (before the loop: its import is not an input's cost)
    import pylibbpf.elf  # noqa: F401

    seeds = [Path(p).read_bytes() for p in seed_paths]
    analyses = [analyse(s) for s in seeds]
    syms = [seed_symbols(s) if not is_bpf(s) else [] for s in seeds]
    rng = random.Random(rng_seed)
    tmpdir = tempfile.mkdtemp(prefix="plb-fuzz-")
    elf_path = os.path.join(tmpdir, "target.so")
    n = 0

    def say(line: str) -> None:
        sys.stdout.write(line.replace("\n", " ") + "\n")
        sys.stdout.flush()

    def fail(line: str) -> None:
        # the input itself, by number: the parent reads behind, and --current
        # may already hold a later input by then
        failed = f"{current}.{n}"
        if not os.path.exists(failed):
            with open(failed, "wb") as fh:
                fh.write(data)
        say(line)

    try:
        bpf_seeds = [i for i, sd in enumerate(seeds) if is_bpf(sd)]
        elf_seeds = [i for i, sd in enumerate(seeds) if not is_bpf(sd)]
        while not stop_after or n < stop_after:
            if bpf_seeds and elf_seeds:
                k = rng.choice(elf_seeds if rng.random() < elf_share else bpf_seeds)
            else:
                k = rng.randrange(len(seeds))
            bpf = is_bpf(seeds[k])
            data = structured_mutate(rng, seeds[k], analyses[k], BPF_GROUPS if bpf else ELF_GROUPS)
            n += 1
            if only is not None and n not in only:
                continue
            with open(current, "wb") as fh:
                fh.write(data)
            say(f"{n} {'bpf' if bpf else 'elf'}")
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
            if bpf:  # the load decision is per input, so --only replays it
                exercise_object(data, random.Random(rng_seed * 1000003 + n), fail, load_ratio)
            else:
                exercise_elf(data, elf_path, syms[k], fail)
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10) - before
            if rss_mib and grown > rss_mib:
                fail(f"memory peak RSS grew by {grown} MiB")
    finally:
        for p in Path(tmpdir).iterdir():
            p.unlink()
        os.rmdir(tmpdir)


def replay(paths: List[str], memory_mib: int) -> List[str]:
    """Run each file as one input (BPF objects loaded too); the failures found."""
    if memory_mib:
        lim = memory_mib << 20
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    failures: List[str] = []
    tmpdir = tempfile.mkdtemp(prefix="plb-replay-")
    try:
        for p in paths:
            data = Path(p).read_bytes()

            def say(line: str, p: str = p) -> None:
                failures.append(f"{os.path.basename(p)}: {line}")
            if is_bpf(data):
                exercise_object(data, random.Random(0), say, 1.0)
            else:
                exercise_elf(data, os.path.join(tmpdir, "target.so"),
                             seed_symbols(data), say)
    finally:
        for q in Path(tmpdir).iterdir():
            q.unlink()
        os.rmdir(tmpdir)
    return failures


def run(seconds: float, seed_paths: List[str], out_dir: Path, hang: float, base_seed: int,
        memory_mib: int, rss_mib: int, load_ratio: float, nice: int,
        elf_share: float = 0.3, max_inputs: int = 0, progress: float = 0) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    current = out_dir / f".current-{os.getpid()}"
    stats: dict = {"inputs": 0, "bpf": 0, "elf": 0, "crashes": 0, "hangs": 0, "escapes": 0,
                   "memory": 0, "mismatches": 0, "kinds": {}, "saved": []}
    seen: Dict[str, int] = {}
    deadline = time.monotonic() + seconds
    worker = 0
    next_report = time.monotonic() + progress

    def report(done: int) -> None:
        # one JSON line on stderr: how far a long run got (stdout keeps the summary)
        now = {k: v for k, v in stats.items() if k != "saved"}
        now["inputs"] = done
        now["elapsed"] = round(time.monotonic() - deadline + seconds)
        sys.stderr.write("progress " + json.dumps(now) + "\n")
        sys.stderr.flush()

    def save(kind: str, tag: str, note: str, ext: str) -> None:
        # a few saved inputs per kind of failure (what, exception type): escapes repeat
        sig = ":".join(note.split(":")[:2]) if note else kind
        seen[sig] = seen.get(sig, 0) + 1
        stats["kinds"][sig] = seen[sig]
        if seen[sig] > 2:
            return
        saved = out_dir / f"{kind}-{tag}{ext}"
        failed = Path(f"{current}.{tag.rsplit('-', 1)[1]}")
        saved.write_bytes((failed if failed.exists() else current).read_bytes())
        stats["saved"].append(f"{saved}: {note}" if note else str(saved))

    while time.monotonic() < deadline:
        worker += 1
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(base_seed + worker),
               "--current", str(current), "--memory", str(memory_mib), "--rss", str(rss_mib),
               "--load-ratio", str(load_ratio), "--elf-share", str(elf_share), *seed_paths]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)
        assert proc.stdout is not None
        last, kind_now = 0, "bpf"
        reason = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            window = hang if last else max(hang, 30.0)
            ready, _, _ = select.select([proc.stdout], [], [], min(window, left))
            if not ready:
                if time.monotonic() < deadline:
                    reason = "hang"
                break
            line = proc.stdout.readline()
            if not line:
                reason = "crash"
                break
            ext = ".bpf.o" if kind_now == "bpf" else ".elf"
            if line.startswith("escape"):
                stats["escapes"] += 1
                save("escape", f"{base_seed + worker}-{last}", line.strip(), ext)
            elif line.startswith("memory"):
                stats["memory"] += 1
                save("memory", f"{base_seed + worker}-{last}", line.strip(), ext)
            elif line.startswith("mismatch"):
                stats["mismatches"] += 1
                save("mismatch", f"{base_seed + worker}-{last}", line.strip(), ext)
            else:
                num, kind_now = line.split()
                last = int(num)
                stats[kind_now] += 1
                if progress and time.monotonic() >= next_report:
                    next_report = time.monotonic() + progress
                    report(stats["inputs"] + last)
                if max_inputs and stats["inputs"] + last >= max_inputs:
                    reason = "enough"
                    break
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for left in out_dir.glob(current.name + ".*"):
            left.unlink()
        stats["inputs"] += last
        ext = ".bpf.o" if kind_now == "bpf" else ".elf"
        if reason == "hang" or (reason == "crash" and code != 0):
            kind = reason if reason == "hang" else f"crash-sig{-code}" if code < 0 else "exit"
            stats["hangs" if reason == "hang" else "crashes"] += 1
            save(kind, f"{base_seed + worker}-{last}", "", ext)
        elif not reason or reason == "enough":
            break
    current.unlink(missing_ok=True)
    for left in out_dir.glob(current.name + ".*"):
        left.unlink()
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="+", help="BPF objects and ordinary ELF files to mutate")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--hang", type=float, default=3.0, help="seconds one input may take")
    ap.add_argument("--memory", type=int, default=1024, help="address-space limit, MiB")
    ap.add_argument("--rss", type=int, default=256,
                    help="peak RSS growth on one input that counts as a blow-up, MiB")
    ap.add_argument("--load-ratio", type=float, default=0.25,
                    help="share of BPF inputs also loaded into the kernel")
    ap.add_argument("--elf-share", type=float, default=0.3,
                    help="share of inputs mutated from the ELF (non-BPF) seeds")
    ap.add_argument("--nice", type=int, default=0, help="niceness of the workers")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "findings")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs", type=int, default=0,
                    help="stop after this many inputs (and --seconds at the latest)")
    ap.add_argument("--progress", type=float, default=0,
                    help="print a progress line (JSON) on stderr every this many seconds")
    ap.add_argument("--child", type=int, help="replay worker N's inputs in this process")
    ap.add_argument("--stop-after", type=int, default=0, help="with --child: inputs to run")
    ap.add_argument("--only", help="with --child: run only these input numbers (comma-separated)")
    ap.add_argument("--current", help=argparse.SUPPRESS)
    ap.add_argument("--replay", action="store_true",
                    help="run each file as it is (a saved finding), print what fails")
    args = ap.parse_args()
    if args.replay:
        failures = replay(args.seeds, args.memory)
        print(json.dumps({"inputs": len(args.seeds), "failures": failures}))
        return 1 if failures else 0
    if args.child is not None:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        only = [int(x) for x in args.only.split(",")] if args.only else None
        child(args.seeds, args.child, args.current or "/dev/null", args.memory, args.rss,
              args.load_ratio, args.stop_after, only, args.elf_share)
        return 0
    stats = run(args.seconds, args.seeds, args.out, args.hang, args.seed * 1000, args.memory,
                args.rss, args.load_ratio, args.nice, args.elf_share, args.inputs,
                args.progress)
    print(json.dumps(stats))
    bad = (stats["crashes"] or stats["hangs"] or stats["escapes"] or stats["memory"]
           or stats["mismatches"])
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
