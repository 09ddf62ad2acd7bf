"""The Link lifecycle: close, context manager, pin/unpin/open_pinned, update,
detach, disconnect, garbage collection, the Object closed first, and the
per-type fields of Link.info."""
from __future__ import annotations

import gc
import os
import socket
import struct
import subprocess
import uuid
import weakref
from pathlib import Path
from typing import Iterator

import pytest

import pylibbpf
from pylibbpf import AttachType, LinkType, NotSupportedError
from pylibbpf._ffi import ffi, lib
from pylibbpf.link import (CgroupLinkInfo, IterLinkInfo, NetfilterLinkInfo, NetnsLinkInfo,
                           PerfEventLinkInfo, SockmapLinkInfo, StructOpsLinkInfo, TCXLinkInfo,
                           UprobeMultiLinkInfo, XDPLinkInfo)

from conftest import in_netns
from _kernel import refused, support, without_unknown_program_types
from test_attach_tracing import (W_SEC_TP, W_TP, W_TP_ALT, available_ccs, hit, init_calls,
                                 load_iterators, load_only, perf_details, raw_view,
                                 run_getpgid_child, tcp_connection_with)

TP = ("syscalls", "sys_enter_getpgid")


@pytest.fixture
def tp_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj:
        obj.load()
        yield obj


def count_in(m: pylibbpf.Map, pid: int, which: int) -> int:
    raw = raw_view(m).lookup(struct.pack("II", pid, which))
    return 0 if raw is None else int(struct.unpack("QQ", raw)[0])


# --- close -------------------------------------------------------------------------------

def test_close_is_idempotent_and_a_context_manager(tp_obj) -> None:
    prog = tp_obj.programs["tp_getpgid"]
    with prog.attach_tracepoint(*TP) as link:
        assert not link.closed and link.fd >= 0
        pid = run_getpgid_child()
    assert link.closed
    link.close()
    link.close()
    assert hit(tp_obj, pid, W_TP) == (2, 0)
    assert hit(tp_obj, run_getpgid_child(), W_TP) is None
    assert "closed" in repr(link)


def test_closed_link_raises_closed_error(tp_obj) -> None:
    link = tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP)
    link.close()
    for op in (lambda: link.fd, lambda: link.info, lambda: link.pin("/sys/fs/bpf/x"),
               lambda: link.unpin(), lambda: link.detach(), lambda: link.disconnect(),
               lambda: link.update(tp_obj.programs["tp_getpgid_alt"]), lambda: link.pin_path):
        with pytest.raises(pylibbpf.ClosedError, match="Link"):
            op()


# --- pin ---------------------------------------------------------------------------------

def test_pinned_link_outlives_its_object_until_unpinned(bpf_objects, bpffs_dir) -> None:
    link_path, map_path = bpffs_dir / "tp_link", bpffs_dir / "hits"
    obj = pylibbpf.Object(bpf_objects["attach_tp"])
    try:
        obj.load()
        obj.maps["hits"].pin(map_path)
        link = obj.programs["tp_getpgid"].attach_tracepoint(*TP, cookie=3)
        link_id = link.info.id
        link.pin(link_path)
        assert link.pin_path == str(link_path)
        link.close()  # pinned: stays attached
        obj.close()
    finally:
        obj.close()
    with pylibbpf.Map.open_pinned(map_path) as hits:
        pid = run_getpgid_child()
        assert count_in(hits, pid, W_TP) == 2  # still fires, with its object gone

        reopened = pylibbpf.Link.open_pinned(link_path)
        info = reopened.info
        assert info.id == link_id
        details = perf_details(info)
        if details:
            assert (details.name, details.cookie) == ("sys_enter_getpgid", 3)
        assert reopened.pin_path == str(link_path)
        reopened.unpin()
        assert not link_path.exists() and reopened.pin_path is None
        pid = run_getpgid_child()
        assert count_in(hits, pid, W_TP) == 2  # our fd still holds it
        reopened.close()
        pid = run_getpgid_child()
        assert count_in(hits, pid, W_TP) == 0  # unpinned and closed: stopped


