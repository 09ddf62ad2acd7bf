"""The command line: python -m pylibbpf …"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pylibbpf
from _children import same_pylibbpf

TOOL_SRC = Path(__file__).resolve().parent / "bpf" / "tool_run.bpf.c"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylibbpf", *args], capture_output=True,
                          text=True, check=check, **same_pylibbpf())


def test_version() -> None:
    """Versions, then where libbpf came from (the pinned release and the sha256 its
    tarball was verified against), what the build used, and the libelf/zlib it runs with."""
    lines = run("version").stdout.splitlines()
    assert lines[0] == f"pylibbpf {pylibbpf.__version__}, libbpf {pylibbpf.libbpf_version()}"
    pin = {k: v for k, v in re.findall(r'^(\w+) = "(.*)"$', (Path(__file__).resolve().parents[1]
                                       / "vendor" / "libbpf" / "pin.toml").read_text(), re.M)}
    assert lines[1].startswith(f"libbpf source: {pin['version']} release, sha256 {pin['sha256']}, from ")
    assert lines[2].startswith("built with: libelf ")
    assert lines[3].startswith("runs with: ") and "libelf" in lines[3] and "libz" in lines[3]


def test_inspect_json(bpf_objects) -> None:
    out = json.loads(run("inspect", "--json", str(bpf_objects["core_task"])).stdout)
    assert out["name"] == "core_task"
    assert out["programs"] == [{"name": "on_getpgid", "section": "tp/syscalls/sys_enter_getpgid",
                                "type": "tracepoint", "insns": 55}]
    assert out["maps"] == [{"name": "seen", "type": "hash", "key_type": "unsigned int",
                            "value_type": "struct seen", "key_size": 4, "value_size": 28,
                            "max_entries": 1024}]


def test_inspect_types_and_globals_from_source() -> None:
    """A .bpf.c is compiled first; maps show their BTF types, globals their values."""
    out = run("inspect", str(TOOL_SRC)).stdout
    assert re.search(r"^on_getpgid\s+tp/syscalls/sys_enter_getpgid\s+tracepoint\s+\d+$", out,
                     re.M)
    assert re.search(r"^needs_target\s+uprobe\s", out, re.M)
    maps = {ln.split()[0]: ln.split() for ln in out.split("maps:")[1].split("global")[0]
            .splitlines()[2:] if ln.strip()}
    assert maps["calls"] == ["calls", "hash", "unsigned", "int", "unsigned", "long", "long",
                             "1024"]
    assert maps["events"][:2] == ["events", "ringbuf"]
    assert maps["perf_events"][:2] == ["perf_events", "perf_event_array"]
    glob = out.split("global variables:")[1]
    assert re.search(r"^\.rodata\s+magic\s+unsigned int\s+4242$", glob, re.M), glob
    assert re.search(r"^\.bss\s+total\s+unsigned long long\s+0$", glob, re.M), glob


def test_inspect_bad_file_is_a_clean_error(tmp_path) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an elf")
    res = run("inspect", str(bad), check=False)
    assert res.returncode == 1
    assert "not an ELF file" in res.stderr and str(bad) in res.stderr
    assert "Traceback" not in res.stderr


def test_list_shows_our_loaded_program(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        prog_id = obj.programs["xdp_rewrite"].id
        out = run("list", "programs").stdout
    line = next(ln for ln in out.splitlines() if ln.split()[0] == str(prog_id))
    assert "xdp" in line and "xdp_rewrite" in line
    assert str(prog_id) not in [ln.split()[0] for ln in run("list", "programs").stdout.splitlines()]


def test_features_json() -> None:
    feats = json.loads(run("features", "--json").stdout)
    assert feats["program_types"]["socket_filter"] is True
    assert feats["map_types"]["ringbuf"] is True
    assert feats["mechanisms"]["btf_vmlinux"] is True


def test_vmlinux_h_and_compile(tmp_path) -> None:
    header = tmp_path / "vmlinux.h"
    run("vmlinux-h", "-o", str(header))
    assert "struct task_struct {" in header.read_text()
    src = tmp_path / "x.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    out = run("compile", str(src), "-o", str(tmp_path / "x.o")).stdout.strip()
    assert out == str(tmp_path / "x.o")
    with pylibbpf.Object(out) as obj:
        obj.load()
        assert obj.programs["pass"].test_run(b"\0" * 64).retval == 2


def test_compile_error_is_readable(tmp_path) -> None:
    src = tmp_path / "broken.bpf.c"
    src.write_text("int f(void) { return undefined_thing; }\n")
    res = run("compile", str(src), check=False)
    assert res.returncode == 1
    assert "undefined_thing" in res.stderr and "broken.bpf.c" in res.stderr




def test_run_prints_decoded_events_and_dumps_maps_on_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pylibbpf", "run", "--json", str(TOOL_SRC)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **same_pylibbpf())
    try:
        seen = []
        while True:  # wait until everything is attached
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert line, f"run exited early: {proc.stderr.read()}"  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith("events decoded as"):
                break
        assert "attached on_getpgid (SEC 'tp/syscalls/sys_enter_getpgid')\n" in seen
        assert any(ln.startswith("not attached: needs_target (SEC 'uprobe'") for ln in seen)
        code = ("import os\nfor f in [os.getpgid] * 3 + [os.getsid] * 2:\n"
                "    try: f(4242)\n    except OSError: pass\nprint(os.getpid())")
        child_pid = int(subprocess.run([sys.executable, "-c", code], check=True,
                                       capture_output=True, text=True).stdout)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: stop, then dump the maps
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    events = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    mine = [e for e in events if e["event"]["pid"] == child_pid]
    assert [e["map"] for e in mine].count("events") == 3
    assert [e["map"] for e in mine].count("perf_events") == 2
    assert all(e["event"]["arg"] == 4242 and e["event"]["comm"] == "python3" or
               e["event"]["comm"].startswith("python") for e in mine)
    dump = out.split("map calls (hash,")[1]
    assert re.search(rf"^  {child_pid}: 3$", dump, re.M), out
    assert re.search(r"^  total = [1-9]\d*$", out, re.M)


def test_run_attach_option_for_sections_without_target(tmp_path) -> None:
    """--attach gives a SEC("uprobe") program its target: here libc's getsid()
    called by a child while `run` runs; the .bss dump shows the hits."""
    proc = subprocess.Popen([sys.executable, "-m", "pylibbpf", "run", "-d", "4", str(TOOL_SRC),
                             "--attach", "needs_target=uprobe:c:getsid"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **same_pylibbpf())
    try:
        while True:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert line, proc.stderr.read()  # type: ignore[union-attr]
            if line.startswith("events decoded as"):
                break
        subprocess.run([sys.executable, "-c", "import os\nfor _ in range(7): os.getsid(0)"],
                       check=True)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    hits = int(re.search(r"^  uprobe_hits = (\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    assert hits >= 7  # the child's, and any other getsid() on the machine
    res = run("run", "-d", "0.1", str(TOOL_SRC), "--attach", "needs_target=kprobe", check=False)
    assert res.returncode == 2 and "unknown kind or wrong arguments" in res.stderr
    res = run("run", "-d", "0.1", str(TOOL_SRC), "--attach", "nope=uprobe:c:getsid",
              check=False)
    assert res.returncode == 2 and "no program 'nope'" in res.stderr


def test_run_with_duration_and_object_file(bpf_objects) -> None:
    res = run("run", "-d", "0.3", "--no-dump", str(bpf_objects["tool_run"]))
    assert "attached on_getsid" in res.stderr and "map calls" not in res.stdout


def test_symbols_lists_libc_functions() -> None:
    out = run("symbols", "c", "getpg*").stdout
    names = {ln.split()[4].split("@")[0] for ln in out.splitlines()}
    assert {"getpgid", "getpgrp"} <= names
    rows = json.loads(run("symbols", "--json", "c", "malloc").stdout)
    assert rows and all(r["name"] == "malloc" and r["offset"] > 0 for r in rows)
    res = run("symbols", "c", "no_such_function_*", check=False)
    assert res.returncode == 1 and "no function matches" in res.stderr


def test_features_attach_kinds_and_helpers() -> None:
    feats = json.loads(run("features", "--json", "--helpers", "xdp").stdout)
    kinds = feats["attach_kinds"]
    assert kinds["tracepoint"] and kinds["uprobe"] and kinds["xdp"] and kinds["perf_event"]
    has_kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe") or \
        os.path.exists("/sys/kernel/tracing/kprobe_events")
    assert kinds["kprobe"] is has_kprobes
    xdp = feats["helpers"]["xdp"]
    assert xdp["bpf_xdp_adjust_head"] is True and xdp["bpf_map_lookup_elem"] is True
    assert xdp["bpf_skb_vlan_push"] is False  # a tc-only helper
    text = run("features").stdout
    assert re.search(r"^attach kinds:\n(  (yes|no )  \S+\n)+", text, re.M)


def test_compile_caches_by_content(tmp_path) -> None:
    src = tmp_path / "c.bpf.c"
    hdr = tmp_path / "c.h"
    hdr.write_text("#define RET XDP_PASS\n")
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "c.h"\n'
                   'SEC("xdp") int f(struct xdp_md *ctx) { return RET; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    child = same_pylibbpf({"PYLIBBPF_CACHE": str(tmp_path / "cache")})

    def compile_() -> Path:
        return Path(subprocess.run([sys.executable, "-m", "pylibbpf", "compile", str(src)],
                                   check=True, capture_output=True, text=True,
                                   **child).stdout.strip())

    first = compile_()
    assert first.parent == tmp_path / "cache" / "objects" and first.name.startswith("c-")
    mtime = first.stat().st_mtime_ns
    assert compile_() == first and first.stat().st_mtime_ns == mtime  # cached, not rebuilt
    hdr.write_text("#define RET XDP_DROP\n")  # an included header changed: a new object
    second = compile_()
    assert second != first
    for obj_path, verdict in ((first, 2), (second, 1)):
        with pylibbpf.Object(obj_path) as obj:
            obj.load()
            assert obj.programs["f"].test_run(b"\0" * 64).retval == verdict


def test_object_from_source(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path))
    with pylibbpf.Object.from_source(TOOL_SRC) as obj:
        assert obj.name == "tool_run"
        assert obj.rodata.magic == 4242
        obj.load()
        assert set(obj.programs) == {"on_getpgid", "on_getsid", "needs_target"}


def test_compile_error_lists_clang_diagnostics(tmp_path) -> None:
    src = tmp_path / "two.bpf.c"
    src.write_text("int f(void) { return nope1; }\nint g(void) { return nope2; }\n")
    with pytest.raises(pylibbpf.CompileError) as exc:
        pylibbpf.compile(src, tmp_path / "two.o")
    e = exc.value
    assert len(e.diagnostics) == 2 and "2 errors generated" in e.output
    msg = str(e)
    assert f"{src}:1:" in msg and f"{src}:2:" in msg and "errors generated" not in msg


def test_trace_pipe_shows_bpf_printk(tmp_path) -> None:
    src = tmp_path / "printk.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("tp/syscalls/sys_enter_getpgid") int p(void *ctx) {\n'
                   '  bpf_printk("pylibbpf-cli-test %d", bpf_get_current_pid_tgid() >> 32);\n'
                   '  return 0; }\nchar LICENSE[] SEC("license") = "GPL";\n')
    from pylibbpf.trace_pipe import TracePipe

    with pylibbpf.Object.from_source(src) as obj, TracePipe() as tp:
        obj.load()
        with obj.programs["p"].attach():
            child = subprocess.run([sys.executable, "-c",
                                    "import os; os.getpgid(0); print(os.getpid())"],
                                   check=True, capture_output=True, text=True)
            pid = int(child.stdout)
            events = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                    e.message == f"pylibbpf-cli-test {pid}" for e in events):
                events += tp.read(0.5)
    ev = next(e for e in events if e.message == f"pylibbpf-cli-test {pid}")
    assert ev.pid == pid and ev.bpf and ev.comm.startswith("python")


def test_compile_cache_keeps_a_few_builds_per_source(tmp_path, monkeypatch) -> None:
    from pylibbpf import compiler

    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compiler, "KEEP_PER_SOURCE", 3)
    src = tmp_path / "v.bpf.c"
    built = []
    for i in range(5):
        src.write_text(f'#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int f(void *c) {{ return {i}; }}\n'
                       'char LICENSE[] SEC("license") = "GPL";\n')
        built.append(pylibbpf.compile(src))
        time.sleep(0.01)
    left = sorted((tmp_path / "cache" / "objects").glob("v-*.bpf.o"))
    assert len(set(built)) == 5 and set(left) == set(built[-3:])
