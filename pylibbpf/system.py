"""What is loaded on this system, and what this kernel supports.

:func:`programs`, :func:`maps` and :func:`links` list every BPF object the
kernel holds (not only ours); :func:`features` probes program types, map
types and attach mechanisms with libbpf.
"""
from __future__ import annotations

import errno as _errno
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

from ._ffi import ffi, lib, to_str
from .errors import check_ret
from .types import LinkType, MapType, ProgramType

__all__ = ["programs", "maps", "links", "features", "helper_names", "helper_support",
           "attach_kinds", "SystemProgram", "SystemMap", "SystemLink", "Features"]


@dataclass(frozen=True)
class SystemProgram:
    id: int
    type: Union[ProgramType, int]
    name: str
    tag: str
    map_ids: List[int]


@dataclass(frozen=True)
class SystemMap:
    id: int
    type: Union[MapType, int]
    name: str
    key_size: int
    value_size: int
    max_entries: int


@dataclass(frozen=True)
class SystemLink:
    id: int
    type: Union[LinkType, int]
    program_id: int


def _ids(next_id: Callable[[int, object], int], what: str) -> Iterator[int]:
    cur = 0
    nxt = ffi.new("__u32 *")
    while True:
        ret = next_id(cur, nxt)
        if ret == -_errno.ENOENT:
            return
        check_ret(ret, f"list {what}")
        cur = int(nxt[0])
        yield cur


def _enum(cls: type, value: int) -> object:
    try:
        return cls(value)
    except ValueError:
        return int(value)


def _each_fd(ids: Iterator[int], get_fd: Callable[[int], int]) -> Iterator[tuple[int, int]]:
    for obj_id in ids:
        fd = get_fd(obj_id)
        if fd < 0:
            continue  # gone meanwhile, or not ours to open
        try:
            yield obj_id, fd
        finally:
            os.close(fd)


def programs() -> List[SystemProgram]:
    """Every BPF program loaded in the kernel."""
    out = []
    for _, fd in _each_fd(_ids(lib.bpf_prog_get_next_id, "programs"), lib.bpf_prog_get_fd_by_id):
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        if lib.bpf_prog_get_info_by_fd(fd, info, size) < 0:
            continue
        n = int(info.nr_map_ids)
        map_ids = ffi.new("__u32[]", max(n, 1))
        if n:
            info2 = ffi.new("struct bpf_prog_info *")
            info2.nr_map_ids = n
            info2.map_ids = int(ffi.cast("uintptr_t", map_ids))
            size[0] = ffi.sizeof("struct bpf_prog_info")
            if lib.bpf_prog_get_info_by_fd(fd, info2, size) < 0:
                n = 0
            n = min(n, int(info2.nr_map_ids))
        out.append(SystemProgram(
            id=int(info.id), type=_enum(ProgramType, info.type),  # type: ignore[arg-type]
            name=to_str(info.name), tag=bytes(ffi.buffer(info.tag, 8)).hex(),
            map_ids=[int(map_ids[i]) for i in range(n)]))
    return out


def maps() -> List[SystemMap]:
    """Every BPF map in the kernel."""
    out = []
    for _, fd in _each_fd(_ids(lib.bpf_map_get_next_id, "maps"), lib.bpf_map_get_fd_by_id):
        info = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        if lib.bpf_map_get_info_by_fd(fd, info, size) < 0:
            continue
        out.append(SystemMap(id=int(info.id), type=_enum(MapType, info.type),  # type: ignore[arg-type]
                             name=to_str(info.name), key_size=int(info.key_size),
                             value_size=int(info.value_size), max_entries=int(info.max_entries)))
    return out


def links() -> List[SystemLink]:
    """Every BPF link in the kernel."""
    out = []
    for _, fd in _each_fd(_ids(lib.bpf_link_get_next_id, "links"), lib.bpf_link_get_fd_by_id):
        info = ffi.new("struct bpf_link_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_link_info"))
        if lib.bpf_link_get_info_by_fd(fd, info, size) < 0:
            continue
        out.append(SystemLink(id=int(info.id), type=_enum(LinkType, info.type),  # type: ignore[arg-type]
                              program_id=int(info.prog_id)))
    return out


@dataclass(frozen=True)
class Features:
    """What this kernel supports, as probed by libbpf and sysfs."""

    program_types: Dict[str, bool]
    map_types: Dict[str, bool]
    mechanisms: Dict[str, bool]
    #: attach kinds: tracepoint, kprobe, uprobe, fentry, lsm … (see :func:`attach_kinds`)
    attach_kinds: Dict[str, bool] = field(default_factory=dict)
    #: program type -> helper name -> usable (only the types asked for)
    helpers: Dict[str, Dict[str, bool]] = field(default_factory=dict)


def _probe(fn: Callable[[int, object], int], value: int) -> bool:
    return int(fn(value, ffi.NULL)) == 1


def helper_names() -> Dict[int, str]:
    """Helper id -> name (``bpf_map_lookup_elem`` …), from libbpf's ``bpf_helper_defs.h``."""
    from .compiler import include_dir

    text = (include_dir() / "bpf" / "bpf_helper_defs.h").read_text()
    return {int(num): name for name, num in
            re.findall(r"\(\*\s*const\s+(\w+)\)\s*\([^;]*?\)\s*=\s*\(void \*\)\s*(\d+);",
                       text, re.S)}


