"""pylibbpf: load, attach and script eBPF programs from Python, with libbpf compiled in.

>>> import pylibbpf
>>> with pylibbpf.Object("prog.bpf.o") as obj:        # doctest: +SKIP
...     obj.load()
...     links = obj.attach_all()
"""
from __future__ import annotations

import builtins as _builtins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List

from ._ffi import ffi as _ffi_mod, lib as _lib
from .btf import vmlinux_h
from .errors import (BPFError, BPFExistsError, BPFKeyError, BPFNotFoundError, BPFPermissionError,
                     ClosedError, ELFError, NoAttachTargetError, NotSupportedError,
                     VerifierError)
from .link import Link, Links
from .map import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map
from .object import Object
from .program import Program
from .ringbuf import RingBuffer, UserRingBuffer
from .perfbuf import PerfBuffer
from .btf import BTF
from .globals import GlobalSection
from .arena import Arena
from .typed import CString, PerCPU, Record
from .types import AttachType, LinkType, MapType, ProgramType
# small, and every attach uses them: a first attach costs what it did
from .attach import _args as _a, _common as _c, _kinds as _k  # noqa: E402
del _a, _c, _k

#: names imported on first use (PEP 562): the compiler, the ELF reader and the tools
#: pull in subprocess, hashlib, pathlib, ... which a script that loads a program
#: never needs. name -> (module, attribute; "" for the module itself)
_LAZY = {
    "CompileError": (".compiler", "CompileError"), "compile": (".compiler", "compile"),
    "include_dir": (".compiler", "include_dir"), "vmlinux_h_path": (".compiler", "vmlinux_h_path"),
    "Clang": (".compiler", "Clang"), "find_clang": (".compiler", "find_clang"),
    "XDPQuery": (".attach.xdp", "XDPQuery"), "xdp_query": (".attach.xdp", "xdp_query"),
    "in_netns": (".attach._net", "in_netns"),
    "elf": (".elf", ""), "flamegraph": (".flamegraph", ""), "histogram": (".histogram", ""),
    "symbolize": (".symbolize", ""), "syscalls": (".syscalls", ""),
    "trace_pipe": (".trace_pipe", ""), "system": (".system", ""),
    "print_linear_hist": (".histogram", "print_linear_hist"),
    "print_log2_hist": (".histogram", "print_log2_hist"),
    "Symbolizer": (".symbolize", "Symbolizer"),
    "syscall_name": (".syscalls", "syscall_name"), "syscall_number": (".syscalls", "syscall_number"),
    "TracePipe": (".trace_pipe", "TracePipe"),
    "AmbiguousSymbolError": (".elf", "AmbiguousSymbolError"),
    "SymbolNotFoundError": (".elf", "SymbolNotFoundError"),
    "USDTNotFoundError": (".elf", "USDTNotFoundError"),
    "AttachQuery": (".attach.raw", "AttachQuery"), "query_raw": (".attach.raw", "query_raw"),
    "cgroup_query": (".attach.cgroup", "cgroup_query"),
    "netns_query": (".attach.netns", "netns_query"),
    "sockmap_query": (".attach.sockmap", "sockmap_query"),
    "TCLink": (".attach.tc", "TCLink"), "tc_query": (".attach.tc", "tc_query"),
    "tcx_query": (".attach.tcx", "tcx_query"),
    "Iterator": (".attach.iter", "Iterator"),
    "PerfEventLinks": (".attach.perf_event", "PerfEventLinks"),
    "PerfEvents": (".attach.perf_event", "PerfEvents"),
    "open_perf_events": (".attach.perf_event", "open_perf_events"),
    "ProgramStream": (".stream", "ProgramStream"), "Token": (".token", "Token"),
}
_LAZY.update((n, ("._infos", n)) for n in ("MapInfo", "ProgramInfo", "TestRunResult"))
_LAZY.update((n, ("._linkinfo", n)) for n in (
    "LinkInfo", "RawTracepointLinkInfo", "TracingLinkInfo", "CgroupLinkInfo", "IterLinkInfo",
    "NetnsLinkInfo", "XDPLinkInfo", "StructOpsLinkInfo", "NetfilterLinkInfo",
    "KprobeMultiLinkInfo", "UprobeMultiLinkInfo", "PerfEventLinkInfo", "TCXLinkInfo",
    "NetkitLinkInfo", "SockmapLinkInfo"))

