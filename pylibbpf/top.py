"""How much CPU each loaded BPF program uses: what ``pylibbpf top`` shows.

The kernel counts each program's runs and run time only while run-time
statistics are on (``bpf_enable_stats(BPF_STATS_RUN_TIME)``, which costs a
little on every run); :func:`run_time_stats` turns them on for as long as it
is entered. :func:`snapshot` reads every program's counters, :func:`rates` turns
two snapshots into events per second, mean run time and share of one CPU::

    with pylibbpf.top.run_time_stats():
        before = pylibbpf.top.snapshot()
        time.sleep(1)
        for r in pylibbpf.top.rates(before, pylibbpf.top.snapshot()):
            print(r.name, r.events_per_sec, r.avg_ns, r.cpu_percent)
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, List, Optional, Union

from ._ffi import ffi, lib, to_str
from .errors import check_ret
from .types import ProgramType

__all__ = ["ProgramStats", "ProgramRate", "run_time_stats", "snapshot", "rates"]


@dataclass(frozen=True)
class ProgramStats:
    """One program's counters at one moment."""

    id: int
    type: Union[ProgramType, int]
    name: str
    run_count: int
    run_time_ns: int
    #: where its links attach it (``tracepoint:sys_enter_getpgid``, ``xdp:eth0`` …),
    #: "" when no link does (attached another way, or not at all)
    attach: str
    #: time.monotonic() when it was read
    at: float


@dataclass(frozen=True)
class ProgramRate:
    """One program's activity between two snapshots."""

    id: int
    type: str
    name: str
    attach: str
    #: runs in the interval
    runs: int
    #: total run time in the interval
    run_time_ns: int
    events_per_sec: float
    #: mean run time of one run (0 when it did not run)
    avg_ns: float
    #: its run time as a share of one CPU
    cpu_percent: float

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


@contextlib.contextmanager
def run_time_stats() -> Iterator[None]:
    """Keep the kernel's per-program run-time statistics on while entered
    (``BPF_ENABLE_STATS``; needs CAP_SYS_ADMIN). They stay on after exit when
    something else enabled them too (another holder, or the
    ``kernel.bpf_stats_enabled`` sysctl)."""
    fd = lib.bpf_enable_stats(lib.BPF_STATS_RUN_TIME)
    check_ret(fd, "enable BPF run-time statistics (BPF_ENABLE_STATS)")
    try:
        yield
    finally:
        os.close(fd)


def _ids(next_id: object) -> Iterator[int]:
    cur = 0
    nxt = ffi.new("__u32 *")
    while next_id(cur, nxt) == 0:  # type: ignore[operator]
        cur = int(nxt[0])
        yield cur


def _describe(info: object) -> str:
    """A short attach point for a link: ``tracepoint:sys_enter_getpgid``,
    ``raw_tp:sched_switch``, ``fentry:do_unlinkat``, ``xdp:eth0`` …"""
    import socket

    from . import link as L

    def ifname(i: int) -> str:
        try:
            return socket.if_indextoname(i)
        except OSError:
            return f"ifindex {i}"

    def at_name(t: object) -> str:
        name = getattr(t, "name", None)
        return str(name).lower() if name else str(t)

    if isinstance(info, L.PerfEventLinkInfo):
        return f"{info.event_type}:{info.name}" if info.name else info.event_type
    if isinstance(info, L.RawTracepointLinkInfo):
        return f"raw_tp:{info.tp_name}"
    if isinstance(info, L.TracingLinkInfo):
        from .attach._kinds import vmlinux_type_name

        kind = at_name(info.attach_type).replace("trace_", "")
        target = vmlinux_type_name(info.target_btf_id) if info.target_btf_id else ""
        return f"{kind}:{target}" if target else kind
    if isinstance(info, (L.XDPLinkInfo, L.TCXLinkInfo, L.NetkitLinkInfo)):
        kind = "xdp" if isinstance(info, L.XDPLinkInfo) else at_name(
            getattr(info, "attach_type", "tcx"))
        return f"{kind}:{ifname(info.ifindex)}"
    if isinstance(info, L.CgroupLinkInfo):
        return f"{at_name(info.attach_type)}:cgroup {info.cgroup_id}"
    if isinstance(info, L.IterLinkInfo):
        return f"iter:{info.target_name}"
    if isinstance(info, L.UprobeMultiLinkInfo):
        return f"uprobe_multi:{info.path}"
    if isinstance(info, L.KprobeMultiLinkInfo):
        return f"kprobe_multi:{info.count} functions"
    t = getattr(info, "type", None)
    return at_name(t) if t is not None else "link"


