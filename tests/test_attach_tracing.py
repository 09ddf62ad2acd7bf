"""Kernel tracing attach kinds: each one that this kernel can do is attached,
triggered from a child process, checked to have run (with its cookie), closed,
and checked to have stopped. Kinds the kernel lacks must raise a clean
NotSupportedError naming the kind (and, on a kernel that has them, fire)."""
from __future__ import annotations

import gc
import errno
import os
import pickle
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

import pylibbpf
from pylibbpf import LinkType, NotSupportedError, ProgramType
from pylibbpf.attach import _kinds
from pylibbpf.attach.perf_event import PerfEventLinks, PerfEvents, open_perf_events
from _kernel import expect_unsupported, refused, support
from pylibbpf.link import (IterLinkInfo, LinkInfo, PerfEventLinkInfo, RawTracepointLinkInfo,
                           StructOpsLinkInfo)

# which program counted (enum in tests/bpf/attach_tp.bpf.c)
W_TP, W_TP_ALT, W_RAW_TP, W_TP_BTF, W_PERF, W_SEC_TP = 1, 2, 3, 4, 5, 6

GETPGID_CHILD = ("import ctypes, os, sys; ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0);"
                 " os.getpgid(0); os.getpgid(0); print(os.getpid())")
BUSY_CHILD = ("import os, sys, time; print(os.getpid(), flush=True); t = time.time()\n"
              "while time.time() - t < float(sys.argv[1]): pass")


