#!/usr/bin/env python3
"""profile: a sampling CPU profiler with symbolized stacks and a flame graph.

A ``perf_event`` program runs on every CPU at ``--frequency`` Hz (software
cpu-clock events), records the kernel and user stack of whatever runs there
(``bpf_get_stackid``) and counts each distinct stack. On exit the stacks are
symbolized (kernel: /proc/kallsyms; user: /proc/PID/maps + ELF symbols, C++
demangled), the hottest are printed, and the whole profile is written as
folded stacks and as an interactive SVG flame graph. With no arguments it
profiles the whole machine for 3 seconds while a small busy workload (a
Python loop and a ``dd`` reading /dev/zero) runs, so there is something hot.

    sudo python3 examples/profile.py [--duration S] [--pid PID] [--frequency HZ]
                                    [--folded FILE] [--svg FILE] [--top N]
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Dict, List, Tuple

# _tool first: it runs the tool in the project's .venv when needed
from _tool import HERE, arguments, run_for
import pylibbpf
from pylibbpf.flamegraph import fold, folded_text, write_svg
from pylibbpf.symbolize import Symbolizer

# busy in user space (the interpreter loop) and in the kernel (read() of /dev/zero)
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
WORKLOAD = [[PYTHON, "-c", "while True: pass"],
            ["dd", "if=/dev/zero", "of=/dev/null", "bs=64k"]]


def main() -> int:
    args = arguments(__doc__, default_duration=3.0, setup=lambda ap: (
        ap.add_argument("--pid", type=int, help="only this process"),
        ap.add_argument("--frequency", type=int, default=499),
        ap.add_argument("--folded", default="profile.folded"),
        ap.add_argument("--svg", default="profile.svg"),
        ap.add_argument("--top", type=int, default=5),
        ap.add_argument("--no-workload", action="store_true")))
    workers = [] if args.no_workload else [subprocess.Popen(cmd) for cmd in WORKLOAD]
    try:
        with pylibbpf.Object.from_source(HERE / "profile.bpf.c") as obj:
            if args.pid:
                obj.rodata.target_tgid = args.pid
            obj.load()
            with obj.programs["on_sample"].attach_perf_events("cpu-clock",
                                                              sample_freq=args.frequency):
                print(f"sampling at {args.frequency} Hz on every CPU"
                      + (f" for {args.duration:g} s" if args.duration else "")
                      + ", Ctrl-C to stop", flush=True)
                run_for(args.duration, lambda: time.sleep(0.1))
            # symbolize while the sampled processes still run (their maps are needed)
            stacks = symbolized(obj)
    finally:
        for cmd, w in zip(WORKLOAD, workers):
            w.kill()
            w.wait()
            print(f"workload: pid {w.pid} {' '.join(cmd)}")
    folded = fold(stacks)
    total = sum(folded.values())
    by_process: Dict[str, int] = {}
    for stack, n in folded.items():
        proc = stack.split(";", 1)[0]
        by_process[proc] = by_process.get(proc, 0) + n
    print(f"{total} samples, {len(folded)} distinct stacks\n\n{'SAMPLES':>8}  PROCESS")
    for proc, n in sorted(by_process.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{n:>8}  {proc}")
    for stack, n in sorted(folded.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"\n{n:>6} samples ({100 * n / max(total, 1):.1f}%)")
        for frame in reversed(stack.split(";")):
            print(f"        {frame}")
    with open(args.folded, "w") as f:
        f.write(folded_text(folded))
    write_svg(args.svg, folded, title="CPU profile",
              subtitle=f"{total} samples at {args.frequency} Hz")
    print(f"\nfolded stacks: {args.folded}\nflame graph:   {args.svg}")
    return 0


def symbolized(obj: pylibbpf.Object) -> List[Tuple[List[str], int]]:
    """(frames root-first: "comm", user frames, kernel frames; count) per stack."""
    sym = Symbolizer()
    raw = obj.maps["stacks"]
    cache: Dict[int, List[int]] = {}

    def ips(stack_id: int) -> List[int]:
        if stack_id < 0:
            return []
        if stack_id not in cache:
            cache[stack_id] = raw.get(stack_id) or []
        return cache[stack_id]

    out = []
    for k, n in obj.maps["counts"].items():
        user = [f.function for f in sym.user_stack(k.pid, ips(k.user_stack))] if k.pid else []
        kernel = [f.function + "_[k]" for f in sym.kernel_stack(ips(k.kernel_stack))]
        comm = k.comm or "?"
        out.append(([f"{comm} ({k.pid})"] + user[::-1] + kernel[::-1], int(n)))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
