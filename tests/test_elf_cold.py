"""The cold path of a first ``attach_uprobe_multi(symbols=…)`` keeps every
behaviour while importing and reading less.

pylibbpf.elf's result classes (Symbol, Segment, Target, Resolution, USDTProbe,
MapEntry) are frozen records made without ``dataclasses`` (pylibbpf/_record.py):
they keep behaving as the frozen dataclasses they were (repr, ==, hash,
pickling, frozen fields, ``dataclasses.fields/asdict/astuple/replace``). The
multi-uprobe attach resolves names with ``symbol_offsets``, which must agree
with ``resolve_symbols``, errors included. Executables are found on PATH as
``shutil.which`` finds them, without importing shutil, and a library name
stops at its first candidate (the directories after it are not listed)."""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import pylibbpf
from pylibbpf import elf
from pylibbpf.elf._paths import MapEntry
from pylibbpf.elf._resolve import symbol_offsets

SRC = Path(__file__).resolve().parent / "uprobe"
sys.path.insert(0, str(SRC))
import build_targets  # noqa: E402
from _children import same_pylibbpf  # noqa: E402


@pytest.fixture(scope="session")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    return build_targets.build(tmp_path_factory.mktemp("elfrec"))


def test_elf_and_uprobe_attach_import_without_dataclasses_or_inspect() -> None:
    """Importing pylibbpf.elf and the uprobe attach code, resolving names in a
    library by path (then named "c"), and every record's repr, ==, hash and pickling leave
    dataclasses, inspect, shutil (and what they import) out of the process."""
    code = """
import os, sys
import pylibbpf
import pylibbpf.attach.uprobe
from pylibbpf import elf
from pylibbpf.elf._resolve import symbol_offsets
libc = next(ln.split()[-1] for ln in open("/proc/self/maps") if "/libc.so" in ln)
t2, offs = symbol_offsets(libc, ["malloc", "free"])
t2, offs = symbol_offsets("c", ["malloc", "free"])
lean = [m for m in ("pylibbpf.elf._demangle", "pylibbpf.elf._usdt", "re", "threading",
                    "weakref", "typing", "logging") if m in sys.modules]
import json, pickle  # (both import re)
t, res = elf.resolve_symbols("c", ["malloc", "free"])
things = [t, res[0], res[0].symbol, elf.symbol_index(t.path).image.segments[0],
          elf.process_maps(os.getpid())[0]]
for x in things:
    repr(x); hash(x); assert pickle.loads(pickle.dumps(x)) == x
print(json.dumps([[r.offset for r in res], offs, lean,
                  [m for m in ("dataclasses", "inspect", "ast", "dis", "shutil", "zlib", "bz2",
                               "lzma") if m in sys.modules]]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert out.returncode == 0, out.stderr
    offsets, offs, lean, imported = json.loads(out.stdout)
    assert offsets == offs and all(o > 0 for o in offs)
    assert imported == []
    # no demangler, no USDT reader for offsets of raw names; nor re, threading,
    # weakref, typing or logging (~5 ms of a first attach by path or library name)
    assert lean == []


def test_usdt_and_demangler_names_load_on_first_use() -> None:
    code = """
