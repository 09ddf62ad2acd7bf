"""What is loaded on this system, and what this kernel supports.

:func:`programs`, :func:`maps` and :func:`links` list every BPF object the
kernel holds (not only ours). :func:`support` answers whether this kernel can do
one attach kind (``"kprobe"``, ``"tp_btf"``, ``"tcx"`` … or ``"iter/TARGET"``)
and, if not, why; :func:`iter_targets` and :func:`map_type_support` do the same
for iterator targets and map types; :func:`features` collects them all, with
libbpf's program type, map type and helper probes.

Kernels of the same version differ between builds (one 6.18 build refuses
``iter/bpf_map_elem``, another loads it), so these answers come from probing the
running kernel, the way the real call would fail, never from its version.
"""
from __future__ import annotations

import dataclasses
import errno as _errno
import functools
import os
import re
import struct
import time
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

from ._ffi import ffi, lib, to_str
from .errors import check_ret
from .attach._kinds import (BTF_KIND_ENUM, BTF_KIND_FUNC, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF,
                            vmlinux_enum_has, vmlinux_type_id)
from .types import AttachType, LinkType, MapType, ProgramType

if TYPE_CHECKING:
    from .link import LinkInfo

__all__ = ["programs", "maps", "links", "features", "helper_names", "helper_support",
           "attach_kinds", "support", "iter_target_support", "iter_targets",
           "map_type_support", "Support", "KINDS", "SystemProgram", "SystemMap",
           "SystemLink", "Features", "Holder", "holders", "pins", "stats_enabled",
           "attach_point", "cgroup_path"]


@dataclass(frozen=True)
class Holder:
    """A process holding a BPF program, map or link open: one of its fds."""

    pid: int
    comm: str
    fd: int


@dataclass(frozen=True)
class SystemProgram:
    """A program loaded in the kernel (``bpf_prog_info`` and its fdinfo).

    ``run_cnt``/``run_time_ns`` count only while statistics are on
    (:func:`stats_enabled`; ``sysctl kernel.bpf_stats_enabled=1`` or a
    ``BPF_ENABLE_STATS`` fd held by some process).
    """

    id: int
    type: Union[ProgramType, int]
    name: str
    tag: str
    map_ids: List[int]
    #: when it was loaded, in seconds since the epoch (None: unknown)
    loaded_at: Optional[float] = None
    #: the uid of the process that loaded it
    uid: int = 0
    btf_id: int = 0
    #: bytes of translated (``xlated``) and of JIT-compiled code
    xlated_len: int = 0
    jited_len: int = 0
    #: instructions the verifier processed
    verified_insns: int = 0
    run_cnt: int = 0
    run_time_ns: int = 0
    recursion_misses: int = 0
    #: bytes charged for it (fdinfo ``memlock``)
    memlock: int = 0
    #: the processes holding an fd to it
    holders: Tuple[Holder, ...] = ()
    #: where it is pinned in bpffs (under /sys/fs/bpf)
    pinned: Tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemMap:
    """A map in the kernel (``bpf_map_info`` and its fdinfo)."""

    id: int
    type: Union[MapType, int]
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    btf_id: int = 0
    #: the key and value types named by the map's BTF ("" without BTF)
    key_type: str = ""
    value_type: str = ""
    #: bytes charged for it (fdinfo ``memlock``)
    memlock: int = 0
    frozen: bool = False
    holders: Tuple[Holder, ...] = ()
    pinned: Tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemLink:
    """A link in the kernel: ``info`` is what :attr:`Link.info` gives (a
    :class:`~pylibbpf.link.LinkInfo` subclass per link type), ``attach_point``
    the hook in words (:func:`attach_point`)."""

    id: int
    type: Union[LinkType, int]
    program_id: int
    info: Optional["LinkInfo"] = None
    attach_point: str = ""
    holders: Tuple[Holder, ...] = ()
    pinned: Tuple[str, ...] = ()


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


_FD_KINDS = {"anon_inode:bpf-prog": "program", "anon_inode:bpf-map": "map",
             "anon_inode:bpf_link": "link"}
_ID_FIELD = {"program": "prog_id", "map": "map_id", "link": "link_id"}


def _fdinfo(path: str) -> Dict[str, str]:
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def holders() -> Dict[str, Dict[int, List[Holder]]]:
    """Which processes hold which BPF objects open: ``{"program": {id: [Holder…]},
    "map": {…}, "link": {…}}``, from ``/proc/*/fd`` and ``/proc/*/fdinfo`` (the
    processes this user may look into: all of them as root)."""
    out: Dict[str, Dict[int, List[Holder]]] = {"program": {}, "map": {}, "link": {}}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        fddir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue   # gone, or not ours to look at
        comm: Optional[str] = None
        for fd in fds:
            try:
                kind = _FD_KINDS.get(os.readlink(f"{fddir}/{fd}"))
            except OSError:
                continue
            if kind is None:
                continue
            raw_id = _fdinfo(f"/proc/{pid}/fdinfo/{fd}").get(_ID_FIELD[kind])
            if raw_id is None:
                continue
            if comm is None:
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    comm = "?"
            out[kind].setdefault(int(raw_id), []).append(Holder(int(pid), comm, int(fd)))
    return out


