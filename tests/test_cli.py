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
from pylibbpf.map import possible_cpus

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


def _symbol_insns(path: Path, name: str) -> int:
    """The instructions of function ``name`` in an object file, by its ELF symbol's
    size (whatever clang's code generation made of it)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]
        return int(sym["st_size"]) // 8


def test_inspect_json(bpf_objects) -> None:
    out = json.loads(run("inspect", "--json", str(bpf_objects["core_task"])).stdout)
    assert out["name"] == "core_task"
    insns = _symbol_insns(bpf_objects["core_task"], "on_getpgid")
    assert insns > 10
    assert out["programs"] == [{"name": "on_getpgid", "section": "tp/syscalls/sys_enter_getpgid",
                                "type": "tracepoint", "insns": insns}]
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
    mine = [e for e in events if "event" in e and e["event"]["pid"] == child_pid]
    assert [e["map"] for e in mine].count("events") == 3
    assert [e["map"] for e in mine].count("perf_events") == 2
    assert all(e["event"]["arg"] == 4242 and e["event"]["comm"] == "python3" or
               e["event"]["comm"].startswith("python") for e in mine)
    # with --json the final dump is JSON lines too
    calls = {e["key"]: e["value"] for e in events if e.get("map") == "calls" and "key" in e}
    assert calls[child_pid] == 3, out
    bss = next(e["values"] for e in events if e.get("section") == ".bss")
    assert bss["total"] >= 3


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


VERDICT_TEXT = ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                'SEC("xdp") int f(void *c) {{ return {verdict}; }}\n'
                'char LICENSE[] SEC("license") = "GPL";\n')


def test_compile_from_text_is_cached_by_content(tmp_path, monkeypatch) -> None:
    """bcc's BPF(text=…): the same text compiles once, into the cache's objects
    directory; other text gives another object."""
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    first = pylibbpf.compile(text=VERDICT_TEXT.format(verdict=2), name="verdict")
    assert first.parent == tmp_path / "cache" / "objects"
    assert first.name.startswith("verdict-") and first.name.endswith(".bpf.o")
    stamp = first.stat().st_mtime_ns
    again = pylibbpf.compile(text=VERDICT_TEXT.format(verdict=2), name="verdict")
    assert again == first and again.stat().st_mtime_ns == stamp  # not compiled again
    other = pylibbpf.compile(text=VERDICT_TEXT.format(verdict=1))
    assert other != first and other.name.startswith("text-")
    for path, verdict in ((first, 2), (other, 1)):
        with pylibbpf.Object(path) as obj:
            obj.load()
            assert obj.programs["f"].test_run(b"\0" * 64).retval == verdict


def test_object_from_text(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    with pylibbpf.Object.from_source(text=VERDICT_TEXT.format(verdict=2)) as obj:
        assert obj.name == "text"
        obj.load()
        assert obj.programs["f"].test_run(b"\0" * 64).retval == 2
    with pylibbpf.Object.from_source(text=VERDICT_TEXT.format(verdict=1), name="drop") as obj:
        assert obj.name == "drop"
        obj.load()
        assert obj.programs["f"].test_run(b"\0" * 64).retval == 1


def test_compile_text_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(pylibbpf.CompileError) as exc:
        pylibbpf.compile(text="int f(void) { return nope; }\n", name="broken")
    src = exc.value.source
    assert src.startswith(str(tmp_path / "cache" / "sources")) and src.endswith("/broken.bpf.c")
    assert f"{src}:1:" in str(exc.value) and "nope" in str(exc.value)
    with pytest.raises(TypeError, match="a source path or text=, not both"):
        pylibbpf.compile(TOOL_SRC, text="int x;")
    with pytest.raises(TypeError, match="needs a source path or text="):
        pylibbpf.compile()
    with pytest.raises(TypeError, match="text must be a str"):
        pylibbpf.compile(text=b"int x;")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be a file name"):
        pylibbpf.compile(text="int x;", name="../x")
    with pytest.raises(TypeError, match="a source path or text=, not both"):
        pylibbpf.Object.from_source(TOOL_SRC, text="int x;")


def test_compile_cache_is_where_the_docstring_says(tmp_path, monkeypatch) -> None:
    """Without PYLIBBPF_CACHE, objects go to $XDG_CACHE_HOME/pylibbpf/objects,
    as compile()'s docstring says."""
    monkeypatch.delenv("PYLIBBPF_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    out = pylibbpf.compile(text=VERDICT_TEXT.format(verdict=2))
    assert out.parent == tmp_path / "xdg" / "pylibbpf" / "objects"
    doc = " ".join((pylibbpf.compile.__doc__ or "").split())
    assert "``$XDG_CACHE_HOME/pylibbpf/objects``" in doc
    assert "``$PYLIBBPF_CACHE/objects``" in doc and "``~/.cache/pylibbpf/objects``" in doc


@pytest.mark.parametrize("name, text", [
    ("prog.bpf.c", "int x;\n"),
    ("prog.txt", '#include "vmlinux.h"\nint x;\n'),
    ("prog.o", "// a BPF program\nint x;\n"),
])
def test_object_of_c_source_points_to_from_source(tmp_path, name, text) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(pylibbpf.ELFError) as exc:
        pylibbpf.Object(path)
    assert str(exc.value).startswith(f"'{path}': not an ELF file (no ELF magic); it looks like "
                                     f"C source: compile and open it with "
                                     f"pylibbpf.Object.from_source('{path}')")


def test_object_of_other_text_has_no_c_hint(tmp_path) -> None:
    path = tmp_path / "notes.o"
    path.write_text("hello\n")
    with pytest.raises(pylibbpf.ELFError, match="not an ELF file") as exc:
        pylibbpf.Object(path)
    assert "from_source" not in str(exc.value)


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


GLOBALS_SRC = Path(__file__).resolve().parent / "bpf" / "cli_globals.bpf.c"


def start_run(*args: str) -> subprocess.Popen[str]:
    """``pylibbpf run ARGS``, returned once every program is attached."""
    proc = subprocess.Popen([sys.executable, "-m", "pylibbpf", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **same_pylibbpf())
    seen = []
    while True:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        if not line:
            proc.kill()
            rest = proc.stderr.read()  # type: ignore[union-attr]
            raise AssertionError(f"run exited early: {''.join(seen)}{rest}")
        seen.append(line)
        if line.startswith(("attached on_getpgid", "attached on_tick")):
            return proc


def finish(proc: subprocess.Popen[str]) -> list:
    """Wait for ``run --json`` to end; its output as JSON objects."""
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return [json.loads(ln) for ln in out.splitlines()]


def getpgid_child(*args: int) -> None:
    code = (f"import os\nfor a in {list(args)}:\n"
            "    try: os.getpgid(a)\n    except OSError: pass")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_run_set_changes_what_the_program_counts() -> None:
    """--set before load: the .rodata filter, a .data struct (JSON) and an enum by
    name; the per-CPU array comes out summed over CPUs (--per-cpu: CPU by CPU)."""
    proc = start_run("--json", "-d", "3", str(GLOBALS_SRC), "--set", "target_arg=0x309",
                     "--set", 'label={"weight": 5, "text": "hi"}', "--set", "mode=MODE_COUNT")
    getpgid_child(777, 777, 777, 4242, 4242)   # 0x309 == 777; the default 4242 no longer counts
    out = finish(proc)
    maps = {(e["map"], e["key"]): e["value"] for e in out if "map" in e}
    assert maps[("labels", 777)] == {"weight": 5, "text": "hi"}
    assert ("labels", 4242) not in maps
    assert maps[("per_cpu_hits", 0)] == 15   # 3 matches x weight 5, whatever CPUs ran them
    sections = {e["section"]: e["values"] for e in out if "section" in e}
    assert sections[".bss"] == {"matched": 3}
    assert sections[".data"] == {"label": {"weight": 5, "text": "hi"}}

    proc = start_run("--json", "--per-cpu", "-d", "2", str(GLOBALS_SRC), "--set",
                     "target_arg=778", "--set", "mode=2")  # MODE_IGNORE: nothing counts
    getpgid_child(778, 778)
    out = finish(proc)
    per_cpu = [e["value"] for e in out if e.get("map") == "per_cpu_hits"]
    assert per_cpu == []   # all zero: left out
    assert next(e["values"] for e in out if "section" in e and e["section"] == ".bss") == \
        {"matched": 0}


@pytest.mark.parametrize("assignment, message", [
    ("nope=1", "--set nope=1: object 'cli_globals' has no global variable 'nope' "
               "(it has: label, matched, mode, target_arg)"),
    ("target_arg=abc", "--set target_arg (unsigned int): 'abc' is not an integer"),
    ("target_arg=4294967296", "--set target_arg=4294967296: .rodata.target_arg: cannot "
                              "encode int 4294967296 as unsigned int"),
    ("mode=MODE_X", "--set mode (enum mode): 'MODE_X' is no enumerator of enum mode (it has: "
                    "MODE_COUNT, MODE_IGNORE)"),
    ('label={"weight": 1, "colour": 2}', "no field 'colour'"),
    ("label={weight: 1}", "--set label (struct label): struct label is written as JSON"),
    ("target_arg", "--set 'target_arg': expected NAME=VALUE"),
])
def test_run_set_errors_name_the_variable(assignment: str, message: str) -> None:
    res = run("run", "-d", "0.1", str(GLOBALS_SRC), "--set", assignment, check=False)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert "attached" not in res.stderr   # refused before load


def test_run_percpu_per_cpu_values(bpf_objects) -> None:
    """--per-cpu prints the CPU values of a per-CPU map: one per possible CPU, their
    sum the count."""
    proc = start_run("--json", "--per-cpu", "-d", "2", str(bpf_objects["cli_globals"]),
                     "--set", "target_arg=779")
    getpgid_child(779, 779, 779, 779)
    out = finish(proc)
    values = next(e["value"] for e in out if e.get("map") == "per_cpu_hits")
    assert isinstance(values, list) and len(values) == possible_cpus()
    assert sum(values) == 4


def test_run_uprobe_attach_spec_with_a_pid(bpf_objects) -> None:
    """uprobe:BINARY:SYMBOL:PID fires in that process only: two processes call
    getsid(), the count is exactly the first's."""
    target = subprocess.Popen([sys.executable, "-c", "import os, sys\nsys.stdin.readline()\n"
                               "for _ in range(5): os.getsid(0)"], stdin=subprocess.PIPE,
                              text=True)
    try:
        proc = start_run("--json", "-d", "3", str(bpf_objects["tool_run"]), "--attach",
                         f"needs_target=uprobe:c:getsid:{target.pid}")
        target.communicate("go\n", timeout=20)
        subprocess.run([sys.executable, "-c", "import os\nfor _ in range(7): os.getsid(0)"],
                       check=True)
        out = finish(proc)
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
    bss = next(e["values"] for e in out if e.get("section") == ".bss")
    assert bss["uprobe_hits"] == 5
    res = run("run", "-d", "0.1", str(bpf_objects["tool_run"]), "--attach",
              "needs_target=uprobe:c:getsid:me", check=False)
    assert res.returncode == 2
    assert "--attach 'needs_target=uprobe:c:getsid:me': the pid must be a number" in res.stderr


USDT_ANY = r'''
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} ticks SEC(".maps");

SEC("usdt")
int BPF_USDT(on_tick, long i, long scaled)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n = bpf_map_lookup_elem(&ticks, &pid);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&ticks, &pid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
'''


def test_run_usdt_spec_with_a_pid_and_internal_maps_hidden(tmp_path) -> None:
    """usdt:BINARY:PROVIDER:NAME:PID counts that process's probes only; libbpf's
    __bpf_usdt_* maps are left out of the dump unless --all-maps."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "uprobe"))
    import build_targets

    exe = build_targets.build(tmp_path)["prog_pie"]
    src = tmp_path / "usdt_any.bpf.c"
    src.write_text(USDT_ANY)

    def ticker() -> subprocess.Popen[str]:
        p = subprocess.Popen([str(exe), "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout is not None
        int(p.stdout.readline())
        return p

    for extra in ([], ["--all-maps"]):
        a, b = ticker(), ticker()
        try:
            proc = start_run("--json", "-d", "3", str(src), *extra, "--attach",
                             f"on_tick=usdt:{exe}:plbtest:tick:{a.pid}")
            for p in (a, b):
                p.communicate("go\n", timeout=20)
            out = finish(proc)
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.kill()
                    p.wait()
        ticks = {e["key"]: e["value"] for e in out if e.get("map") == "ticks"}
        assert ticks == {a.pid: 3}
        internal = {e["map"] for e in out if e.get("map", "").startswith("__bpf_usdt")}
        assert internal == (set() if not extra else {"__bpf_usdt_specs"}), out
