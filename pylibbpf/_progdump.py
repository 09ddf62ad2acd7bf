"""What the kernel gives back about a loaded program's code: its translated
("xlated") instructions, its JITed machine code, its maps, functions and BTF
line info (``BPF_OBJ_GET_INFO_BY_FD`` with buffers), and the listings built
from them (:meth:`Program.disassemble`, :meth:`Program.jited`)."""
from __future__ import annotations

import errno as _errno
import os
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from ._ffi import ffi, lib, to_str
from .disasm import (Disassembly, JitedCode, JitedFunction, JitedInstruction, SourceLine,
                     Symbols, disassemble, needed_addresses)
from .errors import BPFError, check_ret

__all__ = ["ProgramCode", "read_code", "capstone_missing", "disassembly", "jited"]


@dataclass
class ProgramCode:
    """The raw dump of one loaded program."""

    name: str
    xlated: bytes
    jited: bytes
    map_ids: List[int]
    btf_id: int
    #: (insn_off, file_name_off, line_off, line_col) per line info record
    line_info: List[Tuple[int, int, int, int]]
    #: address in the JITed image of each line info record
    jited_line_info: List[int]
    #: (insn_off, type_id) per function
    func_info: List[Tuple[int, int]]
    #: address and length of each JITed function
    jited_ksyms: List[int]
    jited_func_lens: List[int]


def _u64(buf: Any) -> int:
    return int(ffi.cast("uintptr_t", buf))


def read_code(fd: int, what: str) -> ProgramCode:
    """Ask the kernel for the code of program ``fd``: a first call for the sizes,
    a second one with buffers."""
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
    first = ffi.new("struct bpf_prog_info *")
    check_ret(lib.bpf_prog_get_info_by_fd(fd, first, size), f"info of {what}")
    info = ffi.new("struct bpf_prog_info *")
    keep: List[Any] = []

    def buf(n: int, rec: int = 1) -> Any:
        b = ffi.new("char[]", max(n * rec, 1))
        keep.append(b)
        return b

    nx, nj = int(first.xlated_prog_len), int(first.jited_prog_len)
    if not nx:
        # what the kernel answers a caller without CAP_BPF (or for an offloaded program)
        raise BPFError(_errno.EPERM, f"code of {what}: the kernel gives no instructions "
                                     "(reading them needs CAP_BPF or CAP_SYS_ADMIN)")
    nmaps, nli, nfi = int(first.nr_map_ids), int(first.nr_line_info), int(first.nr_func_info)
    njli, nks, nfl = (int(first.nr_jited_line_info), int(first.nr_jited_ksyms),
                      int(first.nr_jited_func_lens))
    li_rec, fi_rec = int(first.line_info_rec_size), int(first.func_info_rec_size)
    jli_rec = int(first.jited_line_info_rec_size)
    xb, jb, mb = buf(nx), buf(nj), buf(nmaps, 4)
    lib_, fib, jlib = buf(nli, li_rec), buf(nfi, fi_rec), buf(njli, jli_rec)
    ksb, flb = buf(nks, 8), buf(nfl, 4)
    info.xlated_prog_len, info.xlated_prog_insns = nx, _u64(xb)
    info.jited_prog_len, info.jited_prog_insns = nj, _u64(jb)
    info.nr_map_ids, info.map_ids = nmaps, _u64(mb)
    info.nr_line_info, info.line_info, info.line_info_rec_size = nli, _u64(lib_), li_rec
    info.nr_func_info, info.func_info, info.func_info_rec_size = nfi, _u64(fib), fi_rec
    info.nr_jited_line_info, info.jited_line_info = njli, _u64(jlib)
    info.jited_line_info_rec_size = jli_rec
    info.nr_jited_ksyms, info.jited_ksyms = nks, _u64(ksb)
    info.nr_jited_func_lens, info.jited_func_lens = nfl, _u64(flb)
    size[0] = ffi.sizeof("struct bpf_prog_info")
    check_ret(lib.bpf_prog_get_info_by_fd(fd, info, size), f"code of {what}")

    def raw(b: Any, n: int) -> bytes:
        return bytes(ffi.buffer(b, n))

    nx = min(nx, int(info.xlated_prog_len))
    nj = min(nj, int(info.jited_prog_len))
    lines = []
    if nli and li_rec >= 16 and int(info.nr_line_info) == nli:
        data = raw(lib_, nli * li_rec)
        lines = [struct.unpack_from("<IIII", data, i * li_rec) for i in range(nli)]
    funcs = []
    if nfi and fi_rec >= 8 and int(info.nr_func_info) == nfi:
        data = raw(fib, nfi * fi_rec)
        funcs = [struct.unpack_from("<II", data, i * fi_rec) for i in range(nfi)]
    jlines = []
    if njli and jli_rec >= 8:
        data = raw(jlib, njli * jli_rec)
        jlines = [struct.unpack_from("<Q", data, i * jli_rec)[0] for i in range(njli)]
    nmaps = min(nmaps, int(info.nr_map_ids))
    return ProgramCode(
        name=to_str(first.name), xlated=raw(xb, nx), jited=raw(jb, nj),
        map_ids=list(struct.unpack(f"<{nmaps}I", raw(mb, nmaps * 4))) if nmaps else [],
        btf_id=int(first.btf_id), line_info=lines, jited_line_info=jlines, func_info=funcs,
        jited_ksyms=list(struct.unpack(f"<{nks}Q", raw(ksb, nks * 8))) if nks else [],
        jited_func_lens=list(struct.unpack(f"<{nfl}I", raw(flb, nfl * 4))) if nfl else [])


