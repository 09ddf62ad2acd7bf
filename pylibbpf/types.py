"""The kernel's BPF enums as Python IntEnums (values come from the compiled headers)."""
from __future__ import annotations

import enum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Type, TypeVar
    E = TypeVar("E", bound=enum.IntEnum)

from ._ffi import lib

__all__ = ["ProgramType", "MapType", "AttachType", "LinkType"]


class ProgramType(enum.IntEnum):
    """A BPF program type (``enum bpf_prog_type``)."""

    UNSPEC = lib.BPF_PROG_TYPE_UNSPEC
    SOCKET_FILTER = lib.BPF_PROG_TYPE_SOCKET_FILTER
    KPROBE = lib.BPF_PROG_TYPE_KPROBE
    SCHED_CLS = lib.BPF_PROG_TYPE_SCHED_CLS
    SCHED_ACT = lib.BPF_PROG_TYPE_SCHED_ACT
    TRACEPOINT = lib.BPF_PROG_TYPE_TRACEPOINT
    XDP = lib.BPF_PROG_TYPE_XDP
    PERF_EVENT = lib.BPF_PROG_TYPE_PERF_EVENT
    CGROUP_SKB = lib.BPF_PROG_TYPE_CGROUP_SKB
    CGROUP_SOCK = lib.BPF_PROG_TYPE_CGROUP_SOCK
    LWT_IN = lib.BPF_PROG_TYPE_LWT_IN
    LWT_OUT = lib.BPF_PROG_TYPE_LWT_OUT
    LWT_XMIT = lib.BPF_PROG_TYPE_LWT_XMIT
    SOCK_OPS = lib.BPF_PROG_TYPE_SOCK_OPS
    SK_SKB = lib.BPF_PROG_TYPE_SK_SKB
    CGROUP_DEVICE = lib.BPF_PROG_TYPE_CGROUP_DEVICE
    SK_MSG = lib.BPF_PROG_TYPE_SK_MSG
    RAW_TRACEPOINT = lib.BPF_PROG_TYPE_RAW_TRACEPOINT
    CGROUP_SOCK_ADDR = lib.BPF_PROG_TYPE_CGROUP_SOCK_ADDR
    LWT_SEG6LOCAL = lib.BPF_PROG_TYPE_LWT_SEG6LOCAL
    LIRC_MODE2 = lib.BPF_PROG_TYPE_LIRC_MODE2
    SK_REUSEPORT = lib.BPF_PROG_TYPE_SK_REUSEPORT
    FLOW_DISSECTOR = lib.BPF_PROG_TYPE_FLOW_DISSECTOR
    CGROUP_SYSCTL = lib.BPF_PROG_TYPE_CGROUP_SYSCTL
    RAW_TRACEPOINT_WRITABLE = lib.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE
    CGROUP_SOCKOPT = lib.BPF_PROG_TYPE_CGROUP_SOCKOPT
    TRACING = lib.BPF_PROG_TYPE_TRACING
    STRUCT_OPS = lib.BPF_PROG_TYPE_STRUCT_OPS
    EXT = lib.BPF_PROG_TYPE_EXT
    LSM = lib.BPF_PROG_TYPE_LSM
    SK_LOOKUP = lib.BPF_PROG_TYPE_SK_LOOKUP
    SYSCALL = lib.BPF_PROG_TYPE_SYSCALL
    NETFILTER = lib.BPF_PROG_TYPE_NETFILTER

    @property
    def libbpf_name(self) -> str:
        """libbpf's own name for it, e.g. ``"socket_filter"``."""
        return _str(lib.libbpf_bpf_prog_type_str(self.value))


