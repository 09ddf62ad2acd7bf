#!/usr/bin/env python3
"""fentry: time every unlink() in the kernel with fentry/fexit programs.

``fentry``/``fexit`` programs attach to a kernel function through a BPF
trampoline and read its arguments (and, on exit, its return value) as typed
values. Here they time ``do_unlinkat`` and print each file removed, by whom,
the result and how long it took. With no arguments it creates and removes a
few temporary files for 2 seconds.

Kernels (or VMs) that forbid BPF trampolines refuse to load these programs:
the load raises :class:`pylibbpf.NotSupportedError`, and this tool prints why
and exits with status 0. Tracepoints and raw tracepoints work instead.

    sudo python3 examples/fentry.py [--duration S]
"""
from __future__ import annotations

import os
import tempfile
import threading

from typing import Any

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf


def workload(stop: threading.Event) -> None:
    with tempfile.TemporaryDirectory() as d:
        i = 0
        while not stop.wait(0.2):
            path = os.path.join(d, f"fentry-demo-{i}")
            open(path, "w").close()
            os.unlink(path)
            i += 1


def main() -> int:
    args = arguments(__doc__, default_duration=2.0)

    def on_event(e: Any) -> None:
        print(f"{e.pid:>7} {e.comm:<16} {e.ret:>4} {e.duration_ns / 1e3:>9.1f}  "
              f"{e.filename}", flush=True)

    with pylibbpf.Object.from_source(HERE / "fentry.bpf.c") as obj:
        try:
            obj.load()
            links = obj.attach_all()
        except pylibbpf.NotSupportedError as e:
            print(f"fentry: this kernel cannot run this tool:\n  {e}")
            return 0
        stop = threading.Event()
        threading.Thread(target=workload, args=(stop,), daemon=True).start()
        with pylibbpf.RingBuffer(obj.maps["events"], on_event, record_type="event") as rb:
            print(f"{'PID':>7} {'COMM':<16} {'RET':>4} {'µs':>9}  FILE")
            try:
                run_for(args.duration, lambda: rb.poll(100))
            finally:
                stop.set()
                for link in links:
                    link.close()
            rb.consume()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
