"""A BPF disassembler: ``struct bpf_insn`` bytes to readable instructions.

:func:`disassemble` decodes every instruction class (ALU, ALU64, JMP, JMP32,
LD including the 16-byte ``lddw`` with its pseudo sources, LDX, ST, STX,
atomics) and the CPU v4 additions (signed division and modulo, sign-extending
moves and loads, byte swaps, ``gotol``), in the syntax of the kernel's verifier
log::

    r1 = *(u32 *)(r2 +8)
    if r1 s> 0x5 goto pc+3
    call bpf_map_lookup_elem#1
    lock *(u64 *)(r0 +0) += r1

Names come from a :class:`Symbols`: helper ids, map ids (the kernel's maps, for
programs dumped from the kernel), kfunc BTF ids (the kernel's BTF) and, for a
program's translated ("xlated") code, kernel addresses from ``/proc/kallsyms``
(the kernel replaces a helper's id by its address when it loads a program).
:meth:`pylibbpf.Program.disassemble` fills one in from the program itself,
with its function names and BTF source lines.
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)

__all__ = ["Instruction", "Symbols", "Disassembly", "SourceLine", "disassemble",
           "helper_id_names", "kernel_symbols", "JitedCode", "JitedFunction",
           "JitedInstruction"]

Buffer = Union[bytes, bytearray, memoryview]

# instruction classes (code & 0x07)
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
CLASS_NAMES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")

# load/store sizes (code & 0x18) in bits, and modes (code & 0xe0)
_SIZES = {0x00: 32, 0x08: 16, 0x10: 8, 0x18: 64}
MODE_IMM, MODE_ABS, MODE_IND, MODE_MEM = 0x00, 0x20, 0x40, 0x60
MODE_MEMSX, MODE_PROBE_MEM32, MODE_ATOMIC = 0x80, 0xa0, 0xc0

# ALU operations (code & 0xf0)
_ALU_OPS = {0x00: "+=", 0x10: "-=", 0x20: "*=", 0x30: "/=", 0x40: "|=", 0x50: "&=",
            0x60: "<<=", 0x70: ">>=", 0x90: "%=", 0xa0: "^=", 0xc0: "s>>="}
OP_DIV, OP_NEG, OP_MOD, OP_MOV, OP_END = 0x30, 0x80, 0x90, 0xb0, 0xd0
SRC_X = 0x08  # the source is a register (else the immediate); for END: big endian

# jump operations (code & 0xf0)
_JMP_OPS = {0x10: "==", 0x20: ">", 0x30: ">=", 0x40: "&", 0x50: "!=", 0x60: "s>",
            0x70: "s>=", 0xa0: "<", 0xb0: "<=", 0xc0: "s<", 0xd0: "s<="}
OP_JA, OP_CALL, OP_EXIT, OP_JCOND, OP_TAIL_CALL = 0x00, 0x80, 0x90, 0xe0, 0xf0

# atomic operations (imm of STX|ATOMIC)
_ATOMIC_ARITH = {0x00: ("+=", "add"), 0x40: ("|=", "or"), 0x50: ("&=", "and"),
                 0xa0: ("^=", "xor")}
FETCH, XCHG, CMPXCHG, LOAD_ACQ, STORE_REL = 0x01, 0xe1, 0xf1, 0x100, 0x110

# src_reg of a call
PSEUDO_CALL, PSEUDO_KFUNC_CALL = 1, 2
# src_reg of lddw
(PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, PSEUDO_BTF_ID, PSEUDO_FUNC, PSEUDO_MAP_IDX,
 PSEUDO_MAP_IDX_VALUE) = range(1, 7)

#: the highest helper id that could ever exist: above it a call's imm is an address
_MAX_HELPER_ID = 1 << 12

_INSN = struct.Struct("<BBhi")


@functools.lru_cache(maxsize=1)
def helper_id_names() -> Dict[int, str]:
    """Helper id -> name (``1: "bpf_map_lookup_elem"``): from the kernel's BTF enum
    ``bpf_func_id`` when there is one (it knows this kernel's newest helpers),
    plus libbpf's ``bpf_helper_defs.h``."""
    from .system import helper_names

    names = dict(helper_names())
    try:
        from ._ffi import ffi, lib
        from .attach._kinds import BTF_KIND_ENUM, _vmlinux_btf, vmlinux_type_id

        tid = vmlinux_type_id("bpf_func_id", BTF_KIND_ENUM)
        btf = _vmlinux_btf()
        if tid and btf is not None:
            info = ffi.new("struct pylibbpf_btf_info *")
            member = ffi.new("struct pylibbpf_btf_member *")
            if lib.pylibbpf_btf_info(btf, tid, info) == 0:
                for i in range(info.vlen):
                    if lib.pylibbpf_btf_member(btf, tid, i, member) == 0 \
                            and member.name != ffi.NULL:
                        n = ffi.string(member.name).decode()
                        if n.startswith("BPF_FUNC_") and n != "BPF_FUNC_unspec" \
                                and 0 < member.value < _MAX_HELPER_ID:
                            names.setdefault(int(member.value), "bpf_" + n[9:])
    except Exception:  # the header's table is enough
        pass
    return names


def kernel_symbols(addresses: Sequence[int] = (), *,
                   names: Sequence[str] = ()) -> Tuple[Dict[int, str], Dict[str, int]]:
    """Look kernel text symbols up in ``/proc/kallsyms`` in one pass: the names at
    ``addresses`` and the addresses of ``names``. Empty when it is unreadable or
    hides addresses (``kptr_restrict``, not root)."""
    want_addr = set(addresses)
    want_name = set(names)
    by_addr: Dict[int, str] = {}
    by_name: Dict[str, int] = {}
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split(None, 3)
                if len(parts) < 3:
                    continue
                name = parts[2]
                if name in want_name and name not in by_name:
                    by_name[name] = int(parts[0], 16)
                if want_addr and parts[1] in "tTwW" and not name.startswith("__pfx_"):
                    addr = int(parts[0], 16)
                    if addr in want_addr and addr not in by_addr:
                        by_addr[addr] = name
    except (OSError, ValueError):
        return {}, {}
    by_name = {n: a for n, a in by_name.items() if a}
    by_addr = {a: n for a, n in by_addr.items() if a}
    return by_addr, by_name


@dataclass
class Symbols:
    """What names the disassembler can put on numbers.

    - ``helpers``: helper id -> name (default :func:`helper_id_names`)
    - ``maps``: map id (or fd, see ``map_refs``) -> map name
    - ``map_refs``: ``"id"`` for kernel dumps, ``"fd"`` for code before load
    - ``kfunc``: BTF id -> kfunc name (default: the kernel's BTF)
    - ``call_base``/``kernel``: for translated code, where a call's imm is an
      address relative to ``__bpf_call_base``: that address and address -> name
    - ``functions``: instruction index -> function name (bpf-to-bpf call targets)
    - ``xlated``: the kernel's translated code of a JITed program, whose bpf-to-bpf
      calls hold the target in ``off`` (``imm`` is the subprogram's number)
    - ``relocations``: for code before load, what the ELF relocations of its
      instructions name (maps, global data, externs, functions)
    """

    helpers: Optional[Mapping[int, str]] = None
    maps: Mapping[int, str] = field(default_factory=dict)
    map_refs: str = "fd"
    kfunc: Optional[Callable[[int], str]] = None
    call_base: Optional[int] = None
    kernel: Mapping[int, str] = field(default_factory=dict)
    functions: Mapping[int, str] = field(default_factory=dict)
    xlated: bool = False
    #: code from an object file before load: instruction index -> (symbol, kind) of
    #: its ELF relocation (kind: "map", "data", "extern" or "func")
    relocations: Mapping[int, Tuple[str, str]] = field(default_factory=dict)
    #: for a "data" relocation against a variable's own symbol (as clang 15 and later
    #: emit for globals): instruction index -> the variable's offset in its section,
    #: which libbpf adds to the instruction's
    relocation_offsets: Mapping[int, int] = field(default_factory=dict)
    #: global data: map id/fd (or, before load, section name) -> its variables
    #: (offset, size, name), to name what ``map[…][0]+OFF`` points at
    map_values: Mapping[Union[int, str], Sequence[Tuple[int, int, str]]] = field(
        default_factory=dict)

    def variable(self, ref: Union[int, str], off: int) -> str:
        """`` <name>`` (or `` <name+N>``) of the variable at ``off`` in a global data
        map, "" when unknown."""
        for start, size, name in self.map_values.get(ref, ()):
            if start <= off < start + max(size, 1):
                return f" <{name}>" if off == start else f" <{name}+{off - start}>"
        return ""

    def helper(self, helper_id: int) -> Optional[str]:
        table = self.helpers if self.helpers is not None else helper_id_names()
        return table.get(helper_id)

    def kfunc_name(self, btf_id: int) -> str:
        if self.kfunc is not None:
            return self.kfunc(btf_id)
        try:
            from .attach._kinds import vmlinux_type_name

            return vmlinux_type_name(btf_id)
        except Exception:
            return ""

    def kernel_name(self, imm: int) -> Optional[str]:
        if self.call_base is None:
            return None
        return self.kernel.get((self.call_base + imm) & 0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction (``lddw`` takes two 8-byte slots)."""

    #: position in 8-byte slots (what ``pc+N`` counts)
    index: int
    code: int
    dst: int
    src: int
    off: int
    #: the immediate; for ``lddw`` the whole 64-bit one
    imm: int
    #: the instruction's bytes (8, or 16 for lddw)
    raw: bytes
    #: verifier-log syntax, e.g. ``r0 = *(u32 *)(r1 +4)``
    text: str
    #: the slot a jump or bpf-to-bpf call goes to
    target: Optional[int] = None
    #: what a call, map reference or kfunc resolved to (helper, map, kfunc name)
    symbol: Optional[str] = None

    @property
    def cls(self) -> str:
        """The instruction class: ``ld``, ``ldx``, ``st``, ``stx``, ``alu``, ``jmp``,
        ``jmp32`` or ``alu64``."""
        return CLASS_NAMES[self.code & 7]

    @property
    def slots(self) -> int:
        return len(self.raw) // 8

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class SourceLine:
    """A BTF line info record: the source line an instruction came from."""

    file: str
    line: int
    column: int
    text: str


@dataclass
class Disassembly:
    """A program's instructions with their function names and source lines."""

    instructions: List[Instruction]
    #: instruction index -> function name (where each function starts)
    functions: Dict[int, str] = field(default_factory=dict)
    #: instruction index -> source line (from the program's BTF line info)
    lines: Dict[int, SourceLine] = field(default_factory=dict)
    name: str = ""

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    def __len__(self) -> int:
        return len(self.instructions)

    def __getitem__(self, i: int) -> Instruction:
        return self.instructions[i]

    def format(self, *, source: bool = True, linum: bool = False, opcodes: bool = False) -> str:
        """The listing as text: ``"   3: (85) call bpf_ktime_get_ns#5"``, each
        function's name before its first instruction, and (``source``) each source
        line, as ``"; text"``, before the instructions compiled from it
        (``linum``: with ``[file:line:column]``)."""
        out: List[str] = []
        width = len(str(self.instructions[-1].index)) if self.instructions else 1
        width = max(width, 4)
        last = ""
        for insn in self.instructions:
            fn = self.functions.get(insn.index)
            if fn:
                if out:
                    out.append("")
                out.append(f"{fn}:")
            sl = self.lines.get(insn.index) if source else None
            if sl is not None and sl.text.strip() and (linum or sl.text != last):
                where = f" [{sl.file}:{sl.line}:{sl.column}]" if linum else ""
                out.append(f"; {sl.text.strip()}{where}")
                last = sl.text
            out.append(f"{insn.index:>{width}}: ({insn.code:02x}) {insn.text}")
            if opcodes:
                out.append(" " * (width + 7) + " ".join(f"{b:02x}" for b in insn.raw))
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class JitedInstruction:
    """One machine instruction of a JITed program (capstone's decoding)."""

    address: int
    raw: bytes
    text: str


@dataclass
class JitedFunction:
    """One function of a JITed program: its kernel address and machine code."""

    name: str
    address: int
    code: bytes
    #: decoded instructions; empty without a disassembler (no disassembler installed)
    instructions: List[JitedInstruction] = field(default_factory=list)


@dataclass
class JitedCode:
    """A program's JITed machine code, per function, with source lines when the
    program has BTF line info."""

    name: str
    code: bytes
    functions: List[JitedFunction]
    #: (address, source line) of each line info record
    lines: List[Tuple[int, SourceLine]]
    #: why instructions are not decoded ("" when they are)
    missing: str = ""

    def format(self, *, source: bool = True, opcodes: bool = True) -> str:
        """The listing: each function's instructions (``offset: bytes  text``), or
        its bytes 16 to a line when no disassembler is installed."""
        out: List[str] = []
        if self.missing:
            out.append(f"; {self.missing}")
        by_addr: Dict[int, SourceLine] = {}
        for addr, sl in self.lines:
            by_addr.setdefault(addr, sl)
        last = ""
        for fn in self.functions:
            if out:
                out.append("")
            out.append(f"{fn.name}:")
            if not fn.instructions:
                for off in range(0, len(fn.code), 16):
                    chunk = fn.code[off:off + 16]
                    out.append(f"{off:>6x}:  {' '.join(f'{b:02x}' for b in chunk)}")
                continue
            for insn in fn.instructions:
                src = by_addr.get(insn.address) if source else None
                if src is not None and src.text.strip() and src.text != last:
                    out.append(f"; {src.text.strip()}")
                    last = src.text
                off = insn.address - fn.address
                raw = " ".join(f"{b:02x}" for b in insn.raw)
                out.append(f"{off:>6x}:  {raw:<30} {insn.text}" if opcodes
                           else f"{off:>6x}:  {insn.text}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


# --- decoding ------------------------------------------------------------------------

def _reg(n: int, wide: bool = True) -> str:
    return f"{'r' if wide else 'w'}{n}"


def _mem(size: int, reg: int, off: int, signed: bool = False) -> str:
    return f"*({'s' if signed else 'u'}{size} *)(r{reg} {off:+d})"


def _hex(v: int) -> str:
    return f"-{-v:#x}" if v < 0 else f"{v:#x}"


def _pc(rel: int) -> str:
    return f"pc{rel:+d}"


def _alu(code: int, dst: int, src: int, off: int, imm: int) -> str:
    wide = code & 7 == ALU64
    op = code & 0xf0
    d = _reg(dst, wide)
    s = _reg(src, wide) if code & SRC_X else str(imm)
    if op == OP_MOV:
        if code & SRC_X and wide and off == 1:  # arena pointers
            return f"{d} = addr_space_cast(r{src}, {imm >> 16 & 0xffff}, {imm & 0xffff})"
        if code & SRC_X and wide and off == -1:
            return f"{d} = &(void __percpu *)(r{src})"
        if code & SRC_X and off in (8, 16, 32):
            return f"{d} = (s{off}){s}"
        return f"{d} = {s}"
    if op == OP_NEG:
        return f"{d} = -{d}"
    if op == OP_END:  # byte order changes act on the whole register
        if wide:
            return f"r{dst} = bswap{imm} r{dst}"
        return f"r{dst} = {'be' if code & SRC_X else 'le'}{imm} r{dst}"
    sym = _ALU_OPS.get(op)
    if sym is None:
        return f"invalid alu opcode {code:#04x}"
    if op in (OP_DIV, OP_MOD) and off == 1:
        sym = "s" + sym
    return f"{d} {sym} {s}"


def _jmp(code: int, index: int, dst: int, src: int, off: int, imm: int,
         symbols: Symbols) -> Tuple[str, Optional[int], Optional[str]]:
    """(text, target slot, resolved name) of a jump, call or exit."""
    cls = code & 7
    op = code & 0xf0
    if op == OP_JA:
        if cls == JMP32:
            return f"gotol {_pc(imm)}", index + imm + 1, None
        return f"goto {_pc(off)}", index + off + 1, None
    if code == JMP | OP_EXIT:
        return "exit", None, None
    if code == JMP | OP_JCOND:
        return f"may_goto {_pc(off)}", index + off + 1, None
    if code == JMP | OP_TAIL_CALL:  # the kernel's own form of bpf_tail_call()
        return "tail_call", None, None
    if code == JMP | OP_CALL | SRC_X:  # a call through a register
        return f"callx r{dst}", None, None
    if code == JMP | OP_CALL:
        if src == PSEUDO_CALL:
            rel = off if symbols.xlated else imm
            target = index + rel + 1
            fn = symbols.functions.get(target)
            return (f"call {_pc(rel)}" + (f" <{fn}>" if fn else ""), target, fn)
        if src == PSEUDO_KFUNC_CALL:
            name = symbols.kernel_name(imm) or (symbols.kfunc_name(imm)
                                                if symbols.call_base is None else "")
            if name:
                return f"call kfunc:{name}", None, name
            return f"call kfunc:#{imm}", None, None
        if 0 <= imm < _MAX_HELPER_ID or symbols.call_base is None:
            helper = symbols.helper(imm)
            return f"call {helper or 'unknown'}#{imm}", None, helper
        kname = symbols.kernel_name(imm)
        if kname is None:
            return f"call unknown#{imm}", None, None
        table = symbols.helpers if symbols.helpers is not None else helper_id_names()
        hid = next((i for i, n in table.items() if n == kname), None)
        # a helper by its id; otherwise the kernel function the verifier put in
        # its place (e.g. a map type's own lookup)
        return (f"call {kname}#{hid}" if hid is not None else f"call {kname}"), None, kname
    sym = _JMP_OPS.get(op)
    if sym is None:
        return f"invalid jmp opcode {code:#04x}", None, None
    wide = cls == JMP
    rhs = _reg(src, wide) if code & SRC_X else _hex(imm)
    return f"if {_reg(dst, wide)} {sym} {rhs} goto {_pc(off)}", index + off + 1, None


def _lddw(dst: int, src: int, imm_lo: int, imm_hi: int,
          symbols: Symbols) -> Tuple[str, int, Optional[str]]:
    imm64 = (imm_hi & 0xffffffff) << 32 | (imm_lo & 0xffffffff)
    d = _reg(dst)
    if src == 0:
        return f"{d} = {imm64:#x} ll", imm64, None
    if src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
        ref = imm_lo & 0xffffffff
        name = symbols.maps.get(ref)
        what = f"map[{name}]" if name else f"map[{symbols.map_refs}:{ref}]"
        if src == PSEUDO_MAP_VALUE:
            off = imm_hi & 0xffffffff
            return f"{d} = {what}[0]+{off}{symbols.variable(ref, off)}", imm64, name
        return f"{d} = {what}", imm64, name
    if src in (PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE):
        what = f"map[idx:{imm_lo & 0xffffffff}]"
        if src == PSEUDO_MAP_IDX_VALUE:
            return f"{d} = {what}[0]+{imm_hi & 0xffffffff}", imm64, None
        return f"{d} = {what}", imm64, None
    if src == PSEUDO_BTF_ID:
        name = symbols.kfunc_name(imm_lo)
        return (f"{d} = ksym[{name}]" if name else f"{d} = ksym[btf_id:{imm_lo}]"), imm64, name
    if src == PSEUDO_FUNC:
        return f"{d} = func[{_pc(imm_lo)}]", imm64, None
    return f"{d} = {imm64:#x} ll (pseudo source {src})", imm64, None


def _ld(code: int, dst: int, src: int, imm: int) -> str:
    mode = code & 0xe0
    size = _SIZES[code & 0x18]
    if mode == MODE_ABS:
        return f"r0 = *(u{size} *)skb[{imm}]"
    if mode == MODE_IND:
        return f"r0 = *(u{size} *)skb[r{src} + {imm}]"
    return f"invalid ld opcode {code:#04x}"


def _ldx(code: int, dst: int, src: int, off: int) -> str:
    mode = code & 0xe0
    size = _SIZES[code & 0x18]
    if mode in (MODE_MEM, MODE_PROBE_MEM32, 0x20):  # 0x20: PROBE_MEM, as the JIT sees it
        return f"{_reg(dst)} = {_mem(size, src, off)}"
    if mode in (MODE_MEMSX, 0x40):  # 0x40: PROBE_MEMSX
        return f"{_reg(dst)} = {_mem(size, src, off, signed=True)}"
    return f"invalid ldx opcode {code:#04x}"


def _st(code: int, dst: int, off: int, imm: int) -> str:
    mode = code & 0xe0
    if mode in (MODE_MEM, MODE_PROBE_MEM32):
        return f"{_mem(_SIZES[code & 0x18], dst, off)} = {imm}"
    return f"invalid st opcode {code:#04x}"


def _stx(code: int, dst: int, src: int, off: int, imm: int) -> str:
    mode = code & 0xe0
    size = _SIZES[code & 0x18]
    mem = _mem(size, dst, off)
    if mode in (MODE_MEM, MODE_PROBE_MEM32):
        return f"{mem} = {_reg(src)}"
    if mode != MODE_ATOMIC:
        return f"invalid stx opcode {code:#04x}"
    wide = size == 64
    s = _reg(src, wide)
    addr = f"(u{size} *)(r{dst} {off:+d})"
    fn = "atomic64" if wide else "atomic"
    if imm in _ATOMIC_ARITH:
        return f"lock {mem} {_ATOMIC_ARITH[imm][0]} {s}"
    if imm & ~FETCH in _ATOMIC_ARITH and imm & FETCH:
        return f"{s} = {fn}_fetch_{_ATOMIC_ARITH[imm & ~FETCH][1]}({addr}, {s})"
    if imm == XCHG:
        return f"{s} = {fn}_xchg({addr}, {s})"
    if imm == CMPXCHG:
        r0 = _reg(0, wide)
        return f"{r0} = {fn}_cmpxchg({addr}, {r0}, {s})"
    if imm == LOAD_ACQ:
        # dst_reg receives the value, src_reg holds the address
        return f"{_reg(dst, wide)} = load_acquire((u{size} *)(r{src} {off:+d}))"
    if imm == STORE_REL:
        return f"store_release({addr}, {s})"
    return f"invalid atomic operation {imm:#x}"


def _relocated(code: bytes, i: int, dst: int, src: int, imm: int, reloc: Tuple[str, str],
               symbols: Symbols) -> Tuple[str, Optional[int], Optional[str]]:
    """An instruction of an object file that libbpf will patch at load, by what
    its relocation names."""
    name, kind = reloc
    if code[i * 8] == JMP | OP_CALL:
        if kind == "extern":
            return f"call kfunc:{name}", None, name
        # a function elsewhere (libbpf appends it at load): no pc yet
        return (f"call <{name}>" if name else f"call {_pc(imm)}"), None, name or None
    d = _reg(dst)
    if kind == "map":
        return f"{d} = map[{name}]", None, name
    if kind == "data":
        off = (imm + symbols.relocation_offsets.get(i, 0)) & 0xffffffff
        return f"{d} = map[{name}][0]+{off}{symbols.variable(name, off)}", None, name
    if kind == "extern":
        return f"{d} = extern[{name}]", None, name
    return f"{d} = func[{name or '?'}]", None, name or None


def disassemble(insns: Buffer, symbols: Optional[Symbols] = None) -> List[Instruction]:
    """Decode ``insns`` (``struct bpf_insn`` bytes, a multiple of 8) into
    :class:`Instruction` objects. Never raises on odd contents: an opcode no
    kernel defines reads ``invalid …``. ``symbols`` names helpers, maps, kfuncs
    and functions (default: helper names only)."""
    code_bytes = bytes(insns)
    if len(code_bytes) % 8:
        raise ValueError(f"BPF instructions are 8 bytes each; got {len(code_bytes)} bytes")
    sym = symbols if symbols is not None else Symbols()
    out: List[Instruction] = []
    n = len(code_bytes) // 8
    i = 0
    while i < n:
        code, regs, off, imm = _INSN.unpack_from(code_bytes, i * 8)
        dst, src = regs & 0x0f, regs >> 4
        cls = code & 7
        raw = code_bytes[i * 8:i * 8 + 8]
        target: Optional[int] = None
        name: Optional[str] = None
        value = imm
        reloc = sym.relocations.get(i)
        if reloc is not None and code in (LD | MODE_IMM | 0x18, JMP | OP_CALL) \
                and i + (code != JMP | OP_CALL) < n:
            text, target, name = _relocated(code_bytes, i, dst, src, imm, reloc, sym)
            if code != JMP | OP_CALL:
                raw = code_bytes[i * 8:i * 8 + 16]
        elif cls == LD and code == (LD | MODE_IMM | 0x18):
            if i + 1 >= n:
                text = "invalid lddw: its second half is missing"
            else:
                _, _, _, imm_hi = _INSN.unpack_from(code_bytes, i * 8 + 8)
                text, value, name = _lddw(dst, src, imm, imm_hi, sym)
                raw = code_bytes[i * 8:i * 8 + 16]
        elif cls == LD:
            text = _ld(code, dst, src, imm)
        elif cls == LDX:
            text = _ldx(code, dst, src, off)
        elif cls == ST:
            text = _st(code, dst, off, imm)
        elif cls == STX:
            text = _stx(code, dst, src, off, imm)
        elif cls in (ALU, ALU64):
            text = _alu(code, dst, src, off, imm)
        else:
            text, target, name = _jmp(code, i, dst, src, off, imm, sym)
        out.append(Instruction(index=i, code=code, dst=dst, src=src, off=off, imm=value,
                               raw=raw, text=text, target=target, symbol=name))
        i += len(raw) // 8
    return out


def needed_addresses(insns: Buffer) -> List[int]:
    """The call immediates of ``insns`` that are addresses (relative to
    ``__bpf_call_base``) rather than helper ids: what translated code calls."""
    code_bytes = bytes(insns)
    out = []
    for i in range(len(code_bytes) // 8):
        code, regs, _, imm = _INSN.unpack_from(code_bytes, i * 8)
        if code == (JMP | OP_CALL) and (regs >> 4) in (0, PSEUDO_KFUNC_CALL) and (
                not 0 <= imm < _MAX_HELPER_ID or regs >> 4 == PSEUDO_KFUNC_CALL):
            out.append(imm)
    return out