def pins(root: str = "/sys/fs/bpf", *, limit: int = 10000) -> Dict[str, Dict[int, List[str]]]:
    """Pinned BPF objects under ``root``: ``{"program": {id: [path…]}, "map": …,
    "link": …}`` (at most ``limit`` files are looked at)."""
    out: Dict[str, Dict[int, List[str]]] = {"program": {}, "map": {}, "link": {}}
    seen = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            seen += 1
            if seen > limit:
                return out
            path = os.path.join(dirpath, name)
            fd = lib.bpf_obj_get(path.encode())
            if fd < 0:
                continue
            try:
                kind = _FD_KINDS.get(os.readlink(f"/proc/self/fd/{fd}"))
                info = _fdinfo(f"/proc/self/fdinfo/{fd}")
            except OSError:
                continue
            finally:
                os.close(fd)
            if kind and _ID_FIELD[kind] in info:
                out[kind].setdefault(int(info[_ID_FIELD[kind]]), []).append(path)
    return out


def stats_enabled() -> bool:
    """Whether the sysctl ``kernel.bpf_stats_enabled`` is on. (Runs are also counted
    while any process holds a ``BPF_ENABLE_STATS`` fd, which this does not see.)"""
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            return f.read().strip() not in ("", "0")
    except OSError:
        return False


def _boot_time() -> float:
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


_Held = Dict[str, Dict[int, List[Holder]]]
_Pinned = Dict[str, Dict[int, List[str]]]


def _holders_and_pins(with_holders: bool, with_pins: bool) -> Tuple[_Held, _Pinned]:
    # before any fd of ours is opened for the listing: we'd see ourselves holding everything
    empty: Dict[str, Dict[int, Any]] = {"program": {}, "map": {}, "link": {}}
    return (holders() if with_holders else empty), (pins() if with_pins else empty)


def programs(*, with_holders: bool = True, with_pins: bool = True) -> List[SystemProgram]:
    """Every BPF program loaded in the kernel, with load time, run statistics and
    (unless told not to) the processes holding it and its pins."""
    held, pinned = _holders_and_pins(with_holders, with_pins)
    boot = _boot_time()
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
        pid = int(info.id)
        out.append(SystemProgram(
            id=pid, type=_enum(ProgramType, info.type),  # type: ignore[arg-type]
            name=to_str(info.name), tag=bytes(ffi.buffer(info.tag, 8)).hex(),
            map_ids=[int(map_ids[i]) for i in range(n)],
            loaded_at=boot + int(info.load_time) / 1e9 if info.load_time else None,
            uid=int(info.created_by_uid), btf_id=int(info.btf_id),
            xlated_len=int(info.xlated_prog_len), jited_len=int(info.jited_prog_len),
            verified_insns=int(info.verified_insns), run_cnt=int(info.run_cnt),
            run_time_ns=int(info.run_time_ns), recursion_misses=int(info.recursion_misses),
            memlock=int(_fdinfo(f"/proc/self/fdinfo/{fd}").get("memlock", 0)),
            holders=tuple(held["program"].get(pid, ())),
            pinned=tuple(pinned["program"].get(pid, ()))))
    return out


def _btf_type_name(btfs: Dict[int, Any], btf_id: int, type_id: int) -> str:
    """The name of type ``type_id`` of kernel BTF ``btf_id`` ("" when unknown)."""
    from .btf import BTF
    from .errors import BPFError

    if not btf_id or not type_id:
        return ""
    if btf_id not in btfs:
        try:
            btfs[btf_id] = BTF.from_kernel_id(btf_id)
        except BPFError:
            btfs[btf_id] = None
    btf = btfs[btf_id]
    if btf is None:
        return ""
    try:
        return str(btf.codec(type_id).name)
    except (BPFError, ValueError, TypeError, KeyError):
        try:
            return str(btf.name_of(type_id))
        except BPFError:
            return ""


