"""The open's pre-check verdicts, remembered per file (pylibbpf/_csrc/verdicts.c,
pylibbpf/_featcache.py).

Each test opens in child processes: the list is read at a process's first open,
so only a fresh process shows whether it was used, and a list the reader
wrongly accepted would change the test runner's own opens."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from _children import same_pylibbpf
from test_corrupt_inputs import Btf, _patch

#: open (and with "fire", load, attach on_getpgid and check a child's call was
#: seen with the right fields); print how many pre-checks ran, how many files
#: were added to the list, and the error of a refused open
_OPEN = r"""
import subprocess, sys
import pylibbpf
from pylibbpf._ffi import lib

err = "-"
try:
    with pylibbpf.Object(sys.argv[1]) as obj:
        if sys.argv[2] == "fire":
            obj.load()
            with obj.programs["on_getpgid"].attach():
                child = ("import ctypes, os; ctypes.CDLL(None).prctl(15, b'plb-verd', 0, 0, 0); "
                         "os.getpgid(0); print(os.getpid())")
                pid = int(subprocess.run([sys.executable, "-c", child], capture_output=True,
                                         text=True, check=True).stdout)
            seen = obj["seen"][pid]
            assert (seen.pid, seen.comm) == (pid, "plb-verd"), seen
except pylibbpf.BPFError as e:
    err = f"{type(e).__name__}: {e}".replace("\n", " ")
print(lib.pylibbpf_verdicts_checked(), lib.pylibbpf_verdicts_learned(), err, flush=True)
"""

#: prime from each file named on stdin (one per line), in this one process
_PRIME = r"""
import os, sys
from pylibbpf._ffi import lib
for line in sys.stdin:
    print(lib.pylibbpf_verdicts_prime(os.fsencode(line.rstrip("\n"))))
"""

SETTLED_S = 2   # verdicts.c's PLB_VERD_SETTLED_S


def _open(obj: Path, cache: Path, mode: str = "open") -> Tuple[int, int, str]:
    p = subprocess.run([sys.executable, "-c", _OPEN, str(obj), mode], capture_output=True,
                       text=True, timeout=120, **same_pylibbpf({"PYLIBBPF_CACHE": str(cache)}))
    assert p.returncode == 0, p.stderr
    checked, learned, err = p.stdout.strip().split(" ", 2)
    return int(checked), int(learned), err


def _settled_copy(src: Path, dest: Path) -> Path:
    """A copy of src whose times are old enough to be remembered."""
    shutil.copyfile(src, dest)
    past = time.time() - 3600
    os.utime(dest, (past, past))
    time.sleep(SETTLED_S + 0.2)   # its change time (set by the copy) settles too
    return dest


def _identity(path: Path) -> str:
    st = os.stat(path)
    return f"ok {st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _sealed(lines: List[bytes]) -> bytes:
    """A list file of these lines with its checksum (FNV-1a over what precedes
    the ``sum`` line) right."""
    body = b"".join(line + b"\n" for line in lines)
    h = 2166136261
    for c in body:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return body + b"sum %08x\n" % h


def test_a_second_process_opens_an_unchanged_file_without_the_precheck(
        bpf_objects, tmp_path) -> None:
    obj = _settled_copy(bpf_objects["core_task"], tmp_path / "task.bpf.o")
    cache = tmp_path / "cache"
    assert _open(obj, cache, "fire") == (1, 1, "-")    # checked, remembered, fired
    lines = (cache / "prechecks").read_text().splitlines()
    assert lines[0] == "pylibbpf pre-checks 1" and lines[1].startswith("key libbpf-")
    assert lines[2:] == [_identity(obj), lines[-1]] and lines[-1].startswith("sum ")
    written = (cache / "prechecks").read_bytes()
    assert _open(obj, cache, "fire") == (0, 0, "-")    # not checked, and it still fires
    assert (cache / "prechecks").read_bytes() == written   # nothing new: not rewritten


def test_a_file_changed_in_place_is_checked_again(bpf_objects, tmp_path) -> None:
    """Same inode, same size, a BTF array made too long for its struct: the
    remembered verdict is not the changed file's, and the pre-check refuses it."""
    obj = _settled_copy(bpf_objects["corrupt_base"], tmp_path / "base.bpf.o")
    cache = tmp_path / "cache"
    assert _open(obj, cache) == (1, 1, "-")
    before = os.stat(obj)
    good = obj.read_bytes()
    (at,) = Btf(good).arrays_of(5)
    with open(obj, "r+b") as f:   # in place: the file keeps its inode
        f.write(_patch(good, at, 1 << 28))
    after = os.stat(obj)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    checked, learned, err = _open(obj, cache)
    assert (checked, learned) == (1, 0), err
    assert err.startswith("ELFError: ") and "corrupt BTF: BTF type [" in err \
        and "member 0 'vals' ends at bit 8589934592, past the 32 bytes of the struct" in err, err
    # and its times put back as they were (the change time cannot be): checked again
    os.utime(obj, ns=(before.st_atime_ns, before.st_mtime_ns))
    checked, learned, err = _open(obj, cache)
    assert (checked, learned) == (1, 0) and "corrupt BTF: BTF type [" in err, err


