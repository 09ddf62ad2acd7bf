"""pylibbpf benchmarks, each against a reference built and run in the same run.

    sudo python3 bench/run.py [--quick] [--rounds N] [--only NAME] [--update-readme]

Builds bench/c_ref.c against the libbpf archive that build_ffi.py made
(build/libbpf-*/libbpf.a, headers from pylibbpf/include), compiles the BPF
objects with pylibbpf.compile, then runs every registered benchmark for
several rounds (at least 5), C and Python interleaved within a round so that
both see the same machine load. Each row shows the median and the min–max over
the rounds, and the ratio's median and min–max over the rounds' paired ratios.

- ring buffer drain: C libbpf callback (reads ``seq``); a ctypes callback per
  record (the usual pure-Python design); pylibbpf with a per-record Python
  callback that gets a decoded record; pylibbpf batch drain into a NumPy
  structured array, reading ``seq`` of every record as C does;
- map per-element update and lookup (C and ``m[k] = v`` / ``m[k]``), and bulk
  ``update(dict)`` / ``items()`` on 100k entries against C per-element;
- open+load+close of a 5-program CO-RE object (bench/load.bpf.c), C against
  pylibbpf, both the first load of a fresh process and warm (the median of
  more loads in that process);
- a failing kprobe attach (a function no kernel has; on a kernel without
  kprobes, that is the first reason) against C libbpf's failing
  ``bpf_program__attach_kprobe``, in a warm process and, for pylibbpf, the
  first failure of a fresh process (which reads /proc/kallsyms once).

Adding a benchmark: in a new file bench/rows_<name>.py (imported by
:func:`load_plugins`), ``from run import Ctx, benchmark, row`` and write
``@benchmark("name")`` over a function taking the :class:`Ctx` and returning
``{metric: value}`` for ONE round (run its C or other reference in the same
function), then ``row(...)`` for each table row built from those metrics.
Metric names ending in ``_s`` are seconds, ``_ops`` or ``_rps`` are rates.
No numbers are asserted anywhere; bench/README.md shows the last table.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pylibbpf  # noqa: E402
from pylibbpf._ffi import ffi, lib  # noqa: E402

BUILD = HERE / ".build"


def libbpf_archive() -> Path:
    """The libbpf archive build_ffi.py compiled pylibbpf against (the newest)."""
    archives = sorted(glob.glob(str(ROOT / "build" / "libbpf-*" / "libbpf.a")),
                      key=os.path.getmtime)
    if not archives:
        sys.exit("no build/libbpf-*/libbpf.a: run python3 build_ffi.py first")
    return Path(archives[-1])


def build_c_ref() -> Path:
    out = BUILD / "c_ref"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "c_ref.c"),
                    "-I", str(ROOT / "pylibbpf" / "include"), str(libbpf_archive()),
                    "-lelf", "-lz"], check=True)
    return out


# --- the registry -------------------------------------------------------------

@dataclass
class Ctx:
    """What every benchmark gets: the run's settings, the C reference, objects."""
    quick: bool
    rounds: int
    exe: Path                                  # bench/c_ref.c, built in this run
    objs: Dict[str, Path] = field(default_factory=dict)
    built: List[Path] = field(default_factory=list)

    def obj(self, name: str) -> Path:
        """bench/<name>.bpf.c compiled (once per run) with pylibbpf.compile."""
        if name not in self.objs:
            self.objs[name] = pylibbpf.compile(HERE / f"{name}.bpf.c", BUILD / f"{name}.bpf.o")
        return self.objs[name]

    def c(self, *args: object) -> Dict[str, float]:
        """Run the C reference (``c_ref <mode> args...``): its ``name value`` lines."""
        return c_ref(self.exe, *args)

    def c_program(self, source: str, *flags: str) -> Path:
        """bench/<source> (a C file of its own, not c_ref.c) built once per run with
        ``cc -O2`` against the same libbpf archive and headers, plus ``flags``;
        run it with :func:`c_ref` (it prints ``name value`` lines)."""
        out = BUILD / Path(source).stem
        if out not in self.built:
            subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", str(out),
                            str(HERE / source), "-I", str(ROOT / "pylibbpf" / "include"),
                            str(libbpf_archive()), "-lelf", "-lz", *flags], check=True)
            self.built.append(out)
        return out