def _datasec_vars(btf: Any, type_id: int) -> List[Tuple[int, int, str]]:
    """(offset, size, name) of each variable of a DATASEC type (empty: not one)."""
    try:
        _, vars_ = btf.datasec_by_id(type_id)
    except Exception:
        return []
    return sorted((v.offset, v.size, n) for n, v in vars_.items())


def map_names(map_ids: List[int]) -> Tuple[Dict[int, str],
                                           Dict[Union[int, str], List[Tuple[int, int, str]]]]:
    """For the maps a program uses (those still there): id -> name, and for global
    data (``.bss``, ``.rodata`` …) id -> its variables (offset, size, name)."""
    from .btf import BTF

    names: Dict[int, str] = {}
    values: Dict[Union[int, str], List[Tuple[int, int, str]]] = {}
    for mid in map_ids:
        mfd = lib.bpf_map_get_fd_by_id(mid)
        if mfd < 0:
            continue
        try:
            info = ffi.new("struct bpf_map_info *")
            size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
            if lib.bpf_map_get_info_by_fd(mfd, info, size) != 0:
                continue
            names[mid] = to_str(info.name) or f"id:{mid}"
            if info.btf_id and info.btf_value_type_id and "." in names[mid]:
                try:
                    btf = BTF.from_kernel_id(int(info.btf_id))
                except BPFError:
                    continue
                try:
                    values[mid] = _datasec_vars(btf, int(info.btf_value_type_id))
                finally:
                    btf.close()
        finally:
            os.close(mfd)
    return names, values


class _ProgBTF:
    """The program's BTF, for function names and line text (None: none)."""

    def __init__(self, btf_id: int) -> None:
        self.ptr: Any = None
        if btf_id:
            ptr = lib.btf__load_from_kernel_by_id(btf_id)
            if ptr != ffi.NULL:
                self.ptr = ptr

    def string(self, off: int) -> str:
        if self.ptr is None:
            return ""
        s = lib.btf__name_by_offset(self.ptr, off)
        return "" if s == ffi.NULL else to_str(s)

    def type_name(self, type_id: int) -> str:
        if self.ptr is None:
            return ""
        info = ffi.new("struct pylibbpf_btf_info *")
        if lib.pylibbpf_btf_info(self.ptr, type_id, info) < 0 or info.name == ffi.NULL:
            return ""
        return to_str(info.name)

    def close(self) -> None:
        if self.ptr is not None:
            lib.btf__free(self.ptr)
            self.ptr = None


def _kernel_calls(xlated: bytes) -> Tuple[Optional[int], Dict[int, str]]:
    """``__bpf_call_base`` and the names of the kernel functions ``xlated`` calls
    (empty when kallsyms is unreadable)."""
    offsets = needed_addresses(xlated)
    if not offsets:
        return None, {}
    try:
        with open("/proc/kallsyms") as f:
            text = f.read()
    except OSError:
        return None, {}
    at = text.find(" __bpf_call_base\n")
    if at < 0:
        return None, {}
    try:
        base = int(text[text.rfind("\n", 0, at) + 1:at].split(None, 1)[0], 16)
    except (ValueError, IndexError):
        return None, {}
    if not base:
        return None, {}  # addresses hidden (kptr_restrict)
    names: Dict[int, str] = {}
    for addr in {(base + o) & 0xFFFFFFFFFFFFFFFF for o in offsets}:
        key = f"\n{addr:016x} "
        pos = text.find(key)
        while pos >= 0:  # the first text symbol at that address
            end = text.find("\n", pos + 1)
            parts = text[pos + 1:end if end >= 0 else None].split(None, 3)
            if len(parts) >= 3 and parts[1] in "tTwW" and not parts[2].startswith("__pfx_"):
                names[addr] = parts[2]
                break
            pos = text.find(key, pos + 1)
    return base, names


