"""Batch scopes: ``with rb.batch() as arr`` (zero-copy ring view) and ``pb.batch()``.

The producer (tests/bpf/batch.bpf.c) is a raw_tp program run with
BPF_PROG_TEST_RUN on the calling CPU: it writes n records with consecutive
``seq`` numbers to a 16 KiB ring buffer or to the perf buffer of its CPU,
optionally discarding some ring records or making some bigger.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from typing import Any, Iterator, List

import pytest

import pylibbpf
from _children import same_pylibbpf

np = pytest.importorskip("numpy")

#: a ring record: 8-byte header + struct rec (16 bytes)
RING_SPAN = 24
RING_SIZE = 16 * 1024


def produce(obj: pylibbpf.Object, n: int, *, discard_every: int = 0, big_every: int = 0,
            perf: bool = False, tag: int = 1) -> int:
    """Run the producer; returns how many records it could not write."""
    before = obj.bss.dropped
    obj.programs["produce"].test_run(
        ctx=struct.pack("5Q", n, discard_every, big_every, int(perf), tag),
        repeat=0, ctx_out_size=0)
    return int(obj.bss.dropped - before)


@pytest.fixture
def obj(bpf_objects: Any) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(bpf_objects["batch"]) as o:
        o.load()
        yield o


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """Run on one CPU: the perf producer writes to that CPU's buffer."""
    saved = os.sched_getaffinity(0)
    cpu = min(saved)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, saved)


def seqs(arr: Any) -> List[int]:
    return [int(x) for x in arr["seq"]]


# --- ring buffer ---------------------------------------------------------------

