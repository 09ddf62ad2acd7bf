"""Batch drains and per-record callbacks of ring and perf buffers (issue 18 rows).

Called from run.py (``--only batch``); each round runs the C reference and
pylibbpf back to back, the ratio is taken per round, and the table shows the
median ratio over the rounds with its range. Every drain reads a field of
every record, as the C references do (the sum of ``seq``):

- ring buffer batch: C libbpf ``ring_buffer__consume`` with a C callback
  against ``with rb.batch() as arr: total += int(arr["seq"].sum())`` (a
  zero-copy view of the records in the ring);
- perf buffer batch: C libbpf ``perf_buffer__consume`` against
  ``with pb.batch() as arr`` (zero-copy views of runs of samples in each CPU's
  ring; a sample that wraps around the ring's end is copied);
- perf and ring buffer per-record callbacks: the usual pure-Python design (a
  ctypes callback per record building a ``ctypes.Structure``) against a
  pylibbpf callback getting a decoded record (BTF ``record_type``).
"""
from __future__ import annotations

import ctypes
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pylibbpf  # noqa: E402

#: pages per CPU buffer: room for every record of a round on one CPU
PERF_PAGES = 4096


class Event(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("cpu", ctypes.c_uint32),
                ("ts", ctypes.c_uint64), ("comm", ctypes.c_char * 8)]


PERF_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
RING_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


#: both sides time with this thread's CPU time (user + system, page faults
#: included), so the ratios hold on a machine shared with other work
clock = time.thread_time


def _c(exe: Path, *args: object) -> Dict[str, float]:
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYLIBBPF_BENCH_CPU_TIME": "1"}).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def _produce_ring(obj: pylibbpf.Object, n: int) -> None:
    out = obj.programs["produce"].test_run(ctx=struct.pack("II", n, 0))
    if struct.unpack("II", out.ctx_out[:8])[1]:
        raise RuntimeError("producer dropped records: ring too small")


def _produce_perf(obj: pylibbpf.Object, n: int) -> None:
    obj.programs["produce_perf"].test_run(ctx=struct.pack("Q", n), repeat=0, ctx_out_size=0)


def _drain(reader: object) -> Tuple[int, int]:
    """(records, sum of seq) of every record available, batch by batch."""
    total = got = 0
    while True:
        with reader.batch() as arr:  # type: ignore[attr-defined]
            if not len(arr):
                return got, total
            got += len(arr)
            total += int(arr["seq"].sum())


def _ring_batch(obj_path: Path, n: int) -> float:
    """Records/s draining n records with ``batch()``, summing ``seq``."""
    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        with pylibbpf.RingBuffer(obj.maps["rb"], record_type="bench_event", batch=True) as rb:
            _produce_ring(obj, n)  # a first round maps the ring: not timed
            _drain(rb)
            _produce_ring(obj, n)
            t = clock()
            got, total = _drain(rb)
            t = clock() - t
    assert got == n, got
    assert total > 0
    return n / t


def _perf_batch(obj_path: Path, n: int) -> float:
    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        with pylibbpf.PerfBuffer(obj.maps["pb"], record_type="bench_event", batch=True,
                                 page_count=PERF_PAGES) as pb:
            _produce_perf(obj, n)  # a first round sizes the reused arrays: not timed
            _drain(pb)
            _produce_perf(obj, n)
            t = clock()
            got, total = _drain(pb)
            t = clock() - t
            assert pb.lost == 0, pb.lost
    assert got == n, got
    return n / t


#: the archive's symbols are hidden: export the few the ctypes reference calls
_REF_SHIM = """
#include <bpf/libbpf.h>
__attribute__((visibility("default")))
struct perf_buffer *ref_perf_buffer__new(int fd, size_t pages, perf_buffer_sample_fn cb,
                                         perf_buffer_lost_fn lost, void *ctx, void *opts)
{ return perf_buffer__new(fd, pages, cb, lost, ctx, opts); }
__attribute__((visibility("default"))) int ref_perf_buffer__consume(struct perf_buffer *pb)
{ return perf_buffer__consume(pb); }
__attribute__((visibility("default"))) void ref_perf_buffer__free(struct perf_buffer *pb)
{ perf_buffer__free(pb); }
__attribute__((visibility("default")))
struct ring_buffer *ref_ring_buffer__new(int fd, ring_buffer_sample_fn cb, void *ctx, void *opts)
{ return ring_buffer__new(fd, cb, ctx, opts); }
__attribute__((visibility("default"))) int ref_ring_buffer__consume(struct ring_buffer *rb)
{ return ring_buffer__consume(rb); }
__attribute__((visibility("default"))) void ref_ring_buffer__free(struct ring_buffer *rb)
{ ring_buffer__free(rb); }
"""


