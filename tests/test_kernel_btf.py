"""The running kernel's BTF is parsed once per process and shared by every load
(pylibbpf/_csrc/kbtf.c): libbpf 1.5 used to read and parse it again for each
CO-RE object, about half the time of a small object's open+load.

Each test runs in a child process: a shared BTF freed too early would be a
use-after-free there, not in the test runner."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest

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


# --- the kernel's own BTF is not checked again in user space --------------------------

#: parse the kernel's BTF as loads do, and again with libbpf's checks (btf__parse
#: reads the file into memory: not the mapped path); both must be the same BTF
_SAME_AS_CHECKED = r"""
import ctypes
import pylibbpf
from pylibbpf._ffi import ffi, lib

import mmap, os

# libbpf maps the file where the kernel lets it (else it reads it, and checks it)
fd = os.open("/sys/kernel/btf/vmlinux", os.O_RDONLY)
try:
    mmap.mmap(fd, os.fstat(fd).st_size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ).close()
    mappable = 1
except OSError:
    mappable = 0
os.close(fd)
kb = lib.btf__load_vmlinux_btf()
assert kb != ffi.NULL and lib.pylibbpf_kbtf_unchecked() == mappable, \
    (lib.pylibbpf_kbtf_unchecked(), mappable)
checked = lib.btf__parse(b"/sys/kernel/btf/vmlinux", ffi.NULL)
assert checked != ffi.NULL and lib.pylibbpf_kbtf_unchecked() == mappable
n = ffi.new("__u32 *")
a = ffi.buffer(lib.btf__raw_data(kb, n), n[0])[:]
b = ffi.buffer(lib.btf__raw_data(checked, n), n[0])[:]
assert a == b and lib.btf__type_cnt(kb) == lib.btf__type_cnt(checked) > 1000
for name in (b"task_struct", b"sk_buff", b"pt_regs"):
    assert lib.btf__find_by_name_kind(kb, name, 4) == \
        lib.btf__find_by_name_kind(checked, name, 4) > 0, name
lib.btf__free(checked)
print("ok")
"""

#: in a mount namespace of its own, a BTF whose type points past the last type over
#: /sys/kernel/btf/vmlinux: libbpf's check must run and refuse it
_FORGED = r"""
import subprocess, sys
import pylibbpf
from pylibbpf._ffi import lib

subprocess.run(["mount", "--bind", sys.argv[2], "/sys/kernel/btf/vmlinux"], check=True)
try:
    with pylibbpf.Object(sys.argv[1]) as obj:
        obj.load()
    print("loaded")
except pylibbpf.BPFError as e:
    print("refused", lib.pylibbpf_kbtf_unchecked(), type(e).__name__, str(e).replace("\n", " | "))
"""

_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}                     # INT, ARRAY, VAR, DECL_TAG
_PER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}     # STRUCT, UNION, ENUM, PROTO, ...


def _forged_kernel_btf() -> bytes:
    """The kernel's BTF with the first typedef's target set past the last type."""
    raw = bytearray(open("/sys/kernel/btf/vmlinux", "rb").read())
    hdr_len, type_off, type_len = struct.unpack_from("<III", raw, 4)
    pos = hdr_len + type_off
    end = pos + type_len
    while pos < end:
        info = struct.unpack_from("<I", raw, pos + 4)[0]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind == 8:  # TYPEDEF
            struct.pack_into("<I", raw, pos + 8, 0x7FFFFFF)
            return bytes(raw)
        pos += 12 + _EXTRA.get(kind, 0) + _PER.get(kind, 0) * vlen
    raise AssertionError("the kernel's BTF has no typedef")


def test_the_kernels_btf_is_not_checked_again_and_is_the_same(bpf_objects) -> None:
    _run(_SAME_AS_CHECKED)


def test_a_btf_mounted_over_the_kernels_is_checked(bpf_objects, tmp_path) -> None:
    forged = tmp_path / "vmlinux"
    forged.write_bytes(_forged_kernel_btf())
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                        "-c", _FORGED, str(bpf_objects["core_task"]), str(forged)],
                       capture_output=True, text=True, timeout=120, **same_pylibbpf())
    if p.returncode != 0 and "mount" in p.stderr and "ermission" in p.stderr:
        pytest.skip(f"no private mount namespace here: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("refused 0 "), (p.stdout, p.stderr[-2000:])
    # libbpf's check ran on it (the forged reference named) and the load says why
    assert "invalid referenced type ID 134217727" in p.stdout, p.stdout
    assert "failed to read kernel BTF from '/sys/kernel/btf/vmlinux'" in p.stdout, p.stdout
