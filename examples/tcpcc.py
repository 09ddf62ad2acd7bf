#!/usr/bin/env python3
"""tcpcc: register a TCP congestion control written in BPF, and use it.

``struct_ops`` lets BPF programs implement a kernel interface; here, a
``tcp_congestion_ops`` named ``pylibbpf_cc`` (Reno, through the kernel's own
functions, counting how often each operation is called). Attaching the
struct_ops map registers it — it shows up in
``/proc/sys/net/ipv4/tcp_available_congestion_control`` — and closing the link
unregisters it. With no arguments it runs TCP transfers over loopback with
``TCP_CONGESTION=pylibbpf_cc`` for 2 seconds, then prints the call counts.

    sudo python3 examples/tcpcc.py [--duration S]
"""
from __future__ import annotations

import socket
import threading
import time

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf

TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
NAME = "pylibbpf_cc"
CHUNK = b"x" * 1_000_000


def available() -> list[str]:
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        return f.read().split()


def transfer(server: socket.socket) -> str:
    """Send 1 MB over one new connection using our congestion control."""
    with socket.socket() as client:
        client.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, NAME.encode())
        client.connect(server.getsockname())
        conn, _ = server.accept()
        with conn:
            reader = threading.Thread(target=lambda: [None for _ in iter(
                lambda: conn.recv(1 << 16), b"")])
            reader.start()
            client.sendall(CHUNK)
            used = client.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16)
            client.shutdown(socket.SHUT_WR)
            reader.join()
    return used.rstrip(b"\0").decode()


def main() -> int:
    args = arguments(__doc__, default_duration=2.0)
    connections = 0
    with pylibbpf.Object.from_source(HERE / "tcpcc.bpf.c") as obj:
        obj.load()
        with obj.maps["pylibbpf_cc"].attach_struct_ops():
            print(f"registered {NAME!r}: {NAME in available()}")
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen(1)

                def step() -> None:
                    nonlocal connections
                    used = transfer(server)
                    assert used == NAME, used
                    connections += 1
                    time.sleep(0.01)   # leave some CPU to others
                run_for(args.duration, step)
        print(f"unregistered: {NAME not in available()}")
        init, ssthresh, cong_avoid, undo = obj.bss.calls
    print(f"{connections} connections of 1 MB with congestion control {NAME}")
    print(f"calls: init={init} ssthresh={ssthresh} cong_avoid={cong_avoid} undo_cwnd={undo}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
