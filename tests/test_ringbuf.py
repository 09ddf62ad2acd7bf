"""RingBuffer: events from a real trigger, errors from callbacks, close."""
from __future__ import annotations

import os
import select
import struct
import subprocess
import sys

import pytest

import pylibbpf
from _children import Child

EVENT = struct.Struct("<IIq16s")


TRIGGER = """
import ctypes, os
ctypes.CDLL(None).prctl(15, b'plb-ring', 0, 0, 0)
for i in range({n}):
    try:
        os.getpgid(1000 + i)  # the tracepoint fires on entry, even when this fails
    except OSError:
        pass
print(os.getpid())
"""


def trigger(n: int = 3) -> int:
    out = subprocess.run([sys.executable, "-c", TRIGGER.format(n=n)], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


@pytest.fixture
def events_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["events"]) as obj:
        obj.load()
        with obj.programs["on_getpgid"].attach():
            yield obj


def test_events_arrive_with_fields(events_obj) -> None:
    got = []
    with pylibbpf.RingBuffer(events_obj.maps["events"], got.append) as rb:
        pid = trigger(3)
        rb.poll(1000)
        rb.consume()
    mine = [EVENT.unpack(e[:EVENT.size]) for e in got if EVENT.unpack(e[:EVENT.size])[0] == pid]
    assert [e[2] for e in mine] == [1000, 1001, 1002]
    assert all(e[3].rstrip(b"\0") == b"plb-ring" for e in mine)


def test_fileno_is_selectable(events_obj) -> None:
    got = []
    with pylibbpf.RingBuffer(events_obj.maps["events"], got.append) as rb:
        trigger(1)
        r, _, _ = select.select([rb.fileno()], [], [], 2.0)
        assert r == [rb.fileno()]
        assert rb.consume() >= 1


def test_callback_exception_propagates(events_obj) -> None:
    class Boom(Exception):
        pass

    def cb(data: bytes) -> None:
        raise Boom("from callback")

    with pylibbpf.RingBuffer(events_obj.maps["events"], cb) as rb:
        trigger(2)
        with pytest.raises(Boom, match="from callback"):
            rb.poll(1000)


def test_wrong_map_type(bpf_objects) -> None:
    with pylibbpf.Map.create("hash", 4, 4, 1) as m:
        with pytest.raises(pylibbpf.BPFError, match="not a ringbuf"):
            pylibbpf.RingBuffer(m, print)


def test_close_with_pending_events_and_use_after_close(events_obj) -> None:
    rb = pylibbpf.RingBuffer(events_obj.maps["events"], lambda d: None)
    trigger(5)
    rb.close()
    rb.close()
    with pytest.raises(pylibbpf.ClosedError):
        rb.poll(0)
    assert os.getpid() > 0


# --- typed events (events_all.bpf.c) -------------------------------------------

import asyncio  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from pylibbpf.typed import CString, Record  # noqa: E402

@pytest.fixture
def typed_events(bpf_objects):
    """events_all loaded for one child's pid; yields (obj, child)."""
    def make(args, **rodata):
        obj = pylibbpf.Object(bpf_objects["events_all"])
        child = Child(args, comm=b"plb-events")
        obj.rodata.target_pid = child.pid
        for k, v in rodata.items():
            setattr(obj.rodata, k, v)
        obj.load()
        made.append((obj, obj.programs["on_getpgid"].attach()))
        return obj, child

    made = []
    yield make
    for obj, link in made:
        link.close()
        obj.close()


def test_typed_records_from_btf(typed_events) -> None:
    obj, child = typed_events([5, 6, 7])
    got = []
    with pylibbpf.RingBuffer(obj.maps["events"], got.append, record_type="event") as rb:
        child.run()
        rb.poll(1000)
        rb.consume()
    assert [e.arg for e in got] == [5, 6, 7]
    e = got[0]
    assert isinstance(e, Record) and e.pid == child.pid and e.tid == child.pid
    assert isinstance(e.comm, CString) and e.comm == "plb-events"
    # the comm is text: formats, compares, hashes and shows as a str
    assert f"{e.comm:<12}|" == "plb-events  |" and {e.comm: 1}["plb-events"] == 1
    assert "comm='plb-events'" in repr(e) and e.comm.bytes == b"plb-events"
    assert e.kind.name == "EV_ENTER" and [x.seq for x in got] == [0, 1, 2]


def test_rodata_filters_and_bss_counts(typed_events) -> None:
    obj, child = typed_events([1, 50, 2, 60], min_arg=10)
    with pylibbpf.RingBuffer(obj.maps["events"], record_type="event") as rb:
        child.run()
        args = [e.arg for e in rb.read(1000)]
    assert args == [50, 60]                    # .rodata changed what the program does
    assert obj.bss.hits == 4 and obj.bss.emitted == 2


