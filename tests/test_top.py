"""`pylibbpf top` and pylibbpf.top: per-program run counts, run time and CPU share."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid
from typing import Iterator

import pytest

import pylibbpf
from pylibbpf import top
from pylibbpf.cli import main
from _children import same_pylibbpf

W_TP = 1  # tests/bpf/attach_tp.bpf.c: which program counted
CALLS = 500


@pytest.fixture
def busy_tp(bpf_objects) -> Iterator[pylibbpf.Object]:
    """attach_tp's tp_getpgid on syscalls:sys_enter_getpgid."""
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj:
        obj.load()
        obj.programs["tp_getpgid"].attach_tracepoint("syscalls", "sys_enter_getpgid")
        yield obj


def _counted(obj: pylibbpf.Object) -> int:
    """Runs of tp_getpgid so far, as the program itself counted them (every process)."""
    hits = getattr(obj.maps["hits"], "raw", obj.maps["hits"])
    total = 0
    for k, v in hits.items():
        _, which = struct.unpack("II", bytes(k))
        if which == W_TP:
            total += struct.unpack("QQ", bytes(v))[0]
    return total


def test_top_once_json_counts_a_busy_program(busy_tp) -> None:
    prog_id = busy_tp.programs["tp_getpgid"].id
    proc = subprocess.Popen([sys.executable, "-m", "pylibbpf", "top", "--once", "--json",
                             "--interval", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **same_pylibbpf())
    try:
        assert proc.stderr is not None
        note = proc.stderr.readline()  # written once the first sample is taken
        assert "sampling every 3s" in note
        for _ in range(CALLS):
            os.getpgid(0)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    data = json.loads(out)
    row = next(r for r in data["programs"] if r["id"] == prog_id)
    # every run of ours is in the interval; other processes may call getpgid too, and
    # the program counts those in its map as well
    assert CALLS <= row["runs"] <= _counted(busy_tp)
    assert row["name"] == "tp_getpgid" and row["type"] == "tracepoint"
    assert row["avg_ns"] > 0 and row["run_time_ns"] > 0 and row["cpu_percent"] > 0
    assert data["interval"] == 3 and data["seconds"] >= 3
    assert row["events_per_sec"] == pytest.approx(row["runs"] / data["seconds"], rel=0.01)
    assert row["avg_ns"] == pytest.approx(row["run_time_ns"] / row["runs"])
    assert row["attach"] == "tracepoint:sys_enter_getpgid" or row["attach"] == "perf_event"


def test_top_once_table(busy_tp, capsys) -> None:
    prog_id = busy_tp.programs["tp_getpgid"].id
    # the program ran before: with the statistics off, so not counted, then --all lists it
    os.getpgid(0)
    assert main(["top", "--once", "--all", "--interval", "0.2", "--sort", "id"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "TYPE", "NAME", "ATTACH", "EVENTS/S", "AVG", "NS",
                              "%CPU", "RUNS"]
    line = next(ln for ln in out[1:] if ln.split()[0] == str(prog_id))
    assert "tp_getpgid" in line and "tracepoint" in line


def test_api_counts_exactly_what_ran(busy_tp) -> None:
    prog = busy_tp.programs["tp_getpgid"]
    with top.run_time_stats():
        before = top.snapshot()
        counted = _counted(busy_tp)
        for _ in range(CALLS):
            os.getpgid(0)
        after = top.snapshot()
        counted_after = _counted(busy_tp)
    [r] = [r for r in top.rates(before, after) if r.id == prog.id]
    # the map counts every run between the snapshots, and perhaps a few just outside
    assert CALLS <= r.runs <= counted_after - counted + 1000
    assert r.run_time_ns > 0 and r.avg_ns > 0
    assert after[prog.id].run_count - before[prog.id].run_count == r.runs
    assert prog.info().run_count >= after[prog.id].run_count


def test_rates_arithmetic_and_order() -> None:
    def s(pid: int, cnt: int, ns: int, at: float) -> top.ProgramStats:
        return top.ProgramStats(id=pid, type=pylibbpf.ProgramType.XDP, name=f"p{pid}",
                                run_count=cnt, run_time_ns=ns, attach="", at=at)

    before = {1: s(1, 100, 10_000, 0.0), 2: s(2, 0, 0, 0.0)}
    after = {1: s(1, 300, 50_000, 2.0), 2: s(2, 10, 1_000_000_000, 2.0), 3: s(3, 4, 400, 2.0)}
    rows = top.rates(before, after)
    assert [r.id for r in rows] == [2, 1, 3]
    r1 = next(r for r in rows if r.id == 1)
    assert (r1.runs, r1.run_time_ns, r1.events_per_sec, r1.avg_ns) == (200, 40_000, 100.0, 200.0)
    assert r1.cpu_percent == pytest.approx(40_000 / 2e9 * 100)
    assert next(r for r in rows if r.id == 2).cpu_percent == pytest.approx(50.0)
    # loaded in between: counted from zero over the whole window
    assert next(r for r in rows if r.id == 3).events_per_sec == 2.0
    assert [r.id for r in top.rates(before, after, sort="events")] == [1, 2, 3]
    assert [r.id for r in top.rates(before, after, sort="avg")] == [2, 1, 3]
    with pytest.raises(ValueError, match="sort must be one of"):
        top.rates(before, after, sort="bogus")


def test_bad_interval_is_a_usage_error(capsys) -> None:
    assert main(["top", "--once", "--interval", "0"]) == 2
    assert "--interval must be > 0" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (dev.sh "
                    "installs it)")
def test_top_live_view_in_a_real_terminal(tmp_path) -> None:
    """The live view in a terminal: a header that refreshes, 'q' quits and puts the
    terminal back."""
    sock = f"plb-top-{uuid.uuid4().hex[:8]}"
    env = same_pylibbpf().get("env", os.environ)
    done = tmp_path / "done"
    cmd = (f"{sys.executable} -m pylibbpf top --interval 0.3 --all; "
           f"echo exit=$? > {done}; sleep 60")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True,
                              env=env, check=True).stdout

    tmux("new-session", "-d", "-x", "150", "-y", "30", cmd)
    try:
        deadline = time.monotonic() + 30
        screen = ""
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p")
            if "EVENTS/S" in screen and "pylibbpf top:" in screen:
                break
            time.sleep(0.2)
        assert "pylibbpf top:" in screen and "EVENTS/S" in screen, screen
        assert "q or Ctrl-C quits" in screen
        assert "every 0.3s" in screen
        tmux("send-keys", "q")
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.1)
        assert done.read_text().strip() == "exit=0"
        # back on the normal screen: the live view is gone
        assert "EVENTS/S" not in tmux("capture-pane", "-p")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def test_without_privileges_the_verbs_fail_cleanly(bpf_objects) -> None:
    """As an unprivileged user, `top` and `prog dump` say what they could not do."""
    from _children import Unprivileged

    with pylibbpf.Program.load_raw("socket_filter", bytes.fromhex(
            "b700000000000000" "9500000000000000"), name="plb_unpriv") as prog, \
            Unprivileged() as u:
        prog_id = prog.id
        code = ("import sys\nfrom pylibbpf.cli import main\n"
                f"print(main(['prog', 'dump', 'xlated', 'id', '{prog_id}']))\n"
                "print(main(['top', '--once', '--interval', '0.1']))\n")
        res = u.run(code)
    assert res.stdout.split() == ["1", "1"], res.stderr
    assert "Traceback" not in res.stderr
    assert f"pylibbpf: error: open program id {prog_id}: " in res.stderr
    assert "pylibbpf: error: enable BPF run-time statistics " in res.stderr
    assert res.stderr.count("EPERM") == 2
