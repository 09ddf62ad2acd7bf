"""Errors: verifier rejections, bad ELF input, use after close."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Tuple

import pytest

import pylibbpf
from _children import same_pylibbpf


def test_verifier_rejection_carries_program_and_whole_log(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["rejected"]) as obj:
        with pytest.raises(pylibbpf.VerifierError) as ei:
            obj.load()
    e = ei.value
    assert isinstance(e, pylibbpf.BPFError) and isinstance(e, OSError)
    assert e.program == "unchecked_read"
    assert e.errno == errno.EACCES
    assert "invalid access to packet" in e.log
    assert e.log.lstrip().startswith("0: R1=ctx(")  # the whole log, from its first line
    assert "unchecked_read" in str(e) and "invalid access to packet" in str(e)


def test_verifier_log_is_not_printed_to_stderr(bpf_objects, capfd) -> None:
    with pylibbpf.Object(bpf_objects["rejected"]) as obj:
        with pytest.raises(pylibbpf.VerifierError):
            obj.load()
    assert "invalid access to packet" not in capfd.readouterr().err


def test_verifier_log_with_custom_log_level(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["rejected"]) as obj:
        obj.programs["unchecked_read"].log_level = 2
        with pytest.raises(pylibbpf.VerifierError) as ei:
            obj.load()
    assert "invalid access to packet" in ei.value.log


def _truncated(path: Path, size: int) -> bytes:
    return path.read_bytes()[:size]


@pytest.mark.parametrize("case", ["empty", "random", "x86_elf", "truncated_header",
                                  "truncated_sections", "text"])
@pytest.mark.parametrize("as_file", [True, False])
def test_bad_elf_input_is_a_clean_error(bpf_objects, tmp_path, case, as_file) -> None:
    good = bpf_objects["core_task"]
    data = {
        "empty": b"",
        "random": bytes(range(256)) * 8,
        "x86_elf": Path(sys.executable).resolve().read_bytes()[:200000],
        "truncated_header": _truncated(good, 40),
        "truncated_sections": _truncated(good, good.stat().st_size // 2),
        "text": b"int main(void) { return 0; }\n",
    }[case]
    if as_file:
        f = tmp_path / f"{case}.o"
        f.write_bytes(data)
        with pytest.raises(pylibbpf.ELFError) as ei:
            pylibbpf.Object(f)
        assert str(f) in str(ei.value)
    else:
        with pytest.raises(pylibbpf.ELFError) as ei:
            pylibbpf.Object(data, name=f"bad-{case}")
        assert f"bad-{case}" in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_non_bpf_elf_says_what_it_is(tmp_path) -> None:
    f = tmp_path / "python.o"
    f.write_bytes(Path(sys.executable).resolve().read_bytes()[:4096])
    with pytest.raises(pylibbpf.ELFError, match="for x86-64, not a BPF object"):
        pylibbpf.Object(f)


def test_corrupt_section_table_is_a_clean_error(bpf_objects) -> None:
    data = bytearray(bpf_objects["core_task"].read_bytes())
    data[40:48] = (len(data) - 10).to_bytes(8, "little")  # e_shoff near the end
    with pytest.raises(pylibbpf.ELFError, match="truncated or corrupt"):
        pylibbpf.Object(bytes(data))


def test_missing_file_and_directory() -> None:
    with pytest.raises(FileNotFoundError, match="/nonexistent/x.bpf.o"):
        pylibbpf.Object("/nonexistent/x.bpf.o")
    with pytest.raises(pylibbpf.ELFError, match="is a directory"):
        pylibbpf.Object("/tmp")


def test_wrong_source_type() -> None:
    with pytest.raises(TypeError, match="source must be a path or bytes"):
        pylibbpf.Object(42)  # type: ignore[arg-type]


def test_use_after_close_raises_closed_error(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["core_task"])
    obj.load()
    prog = obj.programs["on_getpgid"]
    m = obj.maps["seen"]
    link = prog.attach()
    link.close()
    obj.close()
    calls = [
        lambda: obj.load(), lambda: obj.programs, lambda: obj.maps, lambda: obj.name,
        lambda: obj.attach_all(), lambda: prog.fd, lambda: prog.attach(),
        lambda: prog.test_run(b"\0" * 64), lambda: prog.info(), lambda: prog.section,
        lambda: m.fd, lambda: m[b"\0" * 4], lambda: list(m), lambda: m.info(),
        lambda: m.name, lambda: link.fd, lambda: link.info, lambda: link.pin("/sys/fs/bpf/x"),
        lambda: link.update(prog),
    ]
    for call in calls:
        with pytest.raises(pylibbpf.ClosedError, match="closed"):
            call()


def test_closed_error_is_value_error_with_ebadf() -> None:
    e = pylibbpf.ClosedError("Thing")
    assert isinstance(e, ValueError) and e.errno == errno.EBADF


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("name, message", [
    # an int of 4062735676 bytes: libbpf truncated the kconfig extern's size to int and
    # wrapped it into an error pointer outside IS_ERR's range (the guard against that
    # pointer: test_truncated_extern_size_is_a_clean_error); the BTF check refuses the int
    ("fuzz-kcfg-extern-size.bpf.o",
     "corrupt BTF: BTF type [2] (int 'int'): 4062735676 bytes holding 25 bits at bit 52"),
    # a bitfield on a zero-size base type made CO-RE relocation divide by zero (SIGFPE)
    ("fuzz-bitfield-size0.bpf.o", "corrupt BTF"),
    # a struct_ops member offset (BTF) far past its struct: libbpf read the map's data
    # there at load (SIGSEGV in bpf_map__init_kern_struct_ops). The BTF check refuses
    # any member outside its struct before the struct_ops check sees it
    ("fuzz-struct-ops-member-offset.bpf.o",
     "corrupt BTF: BTF type [191] (struct 'tcp_congestion_ops'): member 5 'pkts_acked' ends "
     "at bit 2885681536, past the 192 bytes of the struct"),
    # a FUNC_PROTO's return type ID, which libbpf's BTF sanity check skips: looked up as
    # NULL and dereferenced when load checks the kfunc externs against the kernel's
    ("fuzz-func-proto-return-type.bpf.o",
     "corrupt BTF: BTF type [20]: a function prototype returning type [1442840584], which "
     "does not exist"),
])
def test_fuzz_findings_are_clean_errors(name, message) -> None:
    """Inputs that once crashed libbpf; run in a child so a regression can't kill the run."""
    out = _in_child(DATA / name)
    assert len(out) == 2 and all(line.startswith("ELFError") and message in line
                                 for line in out), out


