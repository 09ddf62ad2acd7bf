"""The offsets cache of multi-uprobe attaches by name (pylibbpf/elf/_diskcache.py
writes it, pylibbpf/_csrc/elfsym.c reads it): a later attach takes the recorded
offsets, fires at the right functions, never uses an entry the binary, its debug
file or the search for it no longer match, and survives damaged entries."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

import pylibbpf
from pylibbpf import elf
from pylibbpf.attach import uprobe_multi
from pylibbpf.elf import _diskcache, _paths, _resolve

from _children import same_pylibbpf
from test_uprobe import K_MULTI, N, events, progs, run, s32, uprobe_bpf  # noqa: F401

LIBC_NAMES = ["malloc", "free", "getpid", "strlen", "memcpy", "authdes_getucred", "qsort"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("PYLIBBPF_CACHE", str(d))
    return d / "elf"


@pytest.fixture
def obj(uprobe_bpf) -> pylibbpf.Object:  # noqa: F811 - the fixture imported above
    with pylibbpf.Object(uprobe_bpf) as o:
        o.load()
        yield o


def aged(path: Path, seconds: int = 60) -> Path:
    """``path`` with an mtime in the past: a file modified less than 2 s ago gets
    no entry (it could be rewritten in place without changing its identity)."""
    t = time.time_ns() - seconds * 10**9
    os.utime(path, ns=(t, t))
    return path


def cached(binary: object, names: List[str]) -> object:
    arr = uprobe_multi.cached_offsets(binary, names)
    return None if arr is None else list(arr)


def entry_of(path: Path) -> Path:
    e = uprobe_multi.entry_path(str(path))
    assert e is not None
    return Path(e)


def fired(obj: pylibbpf.Object, pid: int) -> Dict[int, List[int]]:
    """cookie -> first arguments of the uprobe.multi events of ``pid``."""
    out: Dict[int, List[int]] = {}
    for e in events(obj, pid):
        if e.kind == K_MULTI:
            out.setdefault(e.cookie, []).append(s32(e.a))
    return out


def local_copy(progs, tmp_path: Path, name: str, as_name: str = "target") -> Path:
    """A copy of a test target (and the library it links) in a directory of its own."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    shutil.copy2(progs["libplbtarget.so"], d / "libplbtarget.so")
    dest = d / as_name
    shutil.copy(progs[name], dest)
    return aged(dest)


