#!/usr/bin/env python3
"""Mutation fuzzer for pylibbpf.Object: mutated BPF ELF objects → open → load.

Each worker runs in a child process, so a crash (a signal) or a hang (no
progress for --hang seconds) is caught, and the input that caused it is
saved under --out. A Python exception that is not a pylibbpf.BPFError is
an escape and is saved too.

    python fuzz/fuzz_objects.py --seconds 60 tests/.build/*.bpf.o

Maps above 16 MiB are shrunk before load (see MAP_BYTES_CAP).

Prints one JSON line: inputs tried, crashes, hangs, escapes, saved files.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

INTERESTING32 = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                 0xFFFFFFFF, 0xFFFFFFFE, 8, 16, 64]


def section_headers(data: bytes) -> List[int]:
    """File offsets of the section headers of a 64-bit little-endian ELF."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return []
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    return [shoff + i * shentsize for i in range(shnum)
            if shoff + (i + 1) * shentsize <= len(data)]


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.35:                       # random bytes
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256)
        elif choice < 0.55:                     # interesting 32-bit values
            i = rng.randrange(max(1, len(data) - 4))
            data[i:i + 4] = struct.pack("<I", rng.choice(INTERESTING32))
        elif choice < 0.75:                     # a section header field
            hdrs = section_headers(bytes(data))
            if hdrs:
                h = rng.choice(hdrs)
                field = rng.choice([4, 8, 24, 32, 40, 44, 48, 56])  # type..entsize
                width = 4 if field in (4, 40, 44) else 8
                val = rng.choice([0, 1, len(data), len(data) + 1, (1 << (8 * width)) - 1,
                                  rng.randrange(1 << (8 * width))])
                data[h + field:h + field + width] = val.to_bytes(width, "little")
        elif choice < 0.85:                     # truncate
            data = data[:rng.randrange(64, len(data))] if len(data) > 64 else data
        elif choice < 0.95:                     # splice a chunk from elsewhere
            a, b = sorted(rng.randrange(len(data)) for _ in range(2))
            c = rng.randrange(len(data))
            data[c:c + (b - a)] = data[a:b]
        else:                                   # flip bits
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


#: maps bigger than this are shrunk before load: a mutated max_entries of 2**31
#: makes the kernel allocate and zero gigabytes, which tests its allocator,
#: not our parsing (and would read as a "hang")
MAP_BYTES_CAP = 16 << 20


def cap_maps(obj: object) -> None:
    for m in obj.maps.values():  # type: ignore[attr-defined]
        per = m.key_size + m.value_size
        if not m.max_entries or per * m.max_entries <= MAP_BYTES_CAP:
            continue
        from pylibbpf._ffi import ffi, lib

        # (not m.initial_value: that would copy a mutated 1 GiB region into bytes)
        if lib.bpf_map__initial_value(m._ptr, ffi.new("size_t *")) != ffi.NULL:
            # .data/.bss/.rodata: one entry, memory-mapped by libbpf; only the
            # value size can shrink (libbpf remaps the region)
            m.value_size = 4096
        else:
            if m.value_size > 4096:
                m.value_size = 8
            m.max_entries = 4096 if m.type.name == "RINGBUF" else 64


def child(seed_paths: List[str], rng_seed: int, current: str, stop_after: int = 0,
          skip: int = 0, only: Optional[List[int]] = None) -> None:
    import pylibbpf

    seeds = [Path(p).read_bytes() for p in seed_paths]
    rng = random.Random(rng_seed)
    out = sys.stdout
    n = 0
    while not stop_after or n < stop_after:
        data = mutate(rng, rng.choice(seeds))
        if n < skip or (only is not None and n + 1 not in only):
            n += 1
            continue
        with open(current, "wb") as f:
            f.write(data)
        n += 1
        out.write(f"{n}\n")
        out.flush()
        try:
            with pylibbpf.Object(data, name="fuzz") as obj:
                cap_maps(obj)
                obj.load()
        except pylibbpf.BPFError:
            pass
        except Exception as e:  # an escape: report and keep going
            out.write(f"escape {type(e).__name__}: {e}\n".replace("\n", " ") + "\n")
            out.flush()


def run(seconds: float, seed_paths: List[str], out_dir: Path, hang: float, base_seed: int) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    current = out_dir / f".current-{os.getpid()}"
    stats = {"inputs": 0, "crashes": 0, "hangs": 0, "escapes": 0, "saved": []}
    deadline = time.monotonic() + seconds
    worker = 0
    while time.monotonic() < deadline:
        worker += 1
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(base_seed + worker),
                                 "--current", str(current), *seed_paths],
                                stdout=subprocess.PIPE, text=True, bufsize=1)
        assert proc.stdout is not None
        last = 0
        reason = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # a worker gets a generous start-up allowance (imports on a busy
            # machine); after that, every input must finish within --hang
            window = hang if last else max(hang, 30.0)
            ready, _, _ = select.select([proc.stdout], [], [], min(window, left))
            if not ready:
                if time.monotonic() < deadline:
                    reason = "hang"
                break
            line = proc.stdout.readline()
            if not line:
                reason = "crash"
                break
            if line.startswith("escape"):
                stats["escapes"] += 1
                saved = out_dir / f"escape-{base_seed + worker}-{last}.o"
                saved.write_bytes(current.read_bytes())
                stats["saved"].append(f"{saved}: {line.strip()}")
            else:
                last = int(line)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        stats["inputs"] += last
        if reason == "hang" or (reason == "crash" and code != 0):
            kind = reason if reason == "hang" else f"crash-sig{-code}" if code < 0 else "exit"
            stats["hangs" if reason == "hang" else "crashes"] += 1
            saved = out_dir / f"{kind}-{base_seed + worker}-{last}.o"
            saved.write_bytes(current.read_bytes())
            stats["saved"].append(str(saved))
        elif not reason:
            break
    current.unlink(missing_ok=True)
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="+", help="BPF objects to mutate")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--hang", type=float, default=1.0, help="seconds without progress = hang")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "findings")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", type=int, help="replay worker N's inputs in this process")
    ap.add_argument("--stop-after", type=int, default=0, help="with --child: inputs to run")
    ap.add_argument("--skip", type=int, default=0, help="with --child: generate but skip the first N")
    ap.add_argument("--only", help="with --child: run only these input numbers (comma-separated)")
    ap.add_argument("--current", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        only = [int(x) for x in args.only.split(",")] if args.only else None
        child(args.seeds, args.child, args.current or "/dev/null", args.stop_after,
              args.skip, only)
        return 0
    stats = run(args.seconds, args.seeds, args.out, args.hang, args.seed * 1000)
    print(json.dumps(stats))
    return 1 if stats["crashes"] or stats["hangs"] or stats["escapes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