def test_truncated_extern_size_is_a_clean_error(tmp_path) -> None:
    """libbpf 1.5 truncates a kconfig extern's 64-bit size to int and returns it as an
    error; libbpf_ptr() lets that pointer through (it lies outside IS_ERR's range), and
    the "object" crashed on first use. The fuzz finding's extern, retyped to an array
    of 3 GiB (valid BTF), reaches that path: pylibbpf_object_open (shims.c) turns the
    pointer into NULL and an errno."""
    import struct

    data = bytearray((DATA / "fuzz-kcfg-extern-size.bpf.o").read_bytes())
    types = _btf_types(bytes(data))
    int_id, int_pos = next((i, pos) for i, (n, pos, k, _) in enumerate(types, 1)
                           if n == "int" and k == 1)
    struct.pack_into("<III", data, int_pos + 8, 4, 0x01000020, 0)  # a signed 32-bit int
    arr_id, arr_pos = next((i, pos) for i, (_, pos, k, _) in enumerate(types, 1)
                           if k == 3 and struct.unpack_from("<I", data, pos + 12)[0] == int_id)
    struct.pack_into("<I", data, arr_pos + 20, 0x30000000)  # int[0x30000000]: 3 GiB
    var_pos = next(pos for n, pos, k, _ in types if n == "CONFIG_PYLIBBPF_TEST_VALUE")
    struct.pack_into("<I", data, var_pos + 8, arr_id)
    path = tmp_path / "extern.bpf.o"
    path.write_bytes(bytes(data))
    out = _in_child(path)
    assert len(out) == 2 and all(line.startswith("ELFError ") and "libbpf returned the "
                                 "invalid error code -1073741824" in line
                                 for line in out), out


def test_dumping_corrupt_btf_is_a_clean_error() -> None:
    """btf_dump follows a FUNC_PROTO's return type ID into its state array unchecked."""
    import subprocess

    code = ("import pylibbpf, pylibbpf.btf\ntry:\n"
            f"    pylibbpf.btf.vmlinux_h({str(DATA / 'fuzz-func-proto-return-type.bpf.o')!r})\n"
            "except pylibbpf.ELFError as e:\n    print('ELFError', e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, **same_pylibbpf())
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-500:]}"
    assert res.stdout.startswith("ELFError load BTF from ") and \
        "a function prototype returning type [1442840584]" in res.stdout, res.stdout


def _in_child(path: Path) -> list:
    """Open (from the path, then from bytes) and load ``path`` in a child process: one
    line each, 'ok' or the exception's type and message (of a struct_ops refusal, the
    part naming the map); a crash fails the test."""
    import subprocess

    code = (f"import pylibbpf\nfor src in ({str(path)!r}, open({str(path)!r}, 'rb').read()):\n"
            "    try:\n        with pylibbpf.Object(src) as o:\n"
            "            o.load()\n        print('ok')\n"
            "    except pylibbpf.BPFError as e:\n"
            "        msg = str(e).partition(': corrupt struct_ops data: ')[2] or str(e)\n"
            "        print(type(e).__name__, msg.replace('\\n', ' | '))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, **same_pylibbpf())
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-500:]}"
    return [line.replace(" [EINVAL]", "") for line in res.stdout.splitlines()]


