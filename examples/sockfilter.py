#!/usr/bin/env python3
"""sockfilter: a BPF socket filter that drops some datagrams before the socket sees them.

The ``socket`` program is attached to one UDP socket (``SO_ATTACH_BPF``): it
counts every datagram that reaches the socket and drops those whose payload
starts with ``DROP``. With no arguments it binds a UDP socket on 127.0.0.1,
attaches the filter, and sends it a mix of datagrams for 2 seconds; what the
socket actually receives is printed next to the filter's counters.

    sudo python3 examples/sockfilter.py [--duration S]
"""
from __future__ import annotations

import socket

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf


def main() -> int:
    args = arguments(__doc__, default_duration=2.0)
    received: dict[str, int] = {}
    sent = {"keep": 0, "DROP": 0}
    with pylibbpf.Object.from_source(HERE / "sockfilter.bpf.c") as obj, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        obj.load()
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.05)
        obj.programs["filter"].attach_socket(server)
        print(f"filter attached to UDP socket {server.getsockname()}")
        i = 0

        def step() -> None:
            nonlocal i
            kind = "DROP" if i % 3 == 2 else "keep"   # every third datagram is dropped
            client.sendto(f"{kind} #{i}".encode(), server.getsockname())
            sent[kind] += 1
            i += 1
            try:
                data = server.recv(100)
                word = data.split()[0].decode()
                received[word] = received.get(word, 0) + 1
            except socket.timeout:
                pass
        run_for(args.duration, step)
        accepted, dropped = (obj.maps["verdicts"][k] for k in (0, 1))
    print(f"sent:     {sent['keep']} keep, {sent['DROP']} DROP")
    print(f"filter:   {accepted} accepted, {dropped} dropped")
    print(f"received: {received.get('keep', 0)} keep, {received.get('DROP', 0)} DROP")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