def test_several_maps_with_their_own_callbacks(typed_events) -> None:
    obj, child = typed_events([1, 2, 3], big_arg=2)
    small, big = [], []
    with pylibbpf.RingBuffer(obj.maps["events"], lambda e: small.append(e.arg),
                             record_type="event") as rb:
        rb.add(obj.maps["big_events"], lambda e: big.append((e.arg, e.kind.name)),
               record_type="event")
        child.run()
        deadline = time.monotonic() + 2
        while (len(small) < 3 or len(big) < 2) and time.monotonic() < deadline:
            rb.poll(100)
    assert small == [1, 2, 3] and big == [(2, "EV_BIG"), (3, "EV_BIG")]


def test_iteration_and_async_iteration(typed_events) -> None:
    obj, child = typed_events([11, 12])
    with pylibbpf.RingBuffer(obj.maps["events"], record_type="event") as rb:
        child.run()
        assert [e.arg for e in rb.records(timeout_ms=200)] == [11, 12]

    obj2, child2 = typed_events([21, 22, 23])

    async def main():
        out = []
        with pylibbpf.RingBuffer(obj2.maps["events"], record_type="event") as rb2:
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, child2.run)
            async for e in rb2:
                out.append(e.arg)
                if len(out) == 3:
                    break
        return out

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [21, 22, 23]


def test_callback_exception_stops_and_keeps_the_rest(typed_events) -> None:
    obj, child = typed_events([1, 2, 3, 4])
    got = []

    def cb(e):
        if e.arg == 2 and not getattr(cb, "raised", False):
            cb.raised = True
            raise ValueError("bad record 2")
        got.append(e.arg)

    with pylibbpf.RingBuffer(obj.maps["events"], cb, record_type="event") as rb:
        child.run()
        with pytest.raises(ValueError, match="bad record 2"):
            rb.poll(1000)
        assert got == [1]
        rb.poll(0)                      # the records after the failing one are not lost
        assert got == [1, 3, 4]


def test_callback_return_stops_early(typed_events) -> None:
    obj, child = typed_events([1, 2, 3])
    got = []
    with pylibbpf.RingBuffer(obj.maps["events"], lambda e: got.append(e.arg) or 1,
                             record_type="event") as rb:
        child.run()
        assert rb.poll(1000) == 1 and got == [1]
        rb.consume()
        rb.consume()
        assert got == [1, 2, 3]


@pytest.mark.parametrize("use_numpy", [True, False])
def test_batch_drain_equals_per_record(typed_events, use_numpy, monkeypatch) -> None:
    args = list(range(100, 400))
    obj, child = typed_events(args)
    if not use_numpy:
        monkeypatch.setattr(pylibbpf.ringbuf, "_numpy", lambda: None)
    else:
        pytest.importorskip("numpy", reason="NumPy is optional: the batch array needs it")
    per_record = []
    # the same records twice: per record from one program run, in a batch from another
    with pylibbpf.RingBuffer(obj.maps["events"], per_record.append, record_type="event") as rb:
        child.run()
        rb.poll(1000)
        while rb.consume():
            pass
    obj2, child2 = typed_events(args)
    with pylibbpf.RingBuffer(obj2.maps["events"], record_type="event", batch=True) as rb2:
        child2.run()
        arr = rb2.read_batch(1000)
        more = rb2.read_batch(0)
    if use_numpy:
        import numpy as np
        arr = np.concatenate([arr, more]) if len(more) else arr
        assert arr.dtype.names[:4] == ("pid", "tid", "arg", "comm")
        assert list(arr["arg"]) == [e.arg for e in per_record] == args
        assert set(arr["pid"]) == {child2.pid}
        assert list(arr["seq"]) == [e.seq for e in per_record]
        assert all(c == b"plb-events" for c in arr["comm"])
    else:
        recs = list(arr) + list(more)
        size = struct.calcsize("=IIq16sII")
        assert all(len(r) == size for r in recs)
        assert [struct.unpack("=IIq16sII", r)[2] for r in recs] == args


def test_batch_callback_gets_all_records_at_once(typed_events) -> None:
    obj, child = typed_events(list(range(50)))
    batches = []
    with pylibbpf.RingBuffer(obj.maps["events"], batches.append, record_type="event",
                             batch=True) as rb:
        child.run()
        rb.poll(1000)
        rb.consume()
    assert sum(len(b) for b in batches) == 50 and len(batches) <= 3