# --- struct_ops layouts libbpf 1.5 trusts (shims.c: pylibbpf_object_precheck) -------------

def _sections(data: bytes) -> dict:
    """name -> (file offset, size, link) of the sections of a 64-bit little-endian ELF."""
    import struct

    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = hdrs[shstrndx][4]
    out = {}
    for h in hdrs:
        name = data[names + h[0]:data.index(b"\0", names + h[0])].decode(errors="replace")
        out[name] = (h[4], h[5], h[6])
    return out


def _btf_types(data: bytes) -> list:
    """(name, file offset, kind, vlen) of each BTF type in the object's .BTF section."""
    import struct

    base = _sections(data)[".BTF"][0]
    hdr_len, type_off, type_len, str_off = struct.unpack_from("<IIII", data, base + 4)
    types, strs = base + hdr_len + type_off, base + hdr_len + str_off
    extra = {1: 4, 3: 12, 4: 12, 5: 12, 6: 8, 13: 8, 14: 4, 15: 12, 17: 4, 19: 12}
    per_member = {4, 5, 6, 13, 15, 19}
    out, pos = [], types
    while pos < types + type_len:
        name_off, info = struct.unpack_from("<II", data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        name = data[strs + name_off:data.index(b"\0", strs + name_off)].decode()
        out.append((name, pos, kind, vlen))
        pos += 12 + extra.get(kind, 0) * (vlen if kind in per_member else 1)
    return out


def _struct(data: bytes, name: str) -> tuple:
    """(file offset, vlen) of struct ``name`` in the object's BTF."""
    return next((pos, vlen) for n, pos, kind, vlen in _btf_types(data) if n == name and kind == 4)


def _member(data: bytes, struct_name: str, member: str) -> int:
    """File offset of the btf_member ``member`` of ``struct_name``."""
    import struct

    pos, vlen = _struct(data, struct_name)
    base = _sections(data)[".BTF"][0]
    hdr_len, _, _, str_off = struct.unpack_from("<IIII", data, base + 4)
    strs = base + hdr_len + str_off
    for i in range(vlen):
        at = pos + 12 + 12 * i
        name_off, = struct.unpack_from("<I", data, at)
        if data[strs + name_off:data.index(b"\0", strs + name_off)] == member.encode():
            return at
    raise KeyError(member)


def _symbol(data: bytes, name: str) -> int:
    """File offset of the ELF symbol ``name``."""
    import struct

    secs = _sections(data)
    off, size, link = secs[".symtab"]
    strtab = secs[".strtab"][0]
    for at in range(off, off + size, 24):
        st_name, = struct.unpack_from("<I", data, at)
        if data[strtab + st_name:data.index(b"\0", strtab + st_name)] == name.encode():
            return at
    raise KeyError(name)


def _shrink_below_init(d: bytearray) -> None:
    import struct

    at = _member(bytes(d), "tcp_congestion_ops", "init")
    init_off = struct.unpack_from("<I", d, at + 8)[0] // 8
    struct.pack_into("<I", d, _struct(bytes(d), "tcp_congestion_ops")[0] + 8, init_off + 4)


def _wrap_legacy_offset(d: bytearray) -> None:
    import struct

    struct.pack_into("<Q", d, _symbol(bytes(d), "plb_cc_legacy") + 8, 0xFFFFFFF0)


def _struct_ops_in_maps(d: bytearray) -> None:
    import struct

    # init_calls' __uint(type, ...) is the element count of an array type: the first
    # array type in this object's BTF, BPF_MAP_TYPE_ARRAY (2) elements of int
    for _, pos, kind, _ in _btf_types(bytes(d)):
        if kind == 3 and struct.unpack_from("<I", d, pos + 20)[0] == 2:
            struct.pack_into("<I", d, pos + 20, 26)  # BPF_MAP_TYPE_STRUCT_OPS
            return
    raise AssertionError("no map type array found")


def _bitfield_not_in_kernel(d: bytearray) -> None:
    import struct

    pos = _struct(bytes(d), "tcp_congestion_ops")[0]
    name_off, info = struct.unpack_from("<II", d, pos)
    struct.pack_into("<I", d, pos + 4, info | 1 << 31)  # kind_flag: offsets carry bit sizes
    at = _member(bytes(d), "tcp_congestion_ops", "flags")
    off, = struct.unpack_from("<I", d, at + 8)
    struct.pack_into("<I", d, at + 8, 32 << 24 | off)  # __u32 flags:32
    # renamed to a member the kernel's struct lacks: libbpf then tests it for zeroes
    # at its raw offset / 8, 64 MiB past its copy of the struct
    struct.pack_into("<I", d, at, name_off)


@pytest.mark.parametrize("mutate, message", [
    # libbpf's "variable beyond the end of its section" check adds in 32 bits and wraps:
    # it copied 192 bytes from 4 GiB past the section (SIGSEGV at open)
    (_wrap_legacy_offset, "struct_ops map 'plb_cc_legacy' (struct tcp_congestion_ops, 192 bytes "
                          "at offset 4294967280) lies past the end of section .struct_ops "
                          "(192 bytes)"),
    # a relocated function pointer written past the struct's copy (heap overflow at open);
    # refused by the BTF check (members inside their struct) before the struct_ops one
    # (the struct's type ID is whatever clang gave it: filled in below)
    (_shrink_below_init, "corrupt BTF: BTF type [{struct_id}] (struct 'tcp_congestion_ops'): "
                         "member 16 'init' ends at bit 1152, past the 140 bytes of the struct"),
    # libbpf takes any map of that type for a struct_ops map: NULL struct_ops data
    (_struct_ops_in_maps, "map 'init_calls' in section .maps is declared "
                          "BPF_MAP_TYPE_STRUCT_OPS"),
    # at load libbpf places a bitfield by its raw offset, bit size included (SIGSEGV)
    (_bitfield_not_in_kernel, "struct_ops map 'plb_cc': member 'tcp_congestion_ops' of struct "
                              "tcp_congestion_ops is a bitfield"),
], ids=["offset-wraps", "member-outside", "struct-ops-in-maps", "bitfield"])
def test_corrupt_struct_ops_layouts_are_clean_errors(bpf_objects, tmp_path, mutate,
                                                     message) -> None:
    """One-field corruptions of a struct_ops object, each of which crashed (or corrupted
    memory in) libbpf 1.5, are refused with ELFError naming the map and member."""
    data = bytearray(bpf_objects["attach_struct_ops"].read_bytes())
    message = message.format(struct_id=_btf_id(bytes(data), "tcp_congestion_ops", 4)[0])
    mutate(data)
    path = tmp_path / "corrupt.bpf.o"
    path.write_bytes(bytes(data))
    out = _in_child(path)
    assert len(out) == 2 and all(line.startswith("ELFError ") and message in line
                                 for line in out), out


def test_struct_ops_initial_value_is_the_objects_struct(bpf_objects, tmp_path) -> None:
    """libbpf answers a struct_ops map's initial value (its copy of the object's struct)
    with the map's value_size: the kernel's larger struct after load, or whatever it was
    set to. pylibbpf reads the struct's size."""
    import subprocess

    code = (f"import pylibbpf\no = pylibbpf.Object({str(bpf_objects['attach_struct_ops'])!r})\n"
            "m = o.maps['plb_cc_legacy']\nn = len(m.initial_value)\n"
            "m.value_size = 1 << 26\nprint(n, m.value_size, len(m.initial_value))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, **same_pylibbpf())
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-500:]}"
    assert res.stdout.split() == ["192", str(1 << 26), "192"]
    with pylibbpf.Object(bpf_objects["attach_struct_ops"]) as obj:
        for m in obj.maps.values():
            if m.type == pylibbpf.MapType.STRUCT_OPS and m.flags & (1 << 13):
                m.autocreate = False  # kernels without struct_ops links
        obj.load()
        m = obj.maps["plb_cc_legacy"]
        assert m.value_size > 192 and len(m.initial_value) == 192