def maps(*, with_holders: bool = True, with_pins: bool = True) -> List[SystemMap]:
    """Every BPF map in the kernel, with its key and value types (from its BTF),
    memory, and (unless told not to) the processes holding it and its pins."""
    held, pinned = _holders_and_pins(with_holders, with_pins)
    btfs: Dict[int, Any] = {}
    out = []
    try:
        for _, fd in _each_fd(_ids(lib.bpf_map_get_next_id, "maps"), lib.bpf_map_get_fd_by_id):
            info = ffi.new("struct bpf_map_info *")
            size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
            if lib.bpf_map_get_info_by_fd(fd, info, size) < 0:
                continue
            fdi = _fdinfo(f"/proc/self/fdinfo/{fd}")
            mid, btf_id = int(info.id), int(info.btf_id)
            out.append(SystemMap(
                id=mid, type=_enum(MapType, info.type),  # type: ignore[arg-type]
                name=to_str(info.name), key_size=int(info.key_size),
                value_size=int(info.value_size), max_entries=int(info.max_entries),
                flags=int(info.map_flags), btf_id=btf_id,
                key_type=_btf_type_name(btfs, btf_id, int(info.btf_key_type_id)),
                value_type=_btf_type_name(btfs, btf_id, int(info.btf_value_type_id)),
                memlock=int(fdi.get("memlock", 0)), frozen=fdi.get("frozen", "0") != "0",
                holders=tuple(held["map"].get(mid, ())), pinned=tuple(pinned["map"].get(mid, ()))))
    finally:
        for btf in btfs.values():
            if btf is not None:
                btf.close()
    return out


def links(*, with_holders: bool = True, with_pins: bool = True) -> List[SystemLink]:
    """Every BPF link in the kernel, with what it is attached to (:func:`attach_point`)
    and (unless told not to) the processes holding it and its pins."""
    from .errors import BPFError
    from .link import _query_info

    held, pinned = _holders_and_pins(with_holders, with_pins)
    btfs: Dict[int, Any] = {}
    out = []
    try:
        for lid, fd in _each_fd(_ids(lib.bpf_link_get_next_id, "links"),
                                lib.bpf_link_get_fd_by_id):
            try:
                info = _query_info(fd, f"info of link id {lid}")
            except BPFError:
                continue
            out.append(SystemLink(id=info.id, type=info.type, program_id=info.program_id,
                                  info=info, attach_point=attach_point(info, _btfs=btfs),
                                  holders=tuple(held["link"].get(info.id, ())),
                                  pinned=tuple(pinned["link"].get(info.id, ()))))
    finally:
        for btf in btfs.values():
            if btf is not None:
                btf.close()
    return out


def cgroup_path(cgroup_id: int, root: str = "/sys/fs/cgroup") -> Optional[str]:
    """The cgroup v2 directory whose id (its inode number) is ``cgroup_id``, or None."""
    try:
        if os.stat(root).st_ino == cgroup_id:
            return root
    except OSError:
        return None
    for dirpath, dirs, _ in os.walk(root):
        for d in dirs:
            path = os.path.join(dirpath, d)
            try:
                if os.stat(path).st_ino == cgroup_id:
                    return path
            except OSError:
                continue
    return None


def _netns_name(ino: int) -> str:
    """A network namespace's name under /run/netns (``ip netns``), or "init"."""
    try:
        if os.stat("/proc/1/ns/net").st_ino == ino:
            return "init"
    except OSError:
        pass
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return ""
    for name in names:
        try:
            if os.stat(f"/run/netns/{name}").st_ino == ino:
                return name
        except OSError:
            continue
    return ""


def _ifname(ifindex: int) -> str:
    import socket

    try:
        return f"{socket.if_indextoname(ifindex)}(ifindex {ifindex})"
    except OSError:
        return f"ifindex {ifindex}"


def _lower(v: Any) -> str:
    return v.name.lower() if hasattr(v, "name") else str(v)