def _attach_points() -> Dict[int, List[str]]:
    """Program id -> where its links attach it."""
    from .errors import BPFError
    from .link import _query_info

    out: Dict[int, List[str]] = {}
    for lid in _ids(lib.bpf_link_get_next_id):
        fd = lib.bpf_link_get_fd_by_id(lid)
        if fd < 0:
            continue
        try:
            info = _query_info(fd, f"link id {lid}")
            out.setdefault(info.program_id, []).append(_describe(info))
        except (BPFError, ValueError):
            continue
        finally:
            os.close(fd)
    return out


def snapshot(*, links: bool = True) -> Dict[int, ProgramStats]:
    """Every loaded program's run count and run time now, by program id (those
    that vanish while being read are left out)."""
    kinds = _attach_points() if links else {}
    out: Dict[int, ProgramStats] = {}
    for pid in _ids(lib.bpf_prog_get_next_id):
        fd = lib.bpf_prog_get_fd_by_id(pid)
        if fd < 0:
            continue
        try:
            info = ffi.new("struct bpf_prog_info *")
            size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
            if lib.bpf_prog_get_info_by_fd(fd, info, size) < 0:
                continue
            now = time.monotonic()
        finally:
            os.close(fd)
        try:
            ptype: Union[ProgramType, int] = ProgramType(info.type)
        except ValueError:
            ptype = int(info.type)
        k = kinds.get(pid, [])
        out[pid] = ProgramStats(id=pid, type=ptype, name=to_str(info.name),
                                run_count=int(info.run_cnt), run_time_ns=int(info.run_time_ns),
                                attach=",".join(sorted(set(k))), at=now)
    return out


SORT_KEYS = ("cpu", "events", "avg", "runs", "id", "name")


def rates(before: Dict[int, ProgramStats], after: Dict[int, ProgramStats], *,
          seconds: Optional[float] = None, sort: str = "cpu") -> List[ProgramRate]:
    """What each program in ``after`` did since ``before`` (programs loaded in
    between count from zero), sorted by ``sort`` (one of cpu, events, avg,
    runs, id, name), busiest first. ``seconds`` defaults to the time between
    the two readings."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
    out = []
    window = seconds if seconds is not None else max(
        (a.at - before[pid].at for pid, a in after.items() if pid in before), default=0.0)
    for pid, a in after.items():
        b = before.get(pid)
        runs = a.run_count - (b.run_count if b else 0)
        ns = a.run_time_ns - (b.run_time_ns if b else 0)
        # a program loaded in between ran for at most the whole window
        dt = seconds if seconds is not None else (a.at - b.at if b else window)
        if dt <= 0:
            dt = float("inf")
        t = a.type.name.lower() if isinstance(a.type, ProgramType) else str(a.type)
        out.append(ProgramRate(id=pid, type=t, name=a.name, attach=a.attach, runs=max(runs, 0),
                               run_time_ns=max(ns, 0), events_per_sec=max(runs, 0) / dt,
                               avg_ns=ns / runs if runs > 0 else 0.0,
                               cpu_percent=max(ns, 0) / (dt * 1e9) * 100))
    keys = {"cpu": lambda r: (-r.cpu_percent, -r.runs, r.id),
            "events": lambda r: (-r.events_per_sec, r.id),
            "avg": lambda r: (-r.avg_ns, r.id), "runs": lambda r: (-r.runs, r.id),
            "id": lambda r: r.id, "name": lambda r: (r.name, r.id)}
    out.sort(key=keys[sort])  # type: ignore[arg-type]
    return out


def table(rows: List[ProgramRate], limit: Optional[int] = None) -> List[str]:
    """The rows as the lines of a text table."""
    head = f"{'ID':>7}  {'TYPE':<14} {'NAME':<16} {'ATTACH':<28} {'EVENTS/S':>10} " \
           f"{'AVG NS':>9} {'%CPU':>7} {'RUNS':>9}"
    lines = [head]
    for r in rows[:limit] if limit is not None else rows:
        lines.append(f"{r.id:>7}  {r.type[:14]:<14} {r.name[:16]:<16} {r.attach[:28]:<28} "
                     f"{r.events_per_sec:>10.1f} {r.avg_ns:>9.0f} {r.cpu_percent:>7.2f} "
                     f"{r.runs:>9}")
    return lines