def test_pin_errors(tp_obj, bpffs_dir) -> None:
    with tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP) as link:
        with pytest.raises(pylibbpf.BPFError, match="not pinned"):
            link.unpin()
        link.pin(bpffs_dir / "a")
        with pytest.raises(pylibbpf.BPFError, match="already pinned at"):
            link.pin(bpffs_dir / "b")
        link.unpin()
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no such pin"):
        pylibbpf.Link.open_pinned(bpffs_dir / "missing")
    tp_obj.maps["hits"].pin(bpffs_dir / "a_map")
    with pytest.raises(pylibbpf.BPFError, match="is a map, not a link"):
        pylibbpf.Link.open_pinned(bpffs_dir / "a_map")


# --- update ------------------------------------------------------------------------------

@pytest.fixture
def iter_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    """Every iterator this kernel loads (see test_attach_tracing.load_iterators)."""
    with load_iterators(bpf_objects["attach_iter"]) as obj:
        yield obj


def test_update_swaps_the_program_of_an_iter_link(iter_obj) -> None:
    me = os.getpid()
    with iter_obj.programs["dump_task"].attach_iter() as link:
        assert f"\n{me} " in "\n" + link.open_iter().read_text()
        old_id = link.info.program_id
        link.update(iter_obj.programs["dump_task_alt"])
        text = link.open_iter().read_text()
        assert f"task={me} comm=" in text and f"\n{me} " not in "\n" + text
        assert link.info.program_id == iter_obj.programs["dump_task_alt"].id != old_id


def test_update_of_a_tracepoint_link_is_not_supported(tp_obj) -> None:
    with tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP) as link:
        with pytest.raises(NotSupportedError, match="perf_event links cannot be updated"):
            link.update(tp_obj.programs["tp_getpgid_alt"])
        pid = run_getpgid_child()  # still the old program
    assert (hit(tp_obj, pid, W_TP), hit(tp_obj, pid, W_TP_ALT)) == ((2, 0), None)


def test_update_checks_its_argument(iter_obj, bpf_objects) -> None:
    with iter_obj.programs["dump_task"].attach_iter() as link:
        with pytest.raises(TypeError, match="takes a Program"):
            link.update("dump_task_alt")  # type: ignore[arg-type]
        other = load_only(bpf_objects["attach_iter"], "dump_task_alt")
        prog = other.programs["dump_task_alt"]
        other.close()
        with pytest.raises(pylibbpf.ClosedError):
            link.update(prog)
        with pytest.raises(pylibbpf.BPFError, match="not struct_ops"):
            link.update(iter_obj.maps["numbers"])