def attach_point(info: "LinkInfo", *, _btfs: Optional[Dict[int, Any]] = None) -> str:
    """Where a link is attached, in words: ``"tracepoint syscalls:sys_enter_getpgid"``,
    ``"uprobe /usr/lib/libc.so.6+0xd5710"``, ``"xdp lo(ifindex 1)"``,
    ``"cgroup /sys/fs/cgroup/x inet_ingress"``, ``"fentry bpf_fentry_test1"`` …"""
    from . import link as L

    if isinstance(info, L.PerfEventLinkInfo):
        if info.event_type == "tracepoint":
            return f"tracepoint {info.name}"
        if info.event_type in ("uprobe", "uretprobe", "kprobe", "kretprobe"):
            where = info.name or f"{info.addr:#x}"
            return f"{info.event_type} {where}+{info.offset:#x}"
        return f"perf_event type {info.perf_type} config {info.config}"
    if isinstance(info, L.RawTracepointLinkInfo):
        return f"raw_tracepoint {info.tp_name}"
    if isinstance(info, L.TracingLinkInfo):
        names = {AttachType.TRACE_FENTRY: "fentry", AttachType.TRACE_FEXIT: "fexit",
                 AttachType.MODIFY_RETURN: "fmod_ret", AttachType.TRACE_RAW_TP: "tp_btf",
                 AttachType.LSM_MAC: "lsm", AttachType.TRACE_ITER: "iter"}
        kind = {int(k): v for k, v in names.items()}.get(int(info.attach_type),
                                                           _lower(info.attach_type))
        if info.attach_type == 0:
            # freplace: the kernel reports attach type 0 and the target program's id
            return f"freplace prog {info.target_obj_id} btf type {info.target_btf_id}"
        name = _btf_type_name(_btfs if _btfs is not None else {}, info.target_obj_id,
                              info.target_btf_id) if info.target_btf_id else ""
        for prefix in ("btf_trace_", "bpf_lsm_"):
            name = name.removeprefix(prefix)
        return f"{kind} {name or f'btf {info.target_obj_id}/{info.target_btf_id}'}"
    if isinstance(info, L.CgroupLinkInfo):
        path = cgroup_path(info.cgroup_id) or f"cgroup id {info.cgroup_id}"
        return f"cgroup {path} {_lower(info.attach_type).removeprefix('cgroup_')}"
    if isinstance(info, L.IterLinkInfo):
        extra = f" map {info.map_id}" if info.map_id else ""
        extra += f" pid {info.pid}" if info.pid else f" tid {info.tid}" if info.tid else ""
        if info.cgroup_id:
            extra += f" cgroup {cgroup_path(info.cgroup_id) or info.cgroup_id}"
        return f"iter {info.target_name}{extra}"
    if isinstance(info, L.NetnsLinkInfo):
        name = _netns_name(info.netns_ino)
        where = f"{name}(ino {info.netns_ino})" if name else f"ino {info.netns_ino}"
        return f"netns {where} {_lower(info.attach_type)}"
    if isinstance(info, L.XDPLinkInfo):
        return f"xdp {_ifname(info.ifindex)}"
    if isinstance(info, (L.TCXLinkInfo, L.NetkitLinkInfo)):
        kind = "tcx" if isinstance(info, L.TCXLinkInfo) else "netkit"
        direction = _lower(info.attach_type).split("_")[-1]
        return f"{kind} {_ifname(info.ifindex)} {direction}"
    if isinstance(info, L.StructOpsLinkInfo):
        return f"struct_ops map {info.map_id}"
    if isinstance(info, L.NetfilterLinkInfo):
        pf = {2: "ipv4", 10: "ipv6"}.get(info.pf, f"pf {info.pf}")
        return f"netfilter {pf} hook {info.hooknum} priority {info.priority}"
    if isinstance(info, L.KprobeMultiLinkInfo):
        return f"kprobe_multi {info.count} functions"
    if isinstance(info, L.UprobeMultiLinkInfo):
        pid = f" pid {info.pid}" if info.pid else ""
        return f"uprobe_multi {info.path or '?'} {info.count} offsets{pid}"
    if isinstance(info, L.SockmapLinkInfo):
        return f"sockmap map {info.map_id} {_lower(info.attach_type)}"
    return ""


@dataclass(frozen=True)
class Features:
    """What this kernel supports, as probed by libbpf and sysfs."""

    program_types: Dict[str, bool]
    map_types: Dict[str, bool]
    mechanisms: Dict[str, bool]
    #: attach kinds: tracepoint, kprobe, uprobe, fentry, lsm … (see :func:`support`)
    attach_kinds: Dict[str, bool] = field(default_factory=dict)
    #: iterator target -> loadable (``iter/TARGET``), for every target the BTF names
    iter_targets: Dict[str, bool] = field(default_factory=dict)
    #: attach kind or ``iter/TARGET`` -> why it is not supported (only those that are not)
    reasons: Dict[str, str] = field(default_factory=dict)
    #: program type -> helper name -> usable (only the types asked for)
    helpers: Dict[str, Dict[str, bool]] = field(default_factory=dict)


def _probe(fn: Callable[[int, object], int], value: int) -> bool:
    return int(fn(value, ffi.NULL)) == 1


def _probe_helper(prog_type: ProgramType, helper_id: int) -> bool:
    return int(lib.libbpf_probe_bpf_helper(prog_type, helper_id, ffi.NULL)) == 1


@functools.lru_cache(maxsize=1)
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
    return {name: _probe_helper(ptype, hid) for hid, name in sorted(helper_names().items())}


_EXIT0 = bytes.fromhex("b700000000000000" "9500000000000000")   # r0 = 0; exit



@dataclass(frozen=True)
class Support:
    """Whether the running kernel supports one thing (an attach kind, an iterator
    target, a map type) and, when it does not, why: the reason the
    :class:`~pylibbpf.NotSupportedError` of the real call would give.

    True in a boolean context when supported."""

    name: str
    supported: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.supported


