"""bench/run.py rows for map element operations and ``import pylibbpf``
(imported by run.py's ``load_plugins()``; the per-round work is in
bench_map_ops.py, which also runs alone)."""
from __future__ import annotations

from typing import Dict, Optional

from run import Ctx, benchmark, row  # type: ignore[attr-defined]

import bench_map_ops

_ENV: Optional[Dict[str, str]] = None


@benchmark("mapops")
def bench_mapops(ctx: Ctx) -> Dict[str, float]:
    return bench_map_ops.round_mapops(ctx.c_program("c_ref_map.c"), bench_map_ops.N)


@benchmark("import")
def bench_import(ctx: Ctx) -> Dict[str, float]:
    global _ENV
    if _ENV is None:
        _ENV = bench_map_ops.prepare_import()
    return bench_map_ops.round_import(_ENV)


row("map del m[k] (per element)", "py_map_del_ops", "c_map_del_ops", "C delete", "M/s",
    "≥ 0.9× C")
row("the same, CPU time", "py_map_del_cpu_ops", "c_map_del_cpu_ops", "C delete", "M/s",
    "≥ 0.9× C")
row("struct map m[k] (8-byte key, 32-byte record)", "py_struct_lookup_ops",
    "c_struct_lookup_ops", "C lookup", "M/s", "≥ 0.9× C")
row("the same, CPU time", "py_struct_lookup_cpu_ops", "c_struct_lookup_cpu_ops", "C lookup",
    "M/s", "≥ 0.9× C")
row("import pylibbpf, fresh process, net of interpreter start (ratio: to the bare start)",
    "py_import_s", "bare_python_s", "bare interpreter", "ms", "≤ 50 ms")
row("the same, CPU time", "py_import_cpu_s", "bare_python_cpu_s", "bare interpreter", "ms",
    "≤ 50 ms")
