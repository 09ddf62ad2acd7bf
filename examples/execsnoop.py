#!/usr/bin/env python3
"""execsnoop: print every exec() on this machine, as it happens.

A tracepoint program (sched/sched_process_exec) sends one event per exec
through a ring buffer. With no arguments it runs for 5 seconds and starts a
small workload of its own (a few short commands), so there is always
something to see; Ctrl-C stops it early.

    sudo python3 examples/execsnoop.py [--duration SECONDS] [--no-workload]
"""
from __future__ import annotations

import argparse
import struct
import subprocess
import threading
import time
from pathlib import Path

import _tool  # noqa: F401  (first: it runs the tool in the project's .venv when needed)
import pylibbpf

HERE = Path(__file__).resolve().parent
EVENT = struct.Struct("<III16s128s")  # struct event in execsnoop.bpf.c
WORKLOAD = [["uname", "-r"], ["ls", "/"], ["date"], ["id", "-u"], ["true"], ["sleep", "0.01"]]


def workload(stop: threading.Event) -> None:
    while not stop.is_set():
        for cmd in WORKLOAD:
            if stop.wait(0.15):
                return
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds to trace (0: until Ctrl-C); default 5")
    parser.add_argument("--no-workload", action="store_true",
                        help="don't start the built-in workload")
    args = parser.parse_args()

    obj_path = pylibbpf.compile(HERE / "execsnoop.bpf.c")
    count = 0

    def on_event(data: bytes) -> None:
        nonlocal count
        pid, ppid, uid, comm, filename = EVENT.unpack_from(data)
        count += 1
        name = comm.split(b"\0", 1)[0].decode(errors="replace")
        path = filename.split(b"\0", 1)[0].decode(errors="replace")
        print(f"{time.strftime('%H:%M:%S')} {pid:>7} {ppid:>7} {uid:>5}  {name:<16} {path}",
              flush=True)

    with pylibbpf.Object(obj_path) as obj:
        obj.load()
        with obj.programs["handle_exec"].attach(), \
                pylibbpf.RingBuffer(obj.maps["events"], on_event) as rb:
            print(f"{'TIME':8} {'PID':>7} {'PPID':>7} {'UID':>5}  {'COMM':<16} FILENAME")
            stop = threading.Event()
            if not args.no_workload:
                threading.Thread(target=workload, args=(stop,), daemon=True).start()
            deadline = time.monotonic() + args.duration if args.duration else None
            try:
                while deadline is None or time.monotonic() < deadline:
                    rb.poll(100)
            except KeyboardInterrupt:
                pass
            finally:
                stop.set()
            rb.consume()
    print(f"{count} exec events")
    return 0 if count else 1


if __name__ == "__main__":
    raise SystemExit(main())
