"""pylibbpf: load, attach and script eBPF programs from Python, with libbpf compiled in.

>>> import pylibbpf
>>> with pylibbpf.Object("prog.bpf.o") as obj:        # doctest: +SKIP
...     obj.load()
...     links = obj.attach_all()
"""
from __future__ import annotations

from ._ffi import ffi as _ffi_mod, lib as _lib
from .btf import vmlinux_h
from .compiler import Clang, CompileError, compile, find_clang, include_dir, vmlinux_h_path
from .errors import (BPFError, BPFExistsError, BPFKeyError, BPFNotFoundError, BPFPermissionError,
                     ClosedError, ELFError, NoAttachTargetError, NotSupportedError,
                     VerifierError)
from .link import Link, LinkInfo, Links
from .map import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map, MapInfo
from .object import Object
from .program import Program, ProgramInfo, TestRunResult
from .ringbuf import RingBuffer, UserRingBuffer
from .perfbuf import PerfBuffer
from .btf import BTF
from .globals import GlobalSection
from .typed import CString, PerCPU, Record
from .types import AttachType, LinkType, MapType, ProgramType
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
from .link import (CgroupLinkInfo, IterLinkInfo, KprobeMultiLinkInfo, NetfilterLinkInfo,
                   NetkitLinkInfo, NetnsLinkInfo, PerfEventLinkInfo, RawTracepointLinkInfo,
                   SockmapLinkInfo, StructOpsLinkInfo, TCXLinkInfo, TracingLinkInfo,
                   UprobeMultiLinkInfo, XDPLinkInfo)

__version__ = "0.1.0"


def libbpf_version() -> str:
    """The version of the libbpf compiled into pylibbpf, e.g. ``"1.7"``."""
    return f"{_lib.libbpf_major_version()}.{_lib.libbpf_minor_version()}"


__all__ = [
    "Object", "Program", "Map", "Link", "Links", "RingBuffer",
    "PerfBuffer", "UserRingBuffer", "BTF", "GlobalSection", "CString", "PerCPU", "Record",
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
    "TracePipe",
]
del _ffi_mod
