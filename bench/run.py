"""pylibbpf benchmarks, each against a C reference built and run in the same run.

    sudo python3 bench/run.py [--quick] [--update-readme]

Builds bench/c_ref.c against the libbpf archive that build_ffi.py made
(build/libbpf-*/libbpf.a, headers from pylibbpf/include), compiles
bench/bench.bpf.c with pylibbpf.compile, then measures (best of several rounds):

- ring buffer drain: C libbpf callback; a ctypes callback per record (the
  usual pure-Python design); pylibbpf with a per-record Python callback that
  gets a decoded record; pylibbpf batch drain into a NumPy structured array;
- map per-element update and lookup (C and ``m[k] = v`` / ``m[k]``), and bulk
  ``update(dict)`` / ``items()`` on 100k entries against C per-element;
- Object open+load+close of a CO-RE object, against C;
- a failing kprobe attach (a function no kernel has; on a kernel without
  kprobes, that is the first reason) against C libbpf's failing
  ``bpf_program__attach_kprobe``, in a warm process and, for pylibbpf, the
  first failure of a fresh process (which reads /proc/kallsyms once).

No numbers are asserted anywhere; bench/README.md shows the last table.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pylibbpf  # noqa: E402
from pylibbpf._ffi import ffi, lib  # noqa: E402

BUILD = HERE / ".build"


def build_c_ref() -> Path:
    archives = sorted(glob.glob(str(ROOT / "build" / "libbpf-*" / "libbpf.a")),
                      key=os.path.getmtime)
    if not archives:
        sys.exit("no build/libbpf-*/libbpf.a: run python3 build_ffi.py first")
    out = BUILD / "c_ref"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "c_ref.c"),
                    "-I", str(ROOT / "pylibbpf" / "include"), archives[-1], "-lelf", "-lz"],
                   check=True)
    return out


def c_ref(exe: Path, *args: object) -> Dict[str, float]:
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True,
                         text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def best_of(rounds: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(rounds))


class Event(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("cpu", ctypes.c_uint32),
                ("ts", ctypes.c_uint64), ("comm", ctypes.c_char * 8)]


CB_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def bench_ringbuf(obj_path: Path, n: int, rounds: int) -> Dict[str, float]:
    res: Dict[str, float] = {}
    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        prog = obj.programs["produce"]
        rbmap = obj.maps["rb"]

        def produce() -> None:
            out = prog.test_run(ctx=struct.pack("II", n, 0))
            if struct.unpack("II", out.ctx_out[:8])[1]:
                raise RuntimeError("producer dropped records: ring too small")

        # 1. the usual pure-Python design: a ctypes callback per record
        acc = [0]

        def user_cb(ev: Event) -> None:
            acc[0] += ev.seq

        def ctypes_cb(ctx: int, data: int, size: int) -> int:
            user_cb(Event.from_buffer_copy(ctypes.string_at(data, size)))
            return 0

        cfn = CB_TYPE(ctypes_cb)
        rb = lib.ring_buffer__new(rbmap.fd, ffi.cast("ring_buffer_sample_fn",
                                                     ctypes.cast(cfn, ctypes.c_void_p).value),
                                  ffi.NULL, ffi.NULL)
        assert rb != ffi.NULL

        def drain_ctypes() -> float:
            produce()
            t = time.perf_counter()
            got = 0
            while True:
                r = lib.ring_buffer__consume(rb)
                if r <= 0:
                    break
                got += r
            t = time.perf_counter() - t
            assert got == n, got
            return t

        res["ctypes_rps"] = n / best_of(rounds, drain_ctypes)
        lib.ring_buffer__free(rb)

        # 2. pylibbpf: per-record Python callback with a decoded record
        total = [0]

        def cb(e: object) -> None:
            total[0] += e.seq  # type: ignore[attr-defined]

        with pylibbpf.RingBuffer(rbmap, cb, record_type="bench_event") as prb:
            def drain_py() -> float:
                produce()
                t = time.perf_counter()
                got = 0
                while True:
                    r = prb.consume()
                    if not r:
                        break
                    got += r
                t = time.perf_counter() - t
                assert got == n, got
                return t

            res["py_record_rps"] = n / best_of(rounds, drain_py)

        # 3. pylibbpf: batch drain into a NumPy structured array
        with pylibbpf.RingBuffer(rbmap, record_type="bench_event", batch=True) as brb:
            def drain_batch() -> float:
                produce()
                t = time.perf_counter()
                got = 0
                while True:
                    arr = brb.read_batch(0)
                    if not len(arr):
                        break
                    got += len(arr)
                t = time.perf_counter() - t
                assert got == n, got
                return t

            res["py_batch_rps"] = n / best_of(rounds, drain_batch)
            res["numpy"] = float(pylibbpf.ringbuf._numpy() is not None)
    return res


def bench_map(n: int, rounds: int) -> Dict[str, float]:
    res: Dict[str, float] = {}

    def fresh() -> pylibbpf.Map:
        return pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=n,
                                   name="pyref")

    def per_update() -> float:
        with fresh() as m:
            t = time.perf_counter()
            for i in range(n):
                m[i] = i
            t = time.perf_counter() - t
            assert len(m) == n and m[n - 1] == n - 1
            return t

    def per_lookup() -> float:
        with fresh() as m:
            m.update({i: i for i in range(n)})
            t = time.perf_counter()
            for i in range(n):
                m[i]
            return time.perf_counter() - t

    def bulk_update() -> float:
        data = {i: i for i in range(n)}
        with fresh() as m:
            t = time.perf_counter()
            m.update(data)
            t = time.perf_counter() - t
            assert len(m) == n
            return t

    def bulk_items() -> float:
        with fresh() as m:
            m.update({i: i for i in range(n)})
            t = time.perf_counter()
            items = m.items()
            t = time.perf_counter() - t
            assert len(items) == n
            return t

    res["py_map_update_ops"] = n / best_of(rounds, per_update)
    res["py_map_lookup_ops"] = n / best_of(rounds, per_lookup)
    res["py_bulk_update_ops"] = n / best_of(rounds, bulk_update)
    res["py_bulk_items_ops"] = n / best_of(rounds, bulk_items)
    return res


def bench_load(obj_path: Path, rounds: int) -> Dict[str, float]:
    def once() -> float:
        t = time.perf_counter()
        with pylibbpf.Object(obj_path) as o:
            o.load()
        return time.perf_counter() - t

    return {"py_load_s": best_of(rounds, once)}


#: the kernel function no kernel has (c_ref.c's MISSING_FUNCTION)
MISSING_FUNCTION = "pylibbpf_bench_no_such_function"

#: a fresh process: load, then time its first failing attach (cold kallsyms index)
_FIRST_FAILURE = """
import sys, time
sys.path.insert(0, sys.argv[2])
import pylibbpf
with pylibbpf.Object(sys.argv[1]) as obj:
    obj.load()
    prog = obj.programs["on_kprobe"]
    t = time.perf_counter()
    try:
        prog.attach_kprobe(sys.argv[3])
    except pylibbpf.BPFError:
        pass
    else:
        sys.exit("attaching worked")
    print(time.perf_counter() - t)