def _load_probe(what: str, prog_type: str, attach_type: str, btf_name: str = "",
                btf_kind: int = BTF_KIND_FUNC) -> Support:
    """Load ``r0 = 0; exit`` as ``prog_type``/``attach_type`` (on kernel type
    ``btf_name``): supported when the kernel accepts it."""
    from .errors import BPFError
    from .program import Program

    btf_id = 0
    if btf_name:
        btf_id = vmlinux_type_id(btf_name, btf_kind)
        if not btf_id:
            return Support(what, False, f"the kernel's BTF has no {btf_name!r} "
                           "(no /sys/kernel/btf/vmlinux, or a kernel without it)")
    try:
        Program.load_raw(prog_type, _EXIT0, expected_attach_type=attach_type,
                         attach_btf_id=btf_id, license="GPL", name="plb_probe").close()
        return Support(what, True)
    except BPFError as e:
        return Support(what, False, _reason(e))


def _reason(e: BaseException) -> str:
    """Why a probe failed: a NotSupportedError's reason, else the error's message."""
    return getattr(e, "reason", "") or str(getattr(e, "strerror", None) or e)


def _prog_type(kind: str, ptype: ProgramType) -> Support:
    from .attach._kinds import prog_type_known, prog_type_reason

    if prog_type_known(ptype):
        return Support(kind, True)
    return Support(kind, False, prog_type_reason(ptype))


def _link_create_probe(kind: str, prog_type: ProgramType, attach: "AttachType", target_fd: int,
                       works: Sequence[int], missing: str = "", **fields: Any) -> Support:
    """Create a link that must fail: the kernel knows the kind when the error is
    one of ``works`` (it looked at the target), not when it says EINVAL."""
    from ._ffi import opts
    from .errors import BPFError, errno_name
    from .program import Program

    try:
        prog = Program.load_raw(prog_type, _EXIT0, expected_attach_type=attach,
                                license="GPL", name="plb_probe")
    except BPFError as e:
        return Support(kind, False, _reason(e))
    try:
        o = opts("bpf_link_create_opts")
        keep = []
        for path, value in fields.items():
            sub, _, member = path.partition("__")
            if isinstance(value, list):
                value = ffi.new("unsigned long[]", value)
                keep.append(value)
            elif isinstance(value, bytes):
                value = ffi.new("char[]", value)
                keep.append(value)
            setattr(getattr(o, sub), member, value)
        fd = lib.bpf_link_create(prog.fd, target_fd, attach, o)
        err = ffi.errno
        if fd >= 0:
            os.close(fd)
            return Support(kind, True)
        if err in works:
            return Support(kind, True)
        return Support(kind, False, f"this kernel has no {missing or kind} links "
                                    f"(BPF_LINK_CREATE answers {errno_name(err)})")
    finally:
        prog.close()


#: every name :func:`support` answers for (besides ``"iter/TARGET"``)
KINDS = ("tracepoint", "raw_tracepoint", "raw_tracepoint_cookie", "tp_btf", "kprobe",
         "kretprobe", "ksyscall", "kprobe_multi", "kprobe_session", "uprobe", "uretprobe",
         "uprobe_multi", "uprobe_session", "usdt", "fentry", "fexit", "fmod_ret", "freplace",
         "lsm", "iter", "perf_event", "xdp", "tc", "tcx", "netkit", "cgroup", "socket_filter",
         "sk_lookup", "sk_reuseport", "sockmap", "sockmap_link", "flow_dissector", "struct_ops", "struct_ops_link",
         "netfilter", "perf_event_link_info", "arena", "bpf_token",
         "prog_stream", "prog_stream_write")


