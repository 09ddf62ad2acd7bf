"""pylibbpf.compile() with hostile file names, odd include paths and no cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import pylibbpf

PROGRAM = ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
           'int {name} = {value};\nchar LICENSE[] SEC("license") = "GPL";\n')


def _globals(obj_path: Path) -> dict:
    with pylibbpf.Object(obj_path) as obj:
        return obj.data.to_dict()


@pytest.fixture
def hostile_dir(tmp_path, monkeypatch) -> Path:
    """A working directory holding ``@rsp``, a BPF source, and ``rsp``, which clang
    would read as options if it took ``@rsp`` for a response file: they make it
    compile another file (real.bpf.c) and write a dependency file (marker.d)."""
    (tmp_path / "@rsp").write_text(PROGRAM.format(name="from_at_rsp", value=5))
    (tmp_path / "rsp").write_text("-MD -MF marker.d real.bpf.c\n")
    (tmp_path / "real.bpf.c").write_text(PROGRAM.format(name="from_real", value=1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("how", ["relative", "absolute", "cached"])
def test_a_source_named_like_a_response_file_is_compiled_as_a_file(hostile_dir, how) -> None:
    """clang expands an argument "@x" as a file of options, also after "--", and its
    compiler proper does so for the source's base name (-main-file-name) wherever the
    source lies: a source called "@rsp" ran the options in "rsp" (-fplugin=… would run
    code inside clang) and compiled another file."""
    if how == "relative":
        out = pylibbpf.compile("@rsp", "out.bpf.o")
        assert out == hostile_dir / "out.bpf.o"
    elif how == "absolute":
        out = pylibbpf.compile(hostile_dir / "@rsp", hostile_dir / "out.bpf.o")
    else:
        out = pylibbpf.compile("@rsp")
        assert out.parent == hostile_dir / "cache" / "objects"
        assert pylibbpf.compile("@rsp") == out  # the cache finds it again
    assert _globals(out) == {"from_at_rsp": 5}
    assert not (hostile_dir / "marker.d").exists()


@pytest.mark.parametrize("name", ["--version", "-o", "-fsyntax-only"])
def test_a_source_named_like_an_option_is_compiled(tmp_path, monkeypatch, name) -> None:
    """A source called "--version" made clang print its version and write nothing; the
    missing object then escaped as a raw FileNotFoundError."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(PROGRAM.format(name="optlike", value=3))
    out = pylibbpf.compile(name, "x.bpf.o")
    assert out == tmp_path / "x.bpf.o" and _globals(out) == {"optlike": 3}


def test_missing_or_special_sources_are_bpf_errors(tmp_path) -> None:
    missing = tmp_path / "missing.bpf.c"
    with pytest.raises(pylibbpf.BPFNotFoundError, match=f"BPF source '{missing}' does not "
                                                        "exist") as ei:
        pylibbpf.compile(missing, tmp_path / "x.o")
    assert isinstance(ei.value, FileNotFoundError)
    fifo = tmp_path / "fifo.bpf.c"
    os.mkfifo(fifo)
    with pytest.raises(pylibbpf.BPFError, match=f"BPF source '{fifo}' is a FIFO"):
        pylibbpf.compile(fifo, tmp_path / "x.o")
    with pytest.raises(pylibbpf.BPFError, match=f"BPF source '{tmp_path}' is a directory"):
        pylibbpf.compile(tmp_path, tmp_path / "x.o")


def test_headers_under_paths_with_spaces_are_tracked_by_the_cache(tmp_path,
                                                                  monkeypatch) -> None:
    """The cache key read ``clang -M``'s output split on white space: a header in an
    include directory with a space in its name was not tracked, and the stale
    object came back after the header changed."""
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "cache"))
    inc = tmp_path / "my headers"
    inc.mkdir()
    (inc / "the knob.h").write_text("#define KNOB 1\n")
    (inc / "plain.h").write_text('#include "the knob.h"\n')
    src = tmp_path / "knob.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "plain.h"\n'
                   'int knob = KNOB;\nchar LICENSE[] SEC("license") = "GPL";\n')
    first = pylibbpf.compile(src, include_dirs=[inc])
    assert _globals(first) == {"knob": 1}
    assert pylibbpf.compile(src, include_dirs=[inc]) == first  # unchanged: cached
    (inc / "the knob.h").write_text("#define KNOB 2\n")
    second = pylibbpf.compile(src, include_dirs=[inc])
    assert second != first and _globals(second) == {"knob": 2}


@pytest.mark.parametrize("text, words", [
    ("t: a b \\\n  c\n", ["t:", "a", "b", "c"]),
    ("t: /x/my\\ headers/k\\ nob.h /y\n", ["t:", "/x/my headers/k nob.h", "/y"]),
    ("t: a\\\\\\ b c\\\\ d\n", ["t:", "a\\ b", "c\\", "d"]),  # 2N+1 and 2N backslashes
    ("t: a\\#b $$x \\\r\n y\\z\n", ["t:", "a#b", "$x", "y\\z"]),
])
def test_depfile_words(text, words) -> None:
    from pylibbpf.compiler import _depfile_words

    assert _depfile_words(text) == words