"""


def bench_kprobe_fail(obj_path: Path, attempts: int, rounds: int) -> Dict[str, float]:
    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        prog = obj.programs["on_kprobe"]
        message = ""

        def once() -> float:
            nonlocal message
            t = time.perf_counter()
            for _ in range(attempts):
                try:
                    prog.attach_kprobe(MISSING_FUNCTION)
                except pylibbpf.BPFError as e:
                    message = e.strerror
                else:
                    raise RuntimeError(f"attaching to {MISSING_FUNCTION} worked")
            return (time.perf_counter() - t) / attempts

        best = best_of(rounds, once)
    assert MISSING_FUNCTION in message, message  # the error names the function
    first = subprocess.run([sys.executable, "-c", _FIRST_FAILURE, str(obj_path), str(ROOT),
                            MISSING_FUNCTION], check=True, capture_output=True, text=True)
    return {"py_kprobe_fail_s": best, "py_kprobe_first_fail_s": float(first.stdout)}


def table(r: Dict[str, float]) -> str:
    def m(x: float) -> str:
        return f"{x / 1e6:.2f} M/s"

    makers = [
        lambda: ("ring buffer, per-record callback, decoded record", m(r["py_record_rps"]),
                f"ctypes callback {m(r['ctypes_rps'])}", r["py_record_rps"] / r["ctypes_rps"],
                "≥ 3× ctypes"),
        lambda: ("ring buffer, batch drain into NumPy array" if r.get("numpy") else
                "ring buffer, batch drain (list, no NumPy)", m(r["py_batch_rps"]),
                f"C libbpf {m(r['c_ringbuf_rps'])}", r["py_batch_rps"] / r["c_ringbuf_rps"],
                "≥ 0.5× C"),
        lambda: ("map m[k] = v (per element)", m(r["py_map_update_ops"]),
                f"C update {m(r['c_map_update_ops'])}", r["py_map_update_ops"] / r["c_map_update_ops"],
                "≥ 0.5× C"),
        lambda: ("map m[k] (per element)", m(r["py_map_lookup_ops"]),
                f"C lookup {m(r['c_map_lookup_ops'])}", r["py_map_lookup_ops"] / r["c_map_lookup_ops"],
                "≥ 0.5× C"),
        lambda: ("map update(dict), 100k entries (batch)", m(r["py_bulk_update_ops"]),
                f"C update {m(r['c_map_update_ops'])}", r["py_bulk_update_ops"] / r["c_map_update_ops"],
                "≥ 1.5× C per-element"),
        lambda: ("map items(), 100k entries (batch)", m(r["py_bulk_items_ops"]),
                f"C lookup {m(r['c_map_lookup_ops'])}", r["py_bulk_items_ops"] / r["c_map_lookup_ops"],
                "≥ 1.5× C per-element"),
        lambda: ("Object open+load (CO-RE)", f"{r['py_load_s'] * 1e3:.2f} ms",
                f"C {r['c_load_s'] * 1e3:.2f} ms", r["py_load_s"] / r["c_load_s"], "≤ 1.05× C"),
        lambda: ("failing kprobe attach (warm process)", f"{r['py_kprobe_fail_s'] * 1e6:.1f} µs",
                f"C {r['c_kprobe_fail_s'] * 1e6:.1f} µs",
                r["py_kprobe_fail_s"] / r["c_kprobe_fail_s"], "≤ 2× C"),
        lambda: ("failing kprobe attach, first in a process (reads kallsyms)",
                f"{r['py_kprobe_first_fail_s'] * 1e3:.1f} ms", f"C {r['c_kprobe_fail_s'] * 1e6:.1f} µs",
                r["py_kprobe_first_fail_s"] / r["c_kprobe_fail_s"], "(once per process)"),
    ]
    rows = []
    for make in makers:  # a row whose benchmark did not run (--only) is left out
        try:
            rows.append(make())
        except KeyError:
            pass
    out = ["| benchmark | pylibbpf | reference (same run) | ratio | target |",
           "|---|---|---|---|---|"]
    for name, py, ref, ratio, target in rows:
        out.append(f"| {name} | {py} | {ref} | {ratio:.2f}× | {target} |")
    return "\n".join(out)


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and records")
    ap.add_argument("--update-readme", action="store_true",
                    help="write the table into bench/README.md")
    ap.add_argument("--only", choices=["ringbuf", "map", "load", "kprobe", "elf", "batch"],
                    action="append",
                    help="run only this benchmark (repeatable); not with --update-readme")
    args = ap.parse_args(argv)
    if args.only and args.update_readme:
        ap.error("--update-readme needs the whole table: leave out --only")
    only = set(args.only or ["ringbuf", "map", "load", "kprobe", "elf", "batch"])
    BUILD.mkdir(exist_ok=True)
    rounds = 3 if args.quick else 7
    n_rb = 200_000 if args.quick else 500_000
    n_map = 100_000
    obj = pylibbpf.compile(HERE / "bench.bpf.c", BUILD / "bench.bpf.o")
    kprobe_obj = pylibbpf.compile(HERE / "kprobe.bpf.c", BUILD / "kprobe.bpf.o")
    n_fail = 200 if args.quick else 1000
    exe = build_c_ref()
    r: Dict[str, float] = {}

    def keep(new: Dict[str, float]) -> None:
        for k, v in new.items():  # best of the rounds: max rate, min time
            if k not in r:
                r[k] = v
            else:
                r[k] = min(r[k], v) if k.endswith("_s") else max(r[k], v)

    # interleave C and Python round by round, so both see the same machine load
    for _ in range(rounds):
        if "ringbuf" in only:
            keep(c_ref(exe, "ringbuf", obj, n_rb, 1))
            keep(bench_ringbuf(obj, n_rb, 1))
        if "map" in only:
            keep(c_ref(exe, "map", n_map, 1))
            keep(bench_map(n_map, 1))
        if "load" in only:
            keep(c_ref(exe, "load", obj, 3))
            keep(bench_load(obj, 3))
        if "kprobe" in only:
            keep(c_ref(exe, "kprobe", kprobe_obj, n_fail, 3))
            keep(bench_kprobe_fail(kprobe_obj, n_fail, 3))
    text = table(r)
    if "batch" in only:  # batch drains and perf callbacks: medians of >= 5 rounds (bench_batch.py)
        import bench_batch
        rb = bench_batch.run(obj, exe, max(rounds, 5), n_rb, n_rb // 2)
        text += "".join(f"\n| {' | '.join(row)} |" for row in bench_batch.rows(rb))
    print(text)
    if args.update_readme:
        readme = HERE / "README.md"
        s = readme.read_text()
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        block = (f"<!-- table -->\nLast run: {stamp}, {os.cpu_count()} CPUs, "
                 f"Linux {os.uname().release}, NumPy "
                 f"{'yes' if r.get('numpy') else 'no'}.\n\n{text}\n<!-- /table -->")
        s = re.sub(r"<!-- table -->.*<!-- /table -->", lambda _: block, s, flags=re.S)
        readme.write_text(s)
    if "elf" in only:  # symbol index and uprobes by name: fresh processes, bench_elf.py
        import bench_elf

        elf_text = bench_elf.table(bench_elf.measure(max(rounds, 5)))
        print(elf_text)
        if args.update_readme:
            bench_elf.update_readme(elf_text, max(rounds, 5))


if __name__ == "__main__":
    main(sys.argv[1:])
