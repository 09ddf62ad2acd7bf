"""Every example tool runs with no arguments but a short --duration, exits 0 and
shows what its own workload did (pids, commands, packet counts …)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from _kernel import expect_unsupported, support

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# tests/vm/run.py runs the kprobe, fentry and LSM tools in Debian kernels that have
# those kinds: there they must really run, not report that they can't
IN_VM = os.environ.get("PYLIBBPF_IN_VM") == "1"


def check_supported(name: str, out: str, kind: str) -> bool:
    """Whether this kernel has ``kind`` (tests/_kernel.py): then the tool must have
    run; else it must have said so, with the probe's reason (never in the VM)."""
    sup = support(kind)
    refused = out.startswith(f"{name}: this kernel cannot run this tool:")
    assert not (refused and IN_VM), f"{name} refused to run in the VM:\n{out}"
    if sup:
        assert not refused, f"{name} refused although this kernel has {kind}:\n{out}"
        return True
    expect_unsupported(kind)
    assert refused and sup.reason in out, f"{name} did not refuse with {sup.reason!r}:\n{out}"
    return False


def run_example(name: str, *args: str, cwd: Path | None = None,
                timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_every_example_has_a_test() -> None:
    tools = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    tested = {n[len("test_"):] for n in globals() if n.startswith("test_")}
    assert tools <= tested, f"examples without a test: {sorted(tools - tested)}"
    for tool in tools:  # each is a short .py plus its .bpf.c
        assert (EXAMPLES / f"{tool}.bpf.c").exists(), tool


def test_execsnoop() -> None:
    out = run_example("execsnoop", "--duration", "1.5")
    rows = [ln.split() for ln in out.splitlines()[1:-1]]
    assert any(r[4] == "uname" and r[5].endswith("/uname") for r in rows if len(r) >= 6), out
    assert int(out.splitlines()[-1].split()[0]) >= 3


def test_opensnoop() -> None:
    out = run_example("opensnoop", "--duration", "1.5")
    cat = [ln for ln in out.splitlines() if re.match(r"\s*\d+ cat\s", ln)]
    paths = {ln.split()[-1] for ln in cat}
    assert {"/etc/hostname", "/etc/os-release"} <= paths, out
    assert str(os.getpid()) not in [ln.split()[0] for ln in out.splitlines()[1:]]


def test_bashreadline() -> None:
    out = run_example("bashreadline", "--duration", "2.5")
    lines = [ln.split(None, 2) for ln in out.splitlines()[1:]]
    commands = [ln[2] for ln in lines if len(ln) == 3]
    assert "echo hello from bashreadline" in commands and "uname -s" in commands, out
    pids = {ln[1] for ln in lines if len(ln) == 3 and ln[2] in ("uname -s", "exit")}
    assert len(pids) == 1  # the same interactive bash typed both


def _hist(out: str) -> Dict[int, int]:
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"^\s*(\d+) -> \d+\s*: (\d+)\s", out, re.M)}


def test_mallocsize() -> None:
    out = run_example("mallocsize", "--duration", "1.5")
    hist = _hist(out)
    # the workload: 1000 x malloc(4096), 100 x malloc(100000), through ctypes
    assert hist.get(4096, 0) >= 1000 and hist.get(65536, 0) >= 100, out
    calls = int(re.search(r"^(\d+) malloc calls", out, re.M).group(1))  # type: ignore[union-attr]
    assert calls == sum(hist.values()) and calls >= 1100


def test_funclatency() -> None:
    out = run_example("funclatency", "--duration", "1.5")
    if not check_supported("funclatency", out, "uprobe_session"):
        assert "uprobe_session" in out
        return
    hist = _hist(out)
    calls = int(re.search(r"^(\d+) calls of usleep", out, re.M).group(1))  # type: ignore[union-attr]
    # the workload: 50 x usleep(1500), 10 x usleep(24000); each call's entry and
    # return met through its session cookie, and no call was shorter than asked
    assert calls == 60 == sum(hist.values()), out
    assert sum(n for b, n in hist.items() if b >= 1024) == 60, out
    assert sum(n for b, n in hist.items() if b >= 16384) >= 10, out


