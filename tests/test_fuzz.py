"""A bounded fuzz run: mutated BPF objects never crash, hang or escape as non-pylibbpf errors.

fuzz/fuzz_objects.py runs the mutations in child processes; longer runs:
``python fuzz/fuzz_objects.py --seconds 600 <objects>``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_objects.py"
SECONDS = float(os.environ.get("PYLIBBPF_FUZZ_SECONDS", "40"))


def test_fuzz_open_and_load(bpf_objects, tmp_path) -> None:
    seeds = [str(p) for p in bpf_objects.values()]
    res = subprocess.run([sys.executable, str(FUZZ), "--seconds", str(SECONDS), "--seed", "3",
                          "--out", str(tmp_path / "findings"), *seeds],
                         capture_output=True, text=True, timeout=SECONDS + 120)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"fuzz: {stats['inputs']} inputs in {SECONDS:.0f} s")
    assert stats["inputs"] > 100
    assert stats["crashes"] == 0 and stats["hangs"] == 0 and stats["escapes"] == 0, stats["saved"]
