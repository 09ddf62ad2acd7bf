"""pylibbpf.disasm (our BPF disassembler), Program.disassemble()/jited() and the
`pylibbpf prog` verbs (dump xlated/jited, pin, tracelog)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pylibbpf
from pylibbpf import Map, Program
from pylibbpf import _progdump
from pylibbpf.cli import main
from pylibbpf.disasm import Disassembly, Symbols, disassemble
from _children import same_pylibbpf


def I(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def text(code: bytes, symbols: Symbols | None = None) -> list[str]:
    return [i.text for i in disassemble(code, symbols)]


# --- every instruction class, encoded by hand --------------------------------------------

@pytest.mark.parametrize("insn, expected", [
    # ALU64 and ALU (32-bit: w registers), register and immediate sources
    (I(0x07, 1, imm=-8), "r1 += -8"),
    (I(0x0f, 1, 2), "r1 += r2"),
    (I(0x1f, 3, 4), "r3 -= r4"),
    (I(0x27, 1, imm=3), "r1 *= 3"),
    (I(0x37, 1, imm=10), "r1 /= 10"),
    (I(0x47, 1, imm=1), "r1 |= 1"),
    (I(0x57, 1, imm=255), "r1 &= 255"),
    (I(0x67, 1, imm=32), "r1 <<= 32"),
    (I(0x77, 1, imm=32), "r1 >>= 32"),
    (I(0x87, 1), "r1 = -r1"),
    (I(0x97, 1, imm=7), "r1 %= 7"),
    (I(0xa7, 1, imm=5), "r1 ^= 5"),
    (I(0xb7, 1, imm=0), "r1 = 0"),
    (I(0xbf, 6, 1), "r6 = r1"),
    (I(0xc7, 1, imm=4), "r1 s>>= 4"),
    (I(0x04, 2, imm=1), "w2 += 1"),
    (I(0x0c, 2, 3), "w2 += w3"),
    (I(0x84, 2), "w2 = -w2"),
    (I(0xb4, 0, imm=-1), "w0 = -1"),
    (I(0xbc, 0, 1), "w0 = w1"),
    (I(0xcc, 0, 1), "w0 s>>= w1"),
    (I(0xd4, 1, imm=16), "r1 = le16 r1"),
    (I(0xdc, 1, imm=32), "r1 = be32 r1"),
    (I(0xdc, 1, imm=64), "r1 = be64 r1"),
    # CPU v4: signed division and modulo, sign-extending moves, byte swaps
    (I(0x3f, 1, 2, off=1), "r1 s/= r2"),
    (I(0x9f, 1, 2, off=1), "r1 s%= r2"),
    (I(0x37, 1, off=1, imm=-3), "r1 s/= -3"),
    (I(0x3c, 1, 2, off=1), "w1 s/= w2"),
    (I(0x9c, 1, 2, off=1), "w1 s%= w2"),
    (I(0xbf, 1, 2, off=8), "r1 = (s8)r2"),
    (I(0xbf, 1, 2, off=16), "r1 = (s16)r2"),
    (I(0xbf, 1, 2, off=32), "r1 = (s32)r2"),
    (I(0xbc, 1, 2, off=8), "w1 = (s8)w2"),
    (I(0xd7, 1, imm=16), "r1 = bswap16 r1"),
    (I(0xd7, 1, imm=64), "r1 = bswap64 r1"),
    # arena pointer casts
    (I(0xbf, 1, 2, off=1, imm=1), "r1 = addr_space_cast(r2, 0, 1)"),
    # JMP and JMP32
    (I(0x05, off=-3), "goto pc-3"),
    (I(0x06, imm=1000), "gotol pc+1000"),
    (I(0x15, 1, off=2, imm=0), "if r1 == 0x0 goto pc+2"),
    (I(0x1d, 1, 2, off=2), "if r1 == r2 goto pc+2"),
    (I(0x25, 1, off=1, imm=9), "if r1 > 0x9 goto pc+1"),
    (I(0x35, 1, off=1, imm=9), "if r1 >= 0x9 goto pc+1"),
    (I(0x45, 1, off=1, imm=4), "if r1 & 0x4 goto pc+1"),
    (I(0x55, 1, off=1, imm=-1), "if r1 != -0x1 goto pc+1"),
    (I(0x65, 1, off=1, imm=5), "if r1 s> 0x5 goto pc+1"),
    (I(0x75, 1, off=1, imm=5), "if r1 s>= 0x5 goto pc+1"),
    (I(0xa5, 1, off=1, imm=5), "if r1 < 0x5 goto pc+1"),
    (I(0xb5, 1, off=1, imm=5), "if r1 <= 0x5 goto pc+1"),
    (I(0xcd, 1, 2, off=1), "if r1 s< r2 goto pc+1"),
    (I(0xdd, 1, 2, off=1), "if r1 s<= r2 goto pc+1"),
    (I(0x16, 1, off=4, imm=7), "if w1 == 0x7 goto pc+4"),
    (I(0x5e, 1, 2, off=-4), "if w1 != w2 goto pc-4"),
    (I(0xe5, off=5), "may_goto pc+5"),
    (I(0x85, imm=1), "call bpf_map_lookup_elem#1"),
    (I(0x85, imm=5), "call bpf_ktime_get_ns#5"),
    (I(0x85, src=1, imm=3), "call pc+3"),
    (I(0x95), "exit"),
    # LDX, ST, STX, and CPU v4 sign-extending loads
    (I(0x61, 0, 1, off=4), "r0 = *(u32 *)(r1 +4)"),
    (I(0x69, 0, 1, off=2), "r0 = *(u16 *)(r1 +2)"),
    (I(0x71, 0, 1, off=-1), "r0 = *(u8 *)(r1 -1)"),
    (I(0x79, 0, 10, off=-8), "r0 = *(u64 *)(r10 -8)"),
    (I(0x91, 0, 1), "r0 = *(s8 *)(r1 +0)"),
    (I(0x89, 0, 1), "r0 = *(s16 *)(r1 +0)"),
    (I(0x81, 0, 1), "r0 = *(s32 *)(r1 +0)"),
    (I(0x62, 10, off=-4, imm=7), "*(u32 *)(r10 -4) = 7"),
    (I(0x7a, 10, off=-8, imm=-1), "*(u64 *)(r10 -8) = -1"),
    (I(0x72, 10, off=-1, imm=1), "*(u8 *)(r10 -1) = 1"),
    (I(0x7b, 10, 1, off=-16), "*(u64 *)(r10 -16) = r1"),
    (I(0x6b, 10, 1, off=-2), "*(u16 *)(r10 -2) = r1"),
    # atomics
    (I(0xdb, 1, 2, imm=0x00), "lock *(u64 *)(r1 +0) += r2"),
    (I(0xc3, 1, 2, imm=0x40), "lock *(u32 *)(r1 +0) |= w2"),
    (I(0xdb, 1, 2, imm=0x50), "lock *(u64 *)(r1 +0) &= r2"),
    (I(0xdb, 1, 2, imm=0xa0), "lock *(u64 *)(r1 +0) ^= r2"),
    (I(0xdb, 1, 2, off=8, imm=0x01), "r2 = atomic64_fetch_add((u64 *)(r1 +8), r2)"),
    (I(0xc3, 1, 2, imm=0xa1), "w2 = atomic_fetch_xor((u32 *)(r1 +0), w2)"),
    (I(0xdb, 1, 2, imm=0xe1), "r2 = atomic64_xchg((u64 *)(r1 +0), r2)"),
    (I(0xdb, 1, 2, imm=0xf1), "r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)"),
    (I(0xdb, 0, 1, imm=0x100), "r0 = load_acquire((u64 *)(r1 +0))"),
    (I(0xdb, 1, 2, imm=0x110), "store_release((u64 *)(r1 +0), r2)"),
    # legacy packet loads
    (I(0x30, imm=12), "r0 = *(u8 *)skb[12]"),
    (I(0x48, src=3, imm=2), "r0 = *(u16 *)skb[r3 + 2]"),
    # what no kernel defines still decodes, as such
    (I(0xf7, 1), "invalid alu opcode 0xf7"),
    (I(0xfd, 1), "invalid jmp opcode 0xfd"),
    (I(0x9d, 1), "invalid jmp opcode 0x9d"),
    (I(0x8d, 3), "callx r3"),
    (I(0xdb, 1, 2, imm=0x77), "invalid atomic operation 0x77"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_instruction(insn: bytes, expected: str) -> None:
    [decoded] = disassemble(insn)
    assert decoded.text == expected
    assert decoded.raw == insn and decoded.index == 0


def test_lddw_and_its_pseudo_sources() -> None:
    code = (I(0x18, 1, imm=0x89abcdef - (1 << 32)) + I(0, imm=0x01234567)
            + I(0x18, 2, 1, imm=5) + I(0)
            + I(0x18, 3, 2, imm=5) + I(0, imm=16)
            + I(0x18, 4, 1, imm=9) + I(0)
            + I(0x18, 5, 4, imm=2) + I(0)
            + I(0x18, 6, 5, imm=1) + I(0)
            + I(0x18, 7, 6, imm=1) + I(0, imm=4))
    insns = disassemble(code, Symbols(maps={5: "counts"}, map_refs="id"))
    assert [i.text for i in insns] == [
        "r1 = 0x123456789abcdef ll", "r2 = map[counts]", "r3 = map[counts][0]+16",
        "r4 = map[id:9]", "r5 = func[pc+2]", "r6 = map[idx:1]", "r7 = map[idx:1][0]+4"]
    assert [i.index for i in insns] == [0, 2, 4, 6, 8, 10, 12]
    assert insns[0].imm == 0x0123456789abcdef and len(insns[0].raw) == 16
    assert insns[1].symbol == "counts"
    assert text(I(0x18, 1) + I(0)) == ["r1 = 0x0 ll"]
    # a half lddw at the end does not read past the buffer
    assert text(I(0x18, 1, imm=1)) == ["invalid lddw: its second half is missing"]


def test_jump_targets_and_function_names() -> None:
    code = I(0x85, src=1, imm=2) + I(0x05, off=-2) + I(0x95) + I(0xb7, imm=1) + I(0x95)
    insns = disassemble(code, Symbols(functions={3: "helper_fn"}))
    assert insns[0].text == "call pc+2 <helper_fn>" and insns[0].target == 3
    assert insns[1].target == 0
    # the kernel's translated code of a JITed program keeps the offset in off
    insns = disassemble(I(0x85, src=1, off=2, imm=1) + I(0x95) * 3,
                        Symbols(functions={3: "f"}, xlated=True))
    assert insns[0].text == "call pc+2 <f>"


def test_kernel_addresses_and_kfuncs() -> None:
    base = 0xffffffff81000000
    sym = Symbols(call_base=base, kernel={base + 0x1000: "bpf_ktime_get_ns",
                                          base + 0x2000: "__htab_map_lookup_elem",
                                          base + 0x3000: "bpf_task_acquire"})
    assert text(I(0x85, imm=0x1000) + I(0x85, imm=0x2000) + I(0x85, src=2, imm=0x3000)
                + I(0x85, imm=0x4000), sym) == [
        "call bpf_ktime_get_ns#5", "call __htab_map_lookup_elem",
        "call kfunc:bpf_task_acquire", "call unknown#16384"]
    # before load, a kfunc call holds its BTF id
    assert text(I(0x85, src=2, imm=77), Symbols(kfunc=lambda i: f"kf{i}")) == ["call kfunc:kf77"]


def test_bad_length_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="8 bytes each; got 12"):
        disassemble(b"\0" * 12)


def test_format_puts_functions_and_source_lines() -> None:
    from pylibbpf.disasm import SourceLine

    d = Disassembly(disassemble(I(0xb7, imm=0) + I(0x95)), functions={0: "f"},
                    lines={0: SourceLine("a.c", 3, 5, "return 0;")}, name="f")
    assert d.format() == "f:\n; return 0;\n   0: (b7) r0 = 0\n   1: (95) exit"
    assert d.format(linum=True, opcodes=True).splitlines()[1:3] == [
        "; return 0; [a.c:3:5]", "   0: (b7) r0 = 0"]


# --- programs in the kernel ----------------------------------------------------------------

KNOWN = (I(0x85, imm=5)                      # call bpf_ktime_get_ns
         + I(0x18, 1, 1, imm=-1) + I(0)      # r1 = map (fd patched in)
         + I(0x18, 2, 2, imm=-1) + I(0, imm=8)  # r2 = &map value + 8
         + I(0x63, 10, 0, -4)                # *(u32 *)(r10 -4) = r0
         + I(0xbf, 2, 10) + I(0x07, 2, imm=-4)
         + I(0x15, 0, off=1) + I(0x79, 0, 10, -8)
         + I(0xb7, 0, imm=0) + I(0x95))


def _known(counts: Map, vals: Map) -> bytes:
    code = bytearray(KNOWN)
    struct.pack_into("<i", code, 8 + 4, counts.fd)
    struct.pack_into("<i", code, 24 + 4, vals.fd)
    return bytes(code)


@pytest.fixture
def known_prog():
    counts = Map.create("hash", 4, 8, 16, name="dis_counts")
    vals = Map.create("array", 4, 16, 1, name="dis_vals")
    prog = Program.load_raw("socket_filter", _known(counts, vals), name="dis_known")
    yield prog
    prog.close()
    counts.close()
    vals.close()


KNOWN_TEXT = """dis_known:
   0: (85) call bpf_ktime_get_ns#5
   1: (18) r1 = map[dis_counts]
   3: (18) r2 = map[dis_vals][0]+8
   5: (63) *(u32 *)(r10 -4) = r0
   6: (bf) r2 = r10
   7: (07) r2 += -4
   8: (15) if r0 == 0x0 goto pc+1
   9: (79) r0 = *(u64 *)(r10 -8)
  10: (b7) r0 = 0
  11: (95) exit"""


def test_raw_program_disassembles_to_known_text(known_prog) -> None:
    assert known_prog.disassemble().format() == KNOWN_TEXT
    d = known_prog.disassemble()
    assert d[1].symbol == "dis_counts" and d[0].symbol == "bpf_ktime_get_ns"


def test_cli_dump_xlated_by_id_and_name_and_pinned(known_prog, bpffs_dir, capsys) -> None:
    pid = known_prog.id
    assert main(["prog", "dump", "xlated", "id", str(pid)]) == 0
    assert capsys.readouterr().out.rstrip("\n") == KNOWN_TEXT
    assert main(["prog", "dump", "xlated", "name", "dis_known"]) == 0
    assert KNOWN_TEXT in capsys.readouterr().out
    path = bpffs_dir / "dis_known"
    assert main(["prog", "pin", "id", str(pid), str(path)]) == 0
    assert str(path) in capsys.readouterr().out
    with Program.open_pinned(path) as again:
        assert again.id == pid
    assert main(["prog", "dump", "xlated", "pinned", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [i["text"] for i in data["instructions"]][:2] == [
        "call bpf_ktime_get_ns#5", "r1 = map[dis_counts]"]
    assert data["instructions"][1]["raw"].startswith("1811")


def test_cli_errors_name_the_program(capsys) -> None:
    assert main(["prog", "dump", "xlated", "id", "4294967295"]) == 1
    assert "open program id 4294967295" in capsys.readouterr().err
    assert main(["prog", "dump", "xlated", "name", "no_such_prog_x"]) == 1
    assert "no loaded program is named 'no_such_prog_x'" in capsys.readouterr().err
    assert main(["prog", "dump", "xlated", "id"]) == 2
    assert "expected which program" in capsys.readouterr().err


def test_bpf_to_bpf_call_in_xlated_code() -> None:
    code = I(0x85, src=1, imm=2) + I(0xb7, imm=0) + I(0x95) + I(0xb7, imm=1) + I(0x95)
    with Program.load_raw("socket_filter", code, name="dis_sub") as prog:
        d = prog.disassemble()
        assert d[0].text == "call pc+2" and d[0].target == 3
        assert [i.text for i in d][1:] == ["r0 = 0", "exit", "r0 = 1", "exit"]


def test_source_lines_helpers_and_maps_of_a_compiled_program(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj:
        before = obj.programs["tp_getpgid"].disassemble()
        # before load: the ELF's instructions, helpers by id, maps by relocation
        assert "call bpf_map_lookup_elem#1" in [i.text for i in before]
        assert "r1 = map[hits]" in [i.text for i in before]
        obj.load()
        d = obj.programs["tp_getpgid"].disassemble()
    texts = [i.text for i in d]
    assert "r1 = map[hits]" in texts
    assert "call bpf_get_current_pid_tgid#14" in texts
    assert d.functions[0] == "tp_getpgid"
    lines = list(d.lines.values())
    assert {sl.file for sl in lines} == {"attach_tp.bpf.c"}
    assert any("bpf_map_lookup_elem(&hits, &key)" in sl.text for sl in lines)
    listing = d.format(linum=True)
    assert "; h = bpf_map_lookup_elem(&hits, &key); [attach_tp.bpf.c:40:" in listing
    # the source line comes right before the instructions compiled from it
    lookup = listing.index("bpf_map_lookup_elem(&hits")
    assert "r1 = map[hits]" in listing[lookup:lookup + 200]


def test_globals_before_load_are_named_at_their_offsets(tmp_path) -> None:
    """clang relocates a non-static global against the variable's own symbol, the
    instruction's offset 0: before load, each reference names its variable at the
    variable's place in the section, as the loaded program does."""
    src = ("int first = 1, second = 2, third;\n"
           "__attribute__((section(\"syscall\"))) int f(void *ctx)\n"
           "{ third = second + first; return 0; }\n"
           "char LICENSE[] __attribute__((section(\"license\"))) = \"GPL\";\n")
    path = tmp_path / "globals.bpf.c"
    path.write_text(src)
    with pylibbpf.Object(pylibbpf.compile(path, tmp_path / "globals.bpf.o")) as obj:
        before = [i.text for i in obj.programs["f"].disassemble() if "map[" in i.text]
        obj.load()
        after = [i.text for i in obj.programs["f"].disassemble() if "map[" in i.text]
    names = [t.split("<")[-1].rstrip(">") for t in before]
    assert sorted(names) == ["first", "second", "third"], before
    assert any(t.endswith("[0]+4 <second>") for t in before), before
    # the loaded program's references name the same variables at the same offsets
    assert sorted(t.split("]", 1)[1] for t in before) == \
        sorted(t.split("]", 1)[1] for t in after), (before, after)