def test_global_data_max_entries_is_refused(bpf_objects) -> None:
    """libbpf would unmap the wrong size later and corrupt memory (found by fuzzing)."""
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        with pytest.raises(ValueError, match="memory-mapped global data"):
            obj.maps[".rodata"].max_entries = 64
        obj.maps["actions"].max_entries = 8  # ordinary maps still resize
        obj.load()
        assert obj.maps["actions"].info().max_entries == 8


# --- BTF reference cycles and impossible sizes (shims.c: pylibbpf_btf_graph_check) -------

def _btf_id(data: bytes, name: str, kind: int) -> tuple:
    """(type ID, file offset) of the first BTF type ``name`` of ``kind``."""
    return next((i, pos) for i, (n, pos, k, _) in enumerate(_btf_types(data), 1)
                if n == name and k == kind)


def _typedef_to_itself(d: bytearray) -> int:
    import struct

    # pid_t: task_struct's pid, read with CO-RE; libbpf's relocation loops on it for ever
    tid, pos = _btf_id(bytes(d), "pid_t", 8)
    struct.pack_into("<I", d, pos + 8, tid)
    return tid


def _typedef_loop(d: bytearray) -> int:
    import struct

    # pid_t -> __kernel_pid_t -> back to pid_t
    tid, _ = _btf_id(bytes(d), "pid_t", 8)
    _, pos = _btf_id(bytes(d), "__kernel_pid_t", 8)
    struct.pack_into("<I", d, pos + 8, tid)
    return tid