def source_info(code: ProgramCode) -> Tuple[Dict[int, str], Dict[int, SourceLine],
                                            List[Tuple[int, SourceLine]]]:
    """(functions by insn index, source lines by insn index, (jited address, line))."""
    btf = _ProgBTF(code.btf_id)
    try:
        funcs = {off: btf.type_name(tid) for off, tid in code.func_info}
        funcs = {k: v for k, v in funcs.items() if v}
        lines: Dict[int, SourceLine] = {}
        jlines: List[Tuple[int, SourceLine]] = []
        for i, (off, file_off, line_off, line_col) in enumerate(code.line_info):
            sl = SourceLine(file=os.path.basename(btf.string(file_off)), line=line_col >> 10,
                            column=line_col & 0x3ff, text=btf.string(line_off))
            if not sl.text and not sl.file:
                continue
            lines.setdefault(off, sl)
            if i < len(code.jited_line_info):
                jlines.append((code.jited_line_info[i], sl))
        return funcs, lines, jlines
    finally:
        btf.close()


def disassembly(code: ProgramCode) -> Disassembly:
    """The translated code of a program, named and with source lines."""
    funcs, lines, _ = source_info(code)
    if not funcs and code.xlated:
        funcs = {0: code.name or "prog"}
    base, kernel = _kernel_calls(code.xlated)
    maps, values = map_names(code.map_ids)
    symbols = Symbols(maps=maps, map_values=values, map_refs="id", call_base=base,
                      kernel=kernel, functions=funcs, xlated=bool(code.jited))
    return Disassembly(disassemble(code.xlated, symbols), functions=funcs, lines=lines,
                       name=code.name)


# --- JITed code ------------------------------------------------------------------------

