"""Which clang builds programs that need a new one (arena pointers: clang 18+)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

#: the oldest clang that compiles address_space(1) (__arena) pointers for BPF
MIN_ARENA_CLANG = 18


def newest_clang() -> str:
    """CLANG if set, else the newest clang-NN on PATH (else plain clang)."""
    if os.environ.get("CLANG"):
        return os.environ["CLANG"]
    found = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        found += [(int(m.group(1)), os.path.join(d, n)) for n in names
                  if (m := re.fullmatch(r"clang-(\d+)", n))]
    return max(found)[1] if found else (shutil.which("clang") or "clang")


def clang_major(cc: str) -> int:
    """The major version of clang ``cc`` (0 when it does not say)."""
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return 0
    m = re.search(r"clang version (\d+)", out)
    return int(m.group(1)) if m else 0
