"""Helpers for the networking attach tests: cgroups, child processes, counters."""
from __future__ import annotations

import os
import pickle
import struct
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional


def cgroup2_root() -> Path:
    """The first cgroup2 mount in /proc/self/mounts."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    raise RuntimeError("no cgroup2 mount")


def _rmdir(path: Path) -> None:
    for sub in sorted(path.glob("*/"), reverse=True):
        if sub.is_dir() and (sub / "cgroup.procs").exists():
            _rmdir(sub)
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)  # the last exited child may still be accounted
    path.rmdir()


@contextmanager
def make_cgroup(parent: Optional[Path] = None) -> Iterator[Path]:
    """A fresh child cgroup (under the cgroup2 root), removed afterwards."""
    path = (parent or cgroup2_root()) / f"pylibbpf-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        _rmdir(path)


class ChildError(Exception):
    """An exception raised in the child, with its traceback as text."""


def run_in_child(fn: Callable[[], Any], *, cgroup: Optional[Path] = None,
                 timeout: float = 10.0) -> Any:
    """Run ``fn`` in a forked child that first joins ``cgroup``; return its result.

    An OSError raised in the child is re-raised here as the same type and errno.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(r)
            if cgroup is not None:
                with open(cgroup / "cgroup.procs", "w") as f:
                    f.write("0")
            try:
                payload = ("ok", fn())
            except OSError as e:
                payload = ("oserror", (type(e).__name__, e.errno, str(e)))
            except BaseException as e:  # noqa: BLE001
                payload = ("error", f"{e!r}\n{traceback.format_exc()}")
            data = pickle.dumps(payload)
            os.write(w, struct.pack("Q", len(data)))
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        with os.fdopen(r, "rb") as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError("child took too long")
    finally:
        os.waitpid(pid, 0)
    data = b"".join(chunks)
    if len(data) < 8:
        raise ChildError("child died without an answer")
    kind, value = pickle.loads(data[8:8 + struct.unpack("Q", data[:8])[0]])
    if kind == "ok":
        return value
    if kind == "oserror":
        name, err, text = value
        if name == "TimeoutError" or err is None:
            raise TimeoutError(text) if name == "TimeoutError" else OSError(text)
        raise OSError(err, text)  # becomes PermissionError etc. by errno
    raise ChildError(value)


def counter(obj: Any, slot: int, map_name: str = "counts") -> int:
    """A u64 counter of an array map."""
    m = obj.maps[map_name]
    if isinstance(getattr(type(m), "raw", None), property):
        m = m.raw  # bytes in, bytes out, whatever the map's BTF says
    value = m[struct.pack("I", slot)]
    return value if isinstance(value, int) else int(struct.unpack("Q", value)[0])


def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``cond`` until it holds (packets may wait for ARP or a busy softirq)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def send_udp(veth: Any, port: int = 9000, n: int = 3) -> None:
    """``n`` 32-byte datagrams from the veth pair's ns_b to ns_a:``port``."""
    with veth.socket_in(veth.ns_b) as s:
        for _ in range(n):
            s.sendto(b"x" * 32, (veth.ip_a, port))
    time.sleep(0.05)


def receives(veth: Any, port: int) -> bool:
    """Whether a datagram sent from ns_b to ns_a:``port`` arrives."""
    with veth.socket_in(veth.ns_a) as r:
        r.bind((veth.ip_a, port))
        r.settimeout(1.0)
        send_udp(veth, port, 1)
        try:
            return bool(r.recv(64) == b"x" * 32)
        except TimeoutError:
            return False