if TYPE_CHECKING:
    from .compiler import Clang, CompileError, compile, find_clang, include_dir, vmlinux_h_path
    from .attach.xdp import XDPQuery, xdp_query
    from .attach._net import in_netns
    from . import elf
    from . import flamegraph, histogram, symbolize, syscalls, trace_pipe, system
    from .histogram import print_linear_hist, print_log2_hist
    from .symbolize import Symbolizer
    from .syscalls import syscall_name, syscall_number
    from .trace_pipe import TracePipe
    from .elf import AmbiguousSymbolError, SymbolNotFoundError, USDTNotFoundError
    from .attach.raw import AttachQuery, query_raw
    from .attach.cgroup import cgroup_query
    from .attach.netns import netns_query
    from .attach.sockmap import sockmap_query
    from .attach.tc import TCLink, tc_query
    from .attach.tcx import tcx_query
    from .attach.iter import Iterator
    from .attach.perf_event import PerfEventLinks, PerfEvents, open_perf_events
    from ._infos import MapInfo, ProgramInfo, TestRunResult
    from .stream import ProgramStream
    from .token import Token
    from ._linkinfo import (CgroupLinkInfo, IterLinkInfo, KprobeMultiLinkInfo, LinkInfo,
                            NetfilterLinkInfo, NetkitLinkInfo, NetnsLinkInfo,
                            PerfEventLinkInfo, RawTracepointLinkInfo, SockmapLinkInfo,
                            StructOpsLinkInfo, TCXLinkInfo, TracingLinkInfo,
                            UprobeMultiLinkInfo, XDPLinkInfo)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib
    mod = importlib.import_module(module, __name__)
    value = getattr(mod, attr) if attr else mod
    _builtins.globals()[name] = value  # (the name `globals` is our submodule)
    return value


def __dir__() -> List[str]:
    return sorted(set(_builtins.globals()) | set(_LAZY))


__version__ = "0.1.0"


def libbpf_version() -> str:
    """The version of the libbpf compiled into pylibbpf, e.g. ``"1.7"``."""
    return f"{_lib.libbpf_major_version()}.{_lib.libbpf_minor_version()}"


__all__ = [
    "Object", "Program", "Map", "Link", "Links", "RingBuffer",
    "PerfBuffer", "UserRingBuffer", "BTF", "GlobalSection", "Arena", "CString", "PerCPU",
    "Record",
    "ProgramType", "MapType", "AttachType", "LinkType",
    "ProgramInfo", "MapInfo", "LinkInfo", "TestRunResult", "XDPQuery", "xdp_query",
    "BPFError", "BPFPermissionError", "BPFNotFoundError", "BPFKeyError", "BPFExistsError",
    "NotSupportedError", "NoAttachTargetError", "VerifierError", "ELFError", "ClosedError",
    "CompileError",
    "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK",
    "SymbolNotFoundError", "AmbiguousSymbolError", "USDTNotFoundError", "elf",
    "in_netns", "compile", "find_clang", "Clang", "include_dir", "vmlinux_h", "vmlinux_h_path",
    "libbpf_version",
    "AttachQuery", "query_raw", "cgroup_query", "netns_query", "sockmap_query",
    "TCLink", "tc_query", "tcx_query",
    "Iterator", "PerfEvents", "PerfEventLinks", "open_perf_events",
    "RawTracepointLinkInfo", "TracingLinkInfo", "CgroupLinkInfo", "IterLinkInfo",
    "NetnsLinkInfo", "XDPLinkInfo", "StructOpsLinkInfo", "NetfilterLinkInfo",
    "KprobeMultiLinkInfo", "UprobeMultiLinkInfo", "PerfEventLinkInfo", "TCXLinkInfo",
    "NetkitLinkInfo", "SockmapLinkInfo",
    "flamegraph", "histogram", "symbolize", "syscalls", "trace_pipe", "system",
    "print_log2_hist", "print_linear_hist", "Symbolizer", "syscall_name", "syscall_number",
    "TracePipe", "ProgramStream", "Token",
]
del _ffi_mod
