"""Tracepoints (``tp/<category>/<name>``, through a perf event) and raw
tracepoints (``raw_tp/<name>``, ``BPF_RAW_TRACEPOINT_OPEN``)."""
from __future__ import annotations

import difflib
import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import BPFError, BPFNotFoundError, error_from_errno
from ..link import Link
from ..types import ProgramType
from ._args import check_cookie, check_name, object_program
from ._common import require_type
from ._kinds import require_kind, tracefs_dir

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_tracepoint", "attach_raw_tracepoint"]


def attach_tracepoint(prog: "Program", category: str, name: str, *, cookie: int = 0) -> Link:
    check_name(category, "tracepoint category")
    check_name(name, "tracepoint name")
    check_cookie(cookie)
    tp = f"{category}:{name}"
    what = f"attach tracepoint program {prog.name!r} to {tp!r}"
    require_type(prog, what, ProgramType.TRACEPOINT)
    object_program(prog, what)
    o = opts("bpf_tracepoint_opts", bpf_cookie=cookie)
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_tracepoint_opts(prog._ptr, category.encode(),
                                                      name.encode(), o)
        err = ffi.errno
    if ptr == ffi.NULL:
        raise _tracepoint_error(err, category, name, what, log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"tracepoint {tp!r} ({prog.name!r})")


def _tracepoint_error(err: int, category: str, name: str, what: str,
                      warnings: list[str]) -> BPFError:
    if err == _errno.ENOENT:
        tracefs = tracefs_dir()
        if tracefs is None:
            return BPFError(err, f"{what}: tracefs is not mounted, so the tracepoint's id "
                                 "cannot be read (mount -t tracefs tracefs /sys/kernel/tracing)",
                            libbpf_log=warnings)
        events = os.path.join(tracefs, "events")
        if not os.path.isdir(os.path.join(events, category)):
            return BPFNotFoundError(err, f"{what}: no tracepoint category {category!r} "
                                         f"(not in {events})"
                                         + _did_you_mean(events, category, name),
                                    libbpf_log=warnings)
        if not os.path.isdir(os.path.join(events, category, name)):
            return BPFNotFoundError(err, f"{what}: no tracepoint {name!r} in category "
                                         f"{category!r} (not in {events}/{category})"
                                         + _did_you_mean(events, category, name),
                                    libbpf_log=warnings)
    return error_from_errno(err, what, libbpf_log=warnings)


def _listdir(path: str) -> List[str]:
    try:
        return sorted(e for e in os.listdir(path) if os.path.isdir(os.path.join(path, e)))
    except OSError:
        return []


def tracepoints(events: str) -> Dict[str, List[str]]:
    """category -> tracepoint names, from tracefs ``events`` directory."""
    return {c: _listdir(os.path.join(events, c)) for c in _listdir(events)}


def _did_you_mean(events: str, category: str, name: str) -> str:
    """``"\\n  did you mean: cat:name, …"``: the closest existing tracepoints (a
    misspelt category, a misspelt name, or the name under another category)."""
    tps = tracepoints(events)
    wanted = f"{category}:{name}"
    hits = [f"{c}:{name}" for c, names in tps.items() if name in names]  # another category
    if category in tps:  # the category is right: the names in it first
        close = difflib.get_close_matches(name, tps[category], n=5, cutoff=0.6)
        hits += [f"{category}:{n}" for n in close]
    else:
        cats = difflib.get_close_matches(category, list(tps), n=3, cutoff=0.6)
        hits += [f"{c}:{n}" for c in cats
                 for n in difflib.get_close_matches(name, tps[c], n=3, cutoff=0.6)]
        if not hits and cats:
            hits = [f"{c}:" for c in cats]
    if len(hits) < 3:  # the whole list: a close category:name anywhere
        everything = [f"{c}:{n}" for c, names in tps.items() for n in names]
        hits += difflib.get_close_matches(wanted, everything, n=3, cutoff=0.8)
    hits = [h for h in dict.fromkeys(hits) if h != wanted][:6]
    return "\n  did you mean: " + ", ".join(hits) if hits else ""


def _raw_did_you_mean(name: str) -> str:
    tracefs = tracefs_dir()
    if tracefs is None:
        return ""
    names = sorted({n for ns in tracepoints(os.path.join(tracefs, "events")).values()
                    for n in ns})
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    return "\n  did you mean: " + ", ".join(close) if close else ""


def attach_raw_tracepoint(prog: "Program", name: str, *, cookie: int = 0) -> Link:
    check_name(name, "raw tracepoint name")
    check_cookie(cookie)
    what = f"attach raw tracepoint program {prog.name!r} to {name!r}"
    require_type(prog, what, ProgramType.RAW_TRACEPOINT, ProgramType.RAW_TRACEPOINT_WRITABLE)
    object_program(prog, what)
    if cookie:
        require_kind("raw_tracepoint_cookie", what)  # older kernels refuse the attr
    o = opts("bpf_raw_tracepoint_opts", cookie=cookie)
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach_raw_tracepoint_opts(prog._ptr, name.encode(), o)
        err = ffi.errno
    if ptr == ffi.NULL:
        if err == _errno.ENOENT:
            raise BPFNotFoundError(err, f"{what}: the kernel has no tracepoint {name!r}"
                                        + _raw_did_you_mean(name), libbpf_log=log.warnings)
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    return Link(made_from=prog, ptr=ptr, description=f"raw tracepoint {name!r} ({prog.name!r})")