#: name -> one round of the benchmark; run in registration order
BENCHES: Dict[str, Callable[[Ctx], Dict[str, float]]] = {}


def benchmark(name: str) -> Callable[[Callable[[Ctx], Dict[str, float]]],
                                     Callable[[Ctx], Dict[str, float]]]:
    def register(fn: Callable[[Ctx], Dict[str, float]]) -> Callable[[Ctx], Dict[str, float]]:
        BENCHES[name] = fn
        return fn
    return register


Samples = Dict[str, List[float]]    # metric -> one value per round


@dataclass
class Row:
    title: Union[str, Callable[[Samples], str]]
    py: str                  # pylibbpf's metric
    ref: str                 # the reference's metric
    ref_label: str           # e.g. "C libbpf"
    unit: str                # "M/s", "ms" or "µs"
    target: str
    ref_unit: Optional[str] = None   # when the reference reads better in another unit


#: the table, in order; a row whose metrics did not run (--only) is left out
ROWS: List[Row] = []


def row(title: Union[str, Callable[[Samples], str]], py: str, ref: str, ref_label: str,
        unit: str, target: str, ref_unit: Optional[str] = None) -> None:
    """A table row: pylibbpf's metric ``py`` against the reference's ``ref``
    (ratio py / ref: above 1 is faster for rates, slower for times)."""
    ROWS.append(Row(title, py, ref, ref_label, unit, target, ref_unit))


def c_ref(exe: Path, *args: object) -> Dict[str, float]:
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True,
                         text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def best_of(rounds: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(rounds))


def python_child(script: str, *args: object) -> Dict[str, float]:
    """Run ``script`` in a fresh interpreter (pylibbpf from this tree importable);
    it prints ``name value`` lines like c_ref."""
    out = subprocess.run([sys.executable, "-c", script, str(ROOT), *map(str, args)],
                         check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


# --- ring buffer --------------------------------------------------------------

class Event(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("cpu", ctypes.c_uint32),
                ("ts", ctypes.c_uint64), ("comm", ctypes.c_char * 8)]


CB_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


@benchmark("ringbuf")
def bench_ringbuf(ctx: Ctx) -> Dict[str, float]:
    obj_path = ctx.obj("bench")
    n = 200_000 if ctx.quick else 500_000
    rounds = 1
    res = ctx.c("ringbuf", obj_path, n, 1)
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
            np = pylibbpf.ringbuf._numpy()

            def drain_batch() -> float:
                produce()
                t = time.perf_counter()
                got = seq = 0
                while True:
                    arr = brb.read_batch(0)
                    if not len(arr):
                        break
                    got += len(arr)
                    # read a field of every record, as the C reference does
                    seq += int(arr["seq"].sum()) if np is not None else sum(
                        struct.unpack_from("Q", r)[0] for r in arr)
                t = time.perf_counter() - t
                assert got == n and seq > 0, (got, seq)
                return t

            res["py_batch_rps"] = n / best_of(rounds, drain_batch)
            res["numpy"] = float(pylibbpf.ringbuf._numpy() is not None)
    return res


@benchmark("map")
def bench_map(ctx: Ctx) -> Dict[str, float]:
    n = 100_000
    rounds = 1
    res = ctx.c("map", n, 1)

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


#: a fresh process: the first open+load+close of the process, then the median
#: of more; wall and CPU (user + system) time, as c_ref's "load" mode does
_LOAD = """
import resource, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import pylibbpf

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def once():
    c, t = cpu(), time.perf_counter()
    with pylibbpf.Object(sys.argv[2]) as o:
        o.load()
    return time.perf_counter() - t, cpu() - c

first, first_cpu = once()
warm = [once() for _ in range(int(sys.argv[3]))]
print("py_load_first_s", first)
print("py_load_first_cpu_s", first_cpu)
print("py_load_warm_s", statistics.median(w for w, _ in warm))
print("py_load_warm_cpu_s", statistics.median(c for _, c in warm))
"""


@benchmark("load")
def bench_load(ctx: Ctx) -> Dict[str, float]:
    """Seven fresh processes per side and round (alternating C and Python), the
    round's value being their median: a first load varies by 9-14 ms between
    processes on either side, even on a quiet machine (three per round let the
    round's ratio swing between 0.9x and 1.1x)."""
    obj = ctx.obj("load")
    warm = 5 if ctx.quick else 9
    runs: Dict[str, List[float]] = {}
    for _ in range(3 if ctx.quick else 7):
        for k, v in {**ctx.c("load", obj, warm), **python_child(_LOAD, obj, warm)}.items():
            runs.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in runs.items()}


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


