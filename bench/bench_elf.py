#!/usr/bin/env python3
"""Benchmark pylibbpf.elf's symbol index and multi-uprobe attach by name against
C references compiled in the same run.

    sudo python3 bench/bench_elf.py                 # the table (medians of 7 runs)
    python3 bench/bench_elf.py --runs 5 --no-uprobe # without root: index rows only
    sudo python3 bench/bench_elf.py --no-index      # the uprobe row only
    python3 bench/bench_elf.py --update-readme      # write the table into bench/README.md
    python3 bench/bench_elf.py --warm-build [FILE]  # the in-process build benchmark

Rows (each run is a fresh process on both sides; C and Python runs alternate so
both see the same machine load; medians over ``--runs``, three times as many for
the index rows, with the range). Each
side reports wall-clock time and its thread's CPU time (kernel work in its system
calls included): on a loaded machine a Python child, which has already run for a
while when its timed part starts, is preempted more often than a C child that
just started, so the CPU-time ratio is the steadier of the two.

- **symbol index, 1,000 lookups from cold** on libc, libpython and bash: the
  first index of a process plus one lookup of each of 1,000 function names
  (sampled from every function pylibbpf lists). C (``elf_index.c --cold``,
  ``gcc -O2 -lelf``) opens the file with libelf, puts its defined functions in
  an open-addressing hash table and looks the names up; pylibbpf runs
  ``elf.symbol_index(path)`` and ``SymbolIndex.lookup(name)`` (a list of
  ``Symbol``). The interpreter's start and ``import pylibbpf.elf`` are outside
  the timing, as the C side's exec is. For a stripped file whose separate debug
  file pylibbpf uses (libc with its -dbg package), the C side indexes that debug
  file too: both search the same tables. pylibbpf's persistent cache (a large
  ``.symtab``'s name hash, in a temporary ``PYLIBBPF_CACHE``) is filled by the
  untimed first run, as by any earlier process on a user's machine.
- **200 libc uprobes by name, cold**: the first attach of a process of one
  ``SEC("uprobe.multi")`` program to 200 libc functions named in a list: C
  ``bpf_program__attach_uprobe_multi`` with ``opts.syms`` (libbpf resolves the
  names), against ``Program.attach_uprobe_multi(libc, symbols=names)``. libbpf
  1.5 refuses ``syms`` on a binary without ``.symtab`` (its resolver returns
  the ``-ENOENT`` of the missing section type); the C side then does libbpf's
  resolution steps itself and passes ``opts.offsets`` (``uprobe_multi.c``).
  pylibbpf's offsets cache (the names' offsets recorded by an earlier process,
  in the temporary ``PYLIBBPF_CACHE``) is filled by the untimed first run; a
  second row gives each pylibbpf run an empty cache of its own (the first
  attach of those names on a machine: full resolution, and the entries
  written). Another row has each side spin 0.1 s between its load and the timed
  attach (``UPROBE_SETTLE_MS``: see there why).

``--warm-build`` keeps the earlier benchmark: best/median in-process build of the
index of one file (libLLVM-14 by default) against the C reference.
No numbers are asserted anywhere.
"""
from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from pylibbpf import elf  # noqa: E402
from pylibbpf.elf import SymbolIndex  # noqa: E402
from pylibbpf.elf._image import ElfImage  # noqa: E402

DEFAULT = "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"
C_SRC = HERE / "elf_index" / "elf_index.c"
C_UPROBE = HERE / "elf_index" / "uprobe_multi.c"
BPF_UPROBE = HERE / "uprobe_multi.bpf.c"
TARGET_INDEX = 3.0
INDEX_RUNS_FACTOR = 3
TARGET_UPROBE = 1.2

_PY_INDEX = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pylibbpf import elf
path = sys.argv[2]
names = open(sys.argv[3]).read().split("\n")[:-1]
c0 = time.thread_time()
t0 = time.perf_counter()
idx = elf.symbol_index(path)
found = 0
for n in names:
    found += bool(idx.lookup(n))