@pytest.mark.kind("struct_ops_link")
def test_update_a_struct_ops_link_with_another_map(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_struct_ops"]) as obj:
        obj.load()
        with obj.maps["plb_cc"].attach_struct_ops() as link:
            tcp_connection_with("plb_cc")
            before = (init_calls(obj, 0), init_calls(obj, 2))
            assert before[0] >= 1 and before[1] == 0
            link.update(obj.maps["plb_cc_v2"])
            info = link.info
            assert isinstance(info, StructOpsLinkInfo)
            assert info.map_id == obj.maps["plb_cc_v2"].id
            tcp_connection_with("plb_cc")
            assert init_calls(obj, 0) == before[0] and init_calls(obj, 2) >= 1
        assert "plb_cc" not in available_ccs()


# --- detach ------------------------------------------------------------------------------

@pytest.mark.kind("struct_ops_link")
def test_detach_unregisters_struct_ops_while_the_link_is_open(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_struct_ops"]) as obj:
        obj.load()
        link = obj.maps["plb_cc"].attach_struct_ops()
        assert "plb_cc" in available_ccs()
        link.detach()
        assert "plb_cc" not in available_ccs()
        assert not link.closed
        link.close()


def test_detach_of_a_tracepoint_link_is_not_supported(tp_obj) -> None:
    with tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP) as link:
        with pytest.raises(NotSupportedError, match="cannot detach perf_event links"):
            link.detach()


# --- lifetime: the Object holds its links (DESIGN rule 6), disconnect ----------------------

def test_a_dropped_link_fires_until_its_object_closes(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["attach_tp"])
    obj.load()
    hits = pylibbpf.Map.from_fd(obj.maps["hits"].fd)  # our own fd, to look after close
    try:
        obj.programs["tp_getpgid"].attach_tracepoint(*TP)  # the result is dropped
        obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
        gc.collect()
        assert len(obj.links) == 2
        pid = run_getpgid_child()
        assert count_in(hits, pid, W_TP) == 2  # still attached: it fired
        obj.close()  # detaches every link the Object holds
        pid = run_getpgid_child()
        assert all(count_in(hits, pid, w) == 0 for w in range(1, 7))
    finally:
        obj.close()
        hits.close()


def test_object_close_closes_the_links_the_user_holds(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["attach_tp"])
    obj.load()
    hits = pylibbpf.Map.from_fd(obj.maps["hits"].fd)
    links = [obj.programs["tp_getpgid"].attach_tracepoint(*TP),
             obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")]
    try:
        pid = run_getpgid_child()
        assert count_in(hits, pid, W_TP) == 2
        obj.close()
        assert all(link.closed for link in links)
        with pytest.raises(pylibbpf.ClosedError, match="Link"):
            links[0].info
        assert all(count_in(hits, run_getpgid_child(), w) == 0 for w in range(1, 7))
        for link in links:
            link.close()  # idempotent after the Object closed them
    finally:
        obj.close()
        hits.close()


def test_a_link_closed_early_is_released_by_its_object(tp_obj) -> None:
    with tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP) as link:
        assert tp_obj.links == [link]
        assert hit(tp_obj, run_getpgid_child(), W_TP) == (2, 0)
    assert tp_obj.links == []
    assert hit(tp_obj, run_getpgid_child(), W_TP) is None


def test_attach_all_returns_links_that_work_as_a_context_manager(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj:
        for p in obj.programs.values():  # only the one its SEC() places
            p.autoload = p.name == "sec_tp_getpgid"
        obj.load()
        with obj.attach_all() as links:
            assert isinstance(links, pylibbpf.Links) and len(links) == 1
            assert isinstance(links[0], pylibbpf.Link) and not links.closed
            assert hit(obj, run_getpgid_child(), W_SEC_TP) == (2, 0)
        assert links.closed and obj.links == []
        assert hit(obj, run_getpgid_child(), W_SEC_TP) is None
        obj.attach_all()  # dropped: stays attached while obj is open
        gc.collect()
        assert hit(obj, run_getpgid_child(), W_SEC_TP) == (2, 0)
        held = obj.links
    assert len(held) == 1 and held[0].closed


def test_a_garbage_collected_object_detaches_its_dropped_links(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["attach_tp"])
    obj.load()
    hits = pylibbpf.Map.from_fd(obj.maps["hits"].fd)
    try:
        link = obj.programs["tp_getpgid"].attach_tracepoint(*TP)
        ref = weakref.ref(obj)
        del obj
        gc.collect()
        assert ref() is not None  # the user's Link keeps its Object (and so itself) alive
        assert count_in(hits, run_getpgid_child(), W_TP) == 2
        del link
        gc.collect()
        assert ref() is None
        assert count_in(hits, run_getpgid_child(), W_TP) == 0
    finally:
        hits.close()


def test_disconnect_leaves_the_program_attached(tp_obj) -> None:
    link = tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP)
    leaked = link.fd
    link.disconnect()
    link.close()
    assert link.closed
    try:
        pid = run_getpgid_child()
        assert hit(tp_obj, pid, W_TP) == (2, 0)
    finally:
        os.close(leaked)  # what process exit would do
    assert hit(tp_obj, run_getpgid_child(), W_TP) is None


# --- info of other link types --------------------------------------------------------------

@pytest.fixture
def info_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with without_unknown_program_types(pylibbpf.Object(bpf_objects["attach_linkinfo"])) as obj:
        obj.load()
        yield obj


def link_create(prog: pylibbpf.Program, target_fd: int, attach_type: AttachType) -> pylibbpf.Link:
    fd = lib.bpf_link_create(prog.fd, target_fd, attach_type, ffi.NULL)
    if fd < 0:
        raise OSError(-fd, f"bpf_link_create {attach_type.name}")
    return pylibbpf.Link(fd=fd, description=f"{attach_type.name.lower()} test link")


@pytest.mark.kind("tcx")
def test_info_of_xdp_and_tcx_links(info_obj, veth) -> None:
    with in_netns(veth.ns_a):
        ifindex = socket.if_nametoindex(veth.dev_a)
        with link_create(info_obj.programs["xdp_pass"], ifindex, AttachType.XDP) as xdp:
            info = xdp.info
            assert isinstance(info, XDPLinkInfo) and info.type == LinkType.XDP
            assert info.ifindex == ifindex
        with info_obj.programs["tcx_pass"].attach_tcx(ifindex, direction="ingress") as tcx:
            tinfo = tcx.info
            assert isinstance(tinfo, TCXLinkInfo)
            assert (tinfo.ifindex, tinfo.attach_type) == (ifindex, AttachType.TCX_INGRESS)


def test_info_of_netns_and_cgroup_links(info_obj) -> None:
    ns = f"plb-linkinfo-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            with link_create(info_obj.programs["lookup_pass"], fd, AttachType.SK_LOOKUP) as link:
                info = link.info
                assert isinstance(info, NetnsLinkInfo)
                assert info.netns_ino == os.fstat(fd).st_ino
                assert info.attach_type == AttachType.SK_LOOKUP
        finally:
            os.close(fd)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)

    cgroot = next(line.split()[1] for line in open("/proc/self/mounts")
                  if line.split()[2] == "cgroup2")
    cg = Path(cgroot) / f"plb-linkinfo-{uuid.uuid4().hex[:6]}"
    cg.mkdir()
    try:
        fd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with link_create(info_obj.programs["cgroup_pass"], fd,
                             AttachType.CGROUP_INET_EGRESS) as link:
                cinfo = link.info
                assert isinstance(cinfo, CgroupLinkInfo)
                assert cinfo.cgroup_id == os.fstat(fd).st_ino
                assert cinfo.attach_type == AttachType.CGROUP_INET_EGRESS
        finally:
            os.close(fd)
    finally:
        cg.rmdir()