def _struct_holds_itself(d: bytearray) -> int:
    import struct

    tid, _ = _btf_id(bytes(d), "seen", 4)
    struct.pack_into("<I", d, _member(bytes(d), "seen", "tgid") + 4, tid)
    return tid


def _array_of_itself(d: bytearray) -> int:
    import struct

    # the type of struct seen's comm: char[16]
    at = _member(bytes(d), "seen", "comm")
    tid, = struct.unpack_from("<I", d, at + 4)
    struct.pack_into("<I", d, _btf_types(bytes(d))[tid - 1][1] + 12, tid)  # element type
    return tid


def _pointer_to_itself(d: bytearray) -> int:
    import struct

    tid, pos = next((i, pos) for i, (_, pos, k, _) in enumerate(_btf_types(bytes(d)), 1)
                    if k == 2)
    struct.pack_into("<I", d, pos + 8, tid)
    return tid


def _int_of_absurd_size(d: bytearray) -> int:
    import struct

    tid, pos = _btf_id(bytes(d), "unsigned int", 1)
    struct.pack_into("<I", d, pos + 8, 1 << 31)
    return tid


@pytest.mark.parametrize("mutate, message", [
    (_typedef_to_itself, "(typedef 'pid_t') refers back to itself: [{id}] -> [{id}]"),
    (_typedef_loop, "(typedef 'pid_t') refers back to itself: [{id}] -> [{next}] -> [{id}]"),
    (_struct_holds_itself, "(struct 'seen') refers back to itself: [{id}] -> [{id}]"),
    (_array_of_itself, "(array '') refers back to itself: [{id}] -> [{id}]"),
    (_pointer_to_itself, "(pointer '') refers back to itself: [{id}] -> [{id}] (a pointer "
                         "that never reaches a struct or union)"),
    (_int_of_absurd_size, "(int 'unsigned int'): 2147483648 bytes holding 32 bits at bit 0"),
], ids=["typedef-self", "typedef-loop", "struct-by-value", "array", "pointer", "int-size"])
def test_btf_cycles_and_absurd_sizes_are_refused(bpf_objects, tmp_path, mutate,
                                                 message) -> None:
    """A typedef naming itself made load() spin for ever inside libbpf's CO-RE code,
    with the GIL released (Ctrl-C did nothing). Such BTF is refused at open with
    ELFError naming the type, from a path and from bytes, and by vmlinux_h(). The
    child runs under a timeout, so a regression fails rather than hangs."""
    import struct
    import subprocess

    data = bytearray(bpf_objects["core_task"].read_bytes())
    tid = mutate(data)
    path = tmp_path / "cycle.bpf.o"
    path.write_bytes(bytes(data))
    nxt = struct.unpack_from("<I", data, _btf_types(bytes(data))[tid - 1][1] + 8)[0]
    expected = f"corrupt BTF: BTF type [{tid}] " + message.format(id=tid, next=nxt)
    code = (f"import pylibbpf, pylibbpf.btf\np = {str(path)!r}\n"
            "for src in (p, open(p, 'rb').read()):\n"
            "    try:\n        with pylibbpf.Object(src) as o:\n            o.load()\n"
            "        print('loaded')\n"
            "    except pylibbpf.BPFError as e:\n        print(type(e).__name__, e)\n"
            "try:\n    pylibbpf.btf.vmlinux_h(p)\n    print('dumped')\n"
            "except pylibbpf.BPFError as e:\n    print(type(e).__name__, e)\n")
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, **same_pylibbpf())
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"open/load/dump of the corrupt object hung: {e.stdout!r}")
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-500:]}"
    out = res.stdout.splitlines()
    assert len(out) == 3, out
    for line, what in zip(out, ("open BPF object ", "open BPF object <bytes>: ",
                                "load BTF from ")):
        assert line.startswith("ELFError " + what) and expected in line, (line, expected)


def _btf_blob(types: bytes, strings: bytes) -> bytes:
    import struct

    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                       len(strings)) + types + strings


