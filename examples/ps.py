#!/usr/bin/env python3
"""ps: list the processes on this machine with a BPF task iterator.

An ``iter/task`` program is run once per task when its link is read: it
prints one line per process (pid, parent, uid, CPU time, command) straight
from the kernel's ``task_struct`` (CO-RE: field offsets fixed up for the
running kernel). Python reads the text like a file. No /proc involved.

    sudo python3 examples/ps.py [--duration S] [--comm NAME]
"""
from __future__ import annotations

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments
import pylibbpf


def main() -> int:
    args = arguments(__doc__, default_duration=0.0, setup=lambda ap: ap.add_argument(
        "--comm", help="only processes whose command starts with this"))
    with pylibbpf.Object.from_source(HERE / "ps.bpf.c") as obj:
        obj.load()
        with obj.programs["list_processes"].attach_iter() as link:
            text = link.open_iter().read_text()
    rows = [line.split(" ", 4) for line in text.splitlines()]
    print(f"{'PID':>7} {'PPID':>7} {'UID':>5} {'CPU s':>9}  COMMAND")
    shown = 0
    for pid, ppid, uid, runtime, comm in rows:
        if args.comm and not comm.startswith(args.comm):
            continue
        shown += 1
        print(f"{pid:>7} {ppid:>7} {uid:>5} {int(runtime) / 1e9:>9.2f}  {comm}")
    print(f"{shown} processes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
