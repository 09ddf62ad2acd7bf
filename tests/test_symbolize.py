"""Symbolization: kernel addresses through kallsyms, user addresses through
/proc/PID/maps and ELF symbols (C++ demangled), on stacks recorded by BPF."""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import pylibbpf
from pylibbpf import elf
from pylibbpf.symbolize import Frame, KernelSymbols, Symbolizer, kernel_symbols

CXX = r"""
#include <cstdio>
#include <unistd.h>
namespace shapes {
struct Circle {
    int area(int r) __attribute__((noinline));
};
int Circle::area(int r) { volatile int x = 3 * r * r; getpgid(0); return x; }
}
int outer(shapes::Circle &c, int n) __attribute__((noinline));
int outer(shapes::Circle &c, int n) { return c.area(n) + 1; }
int main() {
    shapes::Circle c;
    char line[16];
    printf("%p\n", (void *)&outer);
    fflush(stdout);
    while (fgets(line, sizeof line, stdin))   /* one call per input line */
        printf("%d\n", outer(c, 2)), fflush(stdout);
    return 0;
}
"""


@pytest.fixture(scope="module")
def cxx_prog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (Debian package g++)")
    d = tmp_path_factory.mktemp("symbolize")
    (d / "shapes.cpp").write_text(CXX)
    exe = d / "shapes"
    subprocess.run(["g++", "-O1", "-g0", "-fno-omit-frame-pointer", "-o", str(exe),
                    str(d / "shapes.cpp")], check=True)
    return exe


