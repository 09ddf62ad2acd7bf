#!/usr/bin/env python3
"""bashreadline: print the command lines typed into any bash on this machine.

A uretprobe on bash's ``readline()`` reads the line it returns. With no
arguments it runs for 5 seconds and types a few commands itself into an
interactive bash running on a pseudo-terminal (so that readline is used).

    sudo python3 examples/bashreadline.py [--duration S] [--no-workload] [--bash PATH]
"""
from __future__ import annotations

import os
import pty
import select
import shutil
import threading
import time

from typing import Any

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf

LINES = ["echo hello from bashreadline", "uname -s", "true # pylibbpf"]


def type_into_bash(bash: str, stop: threading.Event) -> None:
    """An interactive bash on a pty; type LINES, then exit."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(bash, [bash, "--norc", "--noprofile", "-i"],
                  {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb",
                   "HISTFILE": "/dev/null", "PS1": "$ "})
    try:
        def drain(t: float) -> None:
            end = time.monotonic() + t
            while time.monotonic() < end:
                if select.select([fd], [], [], 0.05)[0]:
                    try:
                        os.read(fd, 4096)
                    except OSError:
                        return
        drain(0.3)
        for line in LINES:
            if stop.is_set():
                break
            os.write(fd, line.encode() + b"\r")
            drain(0.3)
        os.write(fd, b"exit\r")
        drain(0.2)
    finally:
        os.close(fd)
        os.waitpid(pid, 0)


def main() -> int:
    args = arguments(__doc__, setup=lambda ap: (
        ap.add_argument("--no-workload", action="store_true"),
        ap.add_argument("--bash", default=shutil.which("bash") or "/bin/bash")))
    bash = os.path.realpath(args.bash)

    def on_event(e: Any) -> None:
        print(f"{time.strftime('%H:%M:%S')} {e.pid:>7}  {e.line}", flush=True)

    with pylibbpf.Object.from_source(HERE / "bashreadline.bpf.c") as obj:
        obj.load()
        with obj.programs["on_readline"].attach_uprobe(bash, "readline", retprobe=True), \
                pylibbpf.RingBuffer(obj.maps["events"], on_event, record_type="event") as rb:
            print(f"{'TIME':8} {'PID':>7}  COMMAND")
            stop = threading.Event()
            if not args.no_workload:
                threading.Thread(target=type_into_bash, args=(bash, stop), daemon=True).start()
            try:
                run_for(args.duration, lambda: rb.poll(100))
            finally:
                stop.set()
            rb.consume()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
