#!/usr/bin/env python3
"""sockcount: count the sockets that the processes of a cgroup create, by kind.

A ``cgroup/sock_create`` program runs whenever a process in the cgroup (or
below it) creates a socket; it counts them by (family, type, protocol) and
allows each one. With no arguments it creates a cgroup of its own (cgroup v2,
removed on exit), runs a child in it that opens 3 UDP, 2 TCP and 1 IPv6 UDP
sockets every half second, and prints the counts after 2 seconds.

    sudo python3 examples/sockcount.py [--duration S] [--cgroup PATH]
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf

CHILD = """
import socket, time
kinds = [(socket.AF_INET, socket.SOCK_DGRAM)] * 3 + [(socket.AF_INET, socket.SOCK_STREAM)] * 2 \\
    + [(socket.AF_INET6, socket.SOCK_DGRAM)]
while True:
    for family, type in kinds:
        socket.socket(family, type).close()
    print("opened", flush=True)
    time.sleep(0.5)
"""


def cgroup2_root() -> Path:
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    raise SystemExit("sockcount: no cgroup v2 mounted (mount -t cgroup2 none /sys/fs/cgroup)")


def name_of(value: int, prefix: str) -> str:
    for n in dir(socket):
        if n.startswith(prefix) and getattr(socket, n) == value:
            return n[len(prefix):].lower()
    return str(value)


def main() -> int:
    args = arguments(__doc__, default_duration=2.0, setup=lambda ap: ap.add_argument(
        "--cgroup", help="count in this existing cgroup v2 directory instead"))
    own = args.cgroup is None
    cgroup = Path(args.cgroup) if args.cgroup else \
        cgroup2_root() / f"pylibbpf-sockcount-{uuid.uuid4().hex[:8]}"
    if own:
        cgroup.mkdir()
    child = None
    rounds = 0
    try:
        with pylibbpf.Object.from_source(HERE / "sockcount.bpf.c") as obj:
            obj.load()
            with obj.programs["count_socket"].attach_cgroup(cgroup):
                print(f"counting sockets created in cgroup {cgroup}", flush=True)
                if own:
                    procs = cgroup / "cgroup.procs"
                    child = subprocess.Popen(
                        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                        preexec_fn=lambda: procs.write_text(str(os.getpid())))
                    print(f"child {child.pid} opens 3 udp, 2 tcp, 1 udp6 sockets every 0.5 s")
                run_for(args.duration, lambda: time.sleep(0.1))
                if child is not None:
                    child.kill()
                    rounds = child.communicate()[0].count("opened")
            counts = sorted(obj.maps["created"].items(), key=lambda kv: -kv[1])
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        if own:
            for _ in range(50):
                try:
                    cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)   # the child may still be accounted for a moment
    print(f"\n{'SOCKETS':>8}  FAMILY  TYPE    PROTOCOL")
    for k, n in counts:
        print(f"{n:>8}  {name_of(k.family, 'AF_'):<7} {name_of(k.type, 'SOCK_'):<7} "
              f"{k.protocol}")
    if own:
        print(f"the child finished {rounds} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