def helper_support(prog_type: Union[ProgramType, str, int]) -> Dict[str, bool]:
    """Which helpers programs of ``prog_type`` may call on this kernel (libbpf probe)."""
    from .types import _coerce

    ptype = _coerce(ProgramType, prog_type, "program type")
    return {name: int(lib.libbpf_probe_bpf_helper(ptype, hid, ffi.NULL)) == 1
            for hid, name in sorted(helper_names().items())}


_EXIT0 = bytes.fromhex("b700000000000000" "9500000000000000")   # r0 = 0; exit


def _trampoline_works(func: str, prog_type: str, attach_type: str) -> Optional[bool]:
    """Load a minimal fentry/LSM program on kernel function ``func``: True if the
    kernel accepts it, False if it refuses, None if it could not be tried."""
    from .errors import BPFError, NotSupportedError
    from .program import Program

    btf = lib.btf__load_vmlinux_btf()
    if btf == ffi.NULL:
        return None
    try:
        btf_id = int(lib.btf__find_by_name_kind(btf, func.encode(), 12))  # BTF_KIND_FUNC
    finally:
        lib.btf__free(btf)
    if btf_id <= 0:
        return None
    try:
        Program.load_raw(prog_type, _EXIT0, expected_attach_type=attach_type,
                         attach_btf_id=btf_id, license="GPL").close()
        return True
    except NotSupportedError:
        return False
    except BPFError:
        return None


def attach_kinds() -> Dict[str, bool]:
    """Which attach kinds work on this kernel, each probed the way it would fail."""
    from .attach._kinds import (has_pmu, kprobe_multi_unsupported_reason,
                                kprobe_unsupported_reason, tracefs_dir)

    def prog(t: ProgramType) -> bool:
        return _probe(lib.libbpf_probe_bpf_prog_type, t)

    tracefs = tracefs_dir()
    no_kprobes = bool(kprobe_unsupported_reason())
    fentry = _trampoline_works("bpf_fentry_test1", "tracing", "trace_fentry")
    lsm = _trampoline_works("bpf_lsm_file_open", "lsm", "lsm_mac")
    uprobe = has_pmu("uprobe") or bool(tracefs and os.path.exists(f"{tracefs}/uprobe_events"))
    return {
        "tracepoint": bool(tracefs) and prog(ProgramType.TRACEPOINT),
        "raw_tracepoint": prog(ProgramType.RAW_TRACEPOINT),
        "kprobe": not no_kprobes,
        "ksyscall": not no_kprobes,
        "kprobe_multi": not no_kprobes and not kprobe_multi_unsupported_reason(),
        "uprobe": uprobe,
        "usdt": uprobe,
        "fentry/fexit": bool(fentry),
        "lsm": bool(lsm) and "bpf" in _active_lsms(),
        "perf_event": prog(ProgramType.PERF_EVENT),
        "xdp": prog(ProgramType.XDP),
        "tc": prog(ProgramType.SCHED_CLS),
        "cgroup": prog(ProgramType.CGROUP_SKB),
        "socket_filter": prog(ProgramType.SOCKET_FILTER),
        "iter": bool(_trampoline_works("bpf_iter_task", "tracing", "trace_iter")),
        "struct_ops": prog(ProgramType.STRUCT_OPS),
        "netfilter": prog(ProgramType.NETFILTER),
    }


def _active_lsms() -> List[str]:
    try:
        with open("/sys/kernel/security/lsm") as f:
            return f.read().strip().split(",")
    except OSError:
        return []


def features(*, helpers_for: Sequence[Union[ProgramType, str, int]] = ()) -> Features:
    """Probe program types, map types, attach mechanisms and attach kinds of the
    running kernel; with ``helpers_for``, also the helpers of those program types."""
    progs = {t.name.lower(): _probe(lib.libbpf_probe_bpf_prog_type, t)
             for t in ProgramType if t != ProgramType.UNSPEC}
    mps = {t.name.lower(): _probe(lib.libbpf_probe_bpf_map_type, t)
           for t in MapType if t != MapType.UNSPEC}
    pmu = "/sys/bus/event_source/devices"
    mech = {
        "btf_vmlinux": os.path.exists("/sys/kernel/btf/vmlinux"),
        "kprobe_pmu": os.path.exists(f"{pmu}/kprobe"),
        "uprobe_pmu": os.path.exists(f"{pmu}/uprobe"),
        "tracefs": os.path.exists("/sys/kernel/tracing/events")
        or os.path.exists("/sys/kernel/debug/tracing/events"),
        "bpffs": os.path.ismount("/sys/fs/bpf"),
    }
    helpers = {}
    for t in helpers_for:
        from .types import _coerce

        ptype = _coerce(ProgramType, t, "program type")
        helpers[ptype.name.lower()] = helper_support(ptype)
    return Features(program_types=progs, map_types=mps, mechanisms=mech,
                    attach_kinds=attach_kinds(), helpers=helpers)