class MapType(enum.IntEnum):
    """A BPF map type (``enum bpf_map_type``)."""

    UNSPEC = lib.BPF_MAP_TYPE_UNSPEC
    HASH = lib.BPF_MAP_TYPE_HASH
    ARRAY = lib.BPF_MAP_TYPE_ARRAY
    PROG_ARRAY = lib.BPF_MAP_TYPE_PROG_ARRAY
    PERF_EVENT_ARRAY = lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY
    PERCPU_HASH = lib.BPF_MAP_TYPE_PERCPU_HASH
    PERCPU_ARRAY = lib.BPF_MAP_TYPE_PERCPU_ARRAY
    STACK_TRACE = lib.BPF_MAP_TYPE_STACK_TRACE
    CGROUP_ARRAY = lib.BPF_MAP_TYPE_CGROUP_ARRAY
    LRU_HASH = lib.BPF_MAP_TYPE_LRU_HASH
    LRU_PERCPU_HASH = lib.BPF_MAP_TYPE_LRU_PERCPU_HASH
    LPM_TRIE = lib.BPF_MAP_TYPE_LPM_TRIE
    ARRAY_OF_MAPS = lib.BPF_MAP_TYPE_ARRAY_OF_MAPS
    HASH_OF_MAPS = lib.BPF_MAP_TYPE_HASH_OF_MAPS
    DEVMAP = lib.BPF_MAP_TYPE_DEVMAP
    SOCKMAP = lib.BPF_MAP_TYPE_SOCKMAP
    CPUMAP = lib.BPF_MAP_TYPE_CPUMAP
    XSKMAP = lib.BPF_MAP_TYPE_XSKMAP
    SOCKHASH = lib.BPF_MAP_TYPE_SOCKHASH
    CGROUP_STORAGE = lib.BPF_MAP_TYPE_CGROUP_STORAGE
    REUSEPORT_SOCKARRAY = lib.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY
    PERCPU_CGROUP_STORAGE = lib.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
    QUEUE = lib.BPF_MAP_TYPE_QUEUE
    STACK = lib.BPF_MAP_TYPE_STACK
    SK_STORAGE = lib.BPF_MAP_TYPE_SK_STORAGE
    DEVMAP_HASH = lib.BPF_MAP_TYPE_DEVMAP_HASH
    STRUCT_OPS = lib.BPF_MAP_TYPE_STRUCT_OPS
    RINGBUF = lib.BPF_MAP_TYPE_RINGBUF
    INODE_STORAGE = lib.BPF_MAP_TYPE_INODE_STORAGE
    TASK_STORAGE = lib.BPF_MAP_TYPE_TASK_STORAGE
    BLOOM_FILTER = lib.BPF_MAP_TYPE_BLOOM_FILTER
    USER_RINGBUF = lib.BPF_MAP_TYPE_USER_RINGBUF
    CGRP_STORAGE = lib.BPF_MAP_TYPE_CGRP_STORAGE
    ARENA = lib.BPF_MAP_TYPE_ARENA

    @property
    def libbpf_name(self) -> str:
        """libbpf's own name for it, e.g. ``"socket_filter"``."""
        return _str(lib.libbpf_bpf_map_type_str(self.value))


class AttachType(enum.IntEnum):
    """A BPF attach type (``enum bpf_attach_type``)."""

    CGROUP_INET_INGRESS = lib.BPF_CGROUP_INET_INGRESS
    CGROUP_INET_EGRESS = lib.BPF_CGROUP_INET_EGRESS
    CGROUP_INET_SOCK_CREATE = lib.BPF_CGROUP_INET_SOCK_CREATE
    CGROUP_SOCK_OPS = lib.BPF_CGROUP_SOCK_OPS
    SK_SKB_STREAM_PARSER = lib.BPF_SK_SKB_STREAM_PARSER
    SK_SKB_STREAM_VERDICT = lib.BPF_SK_SKB_STREAM_VERDICT
    CGROUP_DEVICE = lib.BPF_CGROUP_DEVICE
    SK_MSG_VERDICT = lib.BPF_SK_MSG_VERDICT
    CGROUP_INET4_BIND = lib.BPF_CGROUP_INET4_BIND
    CGROUP_INET6_BIND = lib.BPF_CGROUP_INET6_BIND
    CGROUP_INET4_CONNECT = lib.BPF_CGROUP_INET4_CONNECT
    CGROUP_INET6_CONNECT = lib.BPF_CGROUP_INET6_CONNECT
    CGROUP_INET4_POST_BIND = lib.BPF_CGROUP_INET4_POST_BIND
    CGROUP_INET6_POST_BIND = lib.BPF_CGROUP_INET6_POST_BIND
    CGROUP_UDP4_SENDMSG = lib.BPF_CGROUP_UDP4_SENDMSG
    CGROUP_UDP6_SENDMSG = lib.BPF_CGROUP_UDP6_SENDMSG
    LIRC_MODE2 = lib.BPF_LIRC_MODE2
    FLOW_DISSECTOR = lib.BPF_FLOW_DISSECTOR
    CGROUP_SYSCTL = lib.BPF_CGROUP_SYSCTL
    CGROUP_UDP4_RECVMSG = lib.BPF_CGROUP_UDP4_RECVMSG
    CGROUP_UDP6_RECVMSG = lib.BPF_CGROUP_UDP6_RECVMSG
    CGROUP_GETSOCKOPT = lib.BPF_CGROUP_GETSOCKOPT
    CGROUP_SETSOCKOPT = lib.BPF_CGROUP_SETSOCKOPT
    TRACE_RAW_TP = lib.BPF_TRACE_RAW_TP
    TRACE_FENTRY = lib.BPF_TRACE_FENTRY
    TRACE_FEXIT = lib.BPF_TRACE_FEXIT
    MODIFY_RETURN = lib.BPF_MODIFY_RETURN
    LSM_MAC = lib.BPF_LSM_MAC
    TRACE_ITER = lib.BPF_TRACE_ITER
    CGROUP_INET4_GETPEERNAME = lib.BPF_CGROUP_INET4_GETPEERNAME
    CGROUP_INET6_GETPEERNAME = lib.BPF_CGROUP_INET6_GETPEERNAME
    CGROUP_INET4_GETSOCKNAME = lib.BPF_CGROUP_INET4_GETSOCKNAME
    CGROUP_INET6_GETSOCKNAME = lib.BPF_CGROUP_INET6_GETSOCKNAME
    XDP_DEVMAP = lib.BPF_XDP_DEVMAP
    CGROUP_INET_SOCK_RELEASE = lib.BPF_CGROUP_INET_SOCK_RELEASE
    XDP_CPUMAP = lib.BPF_XDP_CPUMAP
    SK_LOOKUP = lib.BPF_SK_LOOKUP
    XDP = lib.BPF_XDP
    SK_SKB_VERDICT = lib.BPF_SK_SKB_VERDICT
    SK_REUSEPORT_SELECT = lib.BPF_SK_REUSEPORT_SELECT
    SK_REUSEPORT_SELECT_OR_MIGRATE = lib.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE
    PERF_EVENT = lib.BPF_PERF_EVENT
    TRACE_KPROBE_MULTI = lib.BPF_TRACE_KPROBE_MULTI
    LSM_CGROUP = lib.BPF_LSM_CGROUP
    STRUCT_OPS = lib.BPF_STRUCT_OPS
    NETFILTER = lib.BPF_NETFILTER
    TCX_INGRESS = lib.BPF_TCX_INGRESS
    TCX_EGRESS = lib.BPF_TCX_EGRESS
    TRACE_UPROBE_MULTI = lib.BPF_TRACE_UPROBE_MULTI
    CGROUP_UNIX_CONNECT = lib.BPF_CGROUP_UNIX_CONNECT
    CGROUP_UNIX_SENDMSG = lib.BPF_CGROUP_UNIX_SENDMSG
    CGROUP_UNIX_RECVMSG = lib.BPF_CGROUP_UNIX_RECVMSG
    CGROUP_UNIX_GETPEERNAME = lib.BPF_CGROUP_UNIX_GETPEERNAME
    CGROUP_UNIX_GETSOCKNAME = lib.BPF_CGROUP_UNIX_GETSOCKNAME
    NETKIT_PRIMARY = lib.BPF_NETKIT_PRIMARY
    NETKIT_PEER = lib.BPF_NETKIT_PEER
    TRACE_KPROBE_SESSION = lib.BPF_TRACE_KPROBE_SESSION
    TRACE_UPROBE_SESSION = lib.BPF_TRACE_UPROBE_SESSION  # SEC("uprobe.session"), libbpf 1.6
    TRACE_FSESSION = lib.BPF_TRACE_FSESSION  # SEC("fsession/…"), libbpf 1.7

    @property
    def libbpf_name(self) -> str:
        """libbpf's own name for it, e.g. ``"socket_filter"``."""
        return _str(lib.libbpf_bpf_attach_type_str(self.value))


