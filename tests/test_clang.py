"""Which clang compile() runs (the newest installed, CLANG overriding), that it is part
of the cache key and shown by the CLI, and what only a new clang builds: BPF CPU v4
instructions and loops bounded by may_goto, compiled with the default clang, loaded
and run. Where the default clang is too old for them, the CompileError says so."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import pylibbpf
from pylibbpf.compiler import find_clang

from _children import same_pylibbpf

NEW = Path(__file__).resolve().parent / "bpf_newclang"


def _fake_clang(path: Path, banner: str, real: str = "") -> Path:
    """An executable that prints ``banner`` for --version and else runs ``real``."""
    run = f'exec {real} "$@"' if real else "exit 1"
    path.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "{banner}"; '
                    f'echo "Target: x86_64"; exit 0; fi\n{run}\n')
    path.chmod(0o755)
    return path


def test_the_newest_clang_on_path_is_the_default(tmp_path, monkeypatch) -> None:
    bin1, bin2 = tmp_path / "a", tmp_path / "b"
    bin1.mkdir()
    bin2.mkdir()
    _fake_clang(bin1 / "clang", "Debian clang version 14.0.6")
    _fake_clang(bin1 / "clang-9", "clang version 9.0.1")
    _fake_clang(bin2 / "clang-19", "Debian clang version 19.1.7 (3~deb12u1)")
    _fake_clang(bin2 / "clang-format-20", "clang-format version 20.0.0")  # not a compiler
    _fake_clang(bin2 / "clang-18", "Ubuntu clang version 18.1.3")
    monkeypatch.delenv("CLANG", raising=False)
    monkeypatch.setenv("PATH", f"{bin1}{os.pathsep}{bin2}")
    cc = find_clang()
    assert (cc.path, cc.version, cc.major) == (str(bin2 / "clang-19"), "19.1.7", 19)
    assert str(cc) == f"clang 19.1.7 ({bin2 / 'clang-19'})"
    # CLANG overrides, and so does clang= (a name on PATH or a path)
    monkeypatch.setenv("CLANG", "clang-9")
    assert find_clang().path == str(bin1 / "clang-9")
    assert find_clang("clang").path == str(bin1 / "clang")
    assert find_clang(str(bin2 / "clang-18")).version == "18.1.3"
    monkeypatch.setenv("CLANG", "clang-77")
    with pytest.raises(pylibbpf.BPFNotFoundError, match="clang 'clang-77' \\(CLANG\\) not found"):
        find_clang()
    monkeypatch.delenv("CLANG")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(pylibbpf.BPFNotFoundError, match="clang not found"):
        pylibbpf.compile(text="int x;")


def test_the_clang_and_its_version_are_in_the_cache_key(tmp_path, monkeypatch) -> None:
    """Another clang (path) or the same path upgraded (version) compiles again."""
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLANG", raising=False)
    real = find_clang()
    one = _fake_clang(tmp_path / "clang-one", real.banner, real.path)
    two = _fake_clang(tmp_path / "clang-two", real.banner, real.path)
    src = "int counter;\nchar LICENSE[] __attribute__((section(\"license\"))) = \"GPL\";\n"
    first = pylibbpf.compile(text=src, clang=str(one))
    assert pylibbpf.compile(text=src, clang=str(one)) == first  # cached
    other = pylibbpf.compile(text=src, clang=str(two))
    assert other != first and other.exists()
    _fake_clang(one, real.banner.replace(real.version, real.version + ".1"), real.path)
    pylibbpf.compiler._CLANG_VERSIONS.pop(str(one), None)  # mtime may not have moved
    upgraded = pylibbpf.compile(text=src, clang=str(one))
    assert upgraded not in (first, other) and upgraded.exists()


def test_cli_says_which_clang(tmp_path) -> None:
    cc = find_clang()
    env = same_pylibbpf({"PYLIBBPF_CACHE": str(tmp_path)})
    env["env"].pop("CLANG", None)
    out = subprocess.run([sys.executable, "-m", "pylibbpf", "version"], capture_output=True,
                         text=True, check=True, **env).stdout
    assert f"compiles with: {cc} (the newest clang on PATH): {cc.banner}" in out
    src = tmp_path / "x.bpf.c"
    src.write_text("int x;\n")
    res = subprocess.run([sys.executable, "-m", "pylibbpf", "compile", "-v", str(src)],
                         capture_output=True, text=True, check=True, **env)
    assert res.stderr == f"compiling {src} with {cc}\n"
    assert Path(res.stdout.strip()).exists()


def _insns(obj: pylibbpf.Object, prog: str) -> List[str]:
    return [i.text for i in obj.programs[prog].disassemble()]


def test_cpu_v4_instructions_compile_load_and_run(tmp_path) -> None:
    """sdiv, smod, movsx, ldsx, bswap and gotol, from the default clang with -mcpu=v4,
    run by the kernel on inputs set before load."""
    cc = find_clang()
    src = NEW / "cpu_v4.bpf.c"
    if cc.major < 18:
        with pytest.raises(pylibbpf.CompileError) as e:
            pylibbpf.compile(src, tmp_path / "v4.bpf.o", cflags=["-mcpu=v4"])
        assert f"clang {cc.version} ({cc.path}) failed" in str(e.value)
        assert "-mcpu=v4 (BPF CPU v4 instructions) needs clang 18 or newer" in str(e.value)
        return
    path = pylibbpf.compile(src, tmp_path / "v4.bpf.o", cflags=["-mcpu=v4", "-Wall", "-Werror"])
    with pylibbpf.Object(path) as obj:
        text = "\n".join(_insns(obj, "cpu_v4"))
        for insn in ("s/= r", "s%= r", "= (s8)r", "= *(s8 *)(", "= bswap64 r", "gotol "):
            assert insn in text, (insn, text)
        d = obj.data
        d.num, d.den, d.mod_num, d.mod_den = -12345678901, 97, -1000003, 1009
        d.word, d.narrow, d.wide32 = 0x1122334455667788, -77, 0x80000001
        obj.load()
        assert obj.programs["cpu_v4"].test_run(ctx=bytes(8)).retval == 0
        b = obj.bss
        # C's division truncates toward zero; its remainder takes the dividend's sign
        assert (b.quot, b.rem) == (-(12345678901 // 97), -(1000003 % 1009))
        low = (-12345678901 + 1) & 0xff  # (s8)(num + 1): the low byte, sign-extended
        assert (b.sx32, b.widened, b.loaded) == (0x80000001 - (1 << 32), low - (low >> 7 << 8),
                                                 -77)
        assert b.swapped == 0x8877665544332211 and b.jumped == 1


def test_may_goto_and_open_coded_loops_compile_load_and_run(tmp_path) -> None:
    """A loop with no bound the verifier sees, ended by may_goto (can_loop), and one
    over bpf_for's iterator: built with the default clang, loaded, run."""
    cc = find_clang()
    src = NEW / "may_goto.bpf.c"
    if cc.major < 19:
        with pytest.raises(pylibbpf.CompileError) as e:
            pylibbpf.compile(src, tmp_path / "loops.bpf.o")
        assert f"clang {cc.version} ({cc.path}) failed" in str(e.value)
        assert "may_goto (open-coded loops: can_loop, bpf_for) needs clang 19 or newer; " \
               f"clang {cc.version} is too old" in str(e.value)
        return
    path = pylibbpf.compile(src, tmp_path / "loops.bpf.o", cflags=["-Wall", "-Werror"])
    with pylibbpf.Object(path) as obj:
        text = _insns(obj, "loops")
        assert any(t.startswith("may_goto ") for t in text), text
        assert "call kfunc:bpf_iter_num_next" in text
        obj.data.n = 4321
        obj.load()
        assert obj.programs["loops"].test_run(ctx=bytes(8)).retval == 0
        assert obj.bss.rounds == 4321
        assert obj.bss.loop_sum == obj.bss.iter_sum == 4321 * 4320 // 2