def test_fresh_files_and_memory_are_always_checked(bpf_objects, tmp_path) -> None:
    cache = tmp_path / "cache"
    fresh = tmp_path / "fresh.bpf.o"
    shutil.copyfile(bpf_objects["core_task"], fresh)   # changed just now
    assert _open(fresh, cache) == (1, 0, "-")
    assert not (cache / "prechecks").exists()
    # a listed file read into memory: Object(bytes) is checked
    obj = _settled_copy(bpf_objects["core_task"], tmp_path / "task.bpf.o")
    assert _open(obj, cache) == (1, 1, "-")
    code = ("import sys, pylibbpf; from pylibbpf._ffi import lib\n"
            "pylibbpf.Object(open(sys.argv[1], 'rb').read()).close()\n"
            "pylibbpf.Object(sys.argv[1]).close()\n"
            "print(lib.pylibbpf_verdicts_checked())")
    p = subprocess.run([sys.executable, "-c", code, str(obj)], capture_output=True, text=True,
                       timeout=120, **same_pylibbpf({"PYLIBBPF_CACHE": str(cache)}))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1"]     # the bytes checked, the file not


def test_the_reader_accepts_only_intact_lists_of_this_build(bpf_objects, tmp_path) -> None:
    """Every single-byte change and every truncation of a list is refused, and
    so are changed keys and malformed lines with the checksum made right again;
    a damaged list is ignored, and the file is checked as without one."""
    cache = tmp_path / "cache"
    objs = [_settled_copy(bpf_objects[n], tmp_path / f"{n}.bpf.o")
            for n in ("core_task", "corrupt_base")]
    for o in objs:
        _open(o, cache)
    good = (cache / "prechecks").read_bytes()
    head, key, *listed, _sum = good.splitlines()
    assert listed == [_identity(o).encode() for o in objs]
    assert _sealed([head, key, *listed]) == good    # the test's checksum is the reader's
    files = []
    for i in range(len(good)):
        for b in {good[i] ^ 1, good[i] ^ 0x20, ord("\n"), ord(" "), ord("0")} - {good[i]}:
            files.append(good[:i] + bytes([b]) + good[i + 1:])
    files += [good[:i] for i in range(len(good))]
    files.append(good + b"\n")
    for i, field in enumerate(key.split()[1:], 1):
        for changed in (field + b"0", field[:-1], field.upper(), b""):
            if changed != field:
                k = key.split()
                k[i] = changed
                files.append(_sealed([head, b" ".join(k), *listed]))
    ok = listed[0]
    for bad in (ok + b" 1", b" ".join(ok.split()[:-1]), ok.replace(b"ok ", b"ok 0"),
                ok.replace(b"ok ", b"ok  "), ok.replace(b"ok ", b"OK "), ok + b" ",
                ok.replace(b" ", b"\t", 1), b"ok 1 2 3 4 -5", b"ok 1 2 3 4 +5",
                b"ok 1 2 3 4 99999999999999999999999", b"ok 1 2 3 4 0x5", b"", b"ok"):
        files.append(_sealed([head, key, bad]))
    files.append(_sealed([head, key] + [ok] * 65))       # more than the list holds
    paths = []
    for i, data in enumerate(files):
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        paths.append(p)
    paths += [cache / "prechecks", tmp_path / "missing", tmp_path]
    p = subprocess.run([sys.executable, "-c", _PRIME], input="".join(f"{q}\n" for q in paths),
                       capture_output=True, text=True, timeout=120, **same_pylibbpf())
    assert p.returncode == 0, p.stderr
    results = [int(x) for x in p.stdout.split()]
    assert results == [-1] * len(files) + [2, -1, -1]
    # a damaged list: each file checked again, the list written anew
    (cache / "prechecks").write_bytes(files[0])
    assert _open(objs[0], cache) == (1, 1, "-")
    assert (cache / "prechecks").read_bytes() == _sealed([head, key, listed[0]])
