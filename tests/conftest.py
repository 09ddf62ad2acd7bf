"""Shared fixtures: compiled BPF objects, mounts, bpffs dirs, network namespaces."""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator

import pytest

import pylibbpf
from pylibbpf import in_netns  # noqa: F401  (tests import it from here)

if TYPE_CHECKING:  # imported by pytest_plugins below (first, so that pytest rewrites it)
    from pylibbpf.testing import VethPair

#: the ``kind`` marker and its check (tests/_kernel.py: what this kernel supports);
#: pylibbpf's own pytest plugin (fixtures bpf_veth, bpf_netns, bpf_compile, bpf_object),
#: also active without installing the package
pytest_plugins = ["_kernel", "pylibbpf.testing"]

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

@pytest.fixture
def veth(bpf_veth: "VethPair") -> "VethPair":
    """Two namespaces joined by a veth pair (pylibbpf.testing's ``bpf_veth``):
    ``ns_a``/``dev_a``/``ip_a`` and ``ns_b``/``dev_b``/``ip_b``."""
    return bpf_veth


# --- kernel matrix: per-kernel totals at the end of the run ---------------------------
# (tests/test_vm_matrix.py loads tests/vm/run.py as "pylibbpf_vm_run"; nothing is
# printed when that module was not collected)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    import sys

    vmrun = sys.modules.get("pylibbpf_vm_run")
    if vmrun is not None:
        vmrun.terminal_summary(terminalreporter)