def _split_btf_pair(tmp_path: Path) -> Tuple[Path, Path, bytes, bytes]:
    """A base BTF ([1] int, [2] typedef myint) and BTF split over it, as a kernel
    module's is over vmlinux: type ids go on from 3, string offsets from the base's
    string section's end ([3] typedef mod_t -> [2], [4] struct s { mod_t x; })."""
    import struct

    base = _btf_blob(struct.pack("<IIII", 1, 1 << 24, 4, 32) + struct.pack("<III", 5, 8 << 24, 1),
                     b"\0int\0myint\0")
    split_strings = b"\0mod_t\0s\0x\0"  # at 11: mod_t at 12, s at 18, x at 20
    split = _btf_blob(struct.pack("<III", 12, 8 << 24, 2)
                      + struct.pack("<III", 18, (4 << 24) | 1, 4) + struct.pack("<III", 20, 3, 0),
                      split_strings)
    (tmp_path / "base.btf").write_bytes(base)
    (tmp_path / "split.btf").write_bytes(split)
    return tmp_path / "base.btf", tmp_path / "split.btf", base, split


_SPLIT_FUZZ = """
import random, struct, sys
import pylibbpf, pylibbpf.btf
base, split, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = pylibbpf.btf.vmlinux_h(split, base_btf=base)
print("dump", "typedef myint mod_t;" in text and "struct s {" in text and "typedef int myint;" in text)
for what, args in (("alone", (split, None)), ("cycle", (sys.argv[5], base))):
    try:
        pylibbpf.btf.vmlinux_h(args[0], base_btf=args[1])
        print(what, "dumped")
    except pylibbpf.BPFError as e:
        print(what, type(e).__name__, str(e).replace(chr(10), " "))
seeds = {"split": open(split, "rb").read(), "base": open(base, "rb").read()}
values = [0, 1, 2, 3, 4, 5, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x01000000,
          0x08000000, 0x0D000000, 0x13000000, 0x04000001, 0x0400FFFF, 11, 12, 18, 20, 24]
rng = random.Random(7)
kinds = {}
escapes = []
for n in range(rounds):
    which = "split" if rng.random() < 0.8 else "base"
    data = bytearray(seeds[which])
    for _ in range(rng.choice((1, 1, 2, 3))):
        off = rng.randrange(0, len(data) - 3) & ~3 if rng.random() < 0.8 else rng.randrange(len(data))
        if off + 4 <= len(data):
            v = rng.choice(values) if rng.random() < 0.7 else rng.getrandbits(32)
            struct.pack_into("<I", data, off, v)
    if rng.random() < 0.05:
        data = data[:rng.randrange(len(data))]
    open(work, "wb").write(bytes(data))
    args = (work, base) if which == "split" else (split, work)
    try:
        pylibbpf.btf.vmlinux_h(args[0], base_btf=args[1])
        kinds["dumped"] = kinds.get("dumped", 0) + 1
    except pylibbpf.BPFError as e:
        kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
    except Exception as e:
        escapes.append(f"{n}:{type(e).__name__}:{e}")
print("kinds", sorted(kinds.items()))
print("escapes", len(escapes), escapes[:3])
"""


def test_split_btf_is_read_over_its_base_and_corrupt_split_btf_is_refused(tmp_path) -> None:
    """Split BTF (a kernel module's, over vmlinux) is read over its base by
    vmlinux_h(path, base_btf=...) and gets the same checks as any BTF: a typedef of the
    split naming itself is refused (libbpf's parse let it through: btf_dump would spin),
    split BTF read alone is an ELFError naming the file, and 1,000 mutations of the split
    and of its base (type records, header, strings, truncations) end in a dump or a
    BPFError, never a crash, a hang or another exception (the child has a timeout; a
    mutated struct size of gigabytes makes btf_dump write tens of MB of padding, slowly)."""
    import struct
    import subprocess

    base, split, _, split_bytes = _split_btf_pair(tmp_path)
    cycle = tmp_path / "cycle.btf"  # [3] typedef mod_t -> [3]
    data = bytearray(split_bytes)
    struct.pack_into("<I", data, 24 + 8, 3)
    cycle.write_bytes(bytes(data))
    try:
        res = subprocess.run([sys.executable, "-c", _SPLIT_FUZZ, str(base), str(split),
                              str(tmp_path / "work.btf"), "1000", str(cycle)],
                             capture_output=True, text=True, timeout=900, **same_pylibbpf())
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"reading mutated split BTF hung: {e.stdout!r}")
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-800:]}"
    out = dict(line.split(" ", 1) for line in res.stdout.splitlines())
    assert out["dump"] == "True", res.stdout
    assert out["alone"].startswith(f"ELFError load BTF from {str(split)}: "), out["alone"]
    assert out["cycle"] == (f"ELFError load BTF from {str(cycle)}: corrupt BTF: BTF type [3] "
                            "(typedef 'mod_t') refers back to itself: [3] -> [3] [EINVAL]"), \
        out["cycle"]
    assert out["escapes"].startswith("0 "), out["escapes"]
    assert "ELFError" in out["kinds"], out["kinds"]


