"""The running kernel's BTF is parsed once per process and shared by every load
(pylibbpf/_csrc/kbtf.c): libbpf 1.5 used to read and parse it again for each
CO-RE object, about half the time of a small object's open+load.

Each test runs in a child process: a shared BTF freed too early would be a
use-after-free there, not in the test runner."""
from __future__ import annotations

import subprocess
import sys

from _children import same_pylibbpf

#: load a CO-RE object, free "the kernel's BTF" as a libbpf user may, load again and
#: check the relocated program reads the right task_struct fields
_LOAD_TWICE = r"""
import ctypes, os, subprocess, sys
import pylibbpf
from pylibbpf._ffi import ffi, lib

path = sys.argv[1]
assert not lib.pylibbpf_kbtf_cached()
with pylibbpf.Object(path) as obj:
    obj.load()
assert lib.pylibbpf_kbtf_cached(), "the load did not keep the kernel's BTF"
a = lib.btf__load_vmlinux_btf()
b = lib.btf__load_vmlinux_btf()
assert a != ffi.NULL and a == b, "parsed again"
lib.btf__free(a)          # a no-op for the shared BTF
lib.btf__free(b)
assert lib.btf__type_cnt(lib.btf__load_vmlinux_btf()) > 1000
child = ("import ctypes, os; ctypes.CDLL(None).prctl(15, b'plb-kbtf', 0, 0, 0); "
         "os.getpgid(0); print(os.getpid())")
for _ in range(2):
    with pylibbpf.Object(path) as obj:
        obj.load()
        with obj.programs["on_getpgid"].attach():
            pid = int(subprocess.run([sys.executable, "-c", child], capture_output=True,
                                     text=True, check=True).stdout)
        seen = obj["seen"][pid]
        assert (seen.pid, seen.tgid, seen.ppid, seen.comm) == (pid, pid, os.getpid(),
                                                               "plb-kbtf"), seen
print("ok")
"""

#: loads in several threads at once (the GIL is released during bpf_object__load)
_THREADS = r"""
import sys, threading
import pylibbpf

path, errors = sys.argv[1], []

def loads():
    try:
        for _ in range(3):
            with pylibbpf.Object(path) as obj:
                obj.load()
                assert obj.programs["on_getpgid"].fd >= 0
    except BaseException as e:
        errors.append(e)

threads = [threading.Thread(target=loads) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
print("ok")
"""


def _run(code: str, *args: str) -> None:
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       timeout=120, **same_pylibbpf())
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stdout, p.stderr)


def test_kernel_btf_is_parsed_once_and_survives_btf_free(bpf_objects) -> None:
    _run(_LOAD_TWICE, str(bpf_objects["core_task"]))


def test_concurrent_loads_share_the_kernel_btf(bpf_objects) -> None:
    _run(_THREADS, str(bpf_objects["core_task"]))
