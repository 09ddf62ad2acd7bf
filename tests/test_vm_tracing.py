"""Attach kinds the host kernel cannot run, proven on Debian's stock kernels in a VM.

kprobe/kretprobe (offset, cookie), ksyscall, kprobe.multi (pattern, list, session),
fentry/fexit, fmod_ret, LSM (a denied operation fails with the errno the program
chose), sleepable lsm.s, fentry.s (refused without error injection), freplace and
tp_btf: each test loads one program of tests/bpf/vm_tracing.bpf.c (compiled on the
host; CO-RE relocates it), triggers it from this process and checks that it ran, with
the arguments, return value and cookie it should have seen; then detaches and checks
that it stopped.

Marked ``vm``: skipped on the host, run inside the VM by tests/vm/run.py; the host's
tests/test_vm_matrix.py reports each result per kernel. What each Debian kernel can do
(from its config) is in KERNELS below; docs/kernel-matrix.md has the table.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct
from contextlib import contextmanager
from typing import Any, Dict, Iterator, NamedTuple

import pytest

import pylibbpf

IN_VM = os.environ.get("PYLIBBPF_IN_VM") == "1"
pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(not IN_VM, reason="runs inside the kernel-matrix VM (tests/vm/run.py); "
                                         "tests/test_vm_matrix.py reports its results"),
]

# What the Debian kernels of the matrix can do (from their /boot/config-*):
#   fprobe: CONFIG_FPROBE (kprobe.multi, Linux 5.18+); session: kprobe.session (6.10+);
#   fentry_s: a function on the error-injection list (CONFIG_FUNCTION_ERROR_INJECTION).
KERNELS: Dict[str, Dict[str, bool]] = {
    "6.1": {"fprobe": False, "session": False, "fentry_s": False, "trace_cookie": True},
    "6.12": {"fprobe": True, "session": True, "fentry_s": False, "trace_cookie": True},
}
KERNEL = os.environ.get("PYLIBBPF_VM_KERNEL", ".".join(platform.release().split(".")[:2]))
CAN = KERNELS.get(KERNEL, {})

# slot ids, as in vm_tracing.bpf.c
(S_KPROBE, S_KRETPROBE, S_KPROBE_OFFSET, S_KSYSCALL, S_KRETSYSCALL, S_MULTI, S_MULTI_RET,
 S_SESSION, S_FENTRY, S_FEXIT, S_FMOD_RET, S_LSM, S_LSM_S, S_FENTRY_S, S_TP_BTF,
 S_FMOD_RET_SYSCALL) = range(16)

MARK = 0x7FFF0000          # getpgid() arguments the programs look for
UDP = socket.IPPROTO_UDP


class Slot(NamedTuple):
    hits: int
    cookie: int
    arg: int
    ret: int


def slot(obj: pylibbpf.Object, i: int) -> Slot:
    v: Any = obj.maps["slots"][i]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return Slot(*struct.unpack("<QQqq", bytes(v)[:32]))
    return Slot(v.hits, v.cookie, v.arg, v.ret)


def need(prog: pylibbpf.Program, method: str) -> Any:
    """The attach method, or a skip while it is not implemented yet."""
    fn = getattr(prog, method, None)
    if fn is None:
        pytest.skip(f"Program.{method}() is not implemented yet")
    return fn


@contextmanager
def loaded(bpf_objects: Dict[str, Any], *names: str) -> Iterator[pylibbpf.Object]:
    """vm_tracing with only ``names`` loaded, watching this process."""
    with pylibbpf.Object(bpf_objects["vm_tracing"]) as obj:
        for p in obj.programs.values():
            p.autoload = p.name in names
        obj.load()
        obj.maps["cfg"][0] = os.getpid()
        yield obj


def udp_socket(protocol: int = 0) -> int:
    """socket(AF_INET, SOCK_DGRAM, protocol); returns the fd number it had."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, protocol)
    try:
        return s.fileno()
    finally:
        s.close()


def getpgid_marked(n: int) -> None:
    for i in range(n):
        try:
            os.getpgid(MARK + i)        # no such process: fails, but the hooks run
        except ProcessLookupError:
            pass


# --- kprobes -----------------------------------------------------------------