@functools.lru_cache(maxsize=None)
def support(kind: str) -> Support:
    """Whether this kernel supports attach kind ``kind`` (one of :data:`KINDS`, or
    ``"iter/TARGET"``), probed the way the real call would fail, with the reason
    the real call's :class:`~pylibbpf.NotSupportedError` gives. Cached per process.
    For example, ``system.support("kprobe")`` on a kernel built without kprobes is
    ``Support(name='kprobe', supported=False, reason='this kernel has no kprobes
    (CONFIG_KPROBES off: …)')``, and ``if system.support("tcx"): …`` picks a path.
    """
    from .attach._kinds import (TRAMPOLINE_KIND, has_pmu, kprobe_multi_unsupported_reason,
                                kprobe_unsupported_reason, tracefs_dir, trampoline_reason)
    from .attach.netkit import kernel_has_netkit
    from .types import AttachType

    if kind.startswith("iter/"):
        return iter_target_support(kind[len("iter/"):])
    if kind not in KINDS:
        raise ValueError(f"unknown attach kind {kind!r}; known: {', '.join(KINDS)}, "
                         "iter/TARGET")
    if kind == "tracepoint":
        if not tracefs_dir():
            return Support(kind, False, "tracefs is not mounted (mount -t tracefs tracefs "
                                        "/sys/kernel/tracing)")
        return _prog_type(kind, ProgramType.TRACEPOINT)
    if kind == "raw_tracepoint":
        return _prog_type(kind, ProgramType.RAW_TRACEPOINT)
    if kind == "raw_tracepoint_cookie":   # raw_tp and tp_btf cookies: Linux 6.10
        ids = {name: hid for hid, name in helper_names().items()}
        if _probe_helper(ProgramType.RAW_TRACEPOINT, ids["bpf_get_attach_cookie"]):
            return Support(kind, True)
        return Support(kind, False, "this kernel has no cookies for raw_tp and tp_btf "
                                    "programs (bpf_get_attach_cookie, Linux 6.10+)")
    if kind == "tp_btf":
        return _load_probe(kind, "tracing", "trace_raw_tp", "btf_trace_sched_switch",
                           BTF_KIND_TYPEDEF)
    if kind in ("kprobe", "kretprobe", "ksyscall"):
        reason = kprobe_unsupported_reason()
        return Support(kind, not reason, reason)
    if kind in ("kprobe_multi", "kprobe_session"):
        reason = kprobe_multi_unsupported_reason(kind == "kprobe_session") or \
            kprobe_unsupported_reason()
        return Support(kind, not reason, reason)
    if kind in ("uprobe", "uretprobe", "usdt"):
        tracefs = tracefs_dir()
        if has_pmu("uprobe") or (tracefs and os.path.exists(f"{tracefs}/uprobe_events")):
            return Support(kind, True)
        return Support(kind, False, "this kernel has no uprobes (no uprobe perf PMU and no "
                                    "tracefs uprobe_events: CONFIG_UPROBE_EVENTS off)")
    if kind == "uprobe_multi":
        # a directory is no executable: EBADF proves the kernel parsed the request
        return _link_create_probe(kind, ProgramType.KPROBE, AttachType.TRACE_UPROBE_MULTI, 0,
                                  (_errno.EBADF,), uprobe_multi__path=b"/",
                                  uprobe_multi__offsets=[0], uprobe_multi__cnt=1)
    if kind == "uprobe_session":
        return uprobe_session_support()
    if kind == "arena":   # BPF_MAP_TYPE_ARENA, Linux 6.9: memory shared with user space
        return map_type_support(MapType.ARENA)
    if kind in ("fentry", "fexit", "freplace"):
        attach = "trace_fexit" if kind == "fexit" else "trace_fentry"
        sup = _load_probe(kind, "tracing", attach, "bpf_fentry_test1")
        if kind == "freplace" and sup.reason == trampoline_reason(
                TRAMPOLINE_KIND[ProgramType.TRACING]):
            # freplace needs the same trampolines (and a target program to probe with)
            return Support(kind, False, trampoline_reason(TRAMPOLINE_KIND[ProgramType.EXT]))
        return sup
    if kind == "fmod_ret":
        # the test function or an LSM hook (which fmod_ret may always modify)
        sup = _load_probe(kind, "tracing", "modify_return", "bpf_modify_return_test")
        return sup or _load_probe(kind, "tracing", "modify_return", "security_file_open")
    if kind == "lsm":
        sup = _load_probe(kind, "lsm", "lsm_mac", "bpf_lsm_file_open")
        if sup and "bpf" not in _active_lsms():
            return Support(kind, False, "the BPF LSM is not active (add 'bpf' to the lsm= "
                           f"boot parameter; active: {','.join(_active_lsms()) or 'none'})")
        return sup
    if kind == "iter":
        return dataclasses.replace(iter_target_support("task"), name=kind)
    if kind == "tcx":
        # ifindex 0 names no device: ENODEV proves the kernel knows TCX links
        return _link_create_probe(kind, ProgramType.SCHED_CLS, AttachType.TCX_INGRESS, 0,
                                  (_errno.ENODEV,))
    if kind == "struct_ops_link":
        # the kernel type behind BPF_STRUCT_OPS links (Linux 6.4); a link_create probe
        # can't tell: the map fd shares its field with the program fd
        if vmlinux_type_id("bpf_struct_ops_link", BTF_KIND_STRUCT):
            return Support(kind, True)
        return Support(kind, False, "this kernel has no struct_ops links (no struct "
                                    "bpf_struct_ops_link in its BTF: Linux 6.4+)")
    if kind == "perf_event_link_info":
        if vmlinux_type_id("bpf_perf_event_type", BTF_KIND_ENUM):
            return Support(kind, True)
        return Support(kind, False, "this kernel reports no details of perf_event links "
                                    "(no enum bpf_perf_event_type in its BTF: Linux 6.6+)")
    if kind == "sockmap_link":
        # fd -1 names no map: EBADF proves the kernel knows sk_msg links (Linux 6.10)
        return _link_create_probe(kind, ProgramType.SK_MSG, AttachType.SK_MSG_VERDICT, -1,
                                  (_errno.EBADF,), "sockmap (sk_msg/sk_skb)")
    if kind == "bpf_token":
        return _token_probe()
    if kind == "prog_stream":
        return _stream_probe()
    if kind == "prog_stream_write":
        return _stream_write_probe()
    if kind == "netkit":
        if kernel_has_netkit():
            return Support(kind, True)
        return Support(kind, False, "this kernel has no netkit driver (CONFIG_NETKIT, "
                                    "Linux 6.7+)")
    ptype = {"perf_event": ProgramType.PERF_EVENT, "xdp": ProgramType.XDP,
             "tc": ProgramType.SCHED_CLS, "cgroup": ProgramType.CGROUP_SKB,
             "socket_filter": ProgramType.SOCKET_FILTER, "sk_lookup": ProgramType.SK_LOOKUP,
             "sk_reuseport": ProgramType.SK_REUSEPORT, "sockmap": ProgramType.SK_SKB,
             "flow_dissector": ProgramType.FLOW_DISSECTOR,
             "struct_ops": ProgramType.STRUCT_OPS, "netfilter": ProgramType.NETFILTER}[kind]
    return _prog_type(kind, ptype)


