"""test_run, raw bytecode programs, socket filters, pinning."""
from __future__ import annotations

import errno
import socket
import struct

import pytest

import pylibbpf
from pylibbpf import ProgramType


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


BPF_EXIT = 0x95
MOV64_IMM = 0xB7
LDX_W = 0x61          # BPF_LDX | BPF_MEM | BPF_W
JGT_IMM = 0x25        # BPF_JMP | BPF_JGT | BPF_K


def len_filter(max_len: int) -> bytes:
    """Socket filter: keep packets whose skb->len <= max_len, drop longer ones."""
    return b"".join([
        insn(LDX_W, dst=2, src=1, off=0),            # r2 = skb->len
        insn(JGT_IMM, dst=2, off=2, imm=max_len),    # if r2 > max_len goto drop
        insn(MOV64_IMM, dst=0, imm=-1),              # r0 = keep everything
        insn(BPF_EXIT),
        insn(MOV64_IMM, dst=0, imm=0),               # drop: r0 = 0
        insn(BPF_EXIT),
    ])


def test_xdp_test_run_action_and_packet(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        res = prog.test_run(b"\xaa\x00" + b"\x11" * 62)
        assert res.retval == 3  # XDP_TX
        assert res.data_out == b"\xbb\xcc" + b"\x11" * 62
        res = prog.test_run(b"\x01" * 64)
        assert res.retval == 2 and res.data_out == b"\x01" * 64  # XDP_PASS, unchanged
        counts = {struct.unpack("I", k)[0]: struct.unpack("Q", v)[0]
                  for k, v in obj.maps["actions"].raw.items()}
        assert counts[3] == 1 and counts[2] == 1


def test_test_run_repeat_and_duration(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        res = obj.programs["xdp_rewrite"].test_run(b"\x01" * 64, repeat=1000)
        assert res.retval == 2 and res.duration_ns > 0
        assert res.duration == res.duration_ns / 1e9      # seconds, as perf_counter
        counts = obj.maps["actions"].raw[struct.pack("I", 2)]
        assert struct.unpack("Q", counts)[0] == 1000


def test_test_run_data_out_too_small(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        with pytest.raises(pylibbpf.BPFError) as ei:
            obj.programs["xdp_rewrite"].test_run(b"\x01" * 64, data_out_size=8)
        assert ei.value.errno == errno.ENOSPC
        assert "xdp_rewrite" in str(ei.value)


def test_test_run_short_frame_names_the_minimum(bpf_objects) -> None:
    """The kernel only says EINVAL to a runt frame; the error says what it takes."""
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        with pytest.raises(pylibbpf.BPFError) as ei:
            prog.test_run(b"\x01" * 10)
        err = ei.value
        assert err.errno == errno.EINVAL
        assert "test run of program 'xdp_rewrite' (xdp) with 10 bytes of data" in str(err)
        assert "xdp programs need at least 14 bytes of data (an Ethernet header" in str(err)
        with pytest.raises(pylibbpf.BPFError, match=r"pass data= of at least 14 bytes"):
            prog.test_run()
        assert prog.test_run(b"\x01" * 14).retval == 2   # the least it takes runs
    code = insn(MOV64_IMM, imm=0) + insn(BPF_EXIT)
    with pylibbpf.Program.load_raw(ProgramType.SOCKET_FILTER, code, name="sf") as sf:
        with pytest.raises(pylibbpf.BPFError, match=r"'sf' \(socket_filter\) with 13 bytes"
                                                    r"[\s\S]*at least 14 bytes"):
            sf.test_run(b"\0" * 13)
        with pytest.raises(pylibbpf.BPFError, match=r"with 8192 bytes[\s\S]*at most one page"):
            sf.test_run(b"\0" * 8192)


def test_test_run_bad_arguments(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        with pytest.raises(TypeError, match="data must be bytes-like"):
            prog.test_run("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="repeat"):
            prog.test_run(b"\0" * 64, repeat=-1)


def test_raw_load_and_test_run() -> None:
    code = insn(MOV64_IMM, imm=7) + insn(BPF_EXIT)
    with pylibbpf.Program.load_raw(ProgramType.SOCKET_FILTER, code, name="seven") as prog:
        assert prog.fd >= 0 and prog.type == ProgramType.SOCKET_FILTER
        info = prog.info()
        assert info.name == "seven" and info.xlated_len == len(code)
        assert prog.test_run(b"\0" * 64).retval == 7
        assert prog.log is None
    assert prog.closed
    with pytest.raises(pylibbpf.ClosedError):
        prog.fd


def test_raw_load_with_log() -> None:
    code = insn(MOV64_IMM, imm=0) + insn(BPF_EXIT)
    with pylibbpf.Program.load_raw("socket_filter", code, log_size=4096, log_level=2) as prog:
        assert prog.log is not None and "processed 2 insns" in prog.log


def test_raw_log_too_small_grows_and_keeps_program() -> None:
    code = insn(MOV64_IMM, imm=0) + insn(BPF_EXIT)
    with pylibbpf.Program.load_raw("socket_filter", code, log_size=16, log_level=2) as prog:
        assert prog.log is not None and "processed 2 insns" in prog.log


def test_raw_rejection_keeps_errno_and_gives_log() -> None:
    code = insn(BPF_EXIT)  # r0 never written
    with pytest.raises(pylibbpf.VerifierError) as ei:
        pylibbpf.Program.load_raw("socket_filter", code, name="noret")
    assert ei.value.errno == errno.EACCES
    assert "R0 !read_ok" in ei.value.log
    assert ei.value.program == "noret"


def test_raw_sleepable_and_expected_attach_type_are_passed() -> None:
    code = insn(MOV64_IMM, imm=0) + insn(BPF_EXIT)
    # socket filters cannot be sleepable: the kernel refuses, proving the flag went through
    with pytest.raises(pylibbpf.BPFError) as ei:
        pylibbpf.Program.load_raw("socket_filter", code, sleepable=True)
    assert ei.value.errno == errno.EINVAL
    with pylibbpf.Program.load_raw("cgroup_skb", code,
                                   expected_attach_type="cgroup_inet_egress") as prog:
        assert prog.type == ProgramType.CGROUP_SKB


def test_raw_bad_input_before_any_syscall() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        pylibbpf.Program.load_raw("socket_filter", b"\0" * 12)
    with pytest.raises(ValueError, match="multiple of 8"):
        pylibbpf.Program.load_raw("socket_filter", b"")
    with pytest.raises(TypeError, match="insns must be bytes-like"):
        pylibbpf.Program.load_raw("socket_filter", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown program type"):
        pylibbpf.Program.load_raw("not_a_type", insn(BPF_EXIT))


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.3)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return rx, tx


def _received(rx: socket.socket, tx: socket.socket, payload: bytes) -> bool:
    tx.sendto(payload, rx.getsockname())
    try:
        return rx.recv(4096) == payload
    except socket.timeout:
        return False


def test_raw_socket_filter_drops_and_passes_on_udp() -> None:
    rx, tx = _udp_pair()
    with rx, tx, pylibbpf.Program.load_raw("socket_filter", len_filter(8 + 32)) as prog:
        short, long = b"s" * 16, b"L" * 200
        assert _received(rx, tx, short) and _received(rx, tx, long)  # no filter yet
        prog.attach_socket(rx)
        assert _received(rx, tx, short)
        assert not _received(rx, tx, long)          # dropped by the filter
        prog.detach_socket(rx)
        assert _received(rx, tx, long)              # detached: passes again


def test_socket_filter_wrong_program_type() -> None:
    code = insn(MOV64_IMM, imm=2) + insn(BPF_EXIT)
    with pylibbpf.Program.load_raw("xdp", code) as prog, socket.socket() as s:
        with pytest.raises(pylibbpf.BPFError, match="type xdp, this needs socket_filter"):
            prog.attach_socket(s)


def test_program_pin_and_open_pinned(bpffs_dir) -> None:
    code = insn(MOV64_IMM, imm=5) + insn(BPF_EXIT)
    path = bpffs_dir / "prog"
    with pylibbpf.Program.load_raw("socket_filter", code, name="pinme") as prog:
        prog.pin(path)
        prog_id = prog.id
    with pylibbpf.Program.open_pinned(path) as again:
        assert again.id == prog_id and again.name == "pinme"
        assert again.type == ProgramType.SOCKET_FILTER
        assert again.test_run(b"\0" * 64).retval == 5
        again.unpin(path)
    assert not path.exists()
    with pytest.raises(FileNotFoundError, match=str(path)):
        pylibbpf.Program.open_pinned(path)


def test_object_program_pin(bpf_objects, bpffs_dir) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        prog.pin(bpffs_dir / "xdp")
    with pylibbpf.Program.open_pinned(bpffs_dir / "xdp") as p:  # outlives the Object
        assert p.type == ProgramType.XDP
        assert p.test_run(b"\xaa" + b"\0" * 63).retval == 3


def test_syscall_program_ctx_in_and_out(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["testrun"]) as obj:
        obj.load()
        prog = obj.programs["compute"]
        assert prog.type == ProgramType.SYSCALL
        ctx = struct.pack("<IIQ", 7, 5, 0)
        res = prog.test_run(ctx=ctx)
        assert res.retval == 12
        assert struct.unpack("<IIQ", res.ctx_out) == (7, 5, 7005)
        assert ctx == struct.pack("<IIQ", 7, 5, 0)  # the caller's bytes are untouched
        with pytest.raises(ValueError, match="syscall program"):
            prog.test_run(b"\0" * 64)


def test_skb_ctx_in_and_out(bpf_objects) -> None:
    # struct __sk_buff: mark is at offset 8; the kernel lets test runs set and read it
    with pylibbpf.Object(bpf_objects["testrun"]) as obj:
        obj.load()
        prog = obj.programs["mark_to_retval"]
        skb = bytearray(192)  # sizeof(struct __sk_buff)
        struct.pack_into("<I", skb, 8, 21)
        res = prog.test_run(b"\0" * 64, ctx=bytes(skb), repeat=1)
        assert res.retval == 42
        assert res.ctx_out is not None and struct.unpack_from("<I", res.ctx_out, 8)[0] == 22


def test_section_names_new_in_libbpf_1_7_have_attach_types(tmp_path) -> None:
    """libbpf 1.6/1.7 added SEC("uprobe.session") and SEC("fsession/…"), whose expected
    attach types pylibbpf did not know: reading them raised ValueError."""
    src = ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
           'SEC("fsession/do_nanosleep") int fs(void *ctx) { return 0; }\n'
           'SEC("uprobe.session") int us(void *ctx) { return 0; }\n'
           'char LICENSE[] SEC("license") = "GPL";\n')
    with pylibbpf.Object.from_source(text=src) as obj:
        fs, us = obj.programs["fs"], obj.programs["us"]
        assert fs.expected_attach_type == pylibbpf.AttachType.TRACE_FSESSION
        assert fs.expected_attach_type.libbpf_name == "trace_fsession"
        assert us.expected_attach_type == pylibbpf.AttachType.TRACE_UPROBE_SESSION
        assert us.expected_attach_type.libbpf_name == "trace_uprobe_session"