ms = (time.perf_counter() - t0) * 1e3
cpu = (time.thread_time() - c0) * 1e3
print(json.dumps({"ms": ms, "cpu_ms": cpu, "found": found}))
"""

_PY_UPROBE = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
if len(sys.argv) > 5:  # an empty cache of its own: the first attach on a machine
    os.environ["PYLIBBPF_CACHE"] = os.path.join(sys.argv[5], str(os.getpid()))
import pylibbpf
names = open(sys.argv[4]).read().split("\n")[:-1]
with pylibbpf.Object(sys.argv[2]) as obj:
    obj.load()
    prog = obj.programs["on_call"]
    if os.environ.get("BENCH_SETTLE_MS"):  # as uprobe_multi.c: see UPROBE_SETTLE_MS
        until = time.perf_counter() + int(os.environ["BENCH_SETTLE_MS"]) / 1000
        while time.perf_counter() < until:
            pass
    c0 = time.thread_time()
    t0 = time.perf_counter()
    link = prog.attach_uprobe_multi(sys.argv[3], symbols=names)
    ms = (time.perf_counter() - t0) * 1e3
    cpu = (time.thread_time() - c0) * 1e3
    link.close()
print(json.dumps({"ms": ms, "cpu_ms": cpu, "probes": len(names)}))
"""


# --- building the references ---------------------------------------------------------

def build_c(tmp: Path) -> Path:
    exe = tmp / "elf_index"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(C_SRC), "-lelf"], check=True)
    return exe


def build_c_uprobe(tmp: Path) -> Path:
    archives = sorted(glob.glob(str(ROOT / "build" / "libbpf-*" / "libbpf.a")),
                      key=os.path.getmtime)
    if not archives:
        raise SystemExit("no build/libbpf-*/libbpf.a: run python3 build_ffi.py first")
    exe = tmp / "uprobe_multi"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", str(exe), str(C_UPROBE),
                    "-I", str(ROOT / "pylibbpf" / "include"), archives[-1], "-lelf", "-lz"],
                   check=True)
    return exe


