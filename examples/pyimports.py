#!/usr/bin/env python3
"""pyimports: the modules a Python process imports, with their load times (USDT).

CPython built ``--with-dtrace`` (as Debian's ``/usr/bin/python3`` is) carries
USDT probes; ``python:import__find__load__start`` and ``…__done`` bracket the
loading of each module. Two ``usdt`` programs time each load and send one
event per module through a ring buffer. The probes have semaphores: the
kernel switches them on while we are attached. With no arguments it starts a
Python child that imports a few stdlib modules, and traces it for 2 seconds.

    sudo python3 examples/pyimports.py [--duration S] [--pid PID]
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from typing import Any

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf import elf

MODULES = ["json", "decimal", "fractions", "email.parser", "http.client", "sqlite3"]
# import statements (importlib.import_module() bypasses the C code with the probes)
WORKLOAD = f"""
import sys
sys.stdin.readline()                      # wait until the probes are attached
import {", ".join(MODULES)}
"""


def python_with_usdt() -> str | None:
    """A Python interpreter whose binary has the python:import__find__load__* probes."""
    for cand in ("/usr/bin/python3", shutil.which("python3"), sys.executable):
        if not cand:
            continue
        try:
            probes = elf.usdt_probes(os.path.realpath(cand))
        except Exception:
            continue
        if any(p.provider == "python" and p.name == "import__find__load__done"
               for p in probes):
            return os.path.realpath(cand)
    return None


def main() -> int:
    args = arguments(__doc__, default_duration=2.0, setup=lambda ap: ap.add_argument(
        "--pid", type=int, help="a running Python process to trace"))
    child = None
    if args.pid is None:
        python = python_with_usdt()
        if python is None:
            print("pyimports: no Python interpreter with USDT probes here (CPython "
                  "built --with-dtrace, like Debian's /usr/bin/python3); nothing to trace")
            return 0
        child = subprocess.Popen([python, "-c", WORKLOAD], stdin=subprocess.PIPE, text=True)
    pid = args.pid or child.pid  # type: ignore[union-attr]
    count = 0

    def on_event(e: Any) -> None:
        nonlocal count
        count += 1
        state = "" if e.found else "  (not found)"
        print(f"{e.pid:>7} {e.duration_ns / 1e6:>9.3f}  {e.module}{state}", flush=True)

    with pylibbpf.Object.from_source(HERE / "pyimports.bpf.c") as obj:
        obj.load()
        progs = obj.programs
        # binary=None: the probe is looked up in the files the process maps
        with progs["on_load_start"].attach_usdt(None, "python", "import__find__load__start",
                                                pid=pid), \
                progs["on_load_done"].attach_usdt(None, "python", "import__find__load__done",
                                                  pid=pid), \
                pylibbpf.RingBuffer(obj.maps["events"], on_event, record_type="event") as rb:
            print(f"{'PID':>7} {'LOAD ms':>9}  MODULE", flush=True)
            if child is not None:
                child.stdin.write("go\n")  # type: ignore[union-attr]
                child.stdin.flush()  # type: ignore[union-attr]
            run_for(args.duration, lambda: rb.poll(100))
            rb.consume()
    print(f"{count} modules loaded")
    if child is not None:
        child.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
