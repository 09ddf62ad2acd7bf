#!/usr/bin/env python3
"""kprobe: count calls of a kernel function per process (kprobe, kretsyscall).

A ``kprobe`` on ``do_sys_openat2`` counts opens per process; a
``kretsyscall`` on ``openat`` counts the failed ones. With no arguments it
runs 2 seconds while a child opens files (some that do not exist).

Kernels built without kprobes (``CONFIG_KPROBES=n``) cannot do this: the
attach raises :class:`pylibbpf.NotSupportedError`, and this tool prints why
and exits with status 0. Tracepoints (``opensnoop.py``) work everywhere.

    sudo python3 examples/kprobe.py [--duration S]
"""
from __future__ import annotations

import subprocess
import threading

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf


def workload(stop: threading.Event) -> None:
    while not stop.wait(0.2):
        subprocess.run(["cat", "/etc/hostname", "/nonexistent"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def main() -> int:
    args = arguments(__doc__, default_duration=2.0)
    with pylibbpf.Object.from_source(HERE / "kprobe.bpf.c") as obj:
        obj.load()
        try:
            links = obj.attach_all()
        except pylibbpf.NotSupportedError as e:
            print(f"kprobe: this kernel cannot run this tool:\n  {e}")
            return 0
        stop = threading.Event()
        threading.Thread(target=workload, args=(stop,), daemon=True).start()
        try:
            run_for(args.duration, lambda: stop.wait(0.1))
        finally:
            stop.set()
            for link in links:
                link.close()
        top = sorted(obj.maps["opens"].items(), key=lambda kv: -kv[1])[:10]
        print(f"{'PID':>7} {'OPENS':>7}  COMM")
        for pid, n in top:
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                comm = "(exited)"
            print(f"{pid:>7} {n:>7}  {comm}")
        print(f"failed openat calls: {obj.bss.failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