def run_getpgid_child(comm: str = "plb-tracing") -> int:
    """A child process that calls getpgid() twice; returns its pid."""
    out = subprocess.run([sys.executable, "-c", GETPGID_CHILD, comm], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def run_busy_child(seconds: float = 0.4) -> int:
    out = subprocess.run([sys.executable, "-c", BUSY_CHILD, str(seconds)], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[0])


def raw_view(m: pylibbpf.Map) -> pylibbpf.Map:
    """The map with bytes keys and values (maps may decode values from BTF)."""
    return getattr(m, "raw", m)


def hit(obj: pylibbpf.Object, pid: int, which: int) -> Optional[tuple[int, int]]:
    """(count, cookie) that program ``which`` recorded for process ``pid``, or None."""
    raw = raw_view(obj.maps["hits"]).lookup(struct.pack("II", pid, which))
    return None if raw is None else struct.unpack("QQ", raw)


def perf_details(info: LinkInfo) -> Optional[PerfEventLinkInfo]:
    """A perf_event link's details, where the kernel reports them (Linux 6.6+); on
    older kernels its info is a plain LinkInfo of type perf_event, and this is None."""
    assert info.type == LinkType.PERF_EVENT
    if support("perf_event_link_info"):
        assert isinstance(info, PerfEventLinkInfo)
        return info
    assert type(info) is LinkInfo
    return None


@pytest.fixture
def tp_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj:
        obj.load()
        yield obj


# --- tracepoints ---------------------------------------------------------------------

def test_tracepoint_fires_with_cookie_then_stops(tp_obj) -> None:
    prog = tp_obj.programs["tp_getpgid"]
    link = prog.attach_tracepoint("syscalls", "sys_enter_getpgid", cookie=0xC0FFEE)
    pid = run_getpgid_child()
    assert hit(tp_obj, pid, W_TP) == (2, 0xC0FFEE)
    info = link.info
    assert info.type == LinkType.PERF_EVENT and info.program_id == prog.id
    details = perf_details(info)
    if details:
        assert (details.event_type, details.name, details.cookie) == (
            "tracepoint", "sys_enter_getpgid", 0xC0FFEE)
    link.close()
    assert link.closed
    pid2 = run_getpgid_child()
    assert hit(tp_obj, pid2, W_TP) is None


def test_attach_by_section_tracepoint(tp_obj) -> None:
    with tp_obj.programs["sec_tp_getpgid"].attach() as link:
        pid = run_getpgid_child()
        assert link.info.type == LinkType.PERF_EVENT
    assert hit(tp_obj, pid, W_SEC_TP) == (2, 0)
    assert hit(tp_obj, run_getpgid_child(), W_SEC_TP) is None


def test_section_without_target_names_the_method(tp_obj) -> None:
    with pytest.raises(pylibbpf.NoAttachTargetError, match=r"does not say where to attach.*"
                                                           r"attach_tracepoint") as exc:
        tp_obj.programs["tp_getpgid"].attach()
    e = exc.value
    assert isinstance(e, pylibbpf.BPFError) and not isinstance(e, NotSupportedError)
    assert pylibbpf.errors.NoAttachTargetError is pylibbpf.NoAttachTargetError
    assert e.errno == errno.EOPNOTSUPP
    assert (e.program, e.section) == ("tp_getpgid", tp_obj.programs["tp_getpgid"].section)
    assert e.method == "attach_tracepoint(category, name)"
    assert str(e).startswith(f"attach program 'tp_getpgid' (SEC {e.section!r}): the section "
                             "does not say where to attach; use attach_tracepoint(")


def test_missing_tracepoint_is_named(tp_obj) -> None:
    prog = tp_obj.programs["tp_getpgid"]
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no tracepoint 'sys_enter_nope'"):
        prog.attach_tracepoint("syscalls", "sys_enter_nope")
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no tracepoint category 'nocat'"):
        prog.attach_tracepoint("nocat", "x")


def _suggestions(exc: pytest.ExceptionInfo[pylibbpf.BPFNotFoundError]) -> List[str]:
    line = str(exc.value).split("\n  did you mean: ", 1)[1].splitlines()[0]
    return line.removesuffix(" [ENOENT]").split(", ")


@pytest.mark.parametrize("category, name, first", [
    ("syscall", "sys_enter_getpgid", "syscalls:sys_enter_getpgid"),    # category misspelt
    ("syscalls", "sys_enter_getpgd", "syscalls:sys_enter_getpgid"),    # name misspelt
    ("syscals", "sys_entr_getpgid", "syscalls:sys_enter_getpgid"),     # both
    ("raw_syscalls", "sys_enter_getpgid", "syscalls:sys_enter_getpgid"),  # other category
])
def test_missing_tracepoint_suggests_close_ones(tp_obj, category, name, first) -> None:
    """Like a missing uprobe symbol: the closest tracepoints that exist, read from
    tracefs's events directory, category and name."""
    prog = tp_obj.programs["tp_getpgid"]
    with pytest.raises(pylibbpf.BPFNotFoundError) as exc:
        prog.attach_tracepoint(category, name)
    msg = str(exc.value)
    assert msg.startswith(f"attach tracepoint program 'tp_getpgid' to '{category}:{name}': "
                          "no tracepoint "), msg
    assert _suggestions(exc)[0] == first, msg
    assert f"{category}:{name}" not in _suggestions(exc)


def test_missing_raw_tracepoint_suggests_and_nothing_close_lists_none(tp_obj) -> None:
    with pytest.raises(pylibbpf.BPFNotFoundError) as exc:
        tp_obj.programs["tp_getpgid"].attach_tracepoint("nocat", "nothing_like_it")
    assert "did you mean" not in str(exc.value)  # nothing close: no list
    with pytest.raises(pylibbpf.BPFNotFoundError) as exc:
        tp_obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_entr")
    assert str(exc.value).startswith("attach raw tracepoint program 'raw_sys_enter' to "
                                     "'sys_entr': the kernel has no tracepoint 'sys_entr'")
    assert _suggestions(exc)[0] == "sys_enter"


def test_tracepoint_arguments_are_checked(tp_obj) -> None:
    prog = tp_obj.programs["tp_getpgid"]
    with pytest.raises(ValueError, match="cookie"):
        prog.attach_tracepoint("syscalls", "sys_enter_getpgid", cookie=-1)
    with pytest.raises(ValueError, match="tracepoint name"):
        prog.attach_tracepoint("syscalls", "")
    with pytest.raises(ValueError, match="invalid tracepoint category"):
        prog.attach_tracepoint("../x", "y")
    with pytest.raises(TypeError):
        prog.attach_tracepoint("syscalls", 3)  # type: ignore[arg-type]


def test_raw_tracepoint_fires_with_cookie_then_stops(tp_obj) -> None:
    """Fires on every kernel; the cookie where the kernel has raw_tp cookies (6.10+),
    elsewhere asking for one is the clean refusal, never a cookie silently lost."""
    prog = tp_obj.programs["raw_sys_enter"]
    cookie = 77 if support("raw_tracepoint_cookie") else 0
    if not cookie:
        with refused("raw_tracepoint_cookie", "raw_sys_enter", "sys_enter"):
            prog.attach_raw_tracepoint("sys_enter", cookie=77)
    link = prog.attach_raw_tracepoint("sys_enter", cookie=cookie)
    pid = run_getpgid_child()
    assert hit(tp_obj, pid, W_RAW_TP) == (2, cookie)
    info = link.info
    assert isinstance(info, RawTracepointLinkInfo) and info.tp_name == "sys_enter"
    link.close()
    assert hit(tp_obj, run_getpgid_child(), W_RAW_TP) is None


def test_missing_raw_tracepoint_is_named(tp_obj) -> None:
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no tracepoint 'no_such_tp'"):
        tp_obj.programs["raw_sys_enter"].attach_raw_tracepoint("no_such_tp")


def test_tp_btf_fires_with_cookie_then_stops(tp_obj) -> None:
    prog = tp_obj.programs["btf_sys_enter"]
    cookie = 5 if support("raw_tracepoint_cookie") else 0
    if not cookie:
        with refused("raw_tracepoint_cookie", "btf_sys_enter", "tp_btf"):
            prog.attach_trace(cookie=5)
    link = prog.attach_trace(cookie=cookie)
    pid = run_getpgid_child()
    assert hit(tp_obj, pid, W_TP_BTF) == (2, cookie)
    info = link.info  # tp_btf attaches through a raw tracepoint link
    assert isinstance(info, RawTracepointLinkInfo) and info.tp_name == "sys_enter"
    link.close()
    assert hit(tp_obj, run_getpgid_child(), W_TP_BTF) is None


def test_wrong_program_type_fails_before_any_syscall(tp_obj) -> None:
    tp, raw = tp_obj.programs["tp_getpgid"], tp_obj.programs["raw_sys_enter"]
    cases = [
        (lambda: raw.attach_tracepoint("syscalls", "sys_enter_getpgid"), "needs tracepoint"),
        (lambda: tp.attach_raw_tracepoint("sys_enter"), "needs raw_tracepoint"),
        (lambda: tp.attach_kprobe("do_getpgid"), "needs kprobe"),
        (lambda: tp.attach_kprobe_multi("do_*"), "needs kprobe"),
        (lambda: tp.attach_ksyscall("getpgid"), "needs kprobe"),
        (lambda: tp.attach_trace(), "needs tracing"),
        (lambda: tp.attach_lsm(), "needs lsm"),
        (lambda: tp.attach_freplace(raw, "f"), "needs ext"),
        (lambda: tp.attach_iter(), "needs tracing"),
        (lambda: raw.attach_perf_event(0), "needs perf_event"),
        (lambda: tp_obj.maps["hits"].attach_struct_ops(), "not struct_ops"),
    ]
    for call, message in cases:
        with pytest.raises(pylibbpf.BPFError, match=message):
            call()


# --- perf events -----------------------------------------------------------------------

def test_perf_event_cpu_clock_samples_then_stops(tp_obj) -> None:
    prog = tp_obj.programs["on_sample"]
    attached = prog.attach_perf_events("cpu-clock", sample_freq=2000, cookie=42)
    assert isinstance(attached, PerfEventLinks)
    cpus = _kinds_online_cpus()
    assert len(attached) == len(cpus)
    fds = attached.events.fds if attached.events else []
    pid = run_busy_child()
    count, cookie = hit(tp_obj, pid, W_PERF) or (0, 0)
    assert count > 10 and cookie == 42
    details = perf_details(attached.links[0].info)
    # (the kernel reports cpu-clock under its own internal PMU type, not 1)
    if details:
        assert (details.event_type, details.config, details.cookie) == ("event", 0, 42)
    links = attached.links
    attached.close()
    attached.close()
    assert attached.closed and all(link.closed for link in links)
    for fd in fds:  # the events were closed with the links
        with pytest.raises(OSError):
            os.fstat(fd)
    assert hit(tp_obj, run_busy_child(0.2), W_PERF) is None


def test_perf_events_attached_with_dont_enable_wait_for_enable(tp_obj) -> None:
    """dont_enable (libbpf 1.7): attached, the program runs only once the events
    are enabled, and stops again when they are disabled."""
    prog = tp_obj.programs["on_sample"]
    with prog.attach_perf_events("cpu-clock", sample_freq=2000, cookie=5,
                                 dont_enable=True) as attached:
        events = attached.events
        assert events is not None
        assert hit(tp_obj, run_busy_child(0.3), W_PERF) is None   # disabled: never ran
        events.enable()
        pid = run_busy_child()
        count, cookie = hit(tp_obj, pid, W_PERF) or (0, 0)
        assert count > 10 and cookie == 5
        events.disable()
        assert hit(tp_obj, run_busy_child(0.3), W_PERF) is None
    with open_perf_events("cpu-clock", sample_period=100_000, cpus=[0]) as events:
        link = prog.attach_perf_event(events.fds[0], dont_enable=True)
        link.close()
    with pytest.raises(pylibbpf.ClosedError):
        events.enable()


def _kinds_online_cpus() -> list[int]:
    from pylibbpf.attach.perf_event import online_cpus

    return online_cpus()


def test_attach_perf_event_to_own_fd_leaves_it_open(tp_obj) -> None:
    with open_perf_events("cpu-clock", sample_period=100_000, cpus=[0]) as events:
        assert isinstance(events, PerfEvents) and events.cpus == [0]
        fd = events.fds[0]
        link = tp_obj.programs["on_sample"].attach_perf_event(fd, cookie=9)
        link.close()
        os.fstat(fd)  # still ours
    assert events.closed
    with pytest.raises(OSError):
        os.fstat(fd)


def test_perf_event_link_info_names_the_event(tp_obj) -> None:
    with tp_obj.programs["on_sample"].attach_perf_events("page-faults", sample_period=10,
                                                         cookie=8) as attached:
        details = perf_details(attached.links[0].info)
    if details:
        assert (details.event_type, details.perf_type, details.config, details.cookie) == \
            ("event", 1, 2, 8)


def test_perf_events_for_one_process(tp_obj) -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD, "1.0"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        with tp_obj.programs["on_sample"].attach_perf_events(
                "task-clock", sample_period=1_000_000, cpus=[-1], pid=pid, cookie=3):
            child.wait(timeout=10)
    finally:
        child.kill()
        child.wait()
    count, cookie = hit(tp_obj, pid, W_PERF) or (0, 0)
    assert count > 5 and cookie == 3
    assert hit(tp_obj, os.getpid(), W_PERF) is None  # only that process was sampled


def test_perf_event_arguments_are_checked(tp_obj) -> None:
    with pytest.raises(ValueError, match="unknown perf event 'bogus'"):
        open_perf_events("bogus")
    with pytest.raises(ValueError, match="not both"):
        open_perf_events(sample_period=1, sample_freq=1)
    with pytest.raises(ValueError, match="needs a pid"):
        open_perf_events(cpus=[-1])
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no process"):
        open_perf_events(cpus=[-1], pid=2 ** 22 + 12345)
    with pytest.raises(pylibbpf.BPFError, match="not a perf event"):
        tp_obj.programs["on_sample"].attach_perf_event(tp_obj.maps["hits"].fd)


def test_hardware_event_without_pmu_is_not_supported() -> None:
    if any(p.startswith("cpu") for p in _kinds.event_sources()):
        with open_perf_events("cycles", sample_period=1_000_000) as events:
            assert len(events) >= 1
        return
    expect_unsupported("hardware_pmu")
    with pytest.raises(NotSupportedError, match="'cycles'.*no hardware PMU"):
        open_perf_events("cycles", sample_period=1_000_000)


# --- bpf_iter --------------------------------------------------------------------------

def load_iterators(path: Path) -> pylibbpf.Object:
    """attach_iter.bpf.o with every iterator whose target this kernel loads."""
    return load_where(path, lambda prog: bool(support(prog.section)))


@pytest.fixture
def iter_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with load_iterators(bpf_objects["attach_iter"]) as obj:
        yield obj


def test_iterator_targets_this_kernel_refuses_are_named(bpf_objects) -> None:
    """Every iterator in the object either loads, or its load raises NotSupportedError
    naming the program, the target and the reason (never a VerifierError)."""
    with pylibbpf.Object(bpf_objects["attach_iter"]) as obj:
        sections = {name: prog.section for name, prog in obj.programs.items()}
    assert "iter/task" in sections.values() and "iter/bpf_map_elem" in sections.values()
    for name, section in sections.items():
        if support(section):
            load_only(bpf_objects["attach_iter"], name).close()
            continue
        with refused(section, name, "refuses this iterator target"):
            load_only(bpf_objects["attach_iter"], name)


def sleeping_child(comm: str) -> subprocess.Popen:
    code = ("import ctypes, sys, time; ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0);"
            " print('ready', flush=True); time.sleep(30)")
    child = subprocess.Popen([sys.executable, "-c", code, comm], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def test_task_iterator_lists_a_child(iter_obj) -> None:
    child = sleeping_child("plb-iter-task")
    try:
        link = iter_obj.programs["dump_task"].attach_iter()
        text = link.open_iter().read_text()
        assert f"{child.pid} plb-iter-task\n" in text
        assert f"{os.getpid()} " in text
        with link.open_iter() as it:  # every open is a fresh walk
            lines = list(it)
        assert f"{child.pid} plb-iter-task" in lines
        info = link.info
        assert isinstance(info, IterLinkInfo) and info.target_name == "task"
        link.close()
        with pytest.raises(pylibbpf.ClosedError):
            link.open_iter()
    finally:
        child.kill()
        child.wait()


def test_iterator_by_section(iter_obj) -> None:
    with iter_obj.programs["dump_task"].attach() as link:
        assert f"\n{os.getpid()} " in "\n" + link.open_iter().read_text()
        assert link.info.type == LinkType.ITER


def test_task_iterator_limited_to_one_process(iter_obj) -> None:
    child = sleeping_child("plb-iter-pid")
    try:
        with iter_obj.programs["dump_task"].attach_iter(pid=child.pid) as link:
            text = link.open_iter().read_text()
            assert link.info.pid == child.pid  # type: ignore[attr-defined]
    finally:
        child.kill()
        child.wait()
    assert text == f"{child.pid} plb-iter-pid\n"


def test_map_element_iterator(iter_obj, bpf_objects) -> None:
    if not support("iter/bpf_map_elem"):
        with refused("iter/bpf_map_elem", "dump_numbers", "refuses this iterator target"):
            load_only(bpf_objects["attach_iter"], "dump_numbers")
        return
    numbers = raw_view(iter_obj.maps["numbers"])
    expected = {k: k * k + 1000 for k in range(10)}
    for k, v in expected.items():
        numbers[struct.pack("I", k)] = struct.pack("Q", v)
    with iter_obj.programs["dump_numbers"].attach_iter(map=numbers) as link:
        it = link.open_iter()
        data = it.read()
        assert it.read() == b""  # the walk is over
        it.close()
        info = link.info
        assert isinstance(info, IterLinkInfo)
        assert (info.target_name, info.map_id) == ("bpf_map_elem", numbers.id)
    got = dict(line.split("=") for line in data.decode().split())
    assert {int(k): int(v) for k, v in got.items()} == expected


def test_map_iterator_needs_a_map(iter_obj) -> None:
    # checked before anything reaches the kernel: the same on every kernel
    with pytest.raises(ValueError, match="give map="):
        iter_obj.programs["dump_numbers"].attach_iter()
    with pytest.raises(ValueError, match="map= is for"):
        iter_obj.programs["dump_task"].attach_iter(map=iter_obj.maps["numbers"])


# --- struct_ops --------------------------------------------------------------------------

TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)


def available_ccs() -> list[str]:
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        return f.read().split()


def tcp_connection_with(cc: str) -> None:
    """One TCP connection over loopback whose client uses congestion control ``cc``."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc.encode())
            client.connect(server.getsockname())
            conn, _ = server.accept()
            with conn:
                client.sendall(b"x" * 100_000)
                got = 0
                while got < 100_000:
                    got += len(conn.recv(65536))
            assert client.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0") \
                == cc.encode()


def init_calls(obj: pylibbpf.Object, which: int) -> int:
    return int(struct.unpack("Q", raw_view(obj.maps["init_calls"])[struct.pack("I", which)])[0])


def without_struct_ops_links(obj: pylibbpf.Object) -> pylibbpf.Object:
    """Where the kernel has no struct_ops links (before Linux 6.4), the object's
    SEC(".struct_ops.link") maps are not created, so its legacy maps still load."""
    if not support("struct_ops_link"):
        for m in obj.maps.values():
            if m.type == pylibbpf.MapType.STRUCT_OPS and m.flags & BPF_F_LINK:
                m.autocreate = False
    return obj


BPF_F_LINK = 1 << 13


@pytest.mark.kind("struct_ops_link")
def test_struct_ops_congestion_control_registers_runs_and_unregisters(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_struct_ops"]) as obj:
        obj.load()
        assert "plb_cc" not in available_ccs()
        cc_map = obj.maps["plb_cc"]
        link = cc_map.attach_struct_ops()
        assert "plb_cc" in available_ccs()
        tcp_connection_with("plb_cc")
        assert init_calls(obj, 0) >= 1
        info = link.info
        assert isinstance(info, StructOpsLinkInfo) and info.map_id == cc_map.id
        link.close()
        assert "plb_cc" not in available_ccs()
        with pytest.raises(OSError):
            tcp_connection_with("plb_cc")


def test_legacy_struct_ops_unregisters_when_its_object_closes(bpf_objects) -> None:
    obj = without_struct_ops_links(pylibbpf.Object(bpf_objects["attach_struct_ops"]))
    obj.load()
    link = obj.maps["plb_cc_legacy"].attach_struct_ops()
    try:
        assert "plb_cc_legacy" in available_ccs()
        tcp_connection_with("plb_cc_legacy")
        assert init_calls(obj, 1) >= 1
        with pytest.raises(NotSupportedError, match="without a kernel link"):
            link.pin("/sys/fs/bpf/never")
        del link  # the Object holds it: still registered
        gc.collect()
        assert "plb_cc_legacy" in available_ccs()
        obj.close()  # unregisters it
        assert "plb_cc_legacy" not in available_ccs()
    finally:
        obj.close()


def test_struct_ops_needs_a_loaded_object(bpf_objects) -> None:
    with without_struct_ops_links(pylibbpf.Object(bpf_objects["attach_struct_ops"])) as obj:
        with pytest.raises(pylibbpf.BPFError, match="plb_cc_legacy"):
            obj.maps["plb_cc_legacy"].attach_struct_ops()
        obj.load()
        with pytest.raises(pylibbpf.BPFError, match=r"Map.attach_struct_ops\(\)"):
            obj.programs["plb_legacy_init"].attach()  # a struct_ops program is not attached alone


# --- kprobes (kernels without CONFIG_KPROBES give the clean refusal) -----------------------

@pytest.fixture
def kprobe_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(bpf_objects["attach_kprobe"]) as obj:
        obj.load()
        yield obj


def kprobe_hits(obj: pylibbpf.Object) -> int:
    return int(struct.unpack("Q", raw_view(obj.maps[".bss"])[struct.pack("I", 0)][:8])[0])


KPROBE_CALLS = {
    "kprobe": lambda o: o.programs["on_kprobe"].attach_kprobe("do_getpgid", cookie=1),
    "kretprobe": lambda o: o.programs["on_kretprobe"].attach_kprobe("do_getpgid",
                                                                    retprobe=True),
    "ksyscall": lambda o: o.programs["on_ksyscall"].attach_ksyscall("getpgid"),
    "kretsyscall": lambda o: o.programs["on_ksyscall"].attach_ksyscall("getpgid",
                                                                       retprobe=True),
    "kprobe (SEC)": lambda o: o.programs["sec_kprobe"].attach(),
    "ksyscall (SEC)": lambda o: o.programs["sec_ksyscall"].attach(),
}


@pytest.mark.parametrize("kind", list(KPROBE_CALLS))
def test_kprobe_kinds(kprobe_obj, kind) -> None:
    """Fires where the kernel has kprobes; elsewhere, the clean NotSupportedError naming the kind."""
    call = KPROBE_CALLS[kind]
    if not support("kprobe"):
        with refused(kind.split()[0], "getpgid", reason=re.escape(support("kprobe").reason)):
            call(kprobe_obj)
        return
    with call(kprobe_obj):
        run_getpgid_child()
    assert kprobe_hits(kprobe_obj) >= 2


def test_kprobe_on_missing_function(kprobe_obj) -> None:
    prog = kprobe_obj.programs["on_kprobe"]
    if not support("kprobe"):
        with pytest.raises(NotSupportedError, match=r"'no_such_fn_plb'.*no kprobes.*"
                                                    r"not in /proc/kallsyms"):
            prog.attach_kprobe("no_such_fn_plb")
    else:
        with pytest.raises(pylibbpf.BPFNotFoundError, match="no kernel function 'no_such_fn_plb'"):
            prog.attach_kprobe("no_such_fn_plb")


def test_a_failed_kprobe_keeps_libbpfs_words_for_later(kprobe_obj) -> None:
    # libbpf's warnings are parsed when first read (a failing attach in a loop never
    # pays for them): read after more failures, they are still this call's, as str
    # lines, and survive pickling as plain data
    prog = kprobe_obj.programs["on_kprobe"]
    with pytest.raises(pylibbpf.BPFError) as first:
        prog.attach_kprobe("no_such_fn_plb_a")
    with pytest.raises(pylibbpf.BPFError):
        prog.attach_kprobe("no_such_fn_plb_b")
    log = first.value.libbpf_log
    assert type(log) is list and log and all(type(ln) is str for ln in log), log
    assert any("no_such_fn_plb_a" in ln for ln in log), log
    assert not any("no_such_fn_plb_b" in ln for ln in log), log
    again = pickle.loads(pickle.dumps(first.value))
    assert again.libbpf_log == log and str(again) == str(first.value)
    assert type(again) is type(first.value)


def test_failing_kprobes_read_kallsyms_once(kprobe_obj, monkeypatch) -> None:
    """20 failing kprobe attaches (an object of kprobes on a kernel without them, or
    with functions it lacks) read /proc/kallsyms once for the process, not once
    each (~100 ms a read); every error still names its function."""
    from pylibbpf.attach import _kinds

    reads: List[str] = []

    class Counting(_kinds.KallsymsIndex):
        def __init__(self, path: Optional[str] = None) -> None:
            reads.append(path or _kinds.KALLSYMS)
            super().__init__(path)

    monkeypatch.setattr(_kinds, "KallsymsIndex", Counting)
    monkeypatch.setattr(_kinds, "_INDEX", None)
    prog = kprobe_obj.programs["on_kprobe"]
    for i in range(20):
        with pytest.raises(pylibbpf.BPFError) as exc:
            prog.attach_kprobe(f"no_such_fn_plb_{i}")
        assert f"'no_such_fn_plb_{i}'" in str(exc.value)
        assert "not in /proc/kallsyms" in str(exc.value)
    assert reads == ["/proc/kallsyms"]


def test_kallsyms_index_is_read_again_when_modules_change(tmp_path, monkeypatch) -> None:
    """A name missing from the index is looked for again when the list of kernel
    modules changed since it was read (a module loaded since), not otherwise."""
    from pylibbpf.attach import _kinds

    kallsyms, modules = tmp_path / "kallsyms", tmp_path / "modules"
    kallsyms.write_text("ffffffff81000000 T do_getpgid\nffffffff81000100 t helper\n")
    modules.write_text("")
    monkeypatch.setattr(_kinds, "KALLSYMS", str(kallsyms))
    monkeypatch.setattr(_kinds, "PROC_MODULES", str(modules))
    monkeypatch.setattr(_kinds, "_INDEX", None)
    monkeypatch.setattr(_kinds.KallsymsIndex, "RECHECK_S", 0.0)
    assert _kinds.kernel_symbol_exists("do_getpgid") is True
    assert _kinds.kernel_symbol_exists("mod_fn") is False
    with kallsyms.open("a") as f:  # a module's symbol appears ...
        f.write("ffffffffc0000000 t mod_fn\t[plbmod]\n")
    assert _kinds.kernel_symbol_exists("mod_fn") is False  # ... the modules did not change
    modules.write_text("plbmod 16384 0 - Live 0x0000000000000000\n")
    assert _kinds.kernel_symbol_exists("mod_fn") is True  # they did: read again
    assert _kinds.syscall_symbols("getpgid") == []
    monkeypatch.setattr(_kinds, "KALLSYMS", str(tmp_path / "absent"))
    monkeypatch.setattr(_kinds, "_INDEX", None)
    assert _kinds.kernel_symbol_exists("do_getpgid") is None  # unreadable: unknown


KPROBE_MULTI_CALLS = {
    "kprobe_multi pattern": lambda o: o.programs["on_kprobe_multi"].attach_kprobe_multi(
        "do_getpg*"),
    "kprobe_multi symbols": lambda o: o.programs["on_kprobe_multi"].attach_kprobe_multi(
        symbols=["do_getpgid"], cookies=[11]),
    "kretprobe_multi": lambda o: o.programs["on_kprobe_multi"].attach_kprobe_multi(
        symbols=["do_getpgid"], retprobe=True),
    "kprobe.session": lambda o: o.programs["on_kprobe_session"].attach_kprobe_multi(
        "do_getpgid", session=True),
    "kprobe.multi (SEC)": lambda o: o.programs["sec_kprobe_multi"].attach(),
}


@pytest.mark.parametrize("kind", list(KPROBE_MULTI_CALLS))
def test_kprobe_multi_kinds(kprobe_obj, kind) -> None:
    call = KPROBE_MULTI_CALLS[kind]
    sup = support("kprobe_session" if kind == "kprobe.session" else "kprobe_multi")
    if not sup:
        with refused(sup.name, kind.split()[0], reason=re.escape(sup.reason)):
            call(kprobe_obj)
        return
    with call(kprobe_obj):
        run_getpgid_child()
    assert kprobe_hits(kprobe_obj) >= 2


def test_kprobe_multi_arguments_are_checked(kprobe_obj) -> None:
    prog = kprobe_obj.programs["on_kprobe_multi"]
    with pytest.raises(ValueError, match="not both"):
        prog.attach_kprobe_multi("a*", symbols=["b"])
    with pytest.raises(ValueError, match="not both or neither"):
        prog.attach_kprobe_multi()
    with pytest.raises(ValueError, match="one cookie per symbol"):
        prog.attach_kprobe_multi(symbols=["a", "b"], cookies=[1])
    with pytest.raises(ValueError, match="cookies need symbols"):
        prog.attach_kprobe_multi("a*", cookies=[1])
    with pytest.raises(ValueError, match="exclude each other"):
        prog.attach_kprobe_multi("a*", retprobe=True, session=True)
    with pytest.raises(TypeError, match="not a single string"):
        prog.attach_kprobe_multi(symbols="do_getpgid")
    # a plain kprobe program was not loaded for kprobe_multi
    with pytest.raises(pylibbpf.BPFError, match=r"SEC\('kprobe.multi'\)"):
        kprobe_obj.programs["on_kprobe"].attach_kprobe_multi("do_getpg*")


# --- trampolines: refused at load here ------------------------------------------------------

TRAMPOLINE_KINDS = {  # program -> kind (as NotSupportedError names it)
    "on_fentry": "fentry", "on_fexit": "fexit", "on_fmod_ret": "fmod_ret",
    "on_lsm_file_open": "LSM",
}


def load_where(path, keep: Callable[[pylibbpf.Program], bool],
               configure: Optional[Callable[[pylibbpf.Object], None]] = None
               ) -> pylibbpf.Object:
    """The object at ``path`` loaded with only the programs that ``keep`` accepts."""
    obj = pylibbpf.Object(path)
    for prog in obj.programs.values():
        prog.autoload = keep(prog)
    if configure:
        configure(obj)
    try:
        obj.load()
    except BaseException:
        obj.close()
        raise
    return obj


def load_only(path, name: str, configure=None) -> pylibbpf.Object:
    return load_where(path, lambda prog: prog.name == name, configure)


@pytest.mark.parametrize("name", list(TRAMPOLINE_KINDS))
def test_trampoline_kinds(bpf_objects, name) -> None:
    kind = TRAMPOLINE_KINDS[name]
    sup = support(kind.lower())
    if not sup:
        with refused(sup.name, kind, name, "trampoline") as e:
            load_only(bpf_objects["attach_trampoline"], name)
        assert "'ulimit -l' is not the cause" in str(e.value)  # libbpf's hint misleads here
        assert "try raising 'ulimit -l'" not in str(e.value)
        assert not any("ulimit" in line for line in e.value.libbpf_log)
        assert e.value.program == name
        return
    obj = load_only(bpf_objects["attach_trampoline"], name)
    with obj:  # a kernel with trampolines: attach and check the link
        prog = obj.programs[name]
        link = prog.attach_lsm() if kind == "LSM" else prog.attach_trace()
        with link:
            assert link.info.type == LinkType.TRACING


def test_not_supported_drops_libbpfs_memlock_advice() -> None:
    """libbpf follows any EPERM as root with "try raising 'ulimit -l'?" (when the
    memlock limit is finite): a NotSupportedError says the kernel lacks the kind."""
    from pylibbpf.errors import not_supported

    log = ["libbpf: prog 'p': BPF program load failed: Operation not permitted",
           "libbpf: permission error while running as root; try raising 'ulimit -l'? "
           "current value: 8.0 MiB", "libbpf: prog 'p': failed to load: -1"]
    e = not_supported(errno.EPERM, "load program 'p'", "no trampolines here",
                      libbpf_log=log, program="p")
    assert e.program == "p" and e.reason == "no trampolines here"
    assert e.libbpf_log == [log[0], log[2]]
    assert str(e) == ("load program 'p': no trampolines here: Operation not permitted\n"
                      "  libbpf: prog 'p': BPF program load failed: Operation not permitted\n"
                      "  libbpf: prog 'p': failed to load: -1 [EPERM]")
    assert not_supported(errno.EOPNOTSUPP, "x", "y").program is None


TRAMPOLINE_TARGETS = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n' + "".join(
    f'SEC("{sec}") int {name}(void *ctx) {{ return 0; }}\n' for sec, name in (
        ("fentry/do_getpgidd", "fentry_typo"), ("fexit/plb_no_such_function", "fexit_none"),
        ("fmod_ret/plb_no_such_function", "fmod_ret_none"),
        ("lsm/file_opn", "lsm_typo"), ("tp_btf/sched_switchh", "tp_btf_typo"))
) + 'char LICENSE[] SEC("license") = "GPL";\n'


@pytest.mark.parametrize("name, target, what, suggestion", [
    ("fentry_typo", "do_getpgidd", "kernel function 'do_getpgidd'", "do_getpgid"),
    ("fexit_none", "plb_no_such_function", "kernel function 'plb_no_such_function'", None),
    ("fmod_ret_none", "plb_no_such_function", "kernel function 'plb_no_such_function'", None),
    ("lsm_typo", "file_opn", "LSM hook 'file_opn' (kernel function bpf_lsm_file_opn)",
     "file_open"),
    ("tp_btf_typo", "sched_switchh", "tracepoint 'sched_switchh' (BTF type "
                                     "btf_trace_sched_switchh)", "sched_switch"),
])
def test_missing_trampoline_target_names_program_and_function(tmp_path, monkeypatch, name,
                                                              target, what,
                                                              suggestion) -> None:
    """libbpf looks the target up in the kernel's BTF before loading, on every
    kernel (with trampolines or not): ESRCH, which said only "No such process"."""
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path))
    path = pylibbpf.compile(text=TRAMPOLINE_TARGETS, name="targets")
    with pylibbpf.Object(path, name="targets") as obj:
        for prog in obj.programs.values():
            prog.autoload = prog.name == name
        with pytest.raises(pylibbpf.BPFNotFoundError) as exc:
            obj.load()
    e = exc.value
    assert e.errno == errno.ESRCH
    section = next(s for s in TRAMPOLINE_TARGETS.split('SEC("')[1:]
                   if f" {name}(" in s).split('"')[0]
    head = (f"load program {name!r} of 'targets': its SEC({section!r}) attaches to {what}, "
            "which is not in the BTF of the kernel or of its modules")
    assert str(e).startswith(head), str(e)
    if suggestion is not None:
        assert str(e).startswith(f"{head}\n  did you mean: {suggestion}"), str(e)
    else:
        assert "did you mean" not in str(e)


def test_freplace(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as target_obj:
        target_obj.programs["sock_with_subprog"].autoload = True
        target_obj.load()
        target = target_obj.programs["sock_with_subprog"]

        def set_target(obj: pylibbpf.Object) -> None:
            obj.programs["on_freplace"].set_attach_target(target, "freplace_target")

        if not support("freplace"):
            with refused("freplace", "on_freplace", "trampoline"):
                load_only(bpf_objects["attach_trampoline"], "on_freplace", set_target)
            return
        with load_only(bpf_objects["attach_trampoline"], "on_freplace", set_target) as obj:
            with obj.programs["on_freplace"].attach_freplace() as link:
                assert link.info.type == LinkType.TRACING


def test_set_attach_target_checks(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as target_obj:
        target_obj.load()
        target = target_obj.programs["sock_with_subprog"]
        with pylibbpf.Object(bpf_objects["attach_trampoline"]) as obj:
            prog = obj.programs["on_freplace"]
            with pytest.raises(pylibbpf.BPFNotFoundError, match="'no_such_function'"):
                prog.set_attach_target(target, "no_such_function")
            with pytest.raises(pylibbpf.BPFNotFoundError, match="'no_such_kfunc'.*kernel"):
                obj.programs["on_fentry"].set_attach_target(None, "no_such_kfunc")
            with pytest.raises(TypeError, match="target must be a Program"):
                prog.set_attach_target("x", "freplace_target")  # type: ignore[arg-type]
            # not loaded yet: attaching says so
            with pytest.raises(pylibbpf.BPFError, match="not loaded"):
                prog.attach_freplace(target, "freplace_target")
            with pytest.raises(ValueError, match="both target and function"):
                prog.attach_freplace(target)


def test_attach_trace_refuses_iterators(bpf_objects) -> None:
    with load_only(bpf_objects["attach_iter"], "dump_task") as obj:
        prog = obj.programs["dump_task"]
        assert prog.type == ProgramType.TRACING
        with pytest.raises(pylibbpf.BPFError, match="use attach_iter"):
            prog.attach_trace()


def test_cgroup_iterator_walks_from_a_cgroup(iter_obj) -> None:
    root = next(line.split()[1] for line in open("/proc/self/mounts")
                if line.split()[2] == "cgroup2")
    parent = Path(root) / f"plb-iter-{os.getpid()}"
    child = parent / "child"
    child.mkdir(parents=True)
    try:
        ids = (parent.stat().st_ino, child.stat().st_ino)
        prog = iter_obj.programs["dump_cgroup"]
        with prog.attach_iter(cgroup=parent, order="self_only") as link:
            assert link.open_iter().read_text() == f"{ids[0]}\n"
            info = link.info
            assert isinstance(info, IterLinkInfo) and info.target_name == "cgroup"
            assert (info.cgroup_id, info.cgroup_order) == (ids[0], 1)
        with prog.attach_iter(cgroup=parent) as link:  # descendants, pre-order
            assert link.open_iter().read_text() == f"{ids[0]}\n{ids[1]}\n"
        fd = os.open(child, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with prog.attach_iter(cgroup=fd, order="ancestors_up") as link:
                lines = link.open_iter().read_text().split()
        finally:
            os.close(fd)
        assert [int(x) for x in lines[:2]] == [ids[1], ids[0]]
        with pytest.raises(ValueError, match="unknown cgroup walk order"):
            prog.attach_iter(cgroup=parent, order="sideways")
        with pytest.raises(ValueError, match="for cgroup iterators"):
            iter_obj.programs["dump_task"].attach_iter(cgroup=parent)
        with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-cgroup"):
            prog.attach_iter(cgroup=parent / "no-such-cgroup")
    finally:
        child.rmdir()
        parent.rmdir()