class LinkType(enum.IntEnum):
    """A BPF link type (``enum bpf_link_type``)."""

    UNSPEC = lib.BPF_LINK_TYPE_UNSPEC
    RAW_TRACEPOINT = lib.BPF_LINK_TYPE_RAW_TRACEPOINT
    TRACING = lib.BPF_LINK_TYPE_TRACING
    CGROUP = lib.BPF_LINK_TYPE_CGROUP
    ITER = lib.BPF_LINK_TYPE_ITER
    NETNS = lib.BPF_LINK_TYPE_NETNS
    XDP = lib.BPF_LINK_TYPE_XDP
    PERF_EVENT = lib.BPF_LINK_TYPE_PERF_EVENT
    KPROBE_MULTI = lib.BPF_LINK_TYPE_KPROBE_MULTI
    STRUCT_OPS = lib.BPF_LINK_TYPE_STRUCT_OPS
    NETFILTER = lib.BPF_LINK_TYPE_NETFILTER
    TCX = lib.BPF_LINK_TYPE_TCX
    UPROBE_MULTI = lib.BPF_LINK_TYPE_UPROBE_MULTI
    NETKIT = lib.BPF_LINK_TYPE_NETKIT
    SOCKMAP = lib.BPF_LINK_TYPE_SOCKMAP

    @property
    def libbpf_name(self) -> str:
        """libbpf's own name for it, e.g. ``"socket_filter"``."""
        return _str(lib.libbpf_bpf_link_type_str(self.value))


def _str(ptr: object) -> str:
    from ._ffi import ffi

    return "" if ptr == ffi.NULL else ffi.string(ptr).decode()


def _coerce(enum_cls: Type[E], value: object, what: str) -> E:
    """Accept a member, its name (any case, libbpf's or ours) or its number."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        if key in enum_cls.__members__:
            return enum_cls[key]
        for member in enum_cls:
            if getattr(member, "libbpf_name") == value:
                return member
        raise ValueError(f"unknown {what} {value!r}; known: "
                         + ", ".join(m.name.lower() for m in enum_cls))
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return enum_cls(value)
        except ValueError:
            raise ValueError(f"unknown {what} number {value}") from None
    raise TypeError(f"{what} must be a {enum_cls.__name__}, a name or a number, "
                    f"not {type(value).__name__}")
