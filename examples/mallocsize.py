#!/usr/bin/env python3
"""mallocsize: a histogram of the sizes a process asks malloc() for.

A uprobe on libc's ``malloc`` counts each request in a log2 slot of an array
map; on exit the map is printed as a bar histogram
(:func:`pylibbpf.histogram.print_log2_hist`). With no arguments it starts a
small workload (a Python child that calls ``malloc`` 1000 times for 4 KiB and
100 times for 100 KB through ctypes) and traces that process for 3 seconds.

    sudo python3 examples/mallocsize.py [--duration S] [--pid PID]
"""
from __future__ import annotations

import subprocess
import sys

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf.histogram import print_log2_hist

WORKLOAD = """
import ctypes, sys, time
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
sys.stdin.readline()                      # wait until the probe is attached
for size, n in ((4096, 1000), (100_000, 100)):
    for _ in range(n):
        libc.free(ctypes.c_void_p(libc.malloc(size)))
print("done", flush=True)
"""


def main() -> int:
    args = arguments(__doc__, default_duration=3.0, setup=lambda ap: ap.add_argument(
        "--pid", type=int, help="trace this process (default: the built-in workload)"))
    child = None
    if args.pid is None:
        child = subprocess.Popen([sys.executable, "-c", WORKLOAD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    pid = args.pid or child.pid  # type: ignore[union-attr]

    with pylibbpf.Object.from_source(HERE / "mallocsize.bpf.c") as obj:
        obj.load()
        with obj.programs["on_malloc"].attach_uprobe("c", "malloc", pid=pid):
            print(f"tracing malloc() in pid {pid}" + ("" if args.duration == 0 else
                  f" for {args.duration:g} s") + ", Ctrl-C to stop", flush=True)
            if child is not None:
                child.stdin.write("go\n")  # type: ignore[union-attr]
                child.stdin.flush()  # type: ignore[union-attr]
            run_for(args.duration, lambda: __import__("time").sleep(0.1))
        print(f"\n{obj.bss.calls} malloc calls, {obj.bss.bytes} bytes\n")
        print_log2_hist(obj.maps["sizes"], "bytes")
    if child is not None:
        child.communicate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
