"""Session probes: ``SEC("uprobe.session")`` and ``SEC("kprobe.session")`` run one
program at the entry and at the return of each call, with a per-call cookie
(``bpf_session_cookie()``) the entry fills and the return reads back; an entry that
returns non-zero cancels that call's return probe.

The uprobe tests trace a target process that calls ``add_i(i, 100)`` for
i = 1..N (tests/uprobe/prog.c); the kprobe test traces getpgid(2) from a child.
Where the kernel lacks a kind (uprobe.session before 6.13, kprobe.session without
kprobes or before 6.10), the ``kind`` marker makes the test assert the clean
NotSupportedError instead (tests/_kernel.py); the kernel-matrix VMs run this file.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple

import pytest

import pylibbpf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "uprobe"))
import build_targets  # noqa: E402

N = 3                      # calls of add_i per run of the target
KIND_ENTRY, KIND_RETURN = 1, 2


class Rec(NamedTuple):
    kind: int
    arg: int               # entry: the argument; return: what the cookie held
    ret: int
    cookie: int            # the attach cookie


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    return build_targets.build(tmp_path_factory.mktemp("session-targets"))


@pytest.fixture
def sessions(bpf_objects) -> Iterator[pylibbpf.Object]:
    """tests/bpf/sessions.bpf.c, opened (each test loads the program it needs)."""
    with pylibbpf.Object(bpf_objects["sessions"]) as obj:
        yield obj


def load_only(obj: pylibbpf.Object, name: str) -> pylibbpf.Program:
    for prog in obj.programs.values():
        prog.autoload = prog.name == name
    obj.load()
    return obj.programs[name]


def records(obj: pylibbpf.Object) -> List[Rec]:
    log = obj.maps["session_log"]
    n = min(obj.bss.log_len, log.max_entries)
    out = []
    for i in range(n):
        r = log[i]
        out.append(Rec(r.kind, r.arg, r.ret, r.cookie))
    return out


def run_target(obj: pylibbpf.Object, exe: Path, attach) -> int:
    """Start the target, attach (``attach(pid)``, a Link) while it waits, let it run."""
    from test_uprobe import child

    with child(exe, N) as c:
        obj.bss.target_tgid = c.pid
        with attach(c.pid):
            c.go()
    return c.pid


@pytest.mark.kind("uprobe_session")
def test_uprobe_session_sees_entry_and_return_with_a_shared_cookie(sessions, targets) -> None:
    prog = load_only(sessions, "on_uprobe_session")
    exe = targets["prog_pie"]
    run_target(sessions, exe, lambda pid: prog.attach_uprobe_multi(
        exe, symbols=["add_i"], cookies=[0xC0DE], pid=pid))
    # each call: its entry (argument i), then its return, which found in the
    # session cookie what its own entry stored (i * 1000 + 7) and sees i + 100
    expected = []
    for i in range(1, N + 1):
        expected += [Rec(KIND_ENTRY, i, 0, 0xC0DE), Rec(KIND_RETURN, i * 1000 + 7, i + 100, 0xC0DE)]
    assert records(sessions) == expected


@pytest.mark.kind("uprobe_session")
def test_uprobe_session_entry_returning_nonzero_skips_the_return(sessions, targets) -> None:
    prog = load_only(sessions, "on_uprobe_session")
    sessions.data.skip_arg = 2          # the entry of add_i(2, 100) returns 1
    exe = targets["prog_pie"]
    run_target(sessions, exe, lambda pid: prog.attach_uprobe_multi(exe, "add_*", pid=pid))
    recs = records(sessions)
    assert [(r.kind, r.arg) for r in recs] == [
        (KIND_ENTRY, 1), (KIND_RETURN, 1007),
        (KIND_ENTRY, 2),                      # no return for this call
        (KIND_ENTRY, 3), (KIND_RETURN, 3007)]
    assert [r.ret for r in recs if r.kind == KIND_RETURN] == [101, 103]


@pytest.mark.kind("uprobe_session")
def test_uprobe_session_by_section_with_attach_all(bpf_objects, targets, tmp_path) -> None:
    """``SEC("uprobe.session/BINARY:FUNC")`` attaches by itself (libbpf parses it)."""
    with pylibbpf.Object(bpf_objects["sessions"]) as probe:   # refused here if the
        load_only(probe, "on_uprobe_session")                 # kernel lacks the kind
    exe = targets["prog_pie"]
    src = (HERE / "bpf" / "sessions.bpf.c").read_text().replace(
        'SEC("uprobe.session")', f'SEC("uprobe.session/{exe}:add_i")')
    path = tmp_path / "sessions_sec.bpf.c"
    path.write_text(src)
    out = pylibbpf.compile(path, tmp_path / "sessions_sec.bpf.o", cflags=["-Wall", "-Werror"])
    with pylibbpf.Object(out) as obj:
        load_only(obj, "on_uprobe_session")
        from test_uprobe import child

        with child(exe, N) as c:
            obj.bss.target_tgid = c.pid
            with obj.attach_all() as links:
                assert len(links) == 1
                c.go()
        recs = records(obj)
    assert [(r.kind, r.arg) for r in recs] == [
        (k, v) for i in range(1, N + 1) for k, v in ((KIND_ENTRY, i), (KIND_RETURN, i * 1000 + 7))]


def test_uprobe_session_arguments_are_checked(sessions, targets) -> None:
    for prog in sessions.programs.values():
        prog.autoload = False          # nothing needs to load for these checks
    exe = targets["prog_pie"]
    prog = sessions.programs["on_uprobe_session"]
    with pytest.raises(ValueError, match="exclude each other"):
        prog.attach_uprobe_multi(exe, "add_*", retprobe=True, session=True)
    sessions.load()
    with pytest.raises(pylibbpf.BPFError, match="is a uprobe.session program; use "
                                                r"attach_uprobe_multi\(\)"):
        prog.attach_uprobe(exe, "add_i")
    with pytest.raises(pylibbpf.BPFError, match=r"needs SEC\('uprobe.multi'\)"):
        prog.attach_uprobe_multi(exe, "add_*", session=False)


@pytest.mark.kind("uprobe_session")
def test_uprobe_session_without_target_says_which_method(sessions) -> None:
    prog = load_only(sessions, "on_uprobe_session")
    with pytest.raises(pylibbpf.NoAttachTargetError, match=r"use attach_uprobe_multi\(\.\.\.\)"):
        prog.attach()
    assert sessions.attach_all() == []     # attach_all() skips it


@pytest.mark.kind("kprobe_session")
def test_kprobe_session_sees_entry_and_return_with_a_shared_cookie(sessions) -> None:
    prog = load_only(sessions, "on_kprobe_session")
    sessions.bss.target_tgid = os.getpid()
    sessions.data.skip_arg = 0x7FFF0002
    with prog.attach_kprobe_multi(symbols=["do_getpgid"], cookies=[0xBEEF], session=True):
        for pid in (0x7FFF0001, 0x7FFF0002, 0x7FFF0003):   # no such processes: ESRCH
            with pytest.raises(ProcessLookupError):
                os.getpgid(pid)
    recs = records(sessions)
    assert [(r.kind, r.arg, r.ret, r.cookie) for r in recs] == [
        (KIND_ENTRY, 0x7FFF0001, 0, 0xBEEF), (KIND_RETURN, 0x7FFF0001 * 1000 + 7, -3, 0xBEEF),
        (KIND_ENTRY, 0x7FFF0002, 0, 0xBEEF),                 # entry returned 1: no return
        (KIND_ENTRY, 0x7FFF0003, 0, 0xBEEF), (KIND_RETURN, 0x7FFF0003 * 1000 + 7, -3, 0xBEEF)]


def test_cli_run_attaches_a_uprobe_session(bpf_objects) -> None:
    """``pylibbpf run --attach PROG=uprobe.session:BINARY:PATTERN:PID``: the map dump
    at the end shows each call's entry and return, the return with the entry's cookie."""
    import json
    import subprocess

    from _children import same_pylibbpf
    from _kernel import expect_unsupported, support

    code = ("import os, sys\nprint(os.getpid(), flush=True)\nsys.stdin.readline()\n"
            "for a in (11, 22):\n    try: os.getpgid(a * 100000)\n    except OSError: pass\n")
    target = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(target.stdout.readline())  # type: ignore[union-attr]
        run = subprocess.Popen(
            [sys.executable, "-m", "pylibbpf", "run", "-d", "3", "--json",
             str(bpf_objects["sessions"]), "--set", f"target_tgid={pid}",
             "--attach", f"on_uprobe_session=uprobe.session:c:getpgid:{pid}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **same_pylibbpf())
        try:
            err = []
            while True:
                line = run.stderr.readline()  # type: ignore[union-attr]
                err.append(line)
                if not line or line.startswith("attached on_uprobe_session"):
                    break
            target.communicate("go\n", timeout=30)
            out, rest = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
    stderr = "".join(err) + rest
    sup = support("uprobe_session")
    if not sup:
        expect_unsupported("uprobe_session")
        assert run.returncode != 0 and "uprobe_session" in stderr and sup.reason in stderr
        return
    assert run.returncode == 0, stderr
    rows = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    log = {r["key"]: r["value"] for r in rows if r.get("map") == "session_log" and "key" in r}
    got = [(log[i]["kind"], log[i]["arg"]) for i in range(4)]
    assert got == [(KIND_ENTRY, 1100000), (KIND_RETURN, 1100000 * 1000 + 7),
                   (KIND_ENTRY, 2200000), (KIND_RETURN, 2200000 * 1000 + 7)]
