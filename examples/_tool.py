"""What the example tools share: the command line, the timed loop, and a pair of
network namespaces joined by a veth (for the packet examples). Not part of
pylibbpf; each example imports it from its own directory."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent


def _run_in_the_project_venv() -> None:
    """``python3 examples/x.py`` (or ``sudo python3 …``) with an interpreter that
    cannot import pylibbpf: run the tool again with the project's ``.venv`` (made by
    ``./dev.sh setup``), or say how to set it up."""
    try:
        import pylibbpf  # noqa: F401
        return
    except ModuleNotFoundError as e:
        if e.name not in ("pylibbpf", "_cffi_backend", "cffi", "elftools"):
            raise
        missing = e.name
    venv = HERE.parent / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(python), [str(python), *sys.argv])
    sys.exit(f"{Path(sys.argv[0]).name}: {sys.executable} cannot import {missing}. "
             "Set up the project with ./dev.sh setup, then run the tool with "
             f"./dev.sh python examples/{Path(sys.argv[0]).name}")


_run_in_the_project_venv()

# Command names and paths read from the kernel are bytes, decoded into str with
# surrogateescape (pylibbpf.CString): print the ones that are not UTF-8 byte for
# byte, as a C tool would, instead of failing with UnicodeEncodeError.
if hasattr(sys.stdout, "reconfigure"):
    sys.stdout.reconfigure(errors="surrogateescape")

from pylibbpf import in_netns  # noqa: E402,F401  (the examples import it from here)


def arguments(doc: Optional[str], default_duration: float = 5.0,
              setup: Optional[Callable[[argparse.ArgumentParser], object]] = None
              ) -> argparse.Namespace:
    """``--duration SECONDS`` (0: until Ctrl-C) plus whatever ``setup`` adds."""
    first = (doc or "").strip().split("\n\n")[0]
    ap = argparse.ArgumentParser(description=first)
    ap.add_argument("--duration", type=float, default=default_duration,
                    help=f"seconds to run (0: until Ctrl-C); default {default_duration:g}")
    if setup is not None:
        setup(ap)
    return ap.parse_args()


def run_for(duration: float, step: Callable[[], object]) -> None:
    """Call ``step()`` (which should block briefly, e.g. ``rb.poll(100)``) until
    ``duration`` seconds have passed (forever with 0) or Ctrl-C."""
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            step()
    except KeyboardInterrupt:
        pass


def cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace")


# --- network namespaces ---------------------------------------------------------

class VethPair:
    """Namespaces ``a`` (10.99.N.1, dev veth-a) and ``b`` (10.99.N.2, dev veth-b)
    joined by a veth pair; both removed on exit. Touches nothing outside them."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns_a, self.ns_b = f"ex-a-{tag}", f"ex-b-{tag}"
        self.dev_a, self.dev_b = "veth-a", "veth-b"
        n = int(tag[:2], 16)
        self.ip_a, self.ip_b = f"10.99.{n}.1", f"10.99.{n}.2"

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True)

    def __enter__(self) -> "VethPair":
        self._ip("netns", "add", self.ns_a)
        self._ip("netns", "add", self.ns_b)
        try:
            self._ip("-n", self.ns_a, "link", "add", self.dev_a, "type", "veth",
                     "peer", "name", self.dev_b, "netns", self.ns_b)
            for ns, dev, ip in ((self.ns_a, self.dev_a, self.ip_a),
                                (self.ns_b, self.dev_b, self.ip_b)):
                self._ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                self._ip("-n", ns, "link", "set", dev, "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def send_udp(self, count: int, port: int = 9999, payload: bytes = b"hello") -> None:
        """``count`` UDP datagrams from namespace a to b's ``port``."""
        import socket
        with in_netns(self.ns_a):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for _ in range(count):
                s.sendto(payload, (self.ip_b, port))


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("this example needs root (CAP_BPF, CAP_SYS_ADMIN)")
