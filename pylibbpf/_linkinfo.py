"""What the kernel reports about a link (``struct bpf_link_info``): the
:class:`~pylibbpf.link.LinkInfo` dataclasses.

Kept apart from link.py and imported on first use (``Link.info``, or the names
from ``pylibbpf`` / ``pylibbpf.link``): making fifteen dataclasses is a large part
of what ``import pylibbpf`` would otherwise cost. They present themselves as
``pylibbpf.link``'s (their ``__module__``), where they are documented.
"""
from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

from .types import AttachType, LinkType

__all__ = [
    "LinkInfo",
    "RawTracepointLinkInfo",
    "TracingLinkInfo",
    "CgroupLinkInfo",
    "IterLinkInfo",
    "NetnsLinkInfo",
    "XDPLinkInfo",
    "StructOpsLinkInfo",
    "NetfilterLinkInfo",
    "KprobeMultiLinkInfo",
    "UprobeMultiLinkInfo",
    "PerfEventLinkInfo",
    "TCXLinkInfo",
    "NetkitLinkInfo",
    "SockmapLinkInfo",
]


@dataclass(frozen=True)
class LinkInfo:
    """What the kernel reports about a link (``bpf_link_info``).

    :attr:`Link.info` returns a subclass with the fields of the link's type,
    e.g. :class:`PerfEventLinkInfo` for tracepoints, kprobes and perf events.
    """

    type: Union[LinkType, int]
    id: int
    program_id: int


@dataclass(frozen=True)
class RawTracepointLinkInfo(LinkInfo):
    """A raw tracepoint link: ``tp_name`` is the tracepoint (e.g. ``"sys_enter"``)."""

    tp_name: str


@dataclass(frozen=True)
class TracingLinkInfo(LinkInfo):
    """A tracing link (fentry/fexit/fmod_ret/tp_btf, LSM, freplace).

    ``target_obj_id`` is the target program's id for freplace, otherwise the id
    of the BTF object (vmlinux or a module) holding ``target_btf_id``.
    """

    attach_type: Union[AttachType, int]
    target_obj_id: int
    target_btf_id: int


@dataclass(frozen=True)
class CgroupLinkInfo(LinkInfo):
    cgroup_id: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class IterLinkInfo(LinkInfo):
    """A bpf_iter link: ``target_name`` is e.g. ``"task"`` or ``"bpf_map_elem"``.

    ``map_id`` is set for map iterators, ``cgroup_id``/``cgroup_order`` for
    cgroup iterators, ``tid``/``pid`` for task iterators limited to a task.
    """

    target_name: str
    map_id: int
    cgroup_id: int
    cgroup_order: int
    tid: int
    pid: int


@dataclass(frozen=True)
class NetnsLinkInfo(LinkInfo):
    netns_ino: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class XDPLinkInfo(LinkInfo):
    ifindex: int


@dataclass(frozen=True)
class StructOpsLinkInfo(LinkInfo):
    map_id: int


@dataclass(frozen=True)
class NetfilterLinkInfo(LinkInfo):
    pf: int
    hooknum: int
    priority: int
    flags: int


@dataclass(frozen=True)
class KprobeMultiLinkInfo(LinkInfo):
    count: int
    flags: int
    missed: int


@dataclass(frozen=True)
class UprobeMultiLinkInfo(LinkInfo):
    path: str
    count: int
    flags: int
    pid: int


@dataclass(frozen=True)
class PerfEventLinkInfo(LinkInfo):
    """A link to a perf event: tracepoint, kprobe, uprobe, or a sampling event.

    Kernels before 6.6 do not report these details: ``info`` of a perf_event link
    is then a plain :class:`LinkInfo` (``system.support("perf_event_link_info")``).

    ``event_type`` is ``"tracepoint"``, ``"kprobe"``, ``"kretprobe"``,
    ``"uprobe"``, ``"uretprobe"`` or ``"event"``; ``name`` the tracepoint,
    function or file; ``perf_type``/``config`` describe an ``"event"``.
    """

    event_type: str
    name: str
    offset: int
    addr: int
    missed: int
    cookie: int
    perf_type: int
    config: int


@dataclass(frozen=True)
class TCXLinkInfo(LinkInfo):
    ifindex: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class NetkitLinkInfo(LinkInfo):
    ifindex: int
    attach_type: Union[AttachType, int]


@dataclass(frozen=True)
class SockmapLinkInfo(LinkInfo):
    map_id: int
    attach_type: Union[AttachType, int]


for _name in __all__:
    globals()[_name].__module__ = "pylibbpf.link"
del _name
