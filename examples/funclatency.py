#!/usr/bin/env python3
"""funclatency: how long calls of a user-space function take, as a log2 histogram.

One ``SEC("uprobe.session")`` program runs at the entry and at the return of each
call: the entry stores a timestamp in the call's session cookie, the return reads
it back and counts the duration. With no arguments it traces libc's ``usleep()``
in a child that sleeps 1.5 ms 50 times and 24 ms 10 times.

Session uprobes need Linux 6.13: on older kernels this tool prints why it cannot
run (:class:`pylibbpf.NotSupportedError`) and exits with status 0.

    sudo python3 examples/funclatency.py [--duration S] [--pid PID --function NAME]
"""
from __future__ import annotations

import subprocess
import sys
import time

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf.histogram import print_log2_hist

WORKLOAD = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6")
sys.stdin.readline()                      # wait until the probe is attached
for usec, n in ((1500, 50), (24000, 10)):
    for _ in range(n):
        libc.usleep(usec)
print("done", flush=True)
"""


def main() -> int:
    def setup(ap: "object") -> None:
        ap.add_argument("--pid", type=int, help="trace this process (default: the workload)")
        ap.add_argument("--function", default="usleep", help="libc function (default usleep)")

    args = arguments(__doc__, default_duration=3.0, setup=setup)
    child = None
    if args.pid is None:
        child = subprocess.Popen([sys.executable, "-c", WORKLOAD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    pid = args.pid or child.pid  # type: ignore[union-attr]
    try:
        with pylibbpf.Object.from_source(HERE / "funclatency.bpf.c") as obj:
            try:
                obj.load()
                link = obj.programs["on_call"].attach_uprobe_multi(
                    "c", symbols=[args.function], pid=pid)
            except pylibbpf.NotSupportedError as e:
                print(f"funclatency: this kernel cannot run this tool:\n  {e}")
                return 0
            with link:
                print(f"tracing {args.function}() in pid {pid}" + (
                    "" if args.duration == 0 else f" for {args.duration:g} s")
                    + ", Ctrl-C to stop", flush=True)
                if child is not None:
                    child.stdin.write("go\n")  # type: ignore[union-attr]
                    child.stdin.flush()  # type: ignore[union-attr]
                run_for(args.duration, lambda: time.sleep(0.1))
            print(f"\n{obj.bss.calls} calls of {args.function}()\n")
            print_log2_hist(obj.maps["usecs"], "usecs")
    finally:
        if child is not None:
            child.kill()
            child.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
