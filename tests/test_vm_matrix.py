"""Kernel matrix: the guest selection of tests/vm/run.py (every ``vm``-marked test plus a
smoke run of fast tests), run inside a VM for each Debian kernel, and reported here
test by test: ``test_in_vm[6.12-test_vm_tracing.py::test_lsm_denies_…]`` passes, fails,
is skipped or xfails as it did in the guest.

Each kernel boots once per session (all kernels at the same time, splitting the CPUs),
when the first of its tests runs. The terminal summary then says, per kernel, how many
guest tests ran, passed, failed, were skipped or xfailed, and the VM's wall time.

Where the VM cannot start (a tool missing -- the pre-flight names it and its Debian
package; tests/vm/setup.sh installs them all --, no kernel could be fetched, or the
guest never reached its command), every test of that kernel is skipped with the
reason, never passed. When the matrix is *required* that is a failure instead, and so
is a guest test skipped for an infrastructure reason: required by default under CI
(``CI`` set to a true value, as .ci/run does), and whenever ``PYLIBBPF_VM_REQUIRED=1``;
``PYLIBBPF_VM_REQUIRED=0`` turns it off again. ``PYLIBBPF_VM_KERNELS=none`` turns the
matrix off on purpose (the summary says so). See tests/vm/run.py for the rest.

The fast tests at the end check those decisions without booting anything.
"""
from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
IN_VM = os.environ.get("PYLIBBPF_IN_VM") == "1"


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
# for the terminal summary (tests/conftest.py calls vmrun.terminal_summary)
vmrun.MATRIX.update(collected=not IN_VM, kernels=list(KERNELS))


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
        vmrun.MATRIX["expected"] = len(ids)
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
        vmrun.MATRIX["results"].update(self.results)


@pytest.fixture(scope="session")
def vm_runs(bpf_objects: Dict[str, Path]) -> _Runs:
    if IN_VM:
        pytest.skip("the kernel matrix runs on the host, not inside its own VM")
    objects = next(iter(bpf_objects.values())).parent
    return _Runs(objects)


def _cannot_start(kernel: str, err: Exception) -> None:
    verdict, msg = vmrun.cannot_start_verdict(kernel, err)
    if verdict == "failed":
        pytest.fail(msg, pytrace=False)
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
        pytest.skip("PYLIBBPF_VM_KERNELS turns the kernel matrix off (on purpose: "
                    "not a failure even when required)")
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
    verdict, msg = vmrun.guest_verdict(kernel, nodeid, result, run.uname)
    if verdict == "failed":
        pytest.fail(msg, pytrace=False)
    if verdict == "skipped":
        pytest.skip(msg)
    if verdict == "xfailed":
        pytest.xfail(msg)


# --- fast checks of the matrix's own decisions (no VM is booted) -----------------------