def libbpf_shared(build: Path) -> ctypes.CDLL:
    """libbpf as a shared library, for the ctypes reference (the same archive
    build_ffi.py compiled into pylibbpf, whose own copy exports nothing)."""
    archives = sorted(ROOT.glob("build/libbpf-*/libbpf.a"), key=lambda p: p.stat().st_mtime)
    out = build / "libbpf_ref.so"
    src = build / "libbpf_ref.c"
    src.write_text(_REF_SHIM)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(out), str(src),
                    "-I", str(ROOT / "pylibbpf" / "include"), str(archives[-1]),
                    "-lelf", "-lz"], check=True)
    so = ctypes.CDLL(str(out))
    so.ref_perf_buffer__new.restype = ctypes.c_void_p
    so.ref_perf_buffer__new.argtypes = [ctypes.c_int, ctypes.c_size_t, PERF_CB, ctypes.c_void_p,
                                    ctypes.c_void_p, ctypes.c_void_p]
    so.ref_perf_buffer__consume.argtypes = [ctypes.c_void_p]
    so.ref_perf_buffer__free.argtypes = [ctypes.c_void_p]
    so.ref_ring_buffer__new.restype = ctypes.c_void_p
    so.ref_ring_buffer__new.argtypes = [ctypes.c_int, RING_CB, ctypes.c_void_p, ctypes.c_void_p]
    so.ref_ring_buffer__consume.argtypes = [ctypes.c_void_p]
    so.ref_ring_buffer__free.argtypes = [ctypes.c_void_p]
    return so


def _perf_callbacks(obj_path: Path, n: int, so: ctypes.CDLL) -> Tuple[float, float]:
    """(ctypes records/s, pylibbpf records/s) of per-record callbacks."""
    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        acc = [0]

        def user_cb(ev: Event) -> None:
            acc[0] += ev.seq

        def ctypes_cb(ctx: int, cpu: int, data: int, size: int) -> None:
            user_cb(Event.from_buffer_copy(ctypes.string_at(data, size)))

        cfn = PERF_CB(ctypes_cb)
        pb = so.ref_perf_buffer__new(obj.maps["pb"].fd, PERF_PAGES, cfn, None, None, None)
        assert pb
        try:
            _produce_perf(obj, n)
            t = clock()
            so.ref_perf_buffer__consume(pb)
            t_ctypes = clock() - t
        finally:
            so.ref_perf_buffer__free(pb)
        assert acc[0] > 0
        got = [0]

        def cb(e: object) -> None:
            got[0] += e.seq  # type: ignore[attr-defined]

        count = 0
        with pylibbpf.PerfBuffer(obj.maps["pb"], cb, record_type="bench_event",
                                 page_count=PERF_PAGES) as ppb:
            _produce_perf(obj, n)
            t = clock()
            while True:
                r = ppb.consume()
                if not r:
                    break
                count += r
            t_py = clock() - t
    assert count == n, count
    return n / t_ctypes, n / t_py


def _ring_callbacks(obj_path: Path, n: int, so: ctypes.CDLL) -> Tuple[float, float]:
    """(ctypes records/s, pylibbpf records/s) of per-record ring buffer callbacks."""
    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        acc = [0]

        def user_cb(ev: Event) -> None:
            acc[0] += ev.seq

        def ctypes_cb(ctx: int, data: int, size: int) -> int:
            user_cb(Event.from_buffer_copy(ctypes.string_at(data, size)))
            return 0

        cfn = RING_CB(ctypes_cb)
        rb = so.ref_ring_buffer__new(obj.maps["rb"].fd, cfn, None, None)
        assert rb
        try:
            _produce_ring(obj, n)
            t = clock()
            while so.ref_ring_buffer__consume(rb) > 0:
                pass
            t_ctypes = clock() - t
        finally:
            so.ref_ring_buffer__free(rb)
        assert acc[0] > 0
        got = [0]

        def cb(e: object) -> None:
            got[0] += e.seq  # type: ignore[attr-defined]

        count = 0
        with pylibbpf.RingBuffer(obj.maps["rb"], cb, record_type="bench_event") as prb:
            _produce_ring(obj, n)
            t = clock()
            while True:
                r = prb.consume()
                if not r:
                    break
                count += r
            t_py = clock() - t
    assert count == n, count
    return n / t_ctypes, n / t_py