def test_info_of_netfilter_and_sockmap_links(info_obj, veth, bpf_objects) -> None:
    if support("netfilter"):
        with in_netns(veth.ns_a):
            with info_obj.programs["nf_accept"].attach_netfilter(
                    family="ipv4", hook="local_in", priority=-77) as link:
                info = link.info
        assert isinstance(info, NetfilterLinkInfo)
        assert (info.pf, info.hooknum, info.priority, info.flags) == (socket.AF_INET, 1, -77, 0)
    else:
        with refused("netfilter", "nf_accept"):
            load_only(bpf_objects["attach_linkinfo"], "nf_accept")
    socks = info_obj.maps["socks"]
    if not support("sockmap_link"):
        with refused("sockmap_link", "verdict_pass"):
            info_obj.programs["verdict_pass"].attach_sockmap(socks)
        return
    with info_obj.programs["verdict_pass"].attach_sockmap(socks) as link:
        sinfo = link.info
    assert isinstance(sinfo, SockmapLinkInfo)
    assert (sinfo.map_id, sinfo.attach_type) == (socks.id, AttachType.SK_SKB_STREAM_VERDICT)


def test_info_of_uprobe_and_uprobe_multi_links(info_obj) -> None:
    libc = next(line.split()[-1] for line in open("/proc/self/maps")
                if "/libc.so" in line or "/libc-" in line)
    with info_obj.programs["on_uprobe"].attach_uprobe(libc, "getpid", cookie=21) as link:
        details = perf_details(link.info)
    if details:
        assert (details.event_type, details.name, details.cookie) == (
            "uprobe", os.path.realpath(libc), 21)
        assert details.offset > 0
    multi = lambda: info_obj.programs["on_uprobe_multi"].attach_uprobe_multi(  # noqa: E731
        libc, symbols=["getpid", "getppid"], pid=os.getpid())
    if not support("uprobe_multi"):
        with refused("uprobe_multi", "on_uprobe_multi"):
            multi()
        return
    with multi() as link:
        minfo = link.info
    assert isinstance(minfo, UprobeMultiLinkInfo)
    assert (minfo.path, minfo.count, minfo.pid) == (os.path.realpath(libc), 2, os.getpid())