import json, sys
from pylibbpf import elf
before = [m for m in ("pylibbpf.elf._usdt", "pylibbpf.elf._demangle") if m in sys.modules]
from pylibbpf.elf import USDTProbe
ns = {}
exec("from pylibbpf.elf import *", ns)
print(json.dumps([before, USDTProbe.__name__, elf.USDTProbe is USDTProbe,
                  ns["USDTProbe"] is USDTProbe, sorted(set(elf.__all__) - set(ns)),
                  "USDTProbe" in dir(elf), elf.demangle("_ZN3plb4areaEii")]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert out.returncode == 0, out.stderr
    before, name, same, star, missing, listed, demangled = json.loads(out.stdout)
    assert before == [] and name == "USDTProbe" and same and star and missing == [] and listed
    assert demangled in ("plb::area(int, int)", "_ZN3plb4areaEii")  # without a demangler
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        elf.NoSuchName  # type: ignore[attr-defined]


def _records(progs: Dict[str, Path]) -> List[Any]:
    res = elf.resolve(progs["prog_pie"], "add_i")
    idx = elf.symbol_index(res.path)
    (probe,) = elf.usdt_probes(progs["prog_pie"])
    maps = elf.process_maps(os.getpid())
    return [res, res.target, res.symbol, idx.image.segments[0], probe, maps[0]]


FIELDS = {
    "Symbol": ["name", "version", "default_version", "address", "size", "type", "binding",
               "offset", "table", "file", "_demangled"],
    "Segment": ["vaddr", "offset", "filesz", "memsz", "flags"],
    "Target": ["given", "path", "pid", "how"],
    "Resolution": ["target", "symbol", "address", "offset", "reasons"],
    "USDTProbe": ["provider", "name", "arguments", "address", "offset", "semaphore",
                  "semaphore_offset", "file"],
    "MapEntry": ["start", "end", "perms", "offset", "inode", "path", "deleted"],
}


def test_records_behave_as_frozen_dataclasses(progs) -> None:
    for rec in _records(progs):
        cls = type(rec)
        names = FIELDS[cls.__name__]
        # the fields, as dataclasses sees them
        assert dataclasses.is_dataclass(rec)
        assert [f.name for f in dataclasses.fields(rec)] == names
        assert dataclasses.astuple(rec) == tuple(dataclasses.astuple(getattr(rec, n))
                                                 if dataclasses.is_dataclass(getattr(rec, n))
                                                 else getattr(rec, n) for n in names)
        assert list(dataclasses.asdict(rec)) == names
        assert cls.__match_args__ == tuple(names)
        # repr: ClassName(field=value, ...), without Symbol's private cache
        shown = [n for n in names if n != "_demangled"]
        assert repr(rec) == f"{cls.__name__}(" + ", ".join(
            f"{n}={getattr(rec, n)!r}" for n in shown) + ")"
        # equal copies, equal hashes; another value differs
        for twin in (copy.copy(rec), copy.deepcopy(rec), pickle.loads(pickle.dumps(rec)),
                     cls(*[getattr(rec, n) for n in names])):
            assert type(twin) is cls and twin == rec and hash(twin) == hash(rec)
        changed = dataclasses.replace(rec, **{names[1]: "other"})
        assert changed != rec and getattr(changed, names[1]) == "other"
        assert rec != tuple(getattr(rec, n) for n in names)  # not equal to its values
        # frozen
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"field {names[0]!r}"):
            setattr(rec, names[0], 1)
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"field {names[0]!r}"):
            delattr(rec, names[0])
        with pytest.raises(dataclasses.FrozenInstanceError):
            rec.not_a_field = 1  # type: ignore[union-attr]


def test_symbol_demangled_cache_is_not_compared(progs) -> None:
    res = elf.resolve(progs["cxxprog"], "plb::area")
    sym = res.symbol
    assert sym is not None and sym.demangled == "plb::area(int, int)"
    fresh = elf.Symbol(*[getattr(sym, n) for n in FIELDS["Symbol"][:-1]])
    assert fresh._demangled is None and fresh == sym and hash(fresh) == hash(sym)
    assert repr(fresh) == repr(sym) and "_demangled" not in repr(sym)
    assert fresh.demangled == sym.demangled and str(fresh) == str(sym)


