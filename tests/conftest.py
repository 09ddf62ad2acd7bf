"""Shared fixtures: compiled BPF objects, mounts, bpffs dirs, network namespaces."""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Iterator

import pytest

import pylibbpf
from pylibbpf import in_netns  # noqa: F401  (tests import it from here)

#: the ``kind`` marker and its check (tests/_kernel.py: what this kernel supports)
pytest_plugins = ["_kernel"]

TESTS = Path(__file__).resolve().parent
BPF_DIR = TESTS / "bpf"


def _mounted(mountpoint: str, fstype: str) -> bool:
    with open("/proc/mounts") as f:
        return any(line.split()[1] == mountpoint and line.split()[2] == fstype for line in f)


@pytest.fixture(scope="session", autouse=True)
def kernel_setup() -> None:
    """Tests run as root against the real kernel, with tracefs and bpffs mounted."""
    if os.geteuid() != 0:
        pytest.exit("the test suite needs root: eBPF needs CAP_BPF/CAP_SYS_ADMIN", 2)
    if not _mounted("/sys/kernel/tracing", "tracefs"):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=True)
    if not _mounted("/sys/fs/bpf", "bpf"):
        os.makedirs("/sys/fs/bpf", exist_ok=True)
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Every tests/bpf/*.bpf.c compiled once per session: name -> object path.

    Each session builds into its own directory, so concurrent runs don't collide.
    """
    out_dir = tmp_path_factory.mktemp("bpf-objects")
    sources = sorted(BPF_DIR.glob("*.bpf.c"))
    pylibbpf.vmlinux_h_path()  # generate once, before the parallel compiles

    def build(src: Path) -> Path:
        return pylibbpf.compile(src, out_dir / src.name.replace(".bpf.c", ".bpf.o"),
                                cflags=["-Wall", "-Werror"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs = list(pool.map(build, sources))
    return {p.name[: -len(".bpf.o")]: p for p in objs}


@pytest.fixture
def bpffs_dir() -> Iterator[Path]:
    """A fresh directory in bpffs, removed with everything pinned in it."""
    path = Path("/sys/fs/bpf") / f"pylibbpf-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- network namespaces ------------------------------------------------------

class VethPair:
    """Two namespaces joined by a veth pair: ``a`` (10.77.N.1) and ``b`` (10.77.N.2)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns_a, self.ns_b = f"plb-a-{tag}", f"plb-b-{tag}"
        self.dev_a, self.dev_b = "veth-a", "veth-b"
        n = int(tag[:2], 16)
        self.ip_a, self.ip_b = f"10.77.{n}.1", f"10.77.{n}.2"

    def __enter__(self) -> "VethPair":
        sh = lambda *a: subprocess.run(["ip", *a], check=True)  # noqa: E731
        sh("netns", "add", self.ns_a)
        sh("netns", "add", self.ns_b)
        try:
            sh("-n", self.ns_a, "link", "add", self.dev_a, "type", "veth",
               "peer", "name", self.dev_b, "netns", self.ns_b)
            for ns, dev, ip in ((self.ns_a, self.dev_a, self.ip_a),
                                (self.ns_b, self.dev_b, self.ip_b)):
                sh("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                sh("-n", ns, "link", "set", dev, "up")
                sh("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def socket_in(self, ns: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket created inside ``ns`` (it stays there when we leave)."""
        with in_netns(ns):
            return socket.socket(socket.AF_INET, kind)


@pytest.fixture
def veth() -> Iterator[VethPair]:
    with VethPair() as pair:
        yield pair


# --- kernel matrix: per-kernel totals at the end of the run ---------------------------
# (tests/test_vm_matrix.py loads tests/vm/run.py as "pylibbpf_vm_run"; nothing is
# printed when that module was not collected)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    import sys

    vmrun = sys.modules.get("pylibbpf_vm_run")
    if vmrun is not None:
        vmrun.terminal_summary(terminalreporter)