def _old_clangs(older_than: int) -> List[str]:
    """Every clang on PATH older than ``older_than`` (Debian's default clang 14 is
    one where ./dev.sh set the machine up)."""
    seen, out = set(), []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for name in ("clang", *(f"clang-{v}" for v in range(10, older_than))):
            p = shutil.which(name, path=d)
            if p and os.path.realpath(p) not in seen:
                seen.add(os.path.realpath(p))
                if 0 < find_clang(p).major < older_than:
                    out.append(p)
    return out


@pytest.mark.parametrize("source, cflags, needs", [
    ("cpu_v4.bpf.c", ["-mcpu=v4"], "-mcpu=v4 (BPF CPU v4 instructions) needs clang 18 or newer"),
    ("may_goto.bpf.c", [], "may_goto (open-coded loops: can_loop, bpf_for) needs clang 19 or "
                           "newer"),
], ids=["cpu-v4", "may-goto"])
def test_a_clang_too_old_says_so(tmp_path, source, cflags, needs) -> None:
    """Asked for explicitly (clang=/CLANG), an old clang's CompileError names it, its
    version, and the clang the feature needs."""
    major = 18 if "v4" in source else 19
    old = _old_clangs(major)
    if not old:
        pytest.skip(f"no clang older than {major} installed to try")
    for path in old:
        cc = find_clang(path)
        with pytest.raises(pylibbpf.CompileError) as e:
            pylibbpf.compile(NEW / source, tmp_path / "x.bpf.o", cflags=cflags, clang=path)
        msg = str(e.value)
        assert msg.startswith(f"clang {cc.version} ({path}) failed to compile "), msg
        assert f"{needs}; clang {cc.version} is too old" in msg, msg
        assert e.value.clang == cc