def test_pyimports() -> None:
    out = run_example("pyimports", "--duration", "2")
    if out.startswith("pyimports: no Python interpreter with USDT"):
        pytest.skip("no CPython built --with-dtrace here (Debian's python3 package has it)")
    modules = {ln.split()[2] for ln in out.splitlines()[1:-1] if len(ln.split()) >= 3}
    # what the workload imports (and their C halves)
    assert {"json", "decimal", "fractions", "email.parser", "sqlite3", "_sqlite3"} <= modules
    pids = {ln.split()[0] for ln in out.splitlines()[1:-1]}
    assert len(pids) == 1


def test_syscount() -> None:
    out = run_example("syscount", "--duration", "1.5")
    counts = {m.group(1): int(m.group(2))
              for m in re.finditer(r"^([a-z_0-9]+)\s+(\d+)$", out, re.M)}
    # the workload: 500 getppid, 200 stat (newfstatat or statx), 5 sleeps of 10 ms
    assert counts.get("getppid") == 500, out
    assert counts.get("newfstatat", 0) + counts.get("statx", 0) >= 200
    assert counts.get("clock_nanosleep", 0) + counts.get("nanosleep", 0) == 5
    hist = _hist(out)
    assert sum(n for low, n in hist.items() if low >= 8192) >= 5  # the 10 ms sleeps
    assert sum(hist.values()) >= 705


def test_profile(tmp_path: Path) -> None:
    out = run_example("profile", "--duration", "2", "--top", "20", cwd=tmp_path)
    pids = dict(re.findall(r"^workload: pid (\d+) (\S+)", out, re.M))
    dd = next(p for p, cmd in pids.items() if cmd == "dd")
    procs = dict((m.group(2), int(m.group(1)))
                 for m in re.finditer(r"^\s+(\d+)  (\S+ \(\d+\))$", out, re.M))
    assert procs.get(f"dd ({dd})", 0) >= 5, out   # dd reads /dev/zero flat out
    # kernel frames from kallsyms: dd spends its time in read() of /dev/zero
    assert "read_zero_[k]" in out and "ksys_read_[k]" in out, out
    if Path("/usr/bin/python3").exists():  # user frames from the ELF symbols
        assert "_PyEval_EvalFrameDefault" in out
    folded = (tmp_path / "profile.folded").read_text().splitlines()
    assert any(ln.startswith(f"dd ({dd});") and "read_zero_[k]" in ln for ln in folded)
    svg = (tmp_path / "profile.svg").read_text()
    assert svg.startswith("<?xml") and "read_zero_[k]" in svg
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:  # the flame graph's script runs in a real browser (test_tools.py: more)
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                              "--disable-dev-shm-usage", "--dump-dom",
                              (tmp_path / "profile.svg").as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        frames = re.search(r'data-frames="(\d+)"', svg).group(1)  # type: ignore[union-attr]
        assert f'data-ready="{frames}"' in dom and int(frames) > 10


def test_xdpcount() -> None:
    out = run_example("xdpcount", "--duration", "1.5")
    m = re.search(r"^sent (\d+) UDP datagrams, XDP saw (\d+)$", out, re.M)
    assert m and int(m.group(1)) >= 10 and m.group(1) == m.group(2), out
    assert re.search(r"udp=\d+", out)


def test_tccount() -> None:
    out = run_example("tccount", "--duration", "1.5")
    m = re.search(r"^sent (\d+) datagrams to (\S+); tc counted (\d+) packets, (\d+) bytes$",
                  out, re.M)
    assert m, out
    sent, dest, packets, nbytes = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    assert sent >= 10 and packets == sent and nbytes == sent * (14 + 20 + 8 + 100)
    assert re.search(rf"^\s+{re.escape(dest)}\s+{packets}\s+{nbytes}$", out, re.M)


def test_sockfilter() -> None:
    out = run_example("sockfilter", "--duration", "1")
    sent = re.search(r"^sent:\s+(\d+) keep, (\d+) DROP", out, re.M)
    seen = re.search(r"^filter:\s+(\d+) accepted, (\d+) dropped", out, re.M)
    got = re.search(r"^received:\s+(\d+) keep, (\d+) DROP", out, re.M)
    assert sent and seen and got, out
    assert int(sent.group(1)) > 5 and int(sent.group(2)) > 2
    assert seen.groups() == sent.groups()
    assert got.group(1) == sent.group(1) and got.group(2) == "0"


