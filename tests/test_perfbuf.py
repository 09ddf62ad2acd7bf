"""PerfBuffer: decoded events per CPU, lost samples, batches, asyncio."""
from __future__ import annotations

import asyncio

import pytest

import pylibbpf
from _children import Child

CHILD = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, {comm!r}, 0, 0, 0)
os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})  # one CPU: one perf buffer
sys.stdin.readline()
for a in {args!r}:
    if a < 0:
        print("paused", flush=True)
        time.sleep(-a / 1000)  # let the parent drain
    else:
        libc.getpgid(a)
print(os.getpid(), flush=True)
"""




@pytest.fixture
def perf_events(bpf_objects):
    made = []

    def make(args):
        obj = pylibbpf.Object(bpf_objects["events_all"])
        child = Child(args, comm=b"plb-perf", script=CHILD)
        obj.rodata.target_pid = child.pid
        obj.load()
        made.append((obj, obj.programs["on_getpgid"].attach()))
        return obj, child

    yield make
    for obj, link in made:
        link.close()
        obj.close()


def test_decoded_events_with_cpu(perf_events) -> None:
    obj, child = perf_events([3, 4, 5])
    got = []
    with pylibbpf.PerfBuffer(obj.maps["perf_events"], lambda cpu, e: got.append((cpu, e)),
                             record_type="event", with_cpu=True) as pb:
        assert pb.buffer_count >= 1
        child.run()
        pb.poll(1000)
        pb.consume()
    assert [e.arg for _, e in got] == [3, 4, 5]
    assert all(e.pid == child.pid and e.comm == "plb-perf" for _, e in got)
    assert all(0 <= cpu < pylibbpf.map.possible_cpus() for cpu, _ in got)
    assert pb.lost == 0


def test_lost_samples_are_counted_and_reported(perf_events) -> None:
    # 3000 events (~190 KB) into 4 KiB per CPU while nobody reads; the kernel
    # reports the loss with the next event that fits, after the pause
    obj, child = perf_events(list(range(3000)) + [-500] + list(range(10)))
    lost = []
    got = []
    with pylibbpf.PerfBuffer(obj.maps["perf_events"], got.append, record_type="event",
                             lost_callback=lambda cpu, n: lost.append((cpu, n)),
                             page_count=1) as pb:
        child.start()
        assert child.p.stdout.readline() == "paused\n"   # nothing read so far
        while child.p.poll() is None:
            pb.poll(50)
        child.finish()
        while pb.poll(100):
            pass
        assert pb.lost > 0, (len(got), pb.lost)
        assert sum(n for _, n in lost) == pb.lost
        assert len(got) + pb.lost == 3010


def test_exception_and_iteration_and_async(perf_events) -> None:
    obj, child = perf_events([1, 2])

    def boom(e):
        raise RuntimeError(f"record {e.arg}")

    with pylibbpf.PerfBuffer(obj.maps["perf_events"], boom, record_type="event") as pb:
        child.run()
        with pytest.raises(RuntimeError, match="record 1"):
            pb.poll(1000)
        with pytest.raises(RuntimeError, match="record 2"):
            pb.poll(0)

    obj2, child2 = perf_events([7, 8])
    with pylibbpf.PerfBuffer(obj2.maps["perf_events"], record_type="event") as pb2:
        async def main():
            asyncio.get_running_loop().run_in_executor(None, child2.run)
            out = []
            async for e in pb2:
                out.append(e.arg)
                if len(out) == 2:
                    return out
        assert asyncio.run(asyncio.wait_for(main(), 10)) == [7, 8]


def test_batch_mode_and_bytes(perf_events) -> None:
    obj, child = perf_events(list(range(40)))
    with pylibbpf.PerfBuffer(obj.maps["perf_events"], record_type="event", batch=True) as pb:
        child.run()
        batch = pb.read_batch(1000)
        while len(batch) < 40:
            more = pb.read_batch(200)
            if not len(more):
                break
            batch = list(batch) + list(more)
    assert len(batch) == 40
    obj2, child2 = perf_events([9])
    raw = []
    with pylibbpf.PerfBuffer(obj2.maps["perf_events"], raw.append) as pb2:
        child2.run()
        pb2.poll(1000)
    assert isinstance(raw[0], bytes) and len(raw[0]) >= 40


def test_wrong_map_and_bad_arguments(perf_events) -> None:
    obj, _ = perf_events([])
    with pytest.raises(pylibbpf.BPFError, match="not a perf_event_array"):
        pylibbpf.PerfBuffer(obj.maps["events"], print)
    with pytest.raises(ValueError, match="power of two"):
        pylibbpf.PerfBuffer(obj.maps["perf_events"], print, page_count=3)
    pb = pylibbpf.PerfBuffer(obj.maps["perf_events"], print)
    pb.close()
    with pytest.raises(pylibbpf.ClosedError):
        pb.poll(0)
