"""libbpf's positive kernel feature probes, remembered per boot
(pylibbpf/_csrc/featcache.c, pylibbpf/_featcache.py).

Each test runs its loads in child processes: libbpf probes a feature once per
process, so only a fresh process shows whether the file was used, and a file
the reader wrongly accepted would change the test runner's own loads."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

from _children import same_pylibbpf

#: load the object, attach on_getpgid, make a child call getpgid and check the
#: program saw it with the right fields; print how many feature questions went
#: to libbpf (probes) and what priming the file said
_LOAD = r"""
import os, subprocess, sys
import pylibbpf
from pylibbpf import _featcache
from pylibbpf._ffi import lib

primed = lib.pylibbpf_features_prime(os.fsencode(_featcache.path()))  # (the load reads it again)
with pylibbpf.Object(sys.argv[1]) as obj:
    obj.load()
    with obj.programs["on_getpgid"].attach():
        child = ("import ctypes, os; ctypes.CDLL(None).prctl(15, b'plb-feat', 0, 0, 0); "
                 "os.getpgid(0); print(os.getpid())")
        pid = int(subprocess.run([sys.executable, "-c", child], capture_output=True,
                                 text=True, check=True).stdout)
    seen = obj["seen"][pid]
    assert (seen.pid, seen.comm) == (pid, "plb-feat"), seen
print(primed, lib.pylibbpf_features_asked(), lib.pylibbpf_features_learned(), flush=True)
"""

#: prime from each file named on stdin (one per line), in this one process:
#: what each returned
_PRIME = r"""
import os, sys
from pylibbpf._ffi import lib
for line in sys.stdin:
    print(lib.pylibbpf_features_prime(os.fsencode(line.rstrip("\n"))))
"""


def _env(cache: Path) -> Dict[str, object]:
    return same_pylibbpf({"PYLIBBPF_CACHE": str(cache)})


def _load(obj: Path, cache: Path) -> "tuple[int, int, int]":
    p = subprocess.run([sys.executable, "-c", _LOAD, str(obj)], capture_output=True,
                       text=True, timeout=120, **_env(cache))
    assert p.returncode == 0, p.stderr
    primed, asked, learned = map(int, p.stdout.split())
    return primed, asked, learned


def _sealed(head: bytes, key: bytes, listed: bytes) -> bytes:
    """A feature file of these lines with its checksum (FNV-1a over what
    precedes the ``sum`` line) right."""
    body = head + b"\n" + key + b"\n" + listed + b"\n"
    h = 2166136261
    for c in body:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return body + b"sum %08x\n" % h


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_a_second_process_loads_without_probing_known_features(bpf_objects, tmp_path) -> None:
    obj = bpf_objects["core_task"]
    primed, asked, learned = _load(obj, tmp_path)
    assert primed == -1                     # no file yet
    assert asked > 0 and learned > 0        # probed: attaching too, written at exit
    text = (tmp_path / "features").read_text()
    lines = text.splitlines()
    assert lines[0] == "pylibbpf feature probes 1"
    assert f"boot-{_boot_id()} " in lines[1] and f" euid-{os.geteuid()} " in lines[1]
    ids = [int(i) for i in lines[2].split()[1:]]
    assert lines[2].startswith("supported ") and ids == sorted(set(ids)) and ids
    assert lines[3].startswith("sum ") and len(lines) == 4

    primed2, asked2, learned2 = _load(obj, tmp_path)
    assert primed2 == len(ids)    # what attaching probed was written at exit, too
    # every feature the file holds was answered without libbpf; only those this
    # kernel lacks (or that this load needs and the first did not) were asked
    assert asked2 < asked and asked2 <= asked - len(ids) + learned2, (asked, asked2)
    assert learned2 == 0
    assert (tmp_path / "features").read_text() == text    # nothing new: not rewritten


def test_damaged_or_foreign_files_are_ignored_and_rewritten(bpf_objects, tmp_path) -> None:
    obj = bpf_objects["core_task"]
    _, asked, _ = _load(obj, tmp_path)
    good = (tmp_path / "features").read_bytes()
    boot = _boot_id().encode()
    other = bytes(reversed(boot[:8])) + boot[8:]
    cases = {
        "an id added": good.replace(b"supported ", b"supported 3 ", 1),
        "another boot": good.replace(boot, other),
        "another user": good.replace(f" euid-{os.geteuid()} ".encode(), b" euid-12345 "),
        "truncated": good[:-3],
        "empty": b"",
        "id out of range": good.replace(b"supported ", b"supported 99 ", 1),
    }
    for what, data in cases.items():
        (tmp_path / "features").write_bytes(data)
        primed, asked2, _ = _load(obj, tmp_path)
        assert primed == -1, what
        assert asked2 == asked, what        # probed as without a file
        assert (tmp_path / "features").read_bytes() == good, what    # and rewritten


def test_the_reader_accepts_only_intact_files_of_this_process(bpf_objects, tmp_path) -> None:
    """Every single-byte change and every truncation of a file is refused, and
    so are changed keys and malformed lists with the checksum made right again;
    only the file itself is accepted."""
    _load(bpf_objects["core_task"], tmp_path / "cache")
    good = (tmp_path / "cache" / "features").read_bytes()
    assert len(good.splitlines()[2].split()) > 1      # it lists features
    files = []
    for i in range(len(good)):
        for b in {good[i] ^ 1, good[i] ^ 0x20, ord("\n"), ord(" ")} - {good[i]}:
            files.append(good[:i] + bytes([b]) + good[i + 1:])
    files += [good[:i] for i in range(len(good))]
    files.append(good + b"\n")
    # structure-aware: the checksum made right again over a changed key or list
    head, key, listed_line = good.splitlines()[:3]
    for i, field in enumerate(key.split()[1:], 1):
        for changed in (field + b"0", field[:-1], field.upper(), b""):
            if changed != field:
                k = key.split()
                k[i] = changed
                files.append(_sealed(head, b" ".join(k), listed_line))
    for bad in (b"supported 64", b"supported 99999999999999999999999", b"supported -1",
                b"supported +1", b"supported  1", b"supported 1 ", b"supported 0x1",
                b"supported 1,2", b"supported1", b"Supported 1", b"supported\t1", b""):
        files.append(_sealed(head, key, bad))
    paths = []
    for i, data in enumerate(files):
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        paths.append(p)
    (tmp_path / "good").write_bytes(good)
    assert _sealed(head, key, listed_line) == good     # the test's checksum is the reader's
    paths.append(tmp_path / "good")
    paths += [tmp_path / "missing", tmp_path]        # no file, a directory
    p = subprocess.run([sys.executable, "-c", _PRIME], input="".join(f"{q}\n" for q in paths),
                       capture_output=True, text=True, timeout=120, **same_pylibbpf())
    assert p.returncode == 0, p.stderr
    results = [int(x) for x in p.stdout.split()]
    assert len(results) == len(paths)
    listed = len(good.splitlines()[2].split()) - 1
    assert results[:len(files)] == [-1] * len(files)
    assert results[len(files)] == listed
    assert results[len(files) + 1:] == [-1, -1]
