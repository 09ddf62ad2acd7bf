#!/usr/bin/env python3
"""opensnoop: print every openat() on this machine, with the process and the path.

A tracepoint program (syscalls/sys_enter_openat) sends one event per call
through a ring buffer; events are decoded from the object's BTF
(``record_type="event"``). With no arguments it runs for 5 seconds and opens
a few files itself from a child process, so there is something to see.

    sudo python3 examples/opensnoop.py [--duration S] [--no-workload] [--pid PID]
"""
from __future__ import annotations

import os
import subprocess
import threading

from typing import Any

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf

FILES = ["/etc/hostname", "/etc/os-release", "/proc/self/status"]


def workload(stop: threading.Event) -> None:
    while not stop.wait(0.2):
        subprocess.run(["cat", *FILES], stdout=subprocess.DEVNULL)


def main() -> int:
    args = arguments(__doc__, setup=lambda ap: (
        ap.add_argument("--no-workload", action="store_true"),
        ap.add_argument("--pid", type=int, help="only this process")))
    seen = 0

    def on_event(e: Any) -> None:
        nonlocal seen
        if args.pid and e.pid != args.pid:
            return
        seen += 1
        print(f"{e.pid:>7} {e.comm:<16} {e.flags:>#9o}  {e.filename}", flush=True)

    with pylibbpf.Object.from_source(HERE / "opensnoop.bpf.c") as obj:
        obj.rodata.ignore_tgid = os.getpid()     # const volatile: set before load
        obj.load()
        with obj.programs["on_openat"].attach(), \
                pylibbpf.RingBuffer(obj.maps["events"], on_event, record_type="event") as rb:
            print(f"{'PID':>7} {'COMM':<16} {'FLAGS':>9}  PATH")
            stop = threading.Event()
            if not args.no_workload:
                threading.Thread(target=workload, args=(stop,), daemon=True).start()
            try:
                run_for(args.duration, lambda: rb.poll(100))
            finally:
                stop.set()
            rb.consume()
    print(f"{seen} openat calls")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
