#!/usr/bin/env python3
"""syscount: count a process's syscalls by name, with a latency histogram.

Raw tracepoints on ``sys_enter`` and ``sys_exit`` count each syscall by number
and time it; Python turns numbers into names (:func:`pylibbpf.syscall_name`)
and prints the log2 histogram of latencies. With no arguments it traces a
small workload of its own (a child that calls ``getppid`` 500 times, ``stat``
200 times and ``nanosleep`` 5 times) for 2 seconds; ``--all`` traces every
process.

    sudo python3 examples/syscount.py [--duration S] [--pid PID | --all] [--top N]
"""
from __future__ import annotations

import subprocess
import sys
import time

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf import print_log2_hist, syscall_name

WORKLOAD = """
import os, sys, time
sys.stdin.readline()                      # wait until the probes are attached
for _ in range(500):
    os.getppid()
for _ in range(200):
    os.stat("/")
for _ in range(5):
    time.sleep(0.01)
"""


def main() -> int:
    args = arguments(__doc__, default_duration=2.0, setup=lambda ap: (
        ap.add_argument("--pid", type=int), ap.add_argument("--all", action="store_true"),
        ap.add_argument("--top", type=int, default=10)))
    child = None
    if args.pid is None and not args.all:
        child = subprocess.Popen([sys.executable, "-c", WORKLOAD], stdin=subprocess.PIPE,
                                 text=True)
    pid = 0 if args.all else (args.pid or child.pid)  # type: ignore[union-attr]
    with pylibbpf.Object.from_source(HERE / "syscount.bpf.c") as obj:
        obj.rodata.target_tgid = pid
        obj.load()
        links = obj.attach_all()
        print(f"counting syscalls of {f'pid {pid}' if pid else 'every process'}, "
              "Ctrl-C to stop", flush=True)
        if child is not None:
            child.stdin.write("go\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
        run_for(args.duration, lambda: time.sleep(0.1))
        for link in links:
            link.close()
        counts = sorted(obj.maps["counts"].items(), key=lambda kv: -kv[1])
        print(f"\n{'SYSCALL':<20} {'COUNT':>8}")
        for nr, n in counts[:args.top]:
            print(f"{syscall_name(nr):<20} {n:>8}")
        print()
        print_log2_hist(obj.maps["latency_us"], "usecs")
    if child is not None:
        child.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