def test_info_of_an_iter_link_over_a_map(iter_obj, bpf_objects) -> None:
    if not support("iter/bpf_map_elem"):
        with refused("iter/bpf_map_elem", "dump_numbers", "refuses this iterator target"):
            load_only(bpf_objects["attach_iter"], "dump_numbers")
        return
    numbers = iter_obj.maps["numbers"]
    with iter_obj.programs["dump_numbers"].attach_iter(map=numbers) as link:
        info = link.info
    assert isinstance(info, IterLinkInfo)
    assert (info.type, info.target_name, info.map_id) == (LinkType.ITER, "bpf_map_elem",
                                                          numbers.id)


def test_link_info_layout_matches_the_uapi_header(tmp_path) -> None:
    """pylibbpf decodes bpf_link_info's union by offset: compare every offset with
    what a C compiler says for libbpf's include/uapi/linux/bpf.h."""
    from pylibbpf.link import INFO_SIZE, OFFSETS

    root = Path(__file__).resolve().parent.parent
    headers = sorted(root.glob("vendor/libbpf/libbpf-*/include/uapi"))
    assert headers, "libbpf's uapi headers are missing (vendor/libbpf)"
    prints = "\n".join(
        f'    printf("{m} %zu\\n", offsetof(struct bpf_link_info, {m}));' for m in OFFSETS)
    src = tmp_path / "layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include <linux/bpf.h>\n"
                   "int main(void)\n{\n" + prints +
                   '\n    printf("sizeof %zu\\n", sizeof(struct bpf_link_info));\n'
                   "    return 0;\n}\n")
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-I", str(headers[-1]), str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    got = {name: int(value) for name, value in (line.split() for line in out.splitlines())}
    assert got.pop("sizeof") == INFO_SIZE == ffi.sizeof("struct bpf_link_info")
    assert got == OFFSETS


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_fd_leaks(tp_obj, iter_obj, bpf_objects) -> None:
    """Attaching and closing links many times, or dropping them and closing
    their Object, leaves no fd behind."""
    prog, raw = tp_obj.programs["tp_getpgid"], tp_obj.programs["raw_sys_enter"]
    sampler = tp_obj.programs["on_sample"]
    dumper = iter_obj.programs["dump_task"]
    before = open_fds()
    for i in range(50):
        prog.attach_tracepoint(*TP, cookie=i).close()
        with raw.attach_raw_tracepoint("sys_enter"):
            pass
        link = dumper.attach_iter()
        it = link.open_iter()
        it.read(10)
        del it  # garbage collection closes the iterator
        link.close()
        with sampler.attach_perf_events("cpu-clock", sample_period=10_000_000):
            pass
    gc.collect()
    assert open_fds() == before
    obj = pylibbpf.Object(bpf_objects["attach_tp"])
    obj.load()
    for name in ("tp_getpgid", "tp_getpgid_alt", "sec_tp_getpgid"):
        obj.programs[name].attach_tracepoint(*TP)  # dropped: held by obj
    obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter")
    obj.programs["on_sample"].attach_perf_events("cpu-clock", sample_period=10_000_000)
    gc.collect()
    assert len(obj.links) > 4 and open_fds() > before + 4
    obj.close()  # closes the links, the perf events opened for them, and itself
    gc.collect()
    assert open_fds() == before


