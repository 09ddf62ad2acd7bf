"""A child process that makes getpgid(arg) calls when told to, so a BPF program
set up meanwhile (filtering by the child's pid) sees exactly those calls."""
from __future__ import annotations

import subprocess
import sys
from typing import Iterable

#: the child names itself ``comm``, waits for a line on stdin, calls getpgid(a)
#: for each arg, then prints its pid
GETPGID_SCRIPT = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, {comm!r}, 0, 0, 0)
sys.stdin.readline()
for a in {args!r}:
    libc.getpgid(a)
print(os.getpid(), flush=True)
"""


class Child:
    """``Child(args, comm=b"…")``; ``run()`` = ``start()`` then ``finish()``.

    ``script`` may replace GETPGID_SCRIPT (formatted with ``args`` and ``comm``).
    """

    def __init__(self, args: Iterable[int], comm: bytes = b"plb-child",
                 script: str = GETPGID_SCRIPT) -> None:
        code = script.format(args=list(args), comm=comm)
        self.p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid

    def run(self) -> None:
        self.start()
        self.finish()

    def start(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def finish(self) -> None:
        assert self.p.stdout is not None
        assert int(self.p.stdout.readline()) == self.pid
        self.p.wait(10)