@pytest.fixture
def running(cxx_prog: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([str(cxx_prog)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_kernel_address_to_function() -> None:
    ks = kernel_symbols()
    assert isinstance(ks, KernelSymbols) and len(ks) > 1000
    addr = ks.address_of("do_sys_openat2")
    assert addr
    f = ks.lookup(addr + 0x10)
    assert (f.name, f.offset, f.module) == ("do_sys_openat2", 0x10, "kernel")
    assert str(f) == "do_sys_openat2+0x10 [kernel]"


def test_user_address_in_libc_of_this_process() -> None:
    libc = ctypes.CDLL(elf.find_library("c"))
    addr = ctypes.cast(libc.getpgid, ctypes.c_void_p).value
    assert addr is not None
    f = Symbolizer().user(os.getpid(), addr + 4)
    assert f.name == "getpgid" and f.offset == 4 and f.module.startswith("libc")


def test_unknown_addresses() -> None:
    s = Symbolizer()
    f = s.user(os.getpid(), 0x10)  # mapped nowhere
    assert f.name is None and f.function == "[unknown]"
    why = f"no executable file mapping of process {os.getpid()} holds it"
    assert f.reason == why and str(f) == f"0x10 ({why})"
    f = s.stack([0x10])
    assert f[0].name is None and f[0].reason == "a user-space address, and no pid given"


def test_cxx_function_address_from_the_process_is_demangled(running) -> None:
    addr = int(running.stdout.readline(), 16)  # the program prints &outer
    f = Symbolizer().user(running.pid, addr)
    assert f.name == "outer(shapes::Circle&, int)" and f.offset == 0
    assert f.module == "shapes"


#: slot of tool_stacks.bpf.c's ``ids`` -> the stack map that slot's stack is in
_STACK_MAPS = ("method_stacks", "kernel_stacks", "user_stacks")


def _stack(obj: pylibbpf.Object, slot: int) -> List[int]:
    sid = obj.maps["ids"][slot]
    if sid < 0:
        err = 1 - sid
        pytest.fail(f"slot {slot}: bpf_get_stackid failed with -{errno.errorcode.get(err, err)}")
    assert sid > 0, f"no stack recorded in slot {slot}"
    stack = obj.maps[_STACK_MAPS[slot]][sid - 1]
    assert stack, f"slot {slot}: stack id {sid - 1} holds no frames"
    return stack


def test_stacks_recorded_by_bpf_symbolize(bpf_objects, cxx_prog: Path, running) -> None:
    """A uprobe on Circle::area records the user stack: area <- outer <- main,
    demangled; the getpgid() inside records a kernel stack (syscall entry) and
    a user stack from getpgid down to main."""
    running.stdout.readline()
    with pylibbpf.Object(bpf_objects["tool_stacks"]) as obj:
        obj.rodata.target_tgid = running.pid
        obj.load()
        with obj.programs["on_method"].attach_uprobe(cxx_prog, "shapes::Circle::area(int)",
                                                     pid=running.pid), \
                obj.programs["on_getpgid"].attach():
            running.stdin.write("go\n")
            running.stdin.flush()
            assert running.stdout.readline().strip() == "13"  # 3*2*2 + 1
        sym = Symbolizer()
        user = [f.name for f in sym.user_stack(running.pid, _stack(obj, 0))]
        assert user[:3] == ["shapes::Circle::area(int)", "outer(shapes::Circle&, int)",
                            "main"], user
        kernel = sym.kernel_stack(_stack(obj, 1))
        names = [f.name for f in kernel]
        assert "do_syscall_64" in names, names
        assert all(isinstance(f, Frame) and f.module == "kernel" for f in kernel)
        mixed = sym.stack(_stack(obj, 1) + _stack(obj, 2), pid=running.pid)
        mixed_names = [f.name for f in mixed]
        assert "do_syscall_64" in mixed_names
        # (getpgid in libc has no frame of its own: frame pointers skip area's frame)
        assert "outer(shapes::Circle&, int)" in mixed_names and "main" in mixed_names
        assert any(n and n.startswith("getpgid") for n in mixed_names)


def test_forget_rereads_mappings_after_exec(tmp_path) -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.1)
        s = Symbolizer()
        maps = [m for m in elf.process_maps(proc.pid) if "x" in m.perms]
        libc = next(m for m in maps if os.path.basename(m.path).startswith("libc"))
        idx = elf.symbol_index(libc.path)
        sym = next(x for x in idx.functions("getpgid"))
        assert sym.offset is not None
        addr = libc.start + sym.offset - libc.offset
        assert s.user(proc.pid, addr).name == "getpgid"
        s.forget(proc.pid)
        assert s.user(proc.pid, addr).name == "getpgid"
    finally:
        proc.kill()
        proc.wait()


# --- short-lived processes -------------------------------------------------------------

def _record_method_stack(bpf_objects, exe: Path, proc: "subprocess.Popen[str]") -> List[int]:
    """The user stack at shapes::Circle::area in ``proc`` (running ``exe``),
    recorded by BPF; ``proc`` then exits (its stdin closed) and is reaped."""
    with pylibbpf.Object(bpf_objects["tool_stacks"]) as obj:
        obj.rodata.target_tgid = proc.pid
        obj.load()
        with obj.programs["on_method"].attach_uprobe(exe, "shapes::Circle::area(int)",
                                                     pid=proc.pid):
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "13"
        stack = _stack(obj, 0)
    proc.stdin.close()
    assert proc.wait(10) == 0
    return stack


def _start(exe: Path) -> "subprocess.Popen[str]":
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # &outer: it runs
    return proc


METHOD_STACK = ["shapes::Circle::area(int)", "outer(shapes::Circle&, int)", "main"]


def test_stack_of_an_exited_process_says_why(bpf_objects, cxx_prog: Path) -> None:
    """Read after the process exited by a Symbolizer that never saw it: every
    frame is unknown, and says the process exited (no bare hex)."""
    proc = _start(cxx_prog)
    stack = _record_method_stack(bpf_objects, cxx_prog, proc)
    frames = Symbolizer().user_stack(proc.pid, stack)
    why = f"process {proc.pid} exited before its mappings were read"
    assert [(f.name, f.reason) for f in frames] == [(None, why)] * len(stack)
    assert str(frames[0]) == f"{stack[0]:#x} ({why})"


def test_first_sight_keeps_mappings_after_exit(bpf_objects, cxx_prog: Path) -> None:
    """bcc's BPF.sym caching: a process looked up once while it ran keeps its
    mappings, so its stacks read after it exited still resolve."""
    proc = _start(cxx_prog)
    sym = Symbolizer()
    assert sym.user(proc.pid, 0x10).name is None  # first sight: mappings cached
    stack = _record_method_stack(bpf_objects, cxx_prog, proc)
    frames = sym.user_stack(proc.pid, stack)
    assert [f.name for f in frames][:3] == METHOD_STACK, [str(f) for f in frames]
    sym.forget(proc.pid)
    assert sym.user_stack(proc.pid, stack)[0].reason == \
        f"process {proc.pid} exited before its mappings were read"


def test_remember_keeps_symbols_of_a_file_deleted_before_exit(bpf_objects, cxx_prog: Path,
                                                             tmp_path: Path) -> None:
    """remember() reads the symbols of every mapped file at once: a binary
    deleted while its process ran (a build tree cleaned, an upgrade) still
    symbolizes after exit. Seen but not remembered, its frames say the file
    could not be read before the process exited."""
    exe = tmp_path / "shapes-copy"
    shutil.copy2(cxx_prog, exe)
    proc = _start(exe)
    remembered, seen = Symbolizer(), Symbolizer()
    remembered.remember(proc.pid)
    seen.user(proc.pid, 0x10)
    stack = _record_method_stack(bpf_objects, exe, proc)
    exe.unlink()
    names = [f.name for f in remembered.user_stack(proc.pid, stack)]
    assert names[:3] == METHOD_STACK, names
    top = seen.user_stack(proc.pid, stack)[0]
    assert top.name is None and top.module == "shapes-copy"
    assert top.reason is not None and top.reason.startswith(
        f"process {proc.pid} exited before {exe} was read"), top.reason
    assert "does not exist" in top.reason


def test_remember_errors_name_the_pid() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(pylibbpf.BPFNotFoundError, match=f"no process with pid {proc.pid}"):
        Symbolizer().remember(proc.pid)
