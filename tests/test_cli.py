"""The command line: python -m pylibbpf …"""
from __future__ import annotations

import json
import subprocess
import sys

import pylibbpf


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylibbpf", *args], capture_output=True,
                          text=True, check=check)


def test_version() -> None:
    assert run("version").stdout.strip() == \
        f"pylibbpf {pylibbpf.__version__}, libbpf {pylibbpf.libbpf_version()}"


def test_inspect_json(bpf_objects) -> None:
    out = json.loads(run("inspect", "--json", str(bpf_objects["core_task"])).stdout)
    assert out["name"] == "core_task"
    assert out["programs"] == [["on_getpgid", "tp/syscalls/sys_enter_getpgid", "tracepoint", 55]]
    assert out["maps"] == [["seen", "hash", 4, 28, 1024]]


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
