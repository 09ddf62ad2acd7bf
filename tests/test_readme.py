"""The README's quickstart runs as written and prints what it says."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_block_runs() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```python\n(.*?)```", text, re.S)
    assert block, "no python block under ## Quickstart"
    res = subprocess.run([sys.executable, "-c", block.group(1)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    events_line, totals_line, retval_line = res.stdout.strip().splitlines()
    events = ast.literal_eval(events_line)
    assert [comm for _, comm in events if comm in ("true", "uname")][:3] == \
        ["true", "uname", "true"]
    total, counts = totals_line.split(" ", 1)
    counts_d = ast.literal_eval(counts)
    assert counts_d["true"] >= 2 and counts_d["uname"] >= 1
    assert int(total) == sum(counts_d.values())
    assert retval_line == "1"