def uprobe_session_support() -> Support:
    """``uprobe.session`` links (Linux 6.13): the attach type must be in the kernel's
    BTF, and BPF_LINK_CREATE must look at the request (EBADF for a directory)."""
    from .types import AttachType

    kind = "uprobe_session"
    if vmlinux_enum_has("bpf_attach_type", "BPF_TRACE_UPROBE_SESSION") is False:
        return Support(kind, False, "this kernel does not know uprobe.session programs (no "
                                    "BPF_TRACE_UPROBE_SESSION in its BTF: Linux 6.13+)")
    return _link_create_probe(kind, ProgramType.KPROBE, AttachType.TRACE_UPROBE_SESSION, 0,
                              (_errno.EBADF,), "uprobe.session", uprobe_multi__path=b"/",
                              uprobe_multi__offsets=[0], uprobe_multi__cnt=1)


def _token_probe() -> Support:
    """BPF_TOKEN_CREATE on fd -1: EBADF proves the kernel knows the command (6.9+)."""
    from .errors import errno_name

    fd = lib.bpf_token_create(-1, ffi.NULL)
    err = ffi.errno
    if fd >= 0:  # (cannot happen: no bpffs at fd -1)
        os.close(fd)
        return Support("bpf_token", True)
    if err == _errno.EBADF:
        return Support("bpf_token", True)
    return Support("bpf_token", False, "this kernel has no BPF tokens (BPF_TOKEN_CREATE "
                                       f"answers {errno_name(err)}: Linux 6.9+)")


def _stream_probe() -> Support:
    """BPF_PROG_STREAM_READ_BY_FD on a loaded program: 0 bytes (nothing written)
    where the kernel has BPF streams (6.17+), EINVAL where it doesn't know the command."""
    from .errors import BPFError, errno_name
    from .program import Program

    try:
        prog = Program.load_raw(ProgramType.SOCKET_FILTER, _EXIT0, license="GPL",
                                name="plb_probe")
    except BPFError as e:
        return Support("prog_stream", False, _reason(e))
    try:
        buf = ffi.new("char[]", 64)
        n = lib.bpf_prog_stream_read(prog.fd, 1, buf, 64, ffi.NULL)
        if n >= 0:
            return Support("prog_stream", True)
        return Support("prog_stream", False, "this kernel has no BPF streams "
                       f"(BPF_PROG_STREAM_READ_BY_FD answers {errno_name(-n)}: Linux 6.17+)")
    finally:
        prog.close()


#: what the stream-write probe prints
_STREAM_PROBE_TEXT = b"plb\n"


