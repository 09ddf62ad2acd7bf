"""The VM itself: the guest runs the kernel it was asked for, with the host's Python
and BPF objects, and a plain tracepoint program fires there.

Marked ``vm``: skipped on the host, run inside the VM by tests/vm/run.py, whose results
tests/test_vm_matrix.py reports on the host.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

import pylibbpf

IN_VM = os.environ.get("PYLIBBPF_IN_VM") == "1"
pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(not IN_VM, reason="runs inside the kernel-matrix VM (tests/vm/run.py); "
                                         "tests/test_vm_matrix.py reports its results"),
]


def test_guest_runs_the_requested_kernel() -> None:
    want = os.environ["PYLIBBPF_VM_KERNEL"]
    release = platform.release()
    assert release.startswith(want + "."), (release, want)
    assert "deb" in release or release.endswith("-amd64")


def test_guest_uses_the_hosts_python_and_package() -> None:
    assert sys.executable == os.environ["PYLIBBPF_VM_PYTHON"]
    repo = Path(os.environ["PYLIBBPF_REPO"])
    assert Path(pylibbpf.__file__).exists()
    assert (repo / "tests" / "vm" / "guest.sh").is_file()


def test_guest_filesystems_are_mounted() -> None:
    mounts = {line.split()[1]: line.split()[2] for line in open("/proc/mounts")}
    assert mounts.get("/sys/fs/bpf") == "bpf"
    assert mounts.get("/sys/kernel/tracing") == "tracefs"
    assert Path("/sys/kernel/btf/vmlinux").is_file()


def test_guest_writes_stay_in_the_guest() -> None:
    # the repository is overlaid read-write inside the guest only
    probe = Path(os.environ["PYLIBBPF_REPO"]) / "tests" / "vm" / ".guest-write-probe"
    probe.write_text("written in the guest\n")
    assert probe.read_text() == "written in the guest\n"


def test_host_compiled_object_loads_and_tracepoint_fires(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["vm_basic"]) as obj:
        obj.load()
        hits = obj.maps["hits"]
        with obj.programs["on_getpgid"].attach():
            for i in range(5):
                try:
                    os.getpgid(0x7fff0000 + i)      # fails (no such pid), but the hook runs
                except OSError:
                    pass
        assert hits[0] == 5
        os.getpgid(0)
        assert hits[0] == 5                          # detached: no longer counts


def test_guest_has_its_kernels_config_in_boot() -> None:
    # libbpf reads /boot/config-$(uname -r) for __kconfig externs, as on a Debian install
    config = Path("/boot") / f"config-{platform.release()}"
    assert "CONFIG_BPF_SYSCALL=y" in config.read_text()


def test_guest_loads_kernel_modules(veth) -> None:
    # veth is a module on Debian's kernels: the unpacked, depmod'ed tree is in use
    import subprocess

    out = subprocess.run(["ip", "-n", veth.ns_a, "-o", "link", "show", veth.dev_a],
                         capture_output=True, text=True, check=True).stdout
    assert veth.dev_a in out
    assert Path("/sys/module/veth").is_dir()