@benchmark("kprobe")
def bench_kprobe_fail(ctx: Ctx) -> Dict[str, float]:
    obj_path = ctx.obj("kprobe")
    attempts = 200 if ctx.quick else 1000
    rounds = 3
    res = ctx.c("kprobe", obj_path, attempts, rounds)
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
    return {**res, "py_kprobe_fail_s": best, "py_kprobe_first_fail_s": float(first.stdout)}


# --- the table ----------------------------------------------------------------

row("ring buffer, per-record callback, decoded record", "py_record_rps", "ctypes_rps",
    "ctypes callback", "M/s", "≥ 3× ctypes")
row(lambda r: ("ring buffer, batch drain into NumPy array, reading `seq`"
               if r.get("numpy", [0])[0] else "ring buffer, batch drain (list, no NumPy)"),
    "py_batch_rps", "c_ringbuf_rps", "C libbpf", "M/s", "≥ 0.5× C")
row("map m[k] = v (per element)", "py_map_update_ops", "c_map_update_ops", "C update", "M/s",
    "≥ 0.5× C")
row("map m[k] (per element)", "py_map_lookup_ops", "c_map_lookup_ops", "C lookup", "M/s",
    "≥ 0.5× C")
row("map update(dict), 100k entries (batch)", "py_bulk_update_ops", "c_map_update_ops",
    "C update", "M/s", "≥ 1.5× C per-element")
row("map items(), 100k entries (batch)", "py_bulk_items_ops", "c_map_lookup_ops", "C lookup",
    "M/s", "≥ 1.5× C per-element")
row("open+load+close, 5-program CO-RE object, first in a fresh process", "py_load_first_s",
    "c_load_first_s", "C", "ms", "≤ 1.0× C")
row("open+load+close, 5-program CO-RE object, warm process", "py_load_warm_s", "c_load_warm_s",
    "C", "ms", "≤ 1.0× C")
row("the same, first in a fresh process, CPU time", "py_load_first_cpu_s",
    "c_load_first_cpu_s", "C", "ms", "≤ 1.0× C")
row("the same, warm process, CPU time", "py_load_warm_cpu_s", "c_load_warm_cpu_s", "C", "ms",
    "≤ 1.0× C")
row("failing kprobe attach (warm process)", "py_kprobe_fail_s", "c_kprobe_fail_s", "C", "µs",
    "≤ 2× C")
row("failing kprobe attach, first in a process (reads kallsyms)", "py_kprobe_first_fail_s",
    "c_kprobe_fail_s", "C warm", "ms", "(once per process)", ref_unit="µs")

_UNITS = {"M/s": 1e-6, "k/s": 1e-3, "s": 1.0, "ms": 1e3, "µs": 1e6, "ns": 1e9}
_FMT = {"M/s": ".2f", "k/s": ".1f", "s": ".3f", "ms": ".2f", "µs": ".1f", "ns": ".0f"}


def load_plugins() -> None:
    """Import bench/rows_*.py (sorted by name): each registers its own
    ``@benchmark`` functions and ``row(...)`` lines with ``from run import
    benchmark, row, Ctx, ...``, so that adding a benchmark never touches this
    file. Their rows come after the built-in ones, in import order."""
    import importlib

    sys.modules.setdefault("run", sys.modules[__name__])  # run as a script: __main__
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    for path in sorted(HERE.glob("rows_*.py")):
        importlib.import_module(path.stem)


def _spread(xs: List[float], scale: float, fmt: str, unit: str) -> str:
    """``median unit (min–max)``"""
    med = statistics.median(xs) * scale
    if len(xs) == 1:
        return f"{med:{fmt}}{'' if unit == '×' else ' '}{unit}"
    sep = "" if unit == "×" else " "
    return f"{med:{fmt}}{sep}{unit} ({min(xs) * scale:{fmt}}–{max(xs) * scale:{fmt}})"