def test_a_second_attach_takes_the_recorded_offsets_and_fires(obj, progs, cache, uprobe_bpf,
                                                               monkeypatch) -> None:
    exe = aged(progs["prog_pie"])
    prog = obj.programs["on_multi"]
    names = ["add_i", "mul_l"]
    assert cached(exe, names) is None
    with prog.attach_uprobe_multi(exe, symbols=names, cookies=[11, 22]):
        pid = run(exe)
    expected = _resolve.symbol_offsets(str(exe), names)[1]
    assert cached(exe, names) == expected == [elf.resolve(exe, n).offset for n in names]

    def no_resolution(*a, **k):
        raise AssertionError("resolved again instead of taking the recorded offsets")

    monkeypatch.setattr(_resolve, "symbol_offsets", no_resolution)
    with prog.attach_uprobe_multi(exe, symbols=names, cookies=[11, 22]) as link:
        assert link.info.type == pylibbpf.LinkType.UPROBE_MULTI
        pid2 = run(exe)
    for p in (pid, pid2):
        got = fired(obj, p)
        assert got[11] == list(range(1, N + 1)) and len(got[22]) == N, got
    # in another process: neither pylibbpf.elf imported nor the file indexed
    code = f"""
import json, sys
import pylibbpf
with pylibbpf.Object({str(uprobe_bpf)!r}) as o:
    o.load()
    with o.programs["on_multi"].attach_uprobe_multi({str(exe)!r}, symbols={names!r}):
        pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith("pylibbpf.elf"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf({"PYLIBBPF_CACHE": str(cache.parent)}))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_recorded_offsets_are_the_resolved_ones(cache) -> None:
    libc = elf.find_library("c")
    names = [s.name for s in elf.functions(libc, "*") if "@" not in s.name][:400]
    names += LIBC_NAMES
    names = list(dict.fromkeys(names))
    _t, full = _resolve.symbol_offsets(libc, names)
    entry = uprobe_multi.cached_entry(libc)
    assert entry is not None and len(entry) >= len(names) // 2
    # every recorded name has the offset resolution gives it, one by one
    for n, off in entry.items():
        assert _resolve.resolve(libc, n).offset == off, n
    answered = [n for n in names if n in entry]
    assert cached(libc, answered) == [full[names.index(n)] for n in answered]


def test_a_name_not_recorded_is_resolved_and_added(obj, progs, cache) -> None:
    exe = aged(progs["prog_pie"])
    with obj.programs["on_multi"].attach_uprobe_multi(exe, symbols=["add_i"]):
        pass
    assert cached(exe, ["add_i", "greet"]) is None
    with obj.programs["on_multi"].attach_uprobe_multi(exe, symbols=["add_i", "greet"],
                                                      cookies=[1, 2]):
        pid = run(exe)
    assert sorted(fired(obj, pid)) == [1, 2]
    assert set(uprobe_multi.cached_entry(str(exe)) or ()) == {"add_i", "greet"}
    assert cached(exe, ["greet", "add_i"]) == [elf.resolve(exe, n).offset
                                               for n in ("greet", "add_i")]


def test_a_replaced_binary_is_resolved_again(obj, progs, tmp_path, cache) -> None:
    target = local_copy(progs, tmp_path, "prog_pie")
    names = ["add_i", "mul_l"]
    with obj.programs["on_multi"].attach_uprobe_multi(target, symbols=names):
        pass
    old = cached(target, names)
    assert old is not None
    shutil.copy(progs["prog_nopie"], target)  # the same names elsewhere in the file
    assert cached(target, names) is None
    aged(target, 30)
    new = [elf.resolve(target, n).offset for n in names]
    assert new != old
    assert cached(target, names) is None
    with obj.programs["on_multi"].attach_uprobe_multi(target, symbols=names, cookies=[5, 6]):
        pid = run(target)
    got = fired(obj, pid)
    assert got[5] == list(range(1, N + 1)) and len(got[6]) == N, got
    assert cached(target, names) == new


def _stripped_lib_with_debug(progs, tmp_path: Path) -> tuple[Path, Path, str]:
    """libplbtarget.so stripped into tmp_path, its debug file, its build-id."""
    lib = tmp_path / "lib" / "libplbtarget.so"
    lib.parent.mkdir()
    subprocess.run(["strip", "--strip-all", "-o", str(lib), str(progs["libplbtarget.so"])],
                   check=True)
    dbg = tmp_path / "libplbtarget.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(progs["libplbtarget.so"]), str(dbg)],
                   check=True)
    aged(lib)
    build_id = elf.symbol_index(lib).image.build_id
    assert build_id, "the test library has no build-id"
    return lib, dbg, build_id


def test_a_debug_file_installed_or_removed_later_makes_the_entry_stale(progs, tmp_path, cache,
                                                                       monkeypatch) -> None:
    lib, dbg, build_id = _stripped_lib_with_debug(progs, tmp_path)
    debug_dir = tmp_path / "debug"
    monkeypatch.setattr(_paths, "DEBUG_DIRS", [str(debug_dir)])
    elf.clear_cache()
    names = ["lib_scale"]
    _resolve.symbol_offsets(str(lib), names)
    before = cached(lib, names)
    assert before == [elf.resolve(lib, "lib_scale").offset]
    # the debug file arrives where the build-id says: the entry no longer holds
    where = debug_dir / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    where.parent.mkdir(parents=True)
    shutil.copy(dbg, where)
    assert cached(lib, names) is None
    elf.clear_cache()
    _resolve.symbol_offsets(str(lib), names)  # a debug file written moments ago: not yet
    assert cached(lib, names) is None
    aged(where)
    elf.clear_cache()
    _resolve.symbol_offsets(str(lib), names)  # recorded again, with the debug file
    assert cached(lib, names) == before
    where.unlink()
    assert cached(lib, names) is None
    # this process's index still has the debug file it found: not recorded
    _resolve.symbol_offsets(str(lib), names)
    assert cached(lib, names) is None
    elf.clear_cache()
    _resolve.symbol_offsets(str(lib), names)
    assert cached(lib, names) == before
    # and another DEBUG_DIRS is another search
    monkeypatch.setattr(_paths, "DEBUG_DIRS", [str(debug_dir), "/nonexistent-debug"])
    assert cached(lib, names) is None


def test_only_absolute_paths_and_str_names_take_the_cache(progs, cache, monkeypatch) -> None:
    exe = aged(progs["prog_pie"])
    _resolve.symbol_offsets(str(exe), ["add_i"])
    assert cached(exe, ["add_i"]) is not None
    monkeypatch.chdir(exe.parent)
    assert cached(exe.name, ["add_i"]) is None
    assert cached(Path(exe), ["add_i"]) is not None
    for bad in ([b"add_i"], [None], ["add_i\0"], ["add_i\udcff"], ["add_i@@V"], []):
        assert cached(exe, bad) is None, bad
    assert cached(str(exe) + "\0", ["add_i"]) is None
    assert cached(42, ["add_i"]) is None


def test_damaged_entries_are_ignored_and_rewritten(obj, progs, cache) -> None:
    exe = aged(progs["prog_pie"])
    names = ["add_i", "mul_l"]
    _resolve.symbol_offsets(str(exe), names)
    entry = entry_of(exe)
    good = entry.read_bytes()
    assert cached(exe, names) is not None
    rng = random.Random(7)
    damaged = [b"", good[:7], good[:40], good[:-8], good + b"\0" * 8,
               bytes(rng.randrange(256) for _ in range(len(good)))]
    for i in list(range(0, 32)) + rng.sample(range(32, len(good)), 40):
        flipped = bytearray(good)
        flipped[i] ^= 1 << rng.randrange(8)
        damaged.append(bytes(flipped))
    for blob in damaged:
        entry.write_bytes(blob)
        assert cached(exe, names) is None, blob[:40]
        assert uprobe_multi.cached_entry(str(exe)) is None
    # a directory or a FIFO where the entry goes: ignored, without blocking
    entry.unlink()
    entry.mkdir()
    assert cached(exe, names) is None
    entry.rmdir()
    os.mkfifo(entry)
    assert cached(exe, names) is None
    entry.unlink()
    entry.write_bytes(damaged[-1])
    with obj.programs["on_multi"].attach_uprobe_multi(exe, symbols=names, cookies=[3, 4]):
        pid = run(exe)
    assert sorted(fired(obj, pid)) == [3, 4]
    assert entry.read_bytes() == good  # rewritten


_FUZZ = r"""
import os, random, struct, sys
from pylibbpf.attach import uprobe_multi as u
path, names, seed, rounds = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
entry = u.entry_path(path)
good = open(entry, "rb").read()
count, hlen, blen = struct.unpack_from("<III", good, 16)
body = bytearray(good[32:])
rng = random.Random(seed)
head = body[8 * count:8 * count + hlen]
results = set()
for r in range(rounds):
    b = bytearray(body)
    for _ in range(rng.randrange(1, 6)):
        where = rng.randrange(len(b))
        op = rng.randrange(6)
        if op == 0:  # a byte of the header text, the names or an offset
            b[where] = rng.randrange(256)
        elif op == 1:  # a separator moved, added or taken away
            b[where] = rng.choice(b"\n\0\x1f-")
        elif op == 2:  # a header line cut or doubled
            lines = bytes(head).split(b"\n")
            i = rng.randrange(len(lines))
            lines[i:i + 1] = rng.choice([[], [lines[i], lines[i]], [lines[i][:rng.randrange(len(lines[i]) + 1)]]])
            nh = b"\n".join(lines)
            b = bytearray(bytes(b[:8 * count]) + nh + bytes(b[8 * count + hlen:]))
        elif op == 3:  # names cut or run together
            del b[where:where + rng.randrange(1, 9)]
        else:
            b[where:where] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    b += b"\0" * (-len(b) % 8)
    c, h = count, hlen
    if rng.random() < 0.3:
        c = rng.choice([0, 1, count - 1, count + 1, 1 << 31, 0xFFFFFFFF]) & 0xFFFFFFFF
    if rng.random() < 0.3:
        h = rng.choice([0, 1, hlen - 1, hlen + 1, len(b), 0xFFFFFFFF]) & 0xFFFFFFFF
    total = sum(struct.unpack("<%dQ" % (len(b) // 8), bytes(b))) & (2**64 - 1)
    blob = good[:8] + struct.pack("<QIIII", total, c, h, len(b), 0) + bytes(b)
    with open(entry, "wb") as f:
        f.write(blob)
    got = u.cached_offsets(path, names)
    whole = u.cached_entry(path)
    results.add((got is None, whole is None))
    if got is not None:
        assert len(got) == len(names)
print(sorted(results))
"""


def test_structure_aware_damage_never_crashes_the_reader(progs, cache) -> None:
    """Header lines cut, doubled or changed, separators moved, names run together,
    counts and lengths wrong, all with the checksum made right again: the C reader
    answers None or offsets, and never crashes (run in a child process)."""
    exe = aged(progs["prog_pie"])
    names = ["add_i", "mul_l", "greet"]
    _resolve.symbol_offsets(str(exe), names)
    assert cached(exe, names) is not None
    out = subprocess.run([sys.executable, "-c", _FUZZ, str(exe), ",".join(names), "11", "3000"],
                         capture_output=True, text=True, timeout=300,
                         **same_pylibbpf({"PYLIBBPF_CACHE": str(cache.parent)}))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(True, True)" in out.stdout  # most damage is caught


def test_old_entries_are_pruned(progs, cache, monkeypatch) -> None:
    monkeypatch.setattr(_diskcache, "MAX_OFFSETS_ENTRIES", 4)
    exe = aged(progs["prog_pie"])
    cache.mkdir(parents=True)
    for i in range(6):
        (cache / f"old{i}.offsets").write_bytes(b"x")
        os.utime(cache / f"old{i}.offsets", ns=(10**9 * (i + 1),) * 2)
    _resolve.symbol_offsets(str(exe), ["add_i"])
    left = sorted(p.name for p in cache.glob("*.offsets"))
    assert entry_of(exe).name in left and len(left) == 3
    assert "old0.offsets" not in left and "old5.offsets" in left


def test_a_file_modified_moments_ago_gets_no_entry_yet(progs, tmp_path, cache) -> None:
    """Rewritten in place within the timestamp granularity, a file keeps its
    identity with other contents: a just-written one is not recorded."""
    target = local_copy(progs, tmp_path, "prog_pie")
    os.utime(target)  # now
    _resolve.symbol_offsets(str(target), ["add_i"])
    assert cached(target, ["add_i"]) is None
    aged(target, 3)
    _resolve.symbol_offsets(str(target), ["add_i"])
    assert cached(target, ["add_i"]) == [elf.resolve(target, "add_i").offset]
