#!/usr/bin/env python3
"""lsm: a security policy in BPF — one process may not create directories.

A BPF LSM program on the ``path_mkdir`` hook returns ``-EPERM`` for the
process whose pid is set in its read-only data before load; everyone else is
unaffected. With no arguments it starts a child that tries ``mkdir`` every
0.2 s for 2 seconds, and prints what the child saw and the program's count.

Needs a kernel with ``CONFIG_BPF_LSM`` and ``bpf`` in its ``lsm=`` list, and
BPF trampolines: where these are missing the load or attach raises
:class:`pylibbpf.NotSupportedError`, and this tool prints why and exits
with status 0.

    sudo python3 examples/lsm.py [--duration S]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf

CHILD = """
import os, sys, tempfile, time
base = tempfile.mkdtemp()
sys.stdin.readline()
for i in range(1000):
    try:
        os.mkdir(os.path.join(base, str(i)))
        print("mkdir: ok", flush=True)
    except PermissionError:
        print("mkdir: EPERM", flush=True)
    time.sleep(0.2)
"""


def main() -> int:
    args = arguments(__doc__, default_duration=2.0)
    with tempfile.TemporaryDirectory():
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:
            with pylibbpf.Object.from_source(HERE / "lsm.bpf.c") as obj:
                obj.rodata.target_tgid = child.pid
                try:
                    obj.load()
                    link = obj.programs["deny_mkdir"].attach_lsm()
                except pylibbpf.NotSupportedError as e:
                    print(f"lsm: this kernel cannot run this tool:\n  {e}")
                    return 0
                with link:
                    child.stdin.write("go\n")  # type: ignore[union-attr]
                    child.stdin.flush()  # type: ignore[union-attr]
                    run_for(args.duration, lambda: __import__("time").sleep(0.1))
                print(f"denied by the BPF LSM: {obj.bss.denied}")
        finally:
            child.kill()
            out = child.communicate()[0]
    print(f"the child saw: {out.count('EPERM')} EPERM, {out.count('ok')} ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