def _stream_write_probe() -> Support:
    """A syscall program prints to its stdout with the stream kfunc, run once: the
    kernel writes BPF streams when the kfunc returns the length and the text reads
    back. (A kernel may know streams and still write nothing: the kfunc takes its
    memory from the lock-free page allocator, and says ENOMEM where that fails.)"""
    from .errors import BPFError, errno_name
    from .map import Map
    from .program import Program

    sup = _stream_probe()
    if not sup:
        return Support("prog_stream_write", False, sup.reason)
    kfunc = next((n for n in ("bpf_stream_vprintk_impl", "bpf_stream_vprintk")
                  if vmlinux_type_id(n, BTF_KIND_FUNC)), "")
    if not kfunc:
        return Support("prog_stream_write", False, "this kernel has no bpf_stream_vprintk "
                                                   "kfunc in its BTF")
    fmt = _STREAM_PROBE_TEXT + b"\0" * (8 - len(_STREAM_PROBE_TEXT))
    try:
        # the format must be a constant string: a frozen map that programs only read
        with Map.create("array", 4, 8, 1, name="plb_fmt", flags=1 << 7) as m:
            m.raw[bytes(4)] = fmt
            m.freeze()
            insns = b"".join([
                struct.pack("<BBhi", 0x18, 0x20 | 2, 0, m.fd),  # r2 = &map value (fmt)
                struct.pack("<BBhi", 0, 0, 0, 0),
                struct.pack("<BBhi", 0x7a, 10, -8, 0),          # *(u64 *)(r10 - 8) = 0
                struct.pack("<BBhi", 0xbf, 0xa3, 0, 0),         # r3 = r10
                struct.pack("<BBhi", 0x07, 3, 0, -8),           # r3 += -8 (one u64 arg)
                struct.pack("<BBhi", 0xb7, 1, 0, 1),            # r1 = BPF_STDOUT
                struct.pack("<BBhi", 0xb7, 4, 0, 8),            # r4 = 8 (its size)
                struct.pack("<BBhi", 0xb7, 5, 0, 0),            # r5 = NULL (aux, the verifier's)
                struct.pack("<BBhi", 0x85, 2 << 4, 0,           # call the kfunc
                            vmlinux_type_id(kfunc, BTF_KIND_FUNC)),
                struct.pack("<BBhi", 0x95, 0, 0, 0)])           # exit (r0 = its result)
            prog = Program.load_raw(ProgramType.SYSCALL, insns, license="GPL",
                                    name="plb_probe", sleepable=True)
        with prog:
            ret = prog.test_run().retval
            ret = ret - (1 << 32) if ret >= 1 << 31 else ret
            text = prog.stdout.read()
    except BPFError as e:
        return Support("prog_stream_write", False, _reason(e))
    if ret == len(_STREAM_PROBE_TEXT) and text == _STREAM_PROBE_TEXT:
        return Support("prog_stream_write", True)
    why = f"{kfunc}() answers {errno_name(-ret)}" if ret < 0 else \
        f"{kfunc}() answers {ret} and the stream reads back {text!r}"
    extra = " (it takes memory from the lock-free page allocator, which gives " \
            "none on this kernel)" if ret == -_errno.ENOMEM else ""
    return Support("prog_stream_write", False, "this kernel buffers no BPF stream output: "
                                               f"{why}{extra}")


def _iter_target_names() -> List[str]:
    """Iterator targets named in the kernel's BTF: each has a context type
    ``struct bpf_iter__TARGET`` (open-coded iterator kfuncs use one underscore)."""
    try:
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    if len(raw) < 24 or raw[:2] != b"\x9f\xeb":
        return []
    hdr_len, _, _, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
    strings = raw[hdr_len + str_off: hdr_len + str_off + str_len]
    found = {m.decode() for m in re.findall(rb"\0bpf_iter__(\w+)(?=\0)", strings)}
    return sorted(t for t in found if vmlinux_type_id(f"bpf_iter_{t}", BTF_KIND_FUNC))


@functools.lru_cache(maxsize=None)
def iter_target_support(target: str) -> Support:
    """Whether this kernel loads iterators of ``target`` (``"task"``,
    ``"bpf_map_elem"`` …): a minimal ``SEC("iter/TARGET")`` program is loaded."""
    name = f"iter/{target}"
    if not vmlinux_type_id(f"bpf_iter_{target}", BTF_KIND_FUNC):
        return Support(name, False, f"this kernel has no iterator target {target!r} (no "
                                    f"bpf_iter_{target} in its BTF)")
    return _load_probe(name, "tracing", "trace_iter", f"bpf_iter_{target}")


def iter_targets() -> Dict[str, Support]:
    """Every iterator target the kernel's BTF names, each probed by loading it."""
    return {t: iter_target_support(t) for t in _iter_target_names()}


def map_type_support(map_type: Union[MapType, str, int]) -> Support:
    """Whether this kernel creates maps of ``map_type`` (libbpf's probe)."""
    from .types import _coerce

    mtype = _coerce(MapType, map_type, "map type")
    name = mtype.name.lower()
    if mtype == MapType.STRUCT_OPS:
        # libbpf's map probe for struct_ops fails on kernels that have them (6.1):
        # the map type comes with the program type
        sup = _prog_type(name, ProgramType.STRUCT_OPS)
        return sup if sup else Support(name, False, f"this kernel does not create {name} "
                                                    "maps (it has no struct_ops programs)")
    if _probe(lib.libbpf_probe_bpf_map_type, mtype):
        return Support(name, True)
    return Support(name, False, f"this kernel does not create {name} maps (libbpf's map "
                                "type probe failed)")


def attach_kinds() -> Dict[str, bool]:
    """Which attach kinds work on this kernel (see :func:`support` for the reasons)."""
    return {kind: support(kind).supported for kind in KINDS}


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
    kinds = [support(k) for k in KINDS]
    iters = iter_targets()
    reasons = {s.name: s.reason for s in kinds + list(iters.values()) if not s}
    return Features(program_types=progs, map_types=mps, mechanisms=mech,
                    attach_kinds={s.name: s.supported for s in kinds},
                    iter_targets={t: s.supported for t, s in iters.items()},
                    reasons=reasons, helpers=helpers)