def test_ring_batch_hands_every_record_once_as_a_readonly_view(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        assert produce(obj, 100, tag=7) == 0
        with rb.batch() as arr:
            assert seqs(arr) == list(range(100))
            assert set(arr["tag"]) == {7} and set(arr["size"]) == {16}
            assert not arr.flags.owndata and not arr.flags.writeable
            with pytest.raises(ValueError):
                arr.flags.writeable = True  # the ring is mapped read-only: no way to write
        with rb.batch() as arr:
            assert len(arr) == 0
        assert produce(obj, 3) == 0
        with rb.batch() as arr:
            assert seqs(arr) == [100, 101, 102]


def test_ring_batch_across_the_end_of_the_ring(obj) -> None:
    """Records keep coming across the end of the ring, several times around: each
    batch is one contiguous view (the kernel maps the data twice in a row)."""
    per_round = 300  # 7200 bytes: the ring's end falls inside every other round
    seen: List[int] = []
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        for _ in range(12):
            assert produce(obj, per_round) == 0
            with rb.batch() as arr:
                assert not arr.flags.owndata  # a view, also across the end
                seen.extend(seqs(arr))
    assert 12 * per_round * RING_SPAN > 4 * RING_SIZE
    assert seen == list(range(12 * per_round))


def test_ring_batch_max_records_and_discarded_records(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        assert produce(obj, 30, discard_every=3) == 0  # seq 2, 5, 8, ... discarded
        got: List[int] = []
        while True:
            with rb.batch(max_records=7) as arr:
                assert len(arr) <= 7
                if not len(arr):
                    break
                got.extend(seqs(arr))
        assert got == [s for s in range(30) if s % 3 != 2]


def test_ring_batch_records_of_other_sizes_are_cut_or_padded(obj) -> None:
    """Bigger records (struct big_rec) in a map read as struct rec: copied once,
    cut to the record type, like read_batch() does."""
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        assert produce(obj, 10, big_every=2) == 0
        with rb.batch() as arr:
            assert seqs(arr) == list(range(10))
            assert [int(x) for x in arr["size"]] == [16, 32] * 5
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="big_rec", batch=True) as rb:
        assert produce(obj, 4, big_every=2) == 0
        with rb.batch() as arr:
            assert [int(r["r"]["seq"]) for r in arr] == list(range(10, 14))
            # the small records are zero-padded; the big ones carry extra[0] == seq
            assert [int(r["extra"][0]) for r in arr] == [0, 11, 0, 13]


def test_ring_consumer_moves_only_when_the_scope_ends(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        dropped = produce(obj, RING_SIZE // RING_SPAN + 10)
        assert dropped > 0  # the ring is full
        with rb.batch(max_records=0) as arr:
            n = len(arr)
            assert seqs(arr) == list(range(n))
            assert produce(obj, 1) == 1  # still full: nothing was released yet
            assert seqs(arr) == list(range(n))  # and the records are still there
        assert produce(obj, 1) == 0  # released
        with rb.batch() as arr:
            assert len(arr) == 1


def test_ring_scope_ending_by_an_exception_still_releases(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        produce(obj, 5)
        with pytest.raises(RuntimeError):
            with rb.batch() as arr:
                assert len(arr) == 5
                raise RuntimeError("boom")
        with rb.batch() as arr:  # delivered once: the block had started
            assert len(arr) == 0


def test_ring_batch_waits_up_to_timeout(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        with rb.batch(timeout_ms=50) as arr:
            assert len(arr) == 0


def test_batch_misuse_raises_bpferror(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        produce(obj, 2)
        scope = rb.batch()
        with scope as arr:
            with pytest.raises(pylibbpf.BPFError, match="batch.*scope of this buffer is open") \
                    as e:
                with rb.batch():
                    pass
            assert e.value.errno == 16  # EBUSY
            for call in (rb.poll, rb.consume, rb.read_batch):
                with pytest.raises(pylibbpf.BPFError, match="scope of this buffer is open"):
                    call()
            assert len(arr) == 2
        with pytest.raises(pylibbpf.BPFError, match="entered once"):
            with scope:
                pass
        rb.poll(0)  # usable again
    with pytest.raises(pylibbpf.ClosedError):
        rb.batch()
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec") as plain:
        with pytest.raises(pylibbpf.BPFError, match="batch=True, a record_type and no callback"):
            plain.batch()
    with pylibbpf.RingBuffer(obj.maps["ring"], batch=True) as untyped:
        with pytest.raises(pylibbpf.BPFError, match="needs NumPy and a record_type"):
            untyped.batch()


def test_batch_first_hands_over_what_poll_took(obj) -> None:
    with pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True) as rb:
        produce(obj, 4)
        rb.poll(0)  # the collector took them from the kernel
        produce(obj, 2)
        with rb.batch() as arr:
            assert seqs(arr) == [0, 1, 2, 3]
        with rb.batch() as arr:
            assert seqs(arr) == [4, 5]


#: a view kept past its scope: reads zeros, never crashes, never shows newer records
KEPT_VIEW = """
import struct, sys
import pylibbpf
obj = pylibbpf.Object(sys.argv[1]); obj.load()
def produce(n):
    obj.programs["produce"].test_run(ctx=struct.pack("5Q", n, 0, 0, 0, 9), repeat=0,
                                     ctx_out_size=0)
rb = pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True)
produce(10)
with rb.batch() as kept:
    part = kept["seq"][2:]
    assert list(kept["seq"]) == list(range(10))
print("after scope", int(kept["seq"].sum()), int(part.sum()), flush=True)
for _ in range(5):  # the ring goes around: the kernel rewrites where kept was
    produce(600)
    with rb.batch(max_records=0) as arr:
        total = int(arr["seq"].sum())
print("after reuse", int(kept["seq"].sum()), int(kept["tag"].sum()), flush=True)
rb.close(); obj.close()
print("after close", int(kept["seq"].sum()), flush=True)
"""


def test_view_kept_past_its_scope_reads_zeros_in_a_child(bpf_objects) -> None:
    p = subprocess.run([sys.executable, "-c", KEPT_VIEW, str(bpf_objects["batch"])],
                       capture_output=True, text=True, timeout=120, **same_pylibbpf())
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["after scope 0 0", "after reuse 0 0", "after close 0"]


#: every view kept past its scope is cut off from the ring, not only the first;
#: the plain ``as`` target alone is cut off when the next scope ends
KEPT_VIEWS_LOOP = """
import struct, sys
import pylibbpf
obj = pylibbpf.Object(sys.argv[1]); obj.load()
def produce(n):
    obj.programs["produce"].test_run(ctx=struct.pack("5Q", n, 0, 0, 0, 9), repeat=0,
                                     ctx_out_size=0)
rb = pylibbpf.RingBuffer(obj.maps["ring"], record_type="rec", batch=True)
kept = []
for i in range(4):
    produce(100)
    with rb.batch() as arr:
        kept.append(arr)
print("kept", [int(k["seq"].sum()) for k in kept], flush=True)
produce(10)
with rb.batch() as last:
    pass
print("alone", int(last["seq"].sum()), flush=True)
with rb.batch() as arr:
    pass
print("next scope", int(last["seq"].sum()), flush=True)
for _ in range(5):  # the ring goes around: the kernel rewrites where they were
    produce(600)
    with rb.batch(max_records=0) as arr:
        pass
print("after reuse", [int(k["tag"].sum()) for k in kept], int(last["tag"].sum()), flush=True)
"""


def test_views_kept_from_every_batch_read_zeros_in_a_child(bpf_objects) -> None:
    p = subprocess.run([sys.executable, "-c", KEPT_VIEWS_LOOP, str(bpf_objects["batch"])],
                       capture_output=True, text=True, timeout=120, **same_pylibbpf())
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["kept [0, 0, 0, 0]", f"alone {sum(range(400, 410))}",
                                     "next scope 0", "after reuse [0, 0, 0, 0] 0"]


# --- perf buffer ---------------------------------------------------------------

def test_perf_batch_hands_every_record_once_with_cpus(obj, one_cpu) -> None:
    with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True,
                             with_cpu=True) as pb:
        assert produce(obj, 50, perf=True, tag=3) == 0
        scope = pb.batch()
        with scope as arr:
            assert seqs(arr) == list(range(50))
            assert set(arr["tag"]) == {3}
            assert not arr.flags.owndata and not arr.flags.writeable  # in place in the ring
            assert [int(c) for c in scope.cpus] == [one_cpu] * 50
        with pb.batch() as arr:
            assert len(arr) == 0
        assert pb.lost == 0


def test_perf_batch_records_spanning_the_end_of_the_ring(obj, one_cpu) -> None:
    """One page per CPU; 48-byte samples (struct big_rec) don't divide it, so
    samples keep crossing the end of the ring."""
    seen: List[int] = []
    with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="big_rec", batch=True,
                             page_count=1) as pb:
        for _ in range(10):
            assert produce(obj, 50, big_every=1, perf=True) == 0
            while True:  # a batch ends where a sample crosses the end: loop until empty
                with pb.batch() as arr:
                    if not len(arr):
                        break
                    seen.extend(int(r["r"]["seq"]) for r in arr)
                    assert ([int(r["extra"][0]) for r in arr] ==
                            [int(r["r"]["seq"]) for r in arr])
        assert pb.lost == 0
    assert seen == list(range(500))


def test_perf_batch_views_of_every_cpu_after_the_first_batch(obj) -> None:
    """The first batch maps every CPU's ring: records that arrive later on
    another CPU are views too, each batch of one CPU, intact and in order."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to run the producer on")
    saved = os.sched_getaffinity(0)
    got: dict = {}
    try:
        with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True,
                                 with_cpu=True, page_count=4) as pb:
            os.sched_setaffinity(0, {cpus[0]})
            assert produce(obj, 30, perf=True, tag=1) == 0
            with pb.batch() as arr:
                assert seqs(arr) == list(range(30))
            for rnd, cpu in enumerate([cpus[1], cpus[0], cpus[1]]):
                os.sched_setaffinity(0, {cpu})
                assert produce(obj, 40, perf=True, tag=2 + rnd) == 0
                while True:
                    scope = pb.batch()
                    with scope as arr:
                        if not len(arr):
                            break
                        assert not arr.flags.writeable  # a view in place
                        assert set(int(c) for c in scope.cpus) == {cpu}
                        assert set(int(t) for t in arr["tag"]) == {2 + rnd}
                        got.setdefault(rnd, []).extend(seqs(arr))
            assert pb.lost == 0
    finally:
        os.sched_setaffinity(0, saved)
    assert got == {r: list(range(30 + 40 * r, 70 + 40 * r)) for r in range(3)}


def test_perf_batch_views_take_turns_between_cpus(obj) -> None:
    """With records on two CPUs, batches take turns: a CPU with more records
    than a batch holds doesn't keep the other one waiting."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to run the producer on")
    saved = os.sched_getaffinity(0)
    order: List[int] = []
    got: dict = {}
    try:
        with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True,
                                 with_cpu=True, page_count=4) as pb:
            for k, cpu in enumerate(cpus[:2]):
                os.sched_setaffinity(0, {cpu})
                assert produce(obj, 60, perf=True, tag=k + 1) == 0
            while True:
                scope = pb.batch(max_records=20)
                with scope as arr:
                    if not len(arr):
                        break
                    (cpu,) = set(int(c) for c in scope.cpus)
                    order.append(cpu)
                    got.setdefault(cpu, []).extend(seqs(arr))
    finally:
        os.sched_setaffinity(0, saved)
    assert sorted(order) == sorted(cpus[:2] * 3)
    assert all(a != b for a, b in zip(order, order[1:]))  # turns
    assert got == {cpus[0]: list(range(60)), cpus[1]: list(range(60, 120))}


def test_perf_tail_moves_only_when_the_scope_ends_and_lost_samples_count(obj, one_cpu) -> None:
    lost: List[Any] = []
    with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True, page_count=1,
                             lost_callback=lambda cpu, n: lost.append((cpu, n))) as pb:
        produce(obj, 100, perf=True)  # 32 bytes each: 128 fit in the page
        with pb.batch() as arr:
            assert seqs(arr) == list(range(100))
            produce(obj, 100, perf=True)  # the page is still taken: most are lost
        with pb.batch() as arr:
            n = len(arr)
            assert 0 < n < 100
            assert seqs(arr) == list(range(100, 100 + n))
        produce(obj, 10, perf=True)  # the kernel reports the loss ahead of the next sample
        with pb.batch() as arr:
            assert seqs(arr) == list(range(200, 210))
        assert pb.lost == 100 - n
        assert lost == [(one_cpu, 100 - n)]


def test_perf_batch_kept_arrays_keep_their_records(obj, one_cpu) -> None:
    """Copied batches are the caller's to keep: a kept array is never reused."""
    kept = []
    with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True) as pb:
        for i in range(4):
            produce(obj, 5, perf=True)
            with pb.batch() as arr:
                kept.append(arr)
    assert [seqs(a) for a in kept] == [list(range(5 * i, 5 * i + 5)) for i in range(4)]