def run(obj_path: Path, exe: Path, rounds: int, n_ring: int,
        n_perf: int) -> Dict[str, List[float]]:
    """Per-round ratios (and rates) of the batch and perf callback rows."""
    out: Dict[str, List[float]] = {}
    so = libbpf_shared(exe.parent)

    def add(k: str, v: float) -> None:
        out.setdefault(k, []).append(v)

    for _ in range(rounds):
        c_ring = _c(exe, "ringbuf", obj_path, n_ring, 1)["c_ringbuf_rps"]
        py_ring = _ring_batch(obj_path, n_ring)
        add("c_ringbuf_rps", c_ring)
        add("py_ring_view_rps", py_ring)
        add("ring_view_ratio", py_ring / c_ring)
        c_perf = _c(exe, "perfbuf", obj_path, n_perf, PERF_PAGES, 1)["c_perfbuf_rps"]
        py_perf = _perf_batch(obj_path, n_perf)
        add("c_perfbuf_rps", c_perf)
        add("py_perf_batch_rps", py_perf)
        add("perf_batch_ratio", py_perf / c_perf)
        ct, py = _perf_callbacks(obj_path, n_perf // 4, so)
        add("ctypes_perf_rps", ct)
        add("py_perf_record_rps", py)
        add("perf_record_ratio", py / ct)
        ct, py = _ring_callbacks(obj_path, n_perf // 4, so)
        add("ctypes_ring_rps", ct)
        add("py_ring_record_rps", py)
        add("ring_record_ratio", py / ct)
    return out


def rows(r: Dict[str, List[float]]) -> List[Tuple[str, str, str, str, str]]:
    """Table rows: (benchmark, pylibbpf, reference, median ratio [range], target)."""
    med = statistics.median

    def m(k: str) -> str:
        return f"{med(r[k]) / 1e6:.2f} M/s"

    def ratio(k: str) -> str:
        v = r[k]
        return f"{med(v):.2f}× ({min(v):.2f}–{max(v):.2f})"

    spec: List[Tuple[str, str, str, str, str, str]] = [
        ("ring buffer, `with rb.batch() as arr`, sum of `seq` (zero-copy view)",
         "py_ring_view_rps", "C libbpf", "c_ringbuf_rps", "ring_view_ratio", "≥ 1.0× C"),
        ("perf buffer, `with pb.batch() as arr`, sum of `seq` (zero-copy views)",
         "py_perf_batch_rps",
         "C libbpf", "c_perfbuf_rps", "perf_batch_ratio", "≥ 0.5× C"),
        ("perf buffer, per-record callback, decoded record", "py_perf_record_rps",
         "ctypes callback", "ctypes_perf_rps", "perf_record_ratio", "≥ 5× ctypes"),
        ("ring buffer, per-record callback, decoded record (CPU time)", "py_ring_record_rps",
         "ctypes callback", "ctypes_ring_rps", "ring_record_ratio", "≥ 5× ctypes"),
    ]
    out = []
    for name, py, refname, ref, rk, target in spec:
        if rk in r:
            out.append((name, m(py), f"{refname} {m(ref)}", ratio(rk), target))
    return out


def main(argv: List[str]) -> None:  # standalone: python bench/bench_batch.py [rounds]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run as harness  # noqa: E402
    harness.BUILD.mkdir(exist_ok=True)
    obj = pylibbpf.compile(harness.HERE / "bench.bpf.c", harness.BUILD / "bench.bpf.o")
    exe = harness.build_c_ref()
    rounds = int(argv[0]) if argv else 5
    r = run(obj, exe, rounds, 500_000, 200_000)
    for row in rows(r):
        print(" | ".join(row))


if __name__ == "__main__":
    main(sys.argv[1:])