def test_btf_with_a_name_that_is_not_utf8_is_an_elf_error(tmp_path) -> None:
    """Found by the split BTF mutations: vmlinux_h() raised UnicodeDecodeError."""
    base, split, _, split_bytes = _split_btf_pair(tmp_path)
    split.write_bytes(split_bytes.replace(b"mod_t", b"mo\xff_t"))
    with pytest.raises(pylibbpf.ELFError) as ei:
        pylibbpf.btf.vmlinux_h(split, base_btf=base)
    assert str(ei.value).startswith(f"dump BTF of {str(split)}: corrupt BTF: a name that is "
                                    "not UTF-8 (invalid start byte at byte "), str(ei.value)


# --- FIFOs and devices where a file is expected -------------------------------------------

@pytest.mark.parametrize("call, what, cls", [
    ("pylibbpf.Object(p)", "BPF object", "ELFError"),
    ("pylibbpf.Object(obj, btf_custom_path=p)", "BTF file", "ELFError"),
    ("pylibbpf.elf.functions(p)", "binary", "ELFError"),
    ("pylibbpf.elf.symbol_index(p)", "binary", "ELFError"),
    ("pylibbpf.elf.resolve(p, 'main')", "binary", "ELFError"),
    ("pylibbpf.symbolize.ElfSymbols(p)", "binary", "ELFError"),
    ("pylibbpf.symbolize.KernelSymbols(p)", "kernel symbol file", "BPFError"),
    ("pylibbpf.btf.vmlinux_h(p)", "BTF file", "ELFError"),
    ("pylibbpf.vmlinux_h_path(p)", "BTF file", "BPFError"),
    ("pylibbpf.compile(p, p + '.o')", "BPF source", "BPFError"),
], ids=["Object", "btf_custom_path", "elf.functions", "elf.symbol_index", "elf.resolve",
        "ElfSymbols", "KernelSymbols", "vmlinux_h", "vmlinux_h_path", "compile"])
def test_fifos_are_refused_not_read(bpf_objects, tmp_path, call, what, cls) -> None:
    """Every path pylibbpf reads must be a regular file: a FIFO blocked open() or the
    first read for ever (inside libbpf, libelf or pyelftools: Ctrl-C did nothing).
    The child runs under a timeout, so a regression fails rather than hangs."""
    import subprocess

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = ("import pylibbpf, pylibbpf.btf, pylibbpf.elf, pylibbpf.symbolize\n"
            f"p, obj = {str(fifo)!r}, {str(bpf_objects['core_task'])!r}\n"
            f"try:\n    {call}\n    print('no error')\n"
            "except pylibbpf.BPFError as e:\n"
            "    print(type(e).__name__, isinstance(e, getattr(pylibbpf, "
            f"{cls!r})), e)\n")
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, **same_pylibbpf())
    except subprocess.TimeoutExpired:
        pytest.fail(f"{call} blocked on a FIFO")
    assert res.returncode == 0, res.stderr[-500:]
    assert res.stdout.split(" ", 1)[1].startswith(
        f"True {what} '{fifo}' is a FIFO (named pipe), not a regular file"), res.stdout


def test_valid_btf_passes_the_checks(bpf_objects) -> None:
    """The BTF checks ask only what compilers and the kernel produce: every test object
    opens, and the running kernel's BTF passes them."""
    from pylibbpf._ffi import ffi, lib

    for path in bpf_objects.values():
        pylibbpf.Object(path).close()
        pylibbpf.Object(path.read_bytes()).close()
    btf = lib.btf__load_vmlinux_btf()
    assert btf != ffi.NULL
    try:
        msg = ffi.new("char[]", 512)
        assert lib.pylibbpf_btf_check(btf, msg, 512) == 0, ffi.string(msg)
    finally:
        lib.btf__free(btf)


def test_a_fifo_as_network_namespace_is_refused(tmp_path) -> None:
    """in_netns() opened the path blocking: a FIFO's open waited for a writer for ever."""
    import subprocess

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = ("import pylibbpf\ntry:\n"
            f"    with pylibbpf.in_netns({str(fifo)!r}):\n        print('entered')\n"
            "except pylibbpf.BPFError as e:\n    print(type(e).__name__, e)\n")
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, **same_pylibbpf())
    except subprocess.TimeoutExpired:
        pytest.fail("in_netns() blocked on a FIFO")
    assert res.stdout.startswith(f"BPFError enter network namespace ({fifo}): Invalid "
                                 "argument"), res.stdout + res.stderr


