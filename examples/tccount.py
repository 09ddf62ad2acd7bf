#!/usr/bin/env python3
"""tccount: packets and bytes leaving a network interface, per IPv4 destination (tc).

A ``tc`` (sched_cls) program on the interface's egress hook counts each IPv4
packet in a hash map keyed by destination address; the values are a struct
``{packets, bytes}`` decoded from BTF. With no arguments it creates two
network namespaces joined by a veth pair (removed on exit), attaches to the
sending end and sends 20 UDP datagrams of 100 bytes per second across.

    sudo python3 examples/tccount.py [--duration S] [--interface IF]
"""
from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf.testing import VethPair

PER_SECOND = 20
PAYLOAD = b"x" * 100


def show(obj: pylibbpf.Object) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {'DESTINATION':<16} {'PACKETS':>8} {'BYTES':>9}")
    for daddr, t in sorted(obj.maps["by_destination"].items()):
        ip = ipaddress.IPv4Address(struct.pack("<I", daddr))   # key is in network order
        print(f"{'':8}  {str(ip):<16} {t.packets:>8} {t.bytes:>9}", flush=True)


def main() -> int:
    args = arguments(__doc__, default_duration=3.0, setup=lambda ap: ap.add_argument(
        "--interface", help="attach here instead of to a veth of our own"))
    with contextlib.ExitStack() as stack:
        veth = None if args.interface else stack.enter_context(VethPair())
        obj = stack.enter_context(pylibbpf.Object.from_source(HERE / "tccount.bpf.c"))
        obj.load()
        prog = obj.programs["count_egress"]
        if veth is not None:
            with veth.netns_a.enter():      # the interface lives in namespace a
                stack.enter_context(prog.attach_tc(veth.dev_a, direction="egress"))
            print(f"counting IPv4 packets leaving {veth.dev_a} ({veth.ip_a}); sending "
                  f"{PER_SECOND} UDP datagrams/s of {len(PAYLOAD)} bytes to {veth.ip_b}")
        else:
            stack.enter_context(prog.attach_tc(args.interface, direction="egress"))
        sent = 0
        next_show = time.monotonic() + 1

        def step() -> None:
            nonlocal sent, next_show
            if veth is not None:
                veth.send_udp(1, payload=PAYLOAD)
                sent += 1
            time.sleep(1 / PER_SECOND)
            if time.monotonic() >= next_show:
                show(obj)
                next_show += 1
        run_for(args.duration, step)
        show(obj)
        if veth is not None:
            key = struct.unpack("<I", socket.inet_aton(veth.ip_b))[0]
            t = obj.maps["by_destination"].get(key)
            print(f"sent {sent} datagrams to {veth.ip_b}; tc counted "
                  f"{t.packets if t else 0} packets, {t.bytes if t else 0} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
