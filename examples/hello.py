#!/usr/bin/env python3
"""hello: bpf_printk() and the trace pipe, the quickest way to see a program run.

A tracepoint program prints a line with ``bpf_printk()`` on every
successful ``exec()``; :class:`pylibbpf.trace_pipe.TracePipe` reads the kernel's trace
pipe and parses each line (task, pid, CPU, time, message). With no arguments
it runs ``true`` and ``uname`` a few times over 2 seconds.

The trace pipe is shared by the whole machine (and reading consumes it):
use it for debugging, and ring buffers for tools.

    sudo python3 examples/hello.py [--duration S]
"""
from __future__ import annotations

import subprocess
import threading

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf.trace_pipe import TracePipe


def workload(stop: threading.Event) -> None:
    while not stop.wait(0.25):
        for cmd in (["true"], ["uname", "-r"]):
            subprocess.run(cmd, stdout=subprocess.DEVNULL)


def main() -> int:
    args = arguments(__doc__, default_duration=2.0)
    with pylibbpf.Object.from_source(HERE / "hello.bpf.c") as obj, TracePipe() as pipe:
        obj.load()
        with obj.programs["hello"].attach():
            stop = threading.Event()
            threading.Thread(target=workload, args=(stop,), daemon=True).start()

            def step() -> None:
                for ev in pipe.read(timeout=0.1):
                    if ev.message.startswith("hello:"):
                        print(f"{ev.timestamp:>14.6f} {ev.comm:<16} {ev.pid:>7}  {ev.message}",
                              flush=True)
            try:
                run_for(args.duration, step)
            finally:
                stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