def test_cli_dump_from_object_file(bpf_objects, capsys) -> None:
    assert main(["prog", "dump", "xlated", str(bpf_objects["attach_tp"]), "tp_getpgid",
                 "--linum"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tp_getpgid:\n")
    assert "r1 = map[hits]" in out and "[attach_tp.bpf.c:" in out
    assert main(["prog", "dump", "xlated", str(bpf_objects["attach_tp"]), "tp_getpgid",
                 "--before-load"]) == 0
    assert "call bpf_map_lookup_elem#1" in capsys.readouterr().out
    assert main(["prog", "dump", "xlated", str(bpf_objects["attach_tp"]), "nope"]) == 2
    assert "no program 'nope'" in capsys.readouterr().err


def test_jited_bytes_without_a_disassembler(known_prog, monkeypatch, capsys) -> None:
    monkeypatch.setattr(_progdump, "capstone_missing", lambda: "no capstone here")
    j = known_prog.jited()
    assert j.missing == "no capstone here"
    assert len(j.code) == known_prog.info().jited_len > 0
    assert [f.code for f in j.functions] == [j.code]
    first = " ".join(f"{b:02x}" for b in j.code[:16])
    assert f"     0:  {first}" in j.format()
    assert main(["prog", "dump", "jited", "id", str(known_prog.id)]) == 0
    out = capsys.readouterr()
    assert "no capstone here" in out.err
    assert f"     0:  {first}" in out.out


def test_jited_assembly_with_capstone(known_prog) -> None:
    pytest.importorskip("capstone", reason="the optional 'disasm' extra (capstone)")
    j = known_prog.jited()
    assert j.missing == ""
    [fn] = j.functions
    assert b"".join(i.raw for i in fn.instructions) == j.code
    texts = [i.text for i in fn.instructions]
    assert texts[-1].startswith("ret") or texts[-1].startswith("jmp")
    assert any(t.startswith("call") for t in texts)


def test_capstone_missing_says_how_to_get_it(monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_capstone(name, *a, **kw):
        if name == "capstone":
            raise ImportError("no capstone")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_capstone)
    assert "pip install capstone" in _progdump.capstone_missing()


def test_from_id_checks_its_argument() -> None:
    with pytest.raises(TypeError, match="program id must be an int"):
        Program.from_id("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="between 1 and"):
        Program.from_id(0)


def test_prog_tracelog_is_trace_pipe() -> None:
    from pylibbpf.cli import build_parser, cmd_trace_pipe

    assert build_parser().parse_args(["prog", "tracelog"]).func is cmd_trace_pipe
    res = subprocess.run([sys.executable, "-m", "pylibbpf", "prog", "tracelog", "-d", "0.2"],
                         capture_output=True, text=True, **same_pylibbpf())
    assert res.returncode == 0, res.stderr


GLOBALS_SRC = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
const volatile __u32 limit = 7;
__u64 total;

SEC("tp/syscalls/sys_enter_getpgid")
int dis_globals(void *ctx)
{
	total += limit;
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_globals_before_and_after_load(tmp_path) -> None:
    src = tmp_path / "dis_globals.bpf.c"
    src.write_text(GLOBALS_SRC)
    with pylibbpf.Object.from_source(src) as obj:
        prog = obj.programs["dis_globals"]
        before = [i.text for i in prog.disassemble()]
        # the section, and the variable there (from the object's BTF)
        assert "r1 = map[.rodata][0]+0 <limit>" in before
        assert "r2 = map[.bss][0]+0 <total>" in before
        obj.load()
        after = [i.text for i in prog.disassemble()]
    # loaded: the maps libbpf made of the sections, named by the kernel, their
    # variables from the maps' BTF (the verifier may fold the read-only value in)
    assert {"r1 = map[dis_glob.bss][0]+0 <total>",
            "r2 = map[dis_glob.bss][0]+0 <total>"} & set(after), after


@pytest.mark.kind("struct_ops_link")
def test_kfunc_calls_are_named(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_struct_ops"]) as obj:
        prog = obj.programs["plb_ssthresh"]
        assert "call kfunc:tcp_reno_ssthresh" in [i.text for i in prog.disassemble()]
        obj.load()
        d = prog.disassemble()
    call = next(i for i in d if i.text.startswith("call kfunc:"))
    assert call.text == "call kfunc:tcp_reno_ssthresh" and call.symbol == "tcp_reno_ssthresh"


SUBPROG_SRC = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
__u64 total;

static __noinline int twice(int x)
{
	return x * 2 + (int)bpf_get_prandom_u32();
}

SEC("tp/syscalls/sys_enter_getpgid")
int dis_sub_main(void *ctx)
{
	total += twice(3);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_bpf_to_bpf_calls_name_their_function(tmp_path) -> None:
    src = tmp_path / "dis_sub.bpf.c"
    src.write_text(SUBPROG_SRC)
    with pylibbpf.Object.from_source(src) as obj:
        prog = obj.programs["dis_sub_main"]
        assert prog.disassemble()[0].text == "call <twice>"
        obj.load()
        d = prog.disassemble()
        jit = prog.jited()
    call = d[0]
    assert call.text.startswith("call pc+") and call.text.endswith(" <twice>")
    assert call.target is not None and d.functions[call.target] == "twice"
    assert d.functions[0] == "dis_sub_main"
    listing = d.format()
    assert "\ntwice:\n; return x * 2 + (int)bpf_get_prandom_u32();\n" in listing
    assert [f.name for f in jit.functions] == ["dis_sub_main", "twice"]
    assert b"".join(f.code for f in jit.functions) == jit.code


def test_map_value_offsets_name_their_variable() -> None:
    sym = Symbols(maps={3: "x.bss"}, map_refs="id",
                  map_values={3: [(0, 8, "total"), (8, 4, "limit")]})
    code = b"".join(I(0x18, 1, 2, imm=3) + I(0, imm=off) for off in (0, 8, 10, 12))
    assert text(code, sym) == ["r1 = map[x.bss][0]+0 <total>", "r1 = map[x.bss][0]+8 <limit>",
                               "r1 = map[x.bss][0]+10 <limit+2>", "r1 = map[x.bss][0]+12"]