def test_ctrl_c_interrupts_poll(typed_events) -> None:
    obj, _ = typed_events([])
    with pylibbpf.RingBuffer(obj.maps["events"], print) as rb:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            rb.poll(-1)
            for _ in range(100):  # the handler runs at the next bytecode
                time.sleep(0.01)
        assert time.monotonic() - t0 < 3


def test_close_with_pending_decoded_events(typed_events) -> None:
    obj, child = typed_events([1, 2, 3])
    rb = pylibbpf.RingBuffer(obj.maps["events"], lambda e: 1, record_type="event")
    child.run()
    rb.poll(1000)                # first record delivered, two pending in Python
    rb.close()
    rb.close()
    with pytest.raises(pylibbpf.ClosedError):
        rb.consume()
    with pytest.raises(pylibbpf.ClosedError):
        rb.fileno()


def test_unknown_record_type_is_named(typed_events) -> None:
    obj, _ = typed_events([])
    with pytest.raises(LookupError, match="no type 'nope'"):
        pylibbpf.RingBuffer(obj.maps["events"], print, record_type="nope")


def test_user_ring_buffer_to_bpf(typed_events) -> None:
    obj, child = typed_events([1])
    with pylibbpf.UserRingBuffer(obj.maps["commands"], record_type="command") as urb:
        urb.submit({"op": 2, "value": 10})
        urb.submit(urb._codec(op=3, value=5))
        child.run()                       # the program drains on its next run
    assert obj.bss.cmd_count == 2 and obj.bss.cmd_sum == 35
    with pytest.raises(pylibbpf.ClosedError):
        urb.submit({"op": 1})


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_closing_with_pending_records_leaks_nothing(bpf_objects) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    with pylibbpf.Object(bpf_objects["events_all"]) as obj:
        obj.rodata.target_pid = os.getpid()   # we trigger it ourselves, between polls
        obj.load()
        with obj.programs["on_getpgid"].attach():
            fds = len(os.listdir("/proc/self/fd"))

            def cycle(batch: bool) -> None:
                for a in range(300):
                    libc.getpgid(a)             # 300 records wait in the kernel ring
                rb = pylibbpf.RingBuffer(obj.maps["events"], lambda e: 1,
                                         record_type="event", batch=batch)
                assert rb.consume() == (300 if batch else 1)  # all collected, one delivered
                rb.close()                  # the rest (C buffers, iterators) dropped

            for i in range(20):
                cycle(i % 2 == 0)
            base = _rss_kb()
            for i in range(200):
                cycle(i % 2 == 0)
            assert len(os.listdir("/proc/self/fd")) == fds
            assert _rss_kb() - base < 8 * 1024, "RSS grew by more than 8 MiB in 200 cycles"


def test_record_type_missing_from_btf_says_how_to_fix(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        with pytest.raises(pylibbpf.BPFNotFoundError, match=r"no type 'nosuch'.*__attribute__"):
            obj.btf.find("nosuch")


def test_poll_async_handles_real_records(events_obj) -> None:
    import asyncio

    got: list = []

    async def main() -> int:
        with pylibbpf.RingBuffer(events_obj.maps["events"], got.append) as rb:
            child = asyncio.get_running_loop().run_in_executor(None, trigger, 2)
            pid = await child
            while sum(1 for e in got if EVENT.unpack_from(e)[0] == pid) < 2:
                assert await rb.poll_async() >= 1
            return pid

    pid = asyncio.run(asyncio.wait_for(main(), 20))
    assert [EVENT.unpack_from(e)[2] for e in got if EVENT.unpack_from(e)[0] == pid] == \
        [1000, 1001]


def test_callback_may_close_or_poll_its_own_buffer(typed_events) -> None:
    """Re-entering the buffer from its own callback is an error or works, never a crash."""
    obj, child = typed_events([1, 2, 3, 4])
    got = []

    def closing(e):
        got.append(e.arg)
        rb.close()

    rb = pylibbpf.RingBuffer(obj.maps["events"], closing, record_type="event")
    child.run()
    rb.poll(1000)                   # delivery ends with the buffer; no IndexError
    assert got == [1] and rb.closed
    with pytest.raises(pylibbpf.ClosedError):
        rb.poll(0)

    obj2, child2 = typed_events([5, 6, 7])
    seen = []

    def nested(e):
        seen.append(e.arg)
        if e.arg == 5:
            rb2.consume()           # delivers the rest from inside the callback

    with pylibbpf.RingBuffer(obj2.maps["events"], nested, record_type="event") as rb2:
        child2.run()
        rb2.poll(1000)
        rb2.consume()
        assert seen == [5, 6, 7]