def test_kprobe_fires_with_args_and_cookie(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kprobe") as obj:
        prog = obj.programs["on_kprobe"]
        with need(prog, "attach_kprobe")("__sys_socket", cookie=0xC0FFEE):
            udp_socket(UDP)
            udp_socket(0)
        s = slot(obj, S_KPROBE)
        assert (s.hits, s.cookie, s.arg) == (2, 0xC0FFEE, 0)
        udp_socket()
        assert slot(obj, S_KPROBE).hits == 2          # detached


def test_kretprobe_sees_the_return_value(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kretprobe") as obj:
        prog = obj.programs["on_kretprobe"]
        with need(prog, "attach_kprobe")("__sys_socket", retprobe=True, cookie=7):
            fd = udp_socket()
        s = slot(obj, S_KRETPROBE)
        assert (s.hits, s.cookie, s.ret) == (1, 7, fd)


def kernel_has_ibt() -> bool:
    config = f"/boot/config-{platform.release()}"     # bound into the guest by guest.sh
    with open(config) as f:
        return "CONFIG_X86_KERNEL_IBT=y" in f.read()


def test_kprobe_at_an_offset(bpf_objects) -> None:
    # A probe inside the function, right after its 5-byte ftrace call site, which
    # comes after a 4-byte endbr64 on kernels built with IBT (6.12 here, not 6.1):
    # an instruction boundary by construction (the kernel refuses others, EILSEQ).
    offset = 9 if kernel_has_ibt() else 5
    with loaded(bpf_objects, "on_kprobe_offset") as obj:
        prog = obj.programs["on_kprobe_offset"]
        with need(prog, "attach_kprobe")("__sys_socket", offset=offset, cookie=offset):
            udp_socket()
            udp_socket()
        s = slot(obj, S_KPROBE_OFFSET)
        assert (s.hits, s.cookie) == (2, offset)
        udp_socket()
        assert slot(obj, S_KPROBE_OFFSET).hits == 2


def test_kprobe_offset_inside_an_instruction_is_a_clean_error(bpf_objects) -> None:
    offset = 1          # inside endbr64 (IBT) or the ftrace nop: never a boundary
    with loaded(bpf_objects, "on_kprobe_offset") as obj:
        prog = obj.programs["on_kprobe_offset"]
        with pytest.raises(pylibbpf.BPFError, match="__sys_socket"):
            need(prog, "attach_kprobe")("__sys_socket", offset=offset).close()


def test_kprobe_by_section(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kprobe", "on_kretprobe") as obj:
        with obj.programs["on_kprobe"].attach(), obj.programs["on_kretprobe"].attach():
            fd = udp_socket(UDP)
        assert slot(obj, S_KPROBE)[:3] == (1, 0, UDP)
        assert slot(obj, S_KRETPROBE).ret == fd


def test_kprobe_missing_symbol_is_a_clean_error(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kprobe") as obj:
        prog = obj.programs["on_kprobe"]
        with pytest.raises(pylibbpf.BPFError, match="no_such_function_plb"):
            need(prog, "attach_kprobe")("no_such_function_plb")


def test_ksyscall_and_kretsyscall(bpf_objects) -> None:
    with loaded(bpf_objects, "on_ksyscall", "on_kretsyscall") as obj:
        entry = need(obj.programs["on_ksyscall"], "attach_ksyscall")
        exit_ = need(obj.programs["on_kretsyscall"], "attach_ksyscall")
        with entry("getpgid", cookie=11), exit_("getpgid", retprobe=True, cookie=12):
            getpgid_marked(3)
        s = slot(obj, S_KSYSCALL)
        assert (s.hits, s.cookie, s.arg) == (3, 11, MARK + 2)
        r = slot(obj, S_KRETSYSCALL)
        assert (r.hits, r.cookie, r.ret) == (3, 12, -errno.ESRCH)
        getpgid_marked(1)
        assert slot(obj, S_KSYSCALL).hits == 3


def test_ksyscall_by_section(bpf_objects) -> None:
    with loaded(bpf_objects, "on_ksyscall") as obj:
        with obj.programs["on_ksyscall"].attach():
            getpgid_marked(2)
        assert slot(obj, S_KSYSCALL)[:3] == (2, 0, MARK + 1)


# --- kprobe.multi --------------------------------------------------------------

def multi_counts(obj: pylibbpf.Object) -> Dict[int, int]:
    out = {}
    for k, v in obj.maps["multi_cookies"].items():
        key = k if isinstance(k, int) else struct.unpack("<Q", bytes(k))[0]
        out[key] = v if isinstance(v, int) else struct.unpack("<Q", bytes(v))[0]
    return out


def test_kprobe_multi_by_pattern(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kprobe_multi") as obj:
        attach = need(obj.programs["on_kprobe_multi"], "attach_kprobe_multi")
        if not CAN.get("fprobe"):
            with pytest.raises(pylibbpf.NotSupportedError):
                attach("__sys_socket*")
            return
        with attach("__sys_socket*"):
            udp_socket()
            udp_socket()
        assert slot(obj, S_MULTI).hits >= 2
        before = slot(obj, S_MULTI).hits
        udp_socket()
        assert slot(obj, S_MULTI).hits == before


def test_kprobe_multi_by_list_with_cookies(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kprobe_multi") as obj:
        attach = need(obj.programs["on_kprobe_multi"], "attach_kprobe_multi")
        syms, cookies = ["__sys_socket", "__sys_bind"], [0x5150, 0xB1D]
        if not CAN.get("fprobe"):
            with pytest.raises(pylibbpf.NotSupportedError):
                attach(symbols=syms, cookies=cookies)
            return
        with attach(symbols=syms, cookies=cookies):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with s:
                s.bind(("127.0.0.1", 0))
        assert multi_counts(obj) == {0x5150: 1, 0xB1D: 1}


def test_kretprobe_multi(bpf_objects) -> None:
    with loaded(bpf_objects, "on_kretprobe_multi") as obj:
        attach = need(obj.programs["on_kretprobe_multi"], "attach_kprobe_multi")
        if not CAN.get("fprobe"):
            with pytest.raises(pylibbpf.NotSupportedError):
                attach(symbols=["__sys_socket"], retprobe=True)
            return
        with attach(symbols=["__sys_socket"], cookies=[3], retprobe=True):
            udp_socket()
        assert slot(obj, S_MULTI_RET)[:2] == (1, 3)


def test_kprobe_session(bpf_objects) -> None:
    if not CAN.get("session"):
        # the kernel does not know the program's attach type: refused at load
        with pytest.raises(pylibbpf.BPFError):
            with loaded(bpf_objects, "on_kprobe_session") as obj:
                need(obj.programs["on_kprobe_session"], "attach_kprobe_multi")(
                    symbols=["__sys_socket"], session=True)
        return
    with loaded(bpf_objects, "on_kprobe_session") as obj:
        attach = need(obj.programs["on_kprobe_session"], "attach_kprobe_multi")
        with attach(symbols=["__sys_socket"], cookies=[5], session=True):
            udp_socket()
            udp_socket()
        s = slot(obj, S_SESSION)
        assert (s.hits, s.cookie, s.arg, s.ret) == (4, 5, 2, 2)   # 2 entries, 2 returns


# --- trampolines: fentry / fexit / fmod_ret / tp_btf ---------------------------

def test_fentry_fires_with_args(bpf_objects) -> None:
    with loaded(bpf_objects, "on_fentry") as obj:
        prog = obj.programs["on_fentry"]
        cookie = 0xF00D if CAN.get("trace_cookie") else 0
        with need(prog, "attach_trace")(cookie=cookie):
            udp_socket(UDP)
        s = slot(obj, S_FENTRY)
        assert (s.hits, s.cookie, s.arg) == (1, cookie, UDP)
        udp_socket(UDP)
        assert slot(obj, S_FENTRY).hits == 1


def test_fexit_sees_the_return_value(bpf_objects) -> None:
    with loaded(bpf_objects, "on_fexit") as obj:
        with need(obj.programs["on_fexit"], "attach_trace")():
            fd = udp_socket()
        s = slot(obj, S_FEXIT)
        assert (s.hits, s.ret) == (1, fd)


def test_fentry_fexit_by_section(bpf_objects) -> None:
    with loaded(bpf_objects, "on_fentry", "on_fexit") as obj:
        with obj.programs["on_fentry"].attach(), obj.programs["on_fexit"].attach():
            fd = udp_socket(UDP)
        assert slot(obj, S_FENTRY).arg == UDP
        assert slot(obj, S_FEXIT).ret == fd


def test_fmod_ret_changes_the_return_value(bpf_objects) -> None:
    with loaded(bpf_objects, "on_fmod_ret") as obj:
        with need(obj.programs["on_fmod_ret"], "attach_trace")():
            with pytest.raises(OSError) as exc:
                udp_socket(UDP)
            assert exc.value.errno == errno.EPROTONOSUPPORT
            udp_socket(0)                  # not the filtered protocol: unaffected
        assert slot(obj, S_FMOD_RET).hits == 1
        udp_socket(UDP)                    # detached: allowed again


def test_fmod_ret_on_a_syscall_is_refused_cleanly(bpf_objects) -> None:
    # needs CONFIG_FUNCTION_ERROR_INJECTION, which Debian's kernels lack
    with pytest.raises(pylibbpf.BPFError) as exc:
        with loaded(bpf_objects, "on_fmod_ret_syscall"):
            pass
    assert "on_fmod_ret_syscall" in str(exc.value)


def test_tp_btf_fires(bpf_objects) -> None:
    with loaded(bpf_objects, "on_tp_btf") as obj:
        with need(obj.programs["on_tp_btf"], "attach_trace")():
            getpgid_marked(2)
        s = slot(obj, S_TP_BTF)
        assert (s.hits, s.arg) == (2, MARK + 1)


def test_fentry_sleepable_is_refused_without_error_injection(bpf_objects) -> None:
    if CAN.get("fentry_s"):
        pytest.fail("update the test: this kernel allows fentry.s")
    with pytest.raises(pylibbpf.BPFError) as exc:
        with loaded(bpf_objects, "on_fentry_s"):
            pass
    text = f"{exc.value} {getattr(exc.value, 'log', '') or ''}"
    assert "sleepable" in text, text


# --- LSM --------------------------------------------------------------------

def test_lsm_denies_with_the_programs_errno(bpf_objects) -> None:
    with loaded(bpf_objects, "on_lsm") as obj:
        with need(obj.programs["on_lsm"], "attach_lsm")():
            with pytest.raises(PermissionError) as exc:
                udp_socket(UDP)
            assert exc.value.errno == errno.EPERM
            udp_socket(0)                  # other sockets are allowed
        assert slot(obj, S_LSM).hits == 1
        udp_socket(UDP)                    # detached: allowed again
        assert slot(obj, S_LSM).hits == 1


def test_lsm_by_section(bpf_objects) -> None:
    with loaded(bpf_objects, "on_lsm") as obj:
        with obj.programs["on_lsm"].attach():
            with pytest.raises(PermissionError):
                udp_socket(UDP)
        udp_socket(UDP)


def test_lsm_sleepable_reads_user_memory(bpf_objects) -> None:
    value = ctypes.c_uint64(0x1234_5678_9ABC_DEF0)
    with loaded(bpf_objects, "on_lsm_s") as obj:
        obj.maps["cfg"][1] = ctypes.addressof(value)
        with need(obj.programs["on_lsm_s"], "attach_lsm")():
            udp_socket(UDP)               # allowed: the program only reads
        s = slot(obj, S_LSM_S)
        assert s.hits == 1
        assert s.arg & 0xFFFF_FFFF_FFFF_FFFF == value.value


# --- freplace -------------------------------------------------------------------

XDP_DROP, XDP_PASS = 1, 2
PACKET = bytes(64)


def test_freplace_replaces_a_global_function(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["vm_freplace_target"]) as tobj, \
            pylibbpf.Object(bpf_objects["vm_freplace_target"]) as tobj2:
        tobj.load()
        tobj2.load()
        target = tobj.programs["vm_xdp_target"]
        other = tobj2.programs["vm_xdp_target"]
        assert target.test_run(PACKET).retval == XDP_PASS
        with pylibbpf.Object(bpf_objects["vm_freplace"]) as fobj:
            ext = fobj.programs["vm_new_decide"]
            need(ext, "set_attach_target")(target, "vm_decide")
            fobj.load()
            with need(ext, "attach_freplace")(target, "vm_decide"):
                assert target.test_run(PACKET).retval == XDP_DROP
                assert other.test_run(PACKET).retval == XDP_PASS
            assert target.test_run(PACKET).retval == XDP_PASS
            # the same extension, attached to another program with that function
            with ext.attach_freplace(other, "vm_decide"):
                assert other.test_run(PACKET).retval == XDP_DROP
            assert other.test_run(PACKET).retval == XDP_PASS


def test_freplace_by_section_uses_the_target_set_before_load(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["vm_freplace_target"]) as tobj:
        tobj.load()
        target = tobj.programs["vm_xdp_target"]
        with pylibbpf.Object(bpf_objects["vm_freplace"]) as fobj:
            ext = fobj.programs["vm_new_decide"]
            need(ext, "set_attach_target")(target, "vm_decide")
            fobj.load()
            with ext.attach():
                assert target.test_run(PACKET).retval == XDP_DROP
            assert target.test_run(PACKET).retval == XDP_PASS