def test_link_from_id_and_fd(tp_obj) -> None:
    with tp_obj.programs["tp_getpgid"].attach_tracepoint(*TP, cookie=6) as link:
        other = pylibbpf.Link.from_id(link.id)
        twin = pylibbpf.Link.from_fd(link.fd)
        assert other.info == twin.info == link.info
        other.close()
        twin.close()  # link still holds the attachment
        pid = run_getpgid_child()
        assert hit(tp_obj, pid, W_TP) == (2, 6)
    assert hit(tp_obj, run_getpgid_child(), W_TP) is None
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no such link"):
        pylibbpf.Link.from_id(2 ** 32 - 2)
    with pytest.raises(pylibbpf.BPFError, match="is a map, not a BPF link"):
        pylibbpf.Link.from_fd(tp_obj.maps["hits"].fd)
    with pytest.raises(ValueError):
        pylibbpf.Link.from_id(0)


USDT_BPF = r'''
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} ticks SEC(".maps");

SEC("usdt/%(path)s:plbtest:tick")
int BPF_USDT(on_tick, long i, long scaled)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n = bpf_map_lookup_elem(&ticks, &pid);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&ticks, &pid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
'''


@pytest.fixture(scope="module")
def usdt_setup(tmp_path_factory):
    """A USDT target (tests/uprobe's prog_pie) and a BPF object whose SEC() names it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "uprobe"))
    import build_targets

    d = tmp_path_factory.mktemp("usdt-link")
    exe = build_targets.build(d)["prog_pie"]
    src = d / "usdt_link.bpf.c"
    src.write_text(USDT_BPF % {"path": exe})
    return exe, pylibbpf.compile(src, d / "usdt_link.bpf.o")


def run_ticks(exe: Path, n: int = 3) -> int:
    proc = subprocess.Popen([str(exe), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    proc.communicate("go\n", timeout=20)
    assert proc.returncode == 0
    return pid


def ticks(m: pylibbpf.Map, pid: int) -> int:
    raw = raw_view(m).lookup(struct.pack("I", pid))
    return 0 if raw is None else int(struct.unpack("Q", raw)[0])


def test_usdt_link_by_section_and_its_object(usdt_setup, caplog) -> None:
    """libbpf's USDT links point into their Object: closing the Object first must
    not make closing the Link read freed memory."""
    exe, bpf = usdt_setup
    with pylibbpf.Object(bpf) as obj:  # the normal order: link, then object
        obj.load()
        with obj.programs["on_tick"].attach():
            pid = run_ticks(exe)
        assert ticks(obj.maps["ticks"], pid) == 3
        assert ticks(obj.maps["ticks"], run_ticks(exe)) == 0

    obj = pylibbpf.Object(bpf)
    obj.load()
    obj.programs["on_tick"].attach()  # dropped: the Object holds it
    gc.collect()
    assert ticks(obj.maps["ticks"], run_ticks(exe)) == 3
    link, = obj.links
    with caplog.at_level("WARNING", logger="pylibbpf"):
        obj.close()  # closes the USDT link first, then frees the Object
    assert link.closed and "closed after its Object" not in caplog.text


def test_a_usdt_link_is_composite(usdt_setup, bpffs_dir) -> None:
    """A USDT attachment is several uprobes with no kernel link: no fd (not 0,
    which is stdin), no id, info or pin; detach() and close() remove the probes."""
    exe, bpf = usdt_setup
    with pylibbpf.Object(bpf) as obj:
        obj.load()
        prog = obj.programs["on_tick"]
        link = prog.attach_usdt(str(exe), "plbtest", "tick")
        assert link.fd == -1
        for op in (lambda: link.id, lambda: link.info, lambda: link.pin(f"{bpffs_dir}/u"),
                   lambda: link.update(prog)):
            with pytest.raises(NotSupportedError, match="USDT attachment is one uprobe per "
                                                        "call site") as e:
                op()
            assert "usdt" in str(e.value)
        assert ticks(obj.maps["ticks"], run_ticks(exe)) == 3
        link.detach()
        assert link.closed
        assert ticks(obj.maps["ticks"], run_ticks(exe)) == 0
        assert "closed" in repr(link)
