"""What is loaded on this system, and what this kernel supports.

:func:`programs`, :func:`maps` and :func:`links` list every BPF object the
kernel holds (not only ours); :func:`features` probes program types, map
types and attach mechanisms with libbpf.
"""
from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Union

from ._ffi import ffi, lib, to_str
from .errors import check_ret
from .types import LinkType, MapType, ProgramType

__all__ = ["programs", "maps", "links", "features", "SystemProgram", "SystemMap", "SystemLink",
           "Features"]


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


def _probe(fn: Callable[[int, object], int], value: int) -> bool:
    return int(fn(value, ffi.NULL)) == 1


def features() -> Features:
    """Probe program types, map types and attach mechanisms of the running kernel."""
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
    return Features(program_types=progs, map_types=mps, mechanisms=mech)