def test_perf_batch_copies_short_runs_and_views_long_ones(obj, one_cpu) -> None:
    """Samples of two sizes alternating are copied; a long run of one size after
    them is a view of its own batch. Every record arrives once, in order."""
    with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True,
                             page_count=4) as pb:
        assert produce(obj, 10, big_every=2, perf=True) == 0  # sizes 16, 32, 16, ...
        assert produce(obj, 40, perf=True) == 0
        batches = []
        while True:
            with pb.batch() as arr:
                if not len(arr):
                    break
                batches.append((bool(arr.flags.writeable), seqs(arr)))  # views: read-only
        assert [s for _, s in batches] == [list(range(10)), list(range(10, 50))]
        assert [copied for copied, _ in batches] == [True, False]


#: perf views kept past their scope: read zeros, never crash, also after close
PERF_KEPT_VIEW = """
import struct, sys, os
import pylibbpf
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
obj = pylibbpf.Object(sys.argv[1]); obj.load()
def produce(n):
    obj.programs["produce"].test_run(ctx=struct.pack("5Q", n, 0, 0, 1, 9), repeat=0,
                                     ctx_out_size=0)
pb = pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True, page_count=4)
kept = []
for i in range(3):
    produce(40)
    with pb.batch() as arr:
        assert not arr.flags.owndata and len(arr) == 40, (arr.flags, len(arr))
        kept.append(arr)
        part = arr["seq"][1:]
    assert int(arr["seq"].sum()) == 0 and int(part.sum()) == 0
print("after scopes", [int(k["seq"].sum()) for k in kept], flush=True)
produce(60)
with pb.batch() as last:  # only this name holds it: cut off at the next scope's end
    assert list(last["seq"]) == list(range(120, 180))
print("alone", int(last["seq"].sum()) == sum(range(120, 180)), flush=True)
with pb.batch() as arr:
    assert len(arr) == 0
print("next scope", int(last["seq"].sum()), flush=True)
produce(30)
with pb.batch() as arr:
    pass
pb.close(); obj.close()
print("after close", int(arr["seq"].sum()), [int(k["tag"].sum()) for k in kept], flush=True)
"""


