#!/usr/bin/env python3
"""Benchmark pylibbpf.elf's symbol index against a C libelf reference.

Both build, from scratch, an index of a library's function symbols by name
and then look names up; the C reference (bench/elf_index/elf_index.c) is
compiled with ``gcc -O2 -lelf`` in the same run.

    python3 bench/bench_elf.py                      # libLLVM-14 (Debian's llvm-14)
    python3 bench/bench_elf.py /lib/x86_64-linux-gnu/libc.so.6 --rounds 50
    python3 bench/bench_elf.py --check              # exit 1 when build > 3x C

Reported: best and median build time of each, their ratio, and the time of
one lookup (Python: name -> Symbol with its file offset, through the public
``SymbolIndex.lookup``). pylibbpf looks ``.dynsym`` names up through the
file's own GNU/SysV hash table; a second Python row builds a name dictionary
for every table instead (the cost a large ``.symtab`` has). ``--pyelftools`` adds pyelftools' own per-symbol
iteration, the slow path this index replaces.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pylibbpf.elf import SymbolIndex  # noqa: E402
from pylibbpf.elf._image import ElfImage  # noqa: E402

DEFAULT = "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"
C_SRC = Path(__file__).resolve().parent / "elf_index" / "elf_index.c"


def build_c(tmp: Path) -> Path:
    exe = tmp / "elf_index"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(C_SRC), "-lelf"], check=True)
    return exe


def run_c(exe: Path, path: str, rounds: int, lookups: int) -> Dict[str, float]:
    out = subprocess.run([str(exe), path, str(rounds), str(lookups)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def run_py(path: str, rounds: int, lookups: int, use_hash: bool = True) -> Dict[str, float]:
    times: List[float] = []
    idx = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        # uncached: a full build each round
        idx = SymbolIndex(ElfImage(path, use_hash_tables=use_hash))
        times.append((time.perf_counter() - t0) * 1e3)
    assert idx is not None
    names = idx.function_names()
    sample = [names[(k * 7919) % len(names)] for k in range(min(lookups, 20000))]
    found = 0
    t0 = time.perf_counter()
    for name in sample:
        found += bool(idx.lookup(name))
    lookup_us = (time.perf_counter() - t0) * 1e6 / len(sample)
    tables = idx.image.tables
    raw = [n.encode() for n in sample]
    t0 = time.perf_counter()
    for n in raw:
        for t in tables:
            t.find(n)
    find_us = (time.perf_counter() - t0) * 1e6 / len(raw)
    t0 = time.perf_counter()
    nfuncs = len(idx.functions())
    list_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    idx.lookup("llvm::APInt::sdiv(long) const")  # demangles only candidate names
    demangle_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    idx.functions("llvm::APInt::*")  # a glob over demangled names demangles them all
    demangle_all_ms = (time.perf_counter() - t0) * 1e3
    times.sort()
    return {"symbols": len(names), "functions_listed": nfuncs, "build_ms_best": times[0],
            "build_ms_median": statistics.median(times), "lookup_us": lookup_us,
            "table_find_us": find_us, "found": found, "sample": len(sample),
            "list_all_ms": list_ms, "first_cxx_lookup_ms": demangle_ms,
            "demangled_glob_ms": demangle_all_ms}


def run_pyelftools(path: str) -> float:
    from elftools.elf.elffile import ELFFile

    t0 = time.perf_counter()
    with open(path, "rb") as f:
        e = ELFFile(f)
        n = 0
        for sec in e.iter_sections():
            if sec["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM"):
                for sym in sec.iter_symbols():
                    n += sym["st_info"]["type"] == "STT_FUNC"
    return (time.perf_counter() - t0) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", default=DEFAULT)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--lookups", type=int, default=20000)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when the best build time is over 3x C's")
    ap.add_argument("--pyelftools", action="store_true",
                    help="also time pyelftools' per-symbol iteration")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if not os.path.exists(args.file):
        print(f"{args.file} not found (Debian: apt-get install llvm-14)", file=sys.stderr)
        return 2
    if not shutil.which("gcc"):
        print("gcc is needed for the C reference", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_c(Path(tmp))
        run_c(exe, args.file, 3, 1000)  # warm the page cache
        c1 = run_c(exe, args.file, args.rounds, args.lookups)
        gc.collect()
        py = run_py(args.file, args.rounds, args.lookups)
        gc.collect()
        # the same, with a name dictionary for every table (what a .symtab costs)
        py_dict = run_py(args.file, args.rounds, args.lookups, use_hash=False)
        c2 = run_c(exe, args.file, args.rounds, args.lookups)  # the machine may have changed
    c = min((c1, c2), key=lambda r: r["build_ms_best"])
    ratio = py["build_ms_best"] / c["build_ms_best"]
    ratio_median = py["build_ms_median"] / min(c1["build_ms_median"], c2["build_ms_median"])
    ratio_dict = py_dict["build_ms_best"] / c["build_ms_best"]
    result = {"file": args.file, "c": c, "python": py, "python_dict": py_dict,
              "ratio_best": ratio, "ratio_median": ratio_median, "ratio_dict_best": ratio_dict}
    if args.pyelftools:
        result["pyelftools_iter_ms"] = run_pyelftools(args.file)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.file}")
        print(f"  C libelf index:     {c['symbols']:>6} functions, build best "
              f"{c['build_ms_best']:8.2f} ms, median {c['build_ms_median']:8.2f} ms, "
              f"lookup {c['lookup_us']:.3f} us")
        print(f"  pylibbpf.elf index: {py['symbols']:>6} functions, build best "
              f"{py['build_ms_best']:8.2f} ms, median {py['build_ms_median']:8.2f} ms, "
              f"lookup {py['lookup_us']:.2f} us (table find {py['table_find_us']:.2f} us)")
        print(f"  build ratio Python/C: best {ratio:.2f}x, median {ratio_median:.2f}x "
              f"(target <= 3x)")
        print(f"  without the ELF hash tables (a name dict for every table, as .symtab gets): "
              f"build best {py_dict['build_ms_best']:.2f} ms ({ratio_dict:.2f}x C), "
              f"lookup {py_dict['lookup_us']:.2f} us")
        print(f"  list all functions {py['list_all_ms']:.1f} ms; first lookup by C++ name "
              f"{py['first_cxx_lookup_ms']:.1f} ms; glob over demangled names "
              f"{py['demangled_glob_ms']:.1f} ms")
        if "pyelftools_iter_ms" in result:
            print(f"  pyelftools iter_symbols: {result['pyelftools_iter_ms']:.1f} ms")
    if args.check and ratio > 3.0:
        print(f"FAIL: build ratio {ratio:.2f}x > 3x", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