def _missing_file_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with every VM tool but ``file``: stand-ins for each of them in one
    directory, which is all of PATH, the venv and the fallback directories."""
    import dataclasses

    fake = tmp_path / "bin"
    fake.mkdir()
    tools = tuple(dataclasses.replace(t, dirs=(str(fake),)) if t.dirs else t
                  for t in vmrun.VM_TOOLS)
    for tool in tools:
        if tool.name != "file":
            (fake / tool.name).write_text("#!/bin/sh\nexit 1\n")
            (fake / tool.name).chmod(0o755)
    monkeypatch.setattr(vmrun, "VM_TOOLS", tools)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setattr(vmrun, "SYSTEM_DIRS", (str(fake),))
    monkeypatch.setattr(vmrun, "_venv_bin", lambda: fake)
    return fake


@pytest.mark.parametrize("env, required", [
    ({}, False),
    ({"CI": "true"}, True),
    ({"CI": "1"}, True),
    ({"CI": "True"}, True),
    ({"CI": "false"}, False),
    ({"CI": "0"}, False),
    ({"CI": ""}, False),
    ({"CI": "true", "PYLIBBPF_VM_REQUIRED": "0"}, False),
    ({"CI": "true", "PYLIBBPF_VM_REQUIRED": ""}, True),
    ({"PYLIBBPF_VM_REQUIRED": "1"}, True),
    ({"CI": "false", "PYLIBBPF_VM_REQUIRED": "1"}, True),
])
def test_required_by_default_under_ci_and_overridable(env: Dict[str, str],
                                                      required: bool) -> None:
    got, why = vmrun.vm_required(env)
    assert got is required, (env, why)
    if "PYLIBBPF_VM_REQUIRED" in env and env["PYLIBBPF_VM_REQUIRED"]:
        assert "PYLIBBPF_VM_REQUIRED" in why
    elif required:
        assert why.startswith("CI=")


def test_preflight_names_the_missing_tool_and_its_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _missing_file_env(tmp_path, monkeypatch)
    assert [t.name for t, _ in vmrun.missing_tools()] == ["file"]
    with pytest.raises(vmrun.CannotStart) as e:
        vmrun.check_tools()
    assert "file (not found; Debian package file)" in str(e.value)
    assert "apt-get install file" in str(e.value) and "tests/vm/setup.sh" in str(e.value)
    # run_vm stops there, before fetching a kernel or starting anything
    with pytest.raises(vmrun.CannotStart, match="Debian package file"):
        vmrun.run_vm("6.1", ["tests/test_vm_guest.py"], timeout=1, quiet=True)


def test_preflight_wants_a_static_busybox(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _missing_file_env(tmp_path, monkeypatch)
    (fake / "file").write_text("#!/bin/sh\nexit 1\n")
    (fake / "file").chmod(0o755)
    assert vmrun.missing_tools() == []
    (fake / "busybox").unlink()
    (fake / "busybox").symlink_to(os.path.realpath(sys.executable))   # dynamically linked
    [(tool, what)] = vmrun.missing_tools()
    assert (tool.name, tool.package) == ("busybox", "busybox-static")
    assert "not statically linked" in what
    assert vmrun._elf_is_static(os.path.realpath(sys.executable)) is False
    assert vmrun._elf_is_static(__file__) is None


@pytest.mark.parametrize("env, verdict", [
    ({"CI": "true"}, "failed"),
    ({"PYLIBBPF_VM_REQUIRED": "1"}, "failed"),
    ({}, "skipped"),
    ({"CI": "true", "PYLIBBPF_VM_REQUIRED": "0"}, "skipped"),
])
def test_cannot_start_fails_when_required_and_skips_otherwise(
        env: Dict[str, str], verdict: str) -> None:
    err = vmrun.CannotStart("missing file (not found; Debian package file): run "
                            "tests/vm/setup.sh as root, or: apt-get install file")
    got, msg = vmrun.cannot_start_verdict("6.1", err, env)
    assert got == verdict, msg
    assert "kernel 6.1" in msg and "Debian package file" in msg
    if verdict == "failed":
        assert "required" in msg and "PYLIBBPF_VM_REQUIRED=0" in msg


@pytest.mark.parametrize("ci", ["true", None])
def test_matrix_test_fails_under_ci_when_a_tool_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: Any) -> None:
    """The host-side test itself, wired to the decision: a real _Runs whose VM cannot
    start because ``file`` is missing fails under CI=true and skips without CI."""
    _missing_file_env(tmp_path, monkeypatch)
    monkeypatch.delenv("PYLIBBPF_VM_REQUIRED", raising=False)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(sys.modules[__name__], "KERNELS", ["6.1"])
    monkeypatch.setitem(vmrun.MATRIX, "results", {})      # keep the real summary clean
    runs = _Runs(tmp_path)
    run = runs.get("6.1")
    assert isinstance(run, vmrun.CannotStart) and "Debian package file" in str(run)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    outcomes = (pytest.fail.Exception, pytest.skip.Exception)     # a skip must not escape
    with pytest.raises(outcomes, match="Debian package file") as e:
        test_vm_boots_and_runs_the_selection(runs, "6.1")
    assert e.type is expected, (e.type, str(e.value))
    with pytest.raises(outcomes, match="Debian package file") as e:
        test_in_vm(runs, ("6.1", "tests/test_vm_guest.py::test_guest_runs_the_requested_kernel"))
    assert e.type is expected, (e.type, str(e.value))


@pytest.mark.parametrize("message, env, verdict", [
    ("runs inside the kernel-matrix VM (tests/vm/run.py)", {"CI": "true"}, "failed"),
    ("runs inside the kernel-matrix VM (tests/vm/run.py)", {}, "skipped"),
    ("runs inside the kernel-matrix VM (tests/vm/run.py)",
     {"CI": "true", "PYLIBBPF_VM_REQUIRED": "0"}, "skipped"),
    ("VM infrastructure: no /dev/virtio-ports", {"PYLIBBPF_VM_REQUIRED": "1"}, "failed"),
    # a kernel or pylibbpf limitation is a skip even when the matrix is required
    ("Program.attach_foo() is not implemented yet", {"CI": "true"}, "skipped"),
])
def test_guest_skip_for_infrastructure_fails_when_required(
        message: str, env: Dict[str, str], verdict: str) -> None:
    got, msg = vmrun.guest_verdict("6.12", "tests/x.py::t", vmrun.Outcome("skipped", message),
                                   env=env)
    assert got == verdict, msg
    assert message in msg


def test_guest_outcomes_other_than_skips_pass_through() -> None:
    for env in ({}, {"CI": "true"}):
        assert vmrun.guest_verdict("6.1", "t", vmrun.Outcome("passed"), env=env)[0] == "passed"
        got, msg = vmrun.guest_verdict("6.1", "t", vmrun.Outcome("failed", "boom"), "6.1.0",
                                       env=env)
        assert got == "failed" and "boom" in msg
        got, msg = vmrun.guest_verdict("6.1", "t", vmrun.Outcome("xfailed", "known issue"),
                                       env=env)
        assert got == "xfailed" and "known issue" in msg


def test_parse_junit_tells_xfail_from_skip(tmp_path: Path) -> None:
    """A real junit XML as the guest writes it (guest_plugin, xunit1)."""
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_skip(): pytest.skip('no such feature')\n"
        "@pytest.mark.xfail(reason='known issue', strict=False)\n"
        "def test_xfail(): assert 0\n"
        "def test_bad(): assert 0, 'boom'\n")
    env = dict(os.environ, PYTHONPATH=str(TESTS / "vm"))
    env.pop("PYLIBBPF_VM_OBJECTS", None)
    env.pop("PYLIBBPF_VM_RUNDIR", None)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "guest_plugin",
                    "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
                    f"--junitxml={tmp_path / 'junit.xml'}", "--rootdir", str(tmp_path),
                    "-c", os.devnull, str(tmp_path / "test_sample.py")],
                   cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, check=False, timeout=120)
    results, stray = vmrun.parse_junit(tmp_path / "junit.xml")
    got = {nodeid.split("::")[-1]: o.outcome for nodeid, o in results.items()}
    assert got == {"test_ok": "passed", "test_skip": "skipped", "test_xfail": "xfailed",
                   "test_bad": "failed"}, got
    assert not stray


def test_summary_counts_each_kernel_and_says_why_not() -> None:
    kernel = vmrun.Kernel("6.1", "bookworm", "linux-image-x", "1", Path("/nonexistent"),
                          "6.1.0-x-amd64")
    run = vmrun.VMRun(kernel=kernel, rundir=Path("/nonexistent"), started=True, returncode=1,
                      timed_out=False, seconds=210.4, pytest_seconds=150.0,
                      uname="6.1.0-x-amd64")
    run.results = {f"t{i}": vmrun.Outcome(o) for i, o in
                   enumerate(["passed"] * 94 + ["skipped"] * 2 + ["failed", "xfailed"])}
    err = vmrun.CannotStart("missing file (not found; Debian package file): …")
    lines = vmrun.summary_lines(["6.1", "6.12"], {"6.1": run, "6.12": err}, expected=100,
                                env={"CI": "true"})
    assert lines[0] == ("kernel matrix: 6.1 (6.1.0-x-amd64): 98 ran (94 passed, 1 failed, "
                        "2 skipped, 1 xfailed) in 210 s; 2 of 100 without a result")
    assert lines[1].startswith("kernel matrix: 6.12: VM did not start: missing file")
    assert lines[1].endswith("FAILED (CI=true)")
    assert vmrun.summary_lines(["6.12"], {"6.12": err}, env={})[0].endswith(
        "its tests were skipped")
    off = vmrun.summary_lines([], {}, env={"CI": "true", "PYLIBBPF_VM_KERNELS": "none"})
    assert len(off) == 1 and "OFF (PYLIBBPF_VM_KERNELS=none)" in off[0]
    assert "required (CI=true)" in off[0]
    assert "required" not in vmrun.summary_lines([], {}, env={})[0]


def _setup_sh_packages() -> List[str]:
    import re
    text = (TESTS / "vm" / "setup.sh").read_text()
    m = re.search(r"^pkgs=\(([^)]*)\)", text, re.M)
    assert m, "tests/vm/setup.sh has no pkgs=(…) list"
    return m.group(1).split()


def test_setup_sh_installs_every_tool_the_preflight_checks() -> None:
    pkgs = _setup_sh_packages()
    for tool in vmrun.VM_TOOLS:
        if tool.pypi:
            assert f"'{tool.package}>=" in (TESTS / "vm" / "setup.sh").read_text(), tool
        else:
            assert tool.package in pkgs, f"{tool.name}: setup.sh does not install {tool.package}"


def test_preflight_maps_each_tool_to_the_package_that_owns_it() -> None:
    """On this machine, dpkg says which package each tool found comes from."""
    if not shutil.which("dpkg-query"):
        pytest.skip("not a Debian system")
    checked = 0
    for tool in vmrun.VM_TOOLS:
        path = vmrun._find(tool)
        if tool.pypi or path is None:
            continue
        candidates = {path, os.path.realpath(path)}
        candidates |= {p[len("/usr"):] for p in list(candidates) if p.startswith("/usr/")}
        owners = set()
        for c in candidates:
            out = subprocess.run(["dpkg-query", "-S", c], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True).stdout
            owners |= {line.split(":")[0] for line in out.splitlines() if ":" in line}
        assert tool.package in owners, (tool.name, path, owners)
        checked += 1
    assert checked, "no VM tool on this machine to check"


def test_ci_script_makes_the_matrix_required() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert "export CI=${CI:-true}" in text
    assert text.index("export CI=") < text.index("./dev.sh test")