def table(r: Samples) -> str:
    """Markdown: per row, medians with min–max over the rounds; the ratio is the
    median (min–max) of the rounds' paired ratios pylibbpf / reference."""
    out = ["| benchmark | pylibbpf | reference (same run) | ratio | target |",
           "|---|---|---|---|---|"]
    for rw in ROWS:
        if rw.py not in r or rw.ref not in r:
            continue
        py, ref = r[rw.py], r[rw.ref]
        ref_unit = rw.ref_unit or rw.unit
        title = rw.title(r) if callable(rw.title) else rw.title
        ratios = [p / q for p, q in zip(py, ref)]
        out.append(f"| {title} | {_spread(py, _UNITS[rw.unit], _FMT[rw.unit], rw.unit)} | "
                   f"{rw.ref_label} {_spread(ref, _UNITS[ref_unit], _FMT[ref_unit], ref_unit)} "
                   f"| {_spread(ratios, 1, '.2f', '×')} "
                   f"| {rw.target} |")
    return "\n".join(out)


#: not round-by-round benchmarks: run after the rounds, in their own way
_AFTER = ("batch", "elf")


def main(argv: List[str]) -> None:
    load_plugins()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer records (still 5 rounds)")
    ap.add_argument("--rounds", type=int, help="rounds (default 7, 5 with --quick; at least 5 "
                                               "for --update-readme)")
    ap.add_argument("--update-readme", action="store_true",
                    help="write the table into bench/README.md")
    # after the rounds: "batch" (bench_batch.py: batch drains, perf callbacks) adds its
    # rows to the table, "elf" (bench_elf.py: symbol index, uprobes by name) its own table
    ap.add_argument("--only", choices=[*BENCHES, *_AFTER], action="append",
                    help="run only this benchmark (repeatable); not with --update-readme")
    ap.add_argument("--json", type=Path, help="also write every round's values here")
    args = ap.parse_args(argv)
    if args.only and args.update_readme:
        ap.error("--update-readme needs the whole table: leave out --only")
    rounds = args.rounds or (5 if args.quick else 7)
    if args.update_readme and rounds < 5:
        ap.error("--update-readme needs at least 5 rounds")
    only = [name for name in [*BENCHES, *_AFTER] if not args.only or name in args.only]
    BUILD.mkdir(exist_ok=True)
    ctx = Ctx(quick=args.quick, rounds=rounds, exe=build_c_ref())
    r: Samples = {}
    # round by round, each benchmark running its reference and pylibbpf back to
    # back, so both see the same machine load
    for i in range(rounds):
        for name in only:
            if name not in BENCHES:
                continue
            for k, v in BENCHES[name](ctx).items():
                r.setdefault(k, []).append(v)
        print(f"round {i + 1}/{rounds} done", file=sys.stderr)
    text = table(r)
    if "batch" in only:  # batch drains and perf callbacks: medians of >= 5 rounds (bench_batch.py)
        import bench_batch
        n_rb = 200_000 if args.quick else 500_000
        rb = bench_batch.run(ctx.obj("bench"), ctx.exe, max(rounds, 5), n_rb, n_rb // 2)
        text += "".join(f"\n| {' | '.join(row)} |" for row in bench_batch.rows(rb))
    print(text)
    if args.json:  # (the "elf" rows are added below, after they ran)
        args.json.write_text(json.dumps(r, indent=1))
    if args.update_readme:
        readme = HERE / "README.md"
        s = readme.read_text()
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = os.getloadavg()[0]
        block = (f"<!-- table -->\nLast run: {stamp}, {os.cpu_count()} CPUs (load average "
                 f"{load:.1f} at the end), Linux {os.uname().release}, NumPy "
                 f"{'yes' if r.get('numpy', [0])[0] else 'no'}; {rounds} rounds, each cell "
                 f"the median (min–max).\n\n{text}\n<!-- /table -->")
        s = re.sub(r"<!-- table -->.*<!-- /table -->", lambda _: block, s, flags=re.S)
        readme.write_text(s)
    if "elf" in only:  # symbol index and uprobes by name: fresh processes, bench_elf.py
        import bench_elf

        elf_result = bench_elf.measure(max(rounds, 5))
        elf_text = bench_elf.table(elf_result)
        print(elf_text)
        if args.json:
            args.json.write_text(json.dumps({**r, "elf": elf_result}, indent=1))
        if args.update_readme:
            bench_elf.update_readme(elf_text, max(rounds, 5))


if __name__ == "__main__":
    main(sys.argv[1:])