def capstone_missing() -> str:
    """Why JITed code cannot be decoded here ("" when it can)."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64"):
        return f"no disassembler for {platform.machine()} machine code"
    try:
        import capstone  # noqa: F401
    except ImportError:
        return ("machine code shown as bytes: install the 'capstone' Python package "
                "(pip install capstone, or the 'disasm' extra: pip install "
                "'libbpf-cffi[disasm]') to decode it")
    return ""


def _decode(code: bytes, address: int) -> List[JitedInstruction]:
    import platform

    import capstone

    if platform.machine() in ("aarch64", "arm64"):
        cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    else:
        cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cs.skipdata = True
    return [JitedInstruction(address=i.address, raw=bytes(i.bytes),
                             text=f"{i.mnemonic} {i.op_str}".strip())
            for i in cs.disasm(code, address)]


def jited(code: ProgramCode, what: str) -> JitedCode:
    if not code.jited:
        raise BPFError(_errno.ENOENT, f"JITed code of {what}: the kernel has none (JIT off "
                                      "(net.core.bpf_jit_enable=0), or not root)")
    funcs, _, jlines = source_info(code)
    names = [funcs[k] for k in sorted(funcs)] if funcs else []
    missing = capstone_missing()
    parts: List[JitedFunction] = []
    pos = 0
    lens = code.jited_func_lens or [len(code.jited)]
    addrs = code.jited_ksyms or [0] * len(lens)
    for i, n in enumerate(lens):
        chunk = code.jited[pos:pos + n]
        pos += n
        addr = addrs[i] if i < len(addrs) else 0
        name = names[i] if i < len(names) else (code.name if i == 0 else f"func{i}")
        insns = _decode(chunk, addr) if not missing else []
        parts.append(JitedFunction(name=name or f"func{i}", address=addr, code=chunk,
                                   instructions=insns))
    if not missing:
        _name_calls(parts)
    return JitedCode(name=code.name, code=code.jited, functions=parts, lines=jlines,
                     missing=missing)


def _name_calls(parts: List[JitedFunction]) -> None:
    """Add the kernel symbol to each ``call 0xADDRESS`` (kallsyms, when readable)."""
    from .disasm import kernel_symbols

    targets = {}
    for fn in parts:
        for i, insn in enumerate(fn.instructions):
            mnem, _, op = insn.text.partition(" ")
            if mnem in ("call", "jmp", "bl", "b") and op.startswith("0x"):
                try:
                    targets[(id(fn), i)] = int(op, 16)
                except ValueError:
                    pass
    if not targets:
        return
    names, _ = kernel_symbols(list(set(targets.values())))
    for fn in parts:
        fn.instructions = [JitedInstruction(insn.address, insn.raw, insn.text + (
            f" <{names[targets[(id(fn), i)]]}>" if targets.get((id(fn), i)) in names else ""))
            for i, insn in enumerate(fn.instructions)]


# --- an object's program before load: ELF relocations -----------------------------------

def elf_relocations(path: str, section: str, prog: str,
                    offsets: Optional[Dict[int, int]] = None) -> Dict[int, Tuple[str, str]]:
    """What each relocated instruction of program ``prog`` (in ELF section
    ``section`` of the object file ``path``) refers to: instruction index ->
    (symbol name, kind), kind being ``"map"`` (a ``.maps`` definition),
    ``"data"`` (a ``.rodata``/``.data``/``.bss`` section: the name is the
    section's), ``"extern"`` (a kfunc, ksym or kconfig extern) or ``"func"``.
    A ``"data"`` relocation against a variable's own symbol (not its section's)
    puts the variable's offset in ``offsets`` (instruction index -> offset).
    Empty when the file cannot be read again."""
    try:
        from elftools.elf.elffile import ELFFile
        from elftools.elf.relocation import RelocationSection
        from elftools.elf.sections import SymbolTableSection

        with open(path, "rb") as f:
            elf = ELFFile(f)
            symtab = elf.get_section_by_name(".symtab")
            sec_index = next((i for i, s in enumerate(elf.iter_sections())
                              if s.name == section), None)
            if not isinstance(symtab, SymbolTableSection) or sec_index is None:
                return {}
            start = size = None
            for sym in symtab.iter_symbols():
                if sym.name == prog and sym["st_shndx"] == sec_index \
                        and sym["st_info"]["type"] == "STT_FUNC":
                    start, size = sym["st_value"], sym["st_size"]
                    break
            rel = elf.get_section_by_name(".rel" + section)
            if start is None or not isinstance(rel, RelocationSection):
                return {}
            out: Dict[int, Tuple[str, str]] = {}
            for r in rel.iter_relocations():
                off = r["r_offset"]
                if not start <= off < start + (size or 0):
                    continue
                sym = symtab.get_symbol(r["r_info_sym"])
                shndx = sym["st_shndx"]
                if shndx == "SHN_UNDEF":
                    out[(off - start) // 8] = (sym.name, "extern")
                    continue
                tsec = elf.get_section(shndx) if isinstance(shndx, int) else None
                target = tsec.name if tsec is not None else ""
                if target == ".maps":
                    out[(off - start) // 8] = (sym.name, "map")
                elif tsec is not None and tsec["sh_flags"] & 0x4:  # SHF_EXECINSTR: code
                    out[(off - start) // 8] = (_function_at(elf, symtab, sec_index, shndx, sym,
                                                            off), "func")
                else:
                    out[(off - start) // 8] = (target, "data")
                    if offsets is not None and sym["st_info"]["type"] == "STT_OBJECT":
                        offsets[(off - start) // 8] = int(sym["st_value"])
            return out
    except Exception:  # a file changed or gone since it was opened: no names then
        return {}


def _function_at(elf: Any, symtab: Any, sec_index: int, shndx: int, sym: Any, off: int) -> str:
    """The function a call (or a function pointer load) at ``off`` of section
    ``sec_index`` goes to: relative to a section symbol, its offset is in the
    instruction (in instructions after it for a call, in bytes for ``lddw``)."""
    if sym["st_info"]["type"] == "STT_FUNC" and sym.name:
        return str(sym.name)
    data = elf.get_section(sec_index).data()
    code, imm = data[off], struct.unpack_from("<i", data, off + 4)[0]
    where = sym["st_value"] + ((imm + 1) * 8 if code == 0x85 else imm)
    for f in symtab.iter_symbols():
        if f["st_shndx"] == shndx and f["st_value"] == where \
                and f["st_info"]["type"] == "STT_FUNC":
            return str(f.name)
    return ""


def section_variables(obj: Any, sections: Any) -> Dict[Union[int, str], List[Tuple[int, int, str]]]:
    """Section name -> its variables (offset, size, name), from an open Object's BTF."""
    out: Dict[Union[int, str], List[Tuple[int, int, str]]] = {}
    if obj is None or not sections:
        return out
    try:
        btf = obj.btf
    except BPFError:
        return out
    for sec in sections:
        try:
            _, vars_ = btf.datasec(sec)
        except Exception:
            continue
        out[sec] = sorted((v.offset, v.size, n) for n, v in vars_.items())
    return out