def test_perf_views_kept_past_their_scope_read_zeros_in_a_child(bpf_objects) -> None:
    p = subprocess.run([sys.executable, "-c", PERF_KEPT_VIEW, str(bpf_objects["batch"])],
                       capture_output=True, text=True, timeout=120, **same_pylibbpf())
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["after scopes [0, 0, 0]", "alone True", "next scope 0",
                                     "after close 0 [0, 0, 0]"]


def test_perf_batch_misuse(obj) -> None:
    with pylibbpf.PerfBuffer(obj.maps["perf"], record_type="rec", batch=True) as pb:
        with pb.batch():
            with pytest.raises(pylibbpf.BPFError, match="scope of this buffer is open"):
                pb.poll(0)
            with pytest.raises(pylibbpf.BPFError, match="scope of this buffer is open"):
                with pb.batch():
                    pass


# --- per-record callbacks --------------------------------------------------------

@pytest.mark.parametrize("perf", [False, True])
def test_callbacks_get_right_records_whether_they_keep_them_or_not(obj, one_cpu,
                                                                   perf) -> None:
    """The C loop reuses a record the callback did not keep: kept records must
    stay as they were, and the reused ones must show their own fields."""
    kept: List[Any] = []
    fields: List[Any] = []

    def cb(rec: Any) -> None:
        fields.append((rec.seq, rec.tag, rec.size))
        if rec.seq % 3 == 0:
            kept.append(rec)

    reader = (pylibbpf.PerfBuffer(obj.maps["perf"], cb, record_type="rec") if perf else
              pylibbpf.RingBuffer(obj.maps["ring"], cb, record_type="rec"))
    with reader:
        produce(obj, 60, big_every=4, perf=perf, tag=5)
        reader.consume()
    sizes = [32 if i % 4 == 3 else 16 for i in range(60)]
    assert fields == [(i, 5, sizes[i]) for i in range(60)]
    assert [(r.seq, r.tag, r.size) for r in kept] == [(i, 5, sizes[i]) for i in range(0, 60, 3)]
