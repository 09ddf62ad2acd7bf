"""Kernel matrix: the guest selection of tests/vm/run.py (every ``vm``-marked test plus a
smoke run of fast tests), run inside a VM for each Debian kernel, and reported here
test by test: ``test_in_vm[6.12-test_vm_tracing.py::test_lsm_denies_…]`` passes, fails or
is skipped as it did in the guest.

Each kernel boots once per session (all kernels at the same time, splitting the CPUs),
when the first of its tests runs. Where the VM cannot start (qemu, virtme-ng, udev,
busybox or kmod missing — tests/vm/setup.sh installs them —, no kernel could be
fetched, or the guest never reached its command), every test of that kernel is
skipped with the reason, never passed; ``PYLIBBPF_VM_REQUIRED=1`` makes that a failure.
``PYLIBBPF_VM_KERNELS=none`` turns the matrix off; see tests/vm/run.py for the rest.
"""
from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
IN_VM = os.environ.get("PYLIBBPF_IN_VM") == "1"
REQUIRED = os.environ.get("PYLIBBPF_VM_REQUIRED") == "1"


def _load_runner() -> Any:
    sys.path.insert(0, str(TESTS / "vm"))
    spec = importlib.util.spec_from_file_location("pylibbpf_vm_run", TESTS / "vm" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pylibbpf_vm_run"] = mod
    spec.loader.exec_module(mod)
    return mod


vmrun = _load_runner()
KERNELS: List[str] = [] if IN_VM else vmrun.kernels_wanted()
SELECTION: List[str] = vmrun.default_selection()


def _short(nodeid: str) -> str:
    return nodeid[len("tests/"):] if nodeid.startswith("tests/") else nodeid


_collected: Dict[str, Union[List[str], str]] = {}


def guest_test_ids() -> Union[List[str], str]:
    """Node ids of the guest selection, collected on the host (no test runs);
    a string is the collection's error output."""
    if "ids" not in _collected:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             *SELECTION], cwd=REPO, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=300)
        ids = [line.strip() for line in proc.stdout.splitlines()
               if "::" in line and not line.startswith(("ERROR", "FAILED", " "))]
        _collected["ids"] = ids if proc.returncode == 0 else proc.stdout[-3000:]
    return _collected["ids"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "guest_test" not in metafunc.fixturenames:
        return
    params: List[Tuple[str, str]] = []
    if KERNELS:
        ids = guest_test_ids()
        if isinstance(ids, str):
            ids = []                       # test_guest_selection_collects reports it
        params = [(k, nodeid) for k in KERNELS for nodeid in ids]
    metafunc.parametrize("guest_test", params,
                         ids=[f"{k}-{_short(n)}" for k, n in params])


# --- one VM per kernel per session -------------------------------------------

class _Runs:
    def __init__(self, objects: Path) -> None:
        self.objects = objects
        self.lock = threading.Lock()
        self.results: Dict[str, Any] = {}        # kernel -> VMRun | CannotStart

    def get(self, kernel: str) -> Any:
        with self.lock:
            if kernel not in self.results:
                self._run_all()
            return self.results[kernel]

    def _run_all(self) -> None:
        todo = [k for k in KERNELS if k not in self.results]
        parallel = os.environ.get("PYLIBBPF_VM_PARALLEL", "1") != "0" and len(todo) > 1
        cpus = os.environ.get("PYLIBBPF_VM_CPUS") or str(
            max(1, (os.cpu_count() or 2) // (len(todo) if parallel else 1)))

        def one(kernel: str) -> Any:
            try:
                return vmrun.run_vm(kernel, SELECTION, objects=self.objects, cpus=cpus)
            except vmrun.CannotStart as e:
                return e

        if parallel:
            with concurrent.futures.ThreadPoolExecutor(len(todo)) as pool:
                for k, r in zip(todo, pool.map(one, todo)):
                    self.results[k] = r
        else:
            for k in todo:
                self.results[k] = one(k)


@pytest.fixture(scope="session")
def vm_runs(bpf_objects: Dict[str, Path]) -> _Runs:
    if IN_VM:
        pytest.skip("the kernel matrix runs on the host, not inside its own VM")
    objects = next(iter(bpf_objects.values())).parent
    return _Runs(objects)


def _cannot_start(kernel: str, err: Exception) -> None:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    msg = f"kernel {kernel}: VM cannot start here: {lines[0] if lines else err}"
    if len(lines) > 1:
        msg += f" ({lines[-1][-200:]})"
    if REQUIRED:
        pytest.fail(f"{err}\n(PYLIBBPF_VM_REQUIRED=1 makes this a failure)", pytrace=False)
    pytest.skip(msg)


def _no_result_reason(run: Any) -> str:
    if run.timed_out:
        why = f"the VM timed out after {run.seconds:.0f} s (PYLIBBPF_VM_TIMEOUT)"
    elif run.returncode is None:
        why = "the guest's pytest never finished (crash or kernel panic?)"
    else:
        why = f"the guest's pytest exited {run.returncode} without a result for it"
    return (f"{why}\n--- guest pytest log (tail) ---\n{run.log('pytest.log', 3000)}"
            f"\n--- console (tail) ---\n{run.log('console.log', 2000)}\nrun dir: {run.rundir}")


@pytest.mark.skipif(IN_VM, reason="host side of the kernel matrix")
def test_guest_selection_collects() -> None:
    if not KERNELS:
        pytest.skip("PYLIBBPF_VM_KERNELS turns the kernel matrix off")
    ids = guest_test_ids()
    assert not isinstance(ids, str), f"collecting the guest selection failed:\n{ids}"
    assert any("test_vm_" in i for i in ids)


@pytest.mark.skipif(IN_VM, reason="host side of the kernel matrix")
@pytest.mark.parametrize("kernel", KERNELS or [pytest.param("none", marks=pytest.mark.skip(
    reason="PYLIBBPF_VM_KERNELS turns the kernel matrix off"))])
def test_vm_boots_and_runs_the_selection(vm_runs: _Runs, kernel: str) -> None:
    run = vm_runs.get(kernel)
    if isinstance(run, Exception):
        _cannot_start(kernel, run)
    assert run.uname.startswith(kernel + "."), run.uname
    assert not run.timed_out and run.returncode in (0, 1), _no_result_reason(run)
    assert not run.stray, "guest errors outside any test (collection?):\n" + "\n".join(
        f"{name}: {o.message[:1500]}" for name, o in run.stray)
    assert run.results, _no_result_reason(run)
    # test_vm_guest.py writes this inside the guest: the host's tree must not see it
    assert not (TESTS / "vm" / ".guest-write-probe").exists(), "a guest write reached the host"
    counts: Dict[str, int] = {}
    for o in run.results.values():
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    print(f"kernel {kernel} ({run.uname}, LSMs {run.lsm}): {counts}; VM {run.seconds:.0f} s, "
          f"guest pytest {run.pytest_seconds or 0:.0f} s")


@pytest.mark.skipif(IN_VM, reason="host side of the kernel matrix")
def test_in_vm(vm_runs: _Runs, guest_test: Tuple[str, str]) -> None:
    kernel, nodeid = guest_test
    run = vm_runs.get(kernel)
    if isinstance(run, Exception):
        _cannot_start(kernel, run)
    result = run.results.get(nodeid)
    if result is None:
        pytest.fail(f"[{kernel}] no result for {nodeid}: {_no_result_reason(run)}",
                    pytrace=False)
    if result.outcome == "skipped":
        pytest.skip(f"[{kernel} guest] {result.message}")
    if result.outcome == "failed":
        pytest.fail(f"[{kernel} {run.uname}] {nodeid} failed in the VM:\n{result.message}",
                    pytrace=False)