UNSIZED_MAPS = '''#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 32 * sizeof(__u64));
} stackmap SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
} novalue SEC(".maps");
SEC("tp/syscalls/sys_enter_getpgid")
int p(void *ctx) { __u32 k = 0; bpf_map_lookup_elem(&novalue, &k);
                   return bpf_get_stackid(ctx, &stackmap, 0); }
char LICENSE[] SEC("license") = "GPL";
'''


def test_map_left_unsized_says_which_size_to_set(tmp_path, monkeypatch) -> None:
    """A map whose max_entries or value_size is 0 (a stack map declared without
    max_entries): the kernel says EINVAL; the error names the map and the field,
    and how to set it before load(), which then works."""
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path))
    path = pylibbpf.compile(text=UNSIZED_MAPS, name="unsized")
    hints = []
    sizes = {"max_entries": 16, "value_size": 8}
    fixed: dict = {}
    for _ in range(2):  # each load names one map (libbpf stops at the first)
        with pylibbpf.Object(path, name="unsized") as obj:
            for (m, field), n in fixed.items():
                setattr(obj.maps[m], field, n)
            with pytest.raises(pylibbpf.BPFError) as exc:
                obj.load()
        assert exc.value.errno == errno.EINVAL
        assert str(exc.value).startswith("load BPF object 'unsized': Invalid argument")
        hint = str(exc.value).split("\n  hint: ", 1)[1]
        hints.append(hint)
        m, field = hint.split("'")[1], hint.split(" has ")[1].split()[0]
        fixed[(m, field)] = sizes[field]
    hints.sort(key=lambda h: "stackmap" not in h)
    assert hints[0] == ("map 'stackmap' (stack_trace) has max_entries 0: give it one in the "
                        "BPF source (__uint(max_entries, N)), or set "
                        "obj.maps['stackmap'].max_entries = N before load() [EINVAL]")
    assert hints[1] == ("map 'novalue' (hash) has value_size 0: give it one in the BPF source "
                        "(__type(value, T) or __uint(value_size, N)), or set "
                        "obj.maps['novalue'].value_size = N before load() [EINVAL]")
    with pylibbpf.Object(path, name="unsized") as obj:
        obj.maps["stackmap"].max_entries = 16
        obj.maps["novalue"].value_size = 8
        obj.load()
        assert obj.maps["stackmap"].max_entries == 16


@pytest.mark.parametrize("kw, field", [
    (dict(key_type="I", value_type="Q", max_entries=0), "max_entries"),
    (dict(key_size=4, value_size=0, max_entries=4), "value_size"),
])
def test_map_create_unsized_names_the_field(kw, field) -> None:
    with pytest.raises(pylibbpf.BPFError) as exc:
        pylibbpf.Map.create("hash", **kw)
    assert str(exc.value) == (f"create hash map '(unnamed)': Invalid argument\n"
                              f"  hint: {field} is 0: a hash map needs one [EINVAL]")


def test_sized_to_zero_where_libbpf_sizes_it_is_no_hint(tmp_path, monkeypatch) -> None:
    """A perf event array's max_entries and a ring buffer's value_size are 0 in
    the source: no hint for them (nothing fails)."""
    from pylibbpf.map import zero_size_field
    from pylibbpf.types import MapType

    assert zero_size_field(MapType.PERF_EVENT_ARRAY, 0, 4) == ""
    assert zero_size_field(MapType.RINGBUF, 4096, 0) == ""
    assert zero_size_field(MapType.SK_STORAGE, 0, 8) == ""
    assert zero_size_field(MapType.ARRAY, 0, 8) == "max_entries"


def test_symbolic_errno_names_cover_kernel_and_libbpf_codes() -> None:
    """Every message ends in the errno's name, also for the kernel's internal
    codes that reach user space (ENOTSUPP, 524, which os.strerror() cannot name)
    and libbpf's own (4000+)."""
    from pylibbpf.errors import error_from_errno, errno_name

    cases = {524: ("Operation not supported", "ENOTSUPP"), 7: ("Argument list too long", "E2BIG"),
             4001: ("BPF object format invalid", "LIBBPF_ERRNO__FORMAT"),
             4007: ("kernel verifier blocks program loading", "LIBBPF_ERRNO__VERIFY"),
             525: ("Buffer or request is too small", "ETOOSMALL"),
             512: ("Interrupted system call, to be restarted", "ERESTARTSYS")}
    for err, (text, name) in cases.items():
        exc = error_from_errno(err, "do x")
        assert str(exc) == f"do x: {text} [{name}]"
        assert errno_name(-err) == name
    assert errno_name(3999) == "3999"
    exc = pylibbpf.VerifierError(524, "prog", "")
    assert "Operation not supported" in str(exc) and "Unknown error" not in str(exc)
