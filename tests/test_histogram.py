"""Histograms printed from maps, bcc style: log2 and linear, grouped by a key field."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from typing import Dict, Tuple

import pylibbpf
from pylibbpf.histogram import (counts_of, linear_histogram, log2_histogram, log2_slot,
                                print_log2_hist)

VALUES = [1, 2, 3, 5, 7, 12, 13, 16, 31, 32, 100, 1000, 1000, 1000]


def rows(text: str) -> Dict[Tuple[int, int], Tuple[int, int]]:
    """(low, high) -> (count, number of stars)."""
    out = {}
    for m in re.finditer(r"^\s*(\d+) -> (\d+)\s*: (\d+)\s+\|(\**)\s*\|$", text, re.M):
        out[(int(m.group(1)), int(m.group(2)))] = (int(m.group(3)), len(m.group(4)))
    return out


def test_log2_slot_matches_the_bpf_side() -> None:
    assert [log2_slot(v) for v in (0, 1, 2, 3, 4, 1023, 1024)] == [0, 0, 1, 1, 2, 9, 10]


def test_histograms_from_maps_filled_by_bpf(bpf_objects) -> None:
    child = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\nsys.stdin.readline()\n"
        f"for v in {VALUES!r}:\n    try: os.getpgid(v)\n    except OSError: pass\n")],
        stdin=subprocess.PIPE, text=True)
    with pylibbpf.Object(bpf_objects["tool_hist"]) as obj:
        obj.rodata.target_tgid = child.pid
        obj.load()
        with obj.programs["count"].attach():
            child.communicate("go\n", timeout=30)
        text = log2_histogram(obj.maps["log2_slots"], label="value", width=20)
        lin = linear_histogram(obj.maps["linear_by_parity"], label="v", step=10, by="parity")
        buf = io.StringIO()
        print_log2_hist(obj.maps["log2_slots"], "value", file=buf, width=20)
    assert buf.getvalue() == text + "\n"
    r = rows(text)
    expected = {}
    for v in VALUES:
        s = log2_slot(v)
        lo, hi = (0 if s == 0 else 1 << s), (1 << (s + 1)) - 1
        expected[(lo, hi)] = expected.get((lo, hi), 0) + 1
    assert {k: c for k, (c, _) in r.items() if c} == expected
    assert set(r) == {((0 if s == 0 else 1 << s), (1 << (s + 1)) - 1) for s in range(0, 10)}
    assert r[(512, 1023)] == (3, 20) and r[(0, 1)] == (1, 7)  # 1/3 of the widest bar, rounded up
    assert text.splitlines()[0].split() == ["value", ":", "count", "distribution"]
    # one linear histogram per parity, buckets of 10 from the first to the last used
    even, odd = lin.split("\nparity = 1\n")
    assert even.startswith("\nparity = 0\n")
    even_rows, odd_rows = rows(even), rows(odd)
    assert even_rows[(0, 9)][0] == 1 and even_rows[(10, 19)][0] == 2 and \
        even_rows[(1000, 1009)][0] == 3 and even_rows[(100, 109)][0] == 1
    assert odd_rows[(0, 9)][0] == 4 and odd_rows[(10, 19)][0] == 1 and \
        odd_rows[(30, 39)][0] == 1 and max(hi for _, hi in odd_rows) == 39


def test_plain_mappings_lists_and_empty() -> None:
    assert log2_histogram({}) == "" and linear_histogram([0, 0]) == ""
    assert counts_of([5, 0, 2]) == {None: {0: 5, 1: 0, 2: 2}}
    assert counts_of({3: [1, 2]}) == {None: {3: 3}}  # per-CPU values are summed
    text = linear_histogram([0, 4, 0, 2], label="ms", step=5, start=100, width=4)
    assert rows(text) == {(105, 109): (4, 4), (110, 114): (0, 0), (115, 119): (2, 2)}