def test_symbol_offsets_match_resolve_symbols(progs) -> None:
    exe = progs["prog_pie"]
    libc = next(ln.split()[-1] for ln in open("/proc/self/maps") if "/libc.so" in ln)
    cases = [(exe, ["add_i", "mul_l", "add_i+4", "add_i+0x8"]),
             ("c", ["malloc", "free", "memcpy@@GLIBC_2.14", "memcpy@GLIBC_2.2.5", "getpgrp"]),
             (libc, elf.symbol_index(libc).function_names()[:300])]
    if "cxxprog" in progs:
        cases.append((progs["cxxprog"], ["plb::area", "plb::twice(int)", "_ZN3plb4areaEii"]))
    for binary, names in cases:
        t1, res = elf.resolve_symbols(binary, names)
        t2, offs = symbol_offsets(binary, names)
        assert t1 == t2
        assert offs == [r.offset for r in res], binary


def _error(fn: Any, *args: Any) -> BaseException:
    with pytest.raises(Exception) as ei:
        fn(*args)
    return ei.value


def test_symbol_offsets_fail_as_resolve_symbols(progs) -> None:
    exe = progs["prog_pie"]
    bad = [(exe, ["add_i", "add_ii"]), (exe, ["add_i", ""]), (exe, ["add_i", 5]),
           (exe, "add_i"), (exe, []), ("/no/such/binary", ["f"])]
    if "cxxprog" in progs:
        bad.append((progs["cxxprog"], ["plb::area", "plb::twice"]))
    for binary, names in bad:
        a = _error(elf.resolve_symbols, binary, names)
        b = _error(symbol_offsets, binary, names)
        assert type(a) is type(b) and str(a) == str(b), (names, a, b)
    err = _error(symbol_offsets, exe, ["add_i", "add_ii"])
    assert isinstance(err, elf.SymbolNotFoundError) and "add_ii" in str(err)
    assert "add_i" in err.suggestions


@pytest.mark.parametrize("path", [None, "", "/usr/bin:/bin", ":/bin", "/nonexistent:/usr/bin",
                                  "/etc:/bin", "/bin:/bin"])
def test_which_finds_what_shutil_which_finds(monkeypatch, tmp_path, path) -> None:
    import shutil

    from pylibbpf.elf._paths import which

    if path is None:
        monkeypatch.delenv("PATH", raising=False)
    else:
        monkeypatch.setenv("PATH", path)
    (tmp_path / "notexec").write_text("#!/bin/sh\n")
    (tmp_path / "adir").mkdir()
    monkeypatch.chdir(tmp_path)  # an empty PATH entry is the current directory
    for name in ("sh", "ls", "hosts", "passwd", "notexec", "adir", "no_such_program", "c",
                 "/bin/sh", "./notexec"):
        assert which(name) == shutil.which(name), (path, name)


def test_library_name_resolves_to_its_first_candidate() -> None:
    from pylibbpf.elf._paths import first_library_candidate, library_candidates

    for name in ("c", "libc", "libc.so.6", "m", "z", "elf", "no_such_library_xyz"):
        cands = library_candidates(name)
        first = first_library_candidate(name)
        assert first == (cands[0] if cands else None), name
        if cands:
            assert elf.find_library(name) == cands[0][0]
            if name.startswith("lib"):  # a library name: not looked for on PATH first
                assert elf.resolve_binary(name).path == cands[0][0]
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no_such_library_xyz"):
        elf.find_library("no_such_library_xyz")


def test_library_names_match_as_the_regular_expression_does() -> None:
    """Library candidates are matched without ``re`` (its import is ~3 ms of a
    first attach by library name): the same names as ``library_name_regex``,
    over every string of up to four pieces that matter to it."""
    import itertools

    from pylibbpf.elf._paths import _library_name_matcher, library_name_regex

    pieces = ["lib", "c", ".so", ".", "1", "-", "2.3", "\u0663", "\u00b2", "\n", "x"]
    for name in ("c", "libc", "libc.so.6", "libc.so", "a.b", "lib", ""):
        rx, matches = library_name_regex(name), _library_name_matcher(name)
        for k in range(1, 5):
            for t in itertools.product(pieces, repeat=k):
                b = "".join(t)
                assert bool(rx.match(b)) == matches(b), (name, b)
