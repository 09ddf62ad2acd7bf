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
#: seconds one input may go without progress before it counts as a hang. An input
#: that loops never progresses; a pause of a second or more also comes from the
#: machine (a fresh-bookworm run once saw one on an input that replays in 10 ms)
HANG = os.environ.get("PYLIBBPF_FUZZ_HANG", "5")


def test_fuzz_open_and_load(bpf_objects, tmp_path) -> None:
    seeds = [str(p) for p in bpf_objects.values()]
    res = subprocess.run([sys.executable, str(FUZZ), "--seconds", str(SECONDS), "--seed", "3",
                          "--hang", HANG, "--out", str(tmp_path / "findings"), *seeds],
                         capture_output=True, text=True, timeout=SECONDS + 120)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"fuzz: {stats['inputs']} inputs in {SECONDS:.0f} s")
    assert stats["inputs"] > 100
    assert stats["crashes"] == 0 and stats["hangs"] == 0 and stats["escapes"] == 0, stats["saved"]


STRUCTURED = FUZZ.parent / "fuzz_structured.py"
STRUCTURED_SECONDS = float(os.environ.get("PYLIBBPF_FUZZ_STRUCTURED_SECONDS", "30"))


def test_fuzz_structured(bpf_objects, tmp_path) -> None:
    """fuzz/fuzz_structured.py: BTF records, .BTF.ext, relocations, map definitions and
    symbol/version tables mutated where the parsers look; BPF objects opened, decoded
    and loaded, a small versioned library through the ELF symbol index, each input in a
    child limited to 1 GiB of address space. Longer runs:
    ``python fuzz/fuzz_structured.py --seconds 600 <objects> <ELF files>``."""
    import shutil

    if shutil.which("gcc") is None:
        raise AssertionError("gcc is needed (dev.sh installs it)")
    (tmp_path / "v.map").write_text("V1 { global: lib_add; local: *; };\n"
                                    "V2 { global: lib_mul; } V1;\n")
    (tmp_path / "t.c").write_text("#include <stdio.h>\n"
                                  "int lib_add(int a, int b) { puts(\"a\"); return a + b; }\n"
                                  "int lib_mul(int a, int b) { return a * b; }\n")
    lib = tmp_path / "libv.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(tmp_path / "t.c"),
                    f"-Wl,--version-script={tmp_path / 'v.map'}"], check=True)
    seeds = [str(bpf_objects[n]) for n in ("maps_types", "events_all", "corrupt_base",
                                           "tool_run", "net_sockmap", "uprobe_test")]
    # --hang 20: loading a map of a mutated 1 GiB value takes the kernel seconds on a
    # busy machine; a parser loop never ends
    res = subprocess.run([sys.executable, str(STRUCTURED), "--seconds", str(STRUCTURED_SECONDS),
                          "--seed", "5", "--hang", "20", "--load-ratio", "0.1", "--out", str(tmp_path / "findings"),
                          *seeds, str(lib)],
                         capture_output=True, text=True, timeout=STRUCTURED_SECONDS + 180)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"structured fuzz: {stats['inputs']} inputs ({stats['bpf']} BPF, {stats['elf']} "
          f"ELF) in {STRUCTURED_SECONDS:.0f} s")
    assert stats["bpf"] > 100 and stats["elf"] > 50
    bad = ("crashes", "hangs", "escapes", "memory")
    assert not any(stats[k] for k in bad), stats["saved"]
