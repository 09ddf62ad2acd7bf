#!/usr/bin/env python3
"""xdpcount: count the packets arriving on a network interface, by protocol (XDP).

An XDP program on the interface counts each packet in a per-CPU array keyed
by IP protocol, and lets it pass; every second the counts (summed over CPUs)
are printed. With no arguments it builds its own playground — two network
namespaces joined by a veth pair, removed on exit — attaches to the receiving
end and sends 20 UDP datagrams per second across, so nothing on the machine
is touched.

    sudo python3 examples/xdpcount.py [--duration S] [--interface IF]
"""
from __future__ import annotations

import contextlib
import socket
import time

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf.testing import VethPair

NAMES = {0: "hopopt", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 256: "arp", 257: "other"}
PER_SECOND = 20


def show(obj: pylibbpf.Object) -> None:
    counts = {k: sum(v) for k, v in obj.maps["packets"].items() if sum(v)}
    text = "  ".join(f"{NAMES.get(k, f'proto {k}')}={n}" for k, n in sorted(counts.items()))
    print(f"{time.strftime('%H:%M:%S')}  {text or '(no packets yet)'}", flush=True)


def main() -> int:
    args = arguments(__doc__, default_duration=3.0, setup=lambda ap: ap.add_argument(
        "--interface", help="attach here instead of to a veth of our own"))
    with contextlib.ExitStack() as stack:
        veth = None if args.interface else stack.enter_context(VethPair())
        obj = stack.enter_context(pylibbpf.Object.from_source(HERE / "xdpcount.bpf.c"))
        obj.load()
        prog = obj.programs["count_packets"]
        if veth is not None:
            with veth.netns_b.enter():      # the interface lives in namespace b
                stack.enter_context(prog.attach_xdp(veth.dev_b))
            print(f"counting packets arriving on {veth.dev_b} ({veth.ip_b}, namespace "
                  f"{veth.ns_b}); sending {PER_SECOND} UDP datagrams/s from {veth.ip_a}")
        else:
            stack.enter_context(prog.attach_xdp(args.interface))
            print(f"counting packets arriving on {args.interface}")
        sent = 0
        next_show = time.monotonic() + 1

        def step() -> None:
            nonlocal sent, next_show
            if veth is not None:
                veth.send_udp(1)
                sent += 1
            time.sleep(1 / PER_SECOND)
            if time.monotonic() >= next_show:
                show(obj)
                next_show += 1
        run_for(args.duration, step)
        time.sleep(0.1)
        show(obj)
        if veth is not None:
            udp = sum(obj.maps["packets"][socket.IPPROTO_UDP])
            print(f"sent {sent} UDP datagrams, XDP saw {udp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
