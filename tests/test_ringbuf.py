"""RingBuffer: events from a real trigger, errors from callbacks, close."""
from __future__ import annotations

import os
import select
import struct
import subprocess
import sys

import pytest

import pylibbpf

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