def test_sockcount() -> None:
    out = run_example("sockcount", "--duration", "1.2")
    rounds = int(re.search(r"finished (\d+) rounds", out).group(1))  # type: ignore[union-attr]
    counts = {(m.group(2), m.group(3)): int(m.group(1))
              for m in re.finditer(r"^\s+(\d+)  (\w+)\s+(\w+)\s+\d+$", out, re.M)}
    assert rounds >= 1, out
    # each round: 3 udp, 2 tcp, 1 udp6 (a round may have begun when the child was killed)
    assert 3 * rounds <= counts[("inet", "dgram")] <= 3 * (rounds + 1)
    assert 2 * rounds <= counts[("inet", "stream")] <= 2 * (rounds + 1)
    assert rounds <= counts[("inet6", "dgram")] <= rounds + 1


def test_ps() -> None:
    out = run_example("ps")
    rows = {ln.split()[0]: ln.split(None, 4) for ln in out.splitlines()[1:-1]}
    me = rows[str(os.getpid())]
    assert me[1] == str(os.getppid())
    assert me[4] == Path("/proc/self/comm").read_text().strip()[:15]
    assert int(out.splitlines()[-1].split()[0]) == len(rows) > 10


def test_a_tool_started_with_another_python_runs_in_the_project_venv(tmp_path) -> None:
    """``python3 examples/ps.py`` with an interpreter that lacks pylibbpf (the base
    Python of the venv, without site-packages) runs the tool in the project's .venv,
    or, with no .venv, says how to set it up."""
    base = getattr(sys, "_base_executable", sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([base, "-S", str(EXAMPLES / "ps.py")], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    if (EXAMPLES.parent / ".venv" / "bin" / "python").exists():
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[0].split()[:2] == ["PID", "PPID"], proc.stdout
    else:
        assert proc.returncode == 1 and "./dev.sh setup" in proc.stderr, proc.stderr


def test_tcpcc() -> None:
    out = run_example("tcpcc", "--duration", "1")
    assert "registered 'pylibbpf_cc': True" in out and "unregistered: True" in out, out
    conns = int(re.search(r"^(\d+) connections", out, re.M).group(1))  # type: ignore[union-attr]
    calls = dict(re.findall(r"(\w+)=(\d+)", out))
    assert conns > 0 and int(calls["init"]) == conns and int(calls["cong_avoid"]) > 0


def test_hello() -> None:
    out = run_example("hello", "--duration", "1.5")
    # (the trace pipe prints "<...>" when its comm cache has no name for the pid)
    lines = re.findall(r"^\s*[\d.]+ (\S+)\s+\d+  hello: exec (/usr/bin/\S+)$", out, re.M)
    assert ("true", "/usr/bin/true") in lines or ("<...>", "/usr/bin/true") in lines, out
    assert {path for _, path in lines} >= {"/usr/bin/true", "/usr/bin/uname"}


def test_kprobe() -> None:
    out = run_example("kprobe", "--duration", "1.5")
    if not check_supported("kprobe", out, "kprobe"):
        assert "kprobe on 'do_sys_openat2'" in out
        return
    rows = [ln.split() for ln in out.splitlines()[1:-1]]
    assert any(r[2] in ("cat", "(exited)") and int(r[1]) >= 2 for r in rows), out
    assert int(out.splitlines()[-1].split()[-1]) >= 1  # cat /nonexistent failed


def test_fentry() -> None:
    out = run_example("fentry", "--duration", "1.5")
    if not check_supported("fentry", out, "fentry"):
        assert "fentry/fexit" in out
        return
    # the tool's own workload: fentry-demo-0, -1, … each removed once, with ret 0
    rows = re.findall(r"^\s*(\d+) (\S+)\s+(-?\d+)\s+([\d.]+)  \S*/fentry-demo-(\d+)$",
                      out, re.M)
    assert len(rows) >= 3, out
    assert [int(r[4]) for r in rows[:3]] == [0, 1, 2], out
    assert all(r[2] == "0" and float(r[3]) > 0 for r in rows), out
    assert len({r[0] for r in rows}) == 1  # one process (the tool) removed them all


def test_lsm() -> None:
    out = run_example("lsm", "--duration", "1.5")
    if not check_supported("lsm", out, "lsm"):
        assert "LSM" in out
        return
    denied = int(re.search(r"denied by the BPF LSM: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert denied >= 2 and f"the child saw: {denied} EPERM" in out
