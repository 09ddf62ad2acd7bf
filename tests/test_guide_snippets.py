"""The Python snippets of docs/guide/sessions-and-arenas.md run as they stand and
print what the page says they print (where the kernel has the kind; elsewhere they
print nothing, by their own support() check)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

from _children import same_pylibbpf
from _kernel import expect_unsupported, support
from _clang import newest_clang

PAGE = Path(__file__).resolve().parent.parent / "docs" / "guide" / "sessions-and-arenas.md"


def snippets() -> List[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


def run_snippet(code: str) -> str:
    # arena programs need clang 18+: the newest installed (or CLANG), as the page says
    kw = same_pylibbpf({"CLANG": newest_clang()})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_page_has_its_two_snippets() -> None:
    found = snippets()
    assert len(found) == 2
    assert "uprobe.session" in found[0] and "BPF_MAP_TYPE_ARENA" in found[1]


def test_session_snippet() -> None:
    out = run_snippet(snippets()[0])
    if not support("uprobe_session"):
        expect_unsupported("uprobe_session")
        assert out == ""
        return
    # 3 calls; each return read back the argument its own entry stored
    pid = int(re.fullmatch(r"3 \[0, (\d+), 0\]\n", out).group(1))  # type: ignore[union-attr]
    assert pid > 1 and pid != os.getpid()   # the snippet's own process


def test_arena_snippet() -> None:
    out = run_snippet(snippets()[1])
    if not support("arena"):
        expect_unsupported("arena")
        assert out == ""
        return
    assert out.splitlines() == ["[ 0  1  4  9 16]", "[4 4 4 4 4]", "[4, 4]"]