def _json_run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    res = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))}…: {res.stderr.strip()[-600:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _stats(xs: List[float]) -> Dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def _alternate(runs: int, c_cmd: Sequence[str], py_cmd: Sequence[str],
               env: Optional[Dict[str, str]] = None,
               c_env: Optional[Dict[str, str]] = None) -> Dict[str, List[float]]:
    """``runs`` fresh-process timings of each side (wall-clock ``ms`` and the
    thread's CPU time ``cpu_ms``), alternating which goes first, after one
    untimed run of each (page cache, pylibbpf's caches)."""
    _json_run(c_cmd, c_env)
    _json_run(py_cmd, env)
    out: Dict[str, List[float]] = {"c": [], "py": [], "c_cpu": [], "py_cpu": []}
    for k in range(runs):
        order = ((c_cmd, "c", c_env), (py_cmd, "py", env))
        for cmd, side, e in (order if k % 2 == 0 else order[::-1]):
            r = _json_run(cmd, e)
            out[side].append(r["ms"])
            out[side + "_cpu"].append(r["cpu_ms"])
    return out


def _row(t: Dict[str, List[float]]) -> Dict[str, Any]:
    med = statistics.median
    return {"c_ms": _stats(t["c"]), "py_ms": _stats(t["py"]), "c_cpu_ms": _stats(t["c_cpu"]),
            "py_cpu_ms": _stats(t["py_cpu"]), "ratio": med(t["py"]) / med(t["c"]),
            "ratio_cpu": med(t["py_cpu"]) / med(t["c_cpu"])}


# --- the index rows ----------------------------------------------------------------

def index_files() -> List[Tuple[str, str]]:
    """(label, path) of libc, libpython and bash, as found here."""
    out = []
    try:
        out.append(("libc", elf.find_library("c")))
    except Exception:  # noqa: BLE001 - a row left out
        pass
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for cand in (f"lib{ver}.so.1.0", f"lib{ver}.so"):
        try:
            out.append(("libpython", elf.find_library(cand)))
            break
        except Exception:  # noqa: BLE001
            continue
    bash = shutil.which("bash")
    if bash:
        out.append(("bash", os.path.realpath(bash)))
    return out


def sample_names(path: str, n: int = 1000) -> Tuple[List[str], Optional[str]]:
    """``n`` function names spread over every one pylibbpf lists (from .dynsym,
    .symtab and the debug file), and the debug file it uses, if any."""
    idx = elf.symbol_index(path)
    names = [x for x in idx.function_names() if "\n" not in x]
    dbg = idx.debug_index()[0] if idx.stripped else None
    step = 7919 if len(names) % 7919 else 7907
    return [names[(k * step) % len(names)] for k in range(n)], \
        (dbg.path if dbg is not None else None)


def bench_index(exe: Path, tmp: Path, runs: int, env: Dict[str, str]) -> List[Dict[str, Any]]:
    rows = []
    for label, path in index_files():
        names, dbg = sample_names(path)
        nf = tmp / f"names-{label}"
        nf.write_text("\n".join(names) + "\n")
        c_cmd = [str(exe), "--cold", path, str(nf)] + ([dbg] if dbg else [])
        py_cmd = [sys.executable, "-c", _PY_INDEX, str(ROOT), path, str(nf)]
        rows.append({"label": label, "file": path, "debug_file": dbg, "lookups": len(names),
                     **_row(_alternate(runs, c_cmd, py_cmd, env))})
    return rows


# --- the multi-uprobe row ----------------------------------------------------------

def uprobe_names(path: str, n: int = 200) -> List[str]:
    """``n`` libc functions both sides resolve to one place: exported FUNCs
    (no IFUNC, one .dynsym entry), spread over the sorted list."""
    idx = elf.symbol_index(path)
    dyn = idx.image.dynsym
    assert dyn is not None
    raw = dyn.names()
    counts: Dict[bytes, int] = {}
    for i in dyn.function_indexes():
        counts[raw[i]] = counts.get(raw[i], 0) + 1
    cands = []
    for name, c in sorted(counts.items()):
        s = name.decode("utf-8", "surrogateescape")
        if c != 1 or s.startswith("_"):
            continue
        syms = idx.lookup(s)
        if len(syms) == 1 and syms[0].type == "FUNC":
            cands.append(s)
    step = len(cands) / n
    return [cands[int(k * step)] for k in range(n)]


#: the uprobe row's second line: each side spins this many milliseconds, in its
#: process, between the load and the timed attach (BENCH_SETTLE_MS). The attach
#: sleeps in the kernel for one RCU grace period (register_for_each_vma ->
#: percpu_down_write -> synchronize_rcu: perf's sched_switch stacks show it), a wait
#: that is longer right after a process start that closed many files (each close
#: queues an RCU callback: an interpreter reading its modules closes hundreds, C's
#: exec a handful). Attaching right away (first line), pylibbpf's wall-clock time
#: is ~16 ms against C's ~10 ms on a quiet machine for about the same CPU time;
#: after the pause both wait about as long. The pause raises both sides' CPU time
#: in the attach (pylibbpf's more: bench/README.md), so the first line is the CPU
#: comparison, the second the wall-clock one.
UPROBE_SETTLE_MS = 100
#: at least this many runs per side: the kernel's wait makes wall-clock times scatter
UPROBE_RUNS = 21


def bench_uprobe(tmp: Path, runs: int, env: Dict[str, str]) -> Dict[str, Any]:
    import pylibbpf

    exe = build_c_uprobe(tmp)
    obj = pylibbpf.compile(BPF_UPROBE, tmp / "uprobe_multi.bpf.o")
    libc = elf.find_library("c")
    names = uprobe_names(libc)
    nf = tmp / "names-uprobe"
    nf.write_text("\n".join(names) + "\n")
    mode = "syms"
    try:
        _json_run([str(exe), str(obj), "on_call", libc, str(nf), "syms"])
    except RuntimeError:
        mode = "offsets"  # libbpf 1.5 and a libc without .symtab (see the docstring)
    c_cmd = [str(exe), str(obj), "on_call", libc, str(nf), mode]
    py_cmd = [sys.executable, "-c", _PY_UPROBE, str(ROOT), str(obj), libc, str(nf)]
    runs = max(runs, UPROBE_RUNS)
    out = {"file": libc, "probes": len(names), "c_mode": mode,
           **_row(_alternate(runs, c_cmd, py_cmd, env))}
    settled = dict(env, BENCH_SETTLE_MS=str(UPROBE_SETTLE_MS))
    out["settled"] = _row(_alternate(runs, c_cmd, py_cmd, settled, c_env=settled))
    # the same with an empty cache (no offsets recorded, no name hash kept): the
    # first attach of these names on a machine
    empty = tmp / "empty-caches"
    empty.mkdir(exist_ok=True)
    out["empty"] = _row(_alternate(runs, c_cmd, py_cmd + [str(empty)], env))
    return out


# --- the table ---------------------------------------------------------------------

def _ms(s: Dict[str, float], cpu: Dict[str, float]) -> str:
    return f"{s['median']:.2f} ms ({s['min']:.2f}–{s['max']:.2f}); CPU {cpu['median']:.2f} ms"


def table(result: Dict[str, Any]) -> str:
    out = ["| benchmark | pylibbpf: wall median (range); CPU median | C reference, same run | "
           "ratio wall / CPU | target |", "|---|---|---|---|---|"]
    rows = []
    for r in result.get("index", []):
        dbg = " + its debug file" if r["debug_file"] else ""
        rows.append((f"symbol index, {r['lookups']:,} lookups from cold, {r['label']}{dbg}",
                     "libelf hash table ", r, f"≤ {TARGET_INDEX:g}× C"))
    u = result.get("uprobe")
    if u:
        how = "opts.syms" if u["c_mode"] == "syms" else "libbpf's resolution, opts.offsets"
        rows.append((f"{u['probes']} libc uprobes, `attach_uprobe_multi(symbols=…)`, cold "
                     "(the CPU comparison)", f"C uprobe_multi ({how}) ", u,
                     f"≤ {TARGET_UPROBE:g}× C CPU"))
        if "settled" in u:
            rows.append((f"the same, after a {UPROBE_SETTLE_MS / 1000:g} s pause in each "
                         "process (its start's kernel work drained: the wall-clock "
                         "comparison)", "C ", u["settled"],
                         f"≤ {TARGET_UPROBE:g}× C wall-clock"))
        if "empty" in u:
            rows.append(("the same, empty cache (the first attach of these names on a "
                         "machine)", "C ", u["empty"], "(once per binary)"))
    for name, ref, r, target in rows:
        out.append(f"| {name} | {_ms(r['py_ms'], r['py_cpu_ms'])} | "
                   f"{ref}{_ms(r['c_ms'], r['c_cpu_ms'])} | "
                   f"{r['ratio']:.2f}× / {r['ratio_cpu']:.2f}× | {target} |")
    return "\n".join(out)


def update_readme(text: str, runs: int) -> None:
    readme = HERE / "README.md"
    s = readme.read_text()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    block = (f"<!-- elf-table -->\nLast run: {stamp}, {os.cpu_count()} CPUs, load "
             f"{load:.1f}, medians of {runs} fresh-process runs per side "
             f"({INDEX_RUNS_FACTOR * runs} for the symbol index rows).\n\n{text}\n"
             "<!-- /elf-table -->")
    if "<!-- elf-table -->" in s:
        s = re.sub(r"<!-- elf-table -->.*<!-- /elf-table -->", lambda _: block, s, flags=re.S)
    else:
        s = s.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(s)


def measure(runs: int = 7, uprobe: bool = True, index: bool = True) -> Dict[str, Any]:
    """Every row, as a dict (bench/run.py may call this)."""
    # Up-to-date .pyc files, as an installed package has: with PYTHONDONTWRITEBYTECODE
    # set and a source newer than its .pyc, each child would compile the module
    # again (~10-40 ms for pylibbpf.elf, inside the uprobe row's first attach).
    import compileall

    compileall.compile_dir(str(ROOT / "pylibbpf"), quiet=2)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        env = dict(os.environ, PYLIBBPF_CACHE=str(tmp / "cache"))
        result: Dict[str, Any] = {"runs": runs}
        if index:
            # three times the runs: each is a few milliseconds, and a fresh process's
            # time here comes in two modes ~1.5x apart on either side (the whole
            # process slower: its index, its lookups and C's alike), so a median of
            # 7 could land on either mode
            result["index_runs"] = INDEX_RUNS_FACTOR * runs
            result["index"] = bench_index(build_c(tmp), tmp, INDEX_RUNS_FACTOR * runs, env)
        if uprobe:
            result["uprobe"] = bench_uprobe(tmp, runs, env)
    return result


# --- the in-process build benchmark (--warm-build) -------------------------------

def run_c(exe: Path, path: str, rounds: int, lookups: int) -> Dict[str, float]:
    out = subprocess.run([str(exe), path, str(rounds), str(lookups)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def run_py(path: str, rounds: int, lookups: int, use_hash: bool = True) -> Dict[str, float]:
    times: List[float] = []
    idx = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        idx = SymbolIndex(ElfImage(path, use_hash_tables=use_hash))  # uncached
        times.append((time.perf_counter() - t0) * 1e3)
    assert idx is not None
    names = idx.function_names()
    sample = [names[(k * 7919) % len(names)] for k in range(min(lookups, 20000))]
    found = 0
    t0 = time.perf_counter()
    for name in sample:
        found += bool(idx.lookup(name))
    lookup_us = (time.perf_counter() - t0) * 1e6 / len(sample)
    times.sort()
    return {"symbols": len(names), "build_ms_best": times[0],
            "build_ms_median": statistics.median(times), "lookup_us": lookup_us,
            "found": found, "sample": len(sample)}


def warm_build(path: str, rounds: int, lookups: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_c(Path(tmp))
        run_c(exe, path, 3, 1000)  # warm the page cache
        c1 = run_c(exe, path, rounds, lookups)
        gc.collect()
        py = run_py(path, rounds, lookups)
        gc.collect()
        py_dict = run_py(path, rounds, lookups, use_hash=False)
        c2 = run_c(exe, path, rounds, lookups)
    c = min((c1, c2), key=lambda r: r["build_ms_best"])
    print(path)
    print(f"  C libelf index:     {c['symbols']:>6} functions, build best "
          f"{c['build_ms_best']:8.2f} ms, median {c['build_ms_median']:8.2f} ms, "
          f"lookup {c['lookup_us']:.3f} us")
    print(f"  pylibbpf.elf index: {py['symbols']:>6} functions, build best "
          f"{py['build_ms_best']:8.2f} ms, median {py['build_ms_median']:8.2f} ms, "
          f"lookup {py['lookup_us']:.2f} us")
    print(f"  build ratio Python/C: best {py['build_ms_best'] / c['build_ms_best']:.2f}x; "
          f"without the ELF hash tables {py_dict['build_ms_best'] / c['build_ms_best']:.2f}x")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh-process runs per side (>= 5)")
    ap.add_argument("--no-uprobe", action="store_true", help="leave out the uprobe row")
    ap.add_argument("--no-index", action="store_true",
                    help="leave out the symbol index rows (the uprobe row only)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--update-readme", action="store_true",
                    help="write the table into bench/README.md")
    ap.add_argument("--warm-build", nargs="?", const=DEFAULT, metavar="FILE",
                    help="the in-process build benchmark of FILE (default: libLLVM-14)")
    ap.add_argument("--rounds", type=int, default=30, help="rounds of --warm-build")
    args = ap.parse_args()
    if not shutil.which("gcc"):
        print("gcc is needed for the C reference", file=sys.stderr)
        return 2
    if args.warm_build:
        if not os.path.exists(args.warm_build):
            print(f"{args.warm_build} not found", file=sys.stderr)
            return 2
        return warm_build(args.warm_build, args.rounds, 20000)
    if args.runs < 5:
        ap.error("--runs must be at least 5 (medians)")
    uprobe = not args.no_uprobe and os.geteuid() == 0
    if args.update_readme and args.no_index:
        ap.error("--update-readme writes every row: leave out --no-index")
    result = measure(args.runs, uprobe, index=not args.no_index)
    text = table(result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.runs} fresh-process runs per side, load {os.getloadavg()[0]:.1f}")
        print(text)
    if args.update_readme:
        update_readme(text, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
