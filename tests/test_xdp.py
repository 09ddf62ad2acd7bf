"""XDP on a veth pair between two namespaces: attach, fire, detach (link and netlink)."""
from __future__ import annotations

import struct
import time

import pytest

import pylibbpf
from conftest import in_netns
from _netutil import counter, wait_until

XDP_PASS = 2
BPF_EXIT, MOV64_IMM = 0x95, 0xB7


def pass_all() -> bytes:
    return struct.pack("<BBhi", MOV64_IMM, 0, 0, XDP_PASS) + struct.pack("<BBhi", BPF_EXIT, 0, 0, 0)


def send_udp(veth, n: int = 5) -> None:
    with veth.socket_in(veth.ns_b) as s:
        for i in range(n):
            s.sendto(b"x" * 64, (veth.ip_a, 9999))
    time.sleep(0.1)


def passed(obj) -> int:
    return counter(obj, XDP_PASS, "actions")


@pytest.mark.parametrize("by", ["name", "index"])
def test_xdp_link_fires_and_detaches(bpf_objects, veth, by) -> None:
    import socket

    with in_netns(veth.ns_a), pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        target = veth.dev_a if by == "name" else socket.if_nametoindex(veth.dev_a)
        link = prog.attach_xdp(target)
        assert pylibbpf.xdp_query(veth.dev_a).prog_id == prog.id
        assert link.info.type == pylibbpf.LinkType.XDP
        send_udp(veth)
        assert wait_until(lambda: passed(obj) >= 5)
        fired = passed(obj)
        link.close()
        assert pylibbpf.xdp_query(veth.dev_a).prog_id == 0
        send_udp(veth)
        assert passed(obj) == fired  # detached: no more runs


@pytest.mark.parametrize("mode", ["generic", "driver"])
def test_raw_xdp_legacy_attach_by_mode(veth, mode) -> None:
    with in_netns(veth.ns_a), pylibbpf.Program.load_raw("xdp", pass_all(), name="pass") as prog:
        link = prog.attach_xdp(veth.dev_a, mode=mode, legacy=True)
        q = pylibbpf.xdp_query(veth.dev_a)
        assert (q.generic_prog_id if mode == "generic" else q.driver_prog_id) == prog.id
        link.close()
        assert pylibbpf.xdp_query(veth.dev_a).prog_id == 0


def test_raw_xdp_link_by_index(veth) -> None:
    import socket

    with in_netns(veth.ns_a), pylibbpf.Program.load_raw("xdp", pass_all(), name="pass") as prog:
        idx = socket.if_nametoindex(veth.dev_a)
        with prog.attach_xdp(idx, mode="generic"):
            assert pylibbpf.xdp_query(idx).generic_prog_id == prog.id
        assert pylibbpf.xdp_query(idx).prog_id == 0


def test_xdp_missing_interface_is_named() -> None:
    with pylibbpf.Program.load_raw("xdp", pass_all()) as prog:
        with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-if0"):
            prog.attach_xdp("no-such-if0")
        with pytest.raises(pylibbpf.BPFNotFoundError, match="index 99999"):
            prog.attach_xdp(99999)
        with pytest.raises(ValueError, match="unknown XDP mode"):
            prog.attach_xdp("lo", mode="turbo")


def test_xdp_wrong_program_type(veth) -> None:
    code = struct.pack("<BBhi", MOV64_IMM, 0, 0, 0) + struct.pack("<BBhi", BPF_EXIT, 0, 0, 0)
    with in_netns(veth.ns_a), pylibbpf.Program.load_raw("socket_filter", code) as prog:
        with pytest.raises(pylibbpf.BPFError, match="this needs xdp"):
            prog.attach_xdp(veth.dev_a)


@pytest.mark.parametrize("legacy", [False, True], ids=["link", "netlink"])
def test_xdp_offload_not_supported_on_veth(veth, legacy) -> None:
    with in_netns(veth.ns_a), pylibbpf.Program.load_raw("xdp", pass_all(), name="pass") as prog:
        with pytest.raises(pylibbpf.NotSupportedError, match="offload") as ei:
            prog.attach_xdp(veth.dev_a, mode="offload", legacy=legacy)
        assert veth.dev_a in str(ei.value)
        assert pylibbpf.xdp_query(veth.dev_a).prog_id == 0


def test_xdp_link_update_and_detach(bpf_objects, veth) -> None:
    with in_netns(veth.ns_a), pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj, \
            pylibbpf.Program.load_raw("xdp", pass_all(), name="pass",
                                      expected_attach_type="xdp") as other:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        with prog.attach_xdp(veth.dev_a) as link:
            # a second program cannot take the interface while the link holds it
            with pytest.raises(pylibbpf.BPFError):
                other.attach_xdp(veth.dev_a, legacy=True)
            link.update(other)
            assert pylibbpf.xdp_query(veth.dev_a).prog_id == other.id
            before = passed(obj)
            send_udp(veth)
            assert passed(obj) == before  # xdp_rewrite no longer runs
            link.update(prog)
            send_udp(veth)
            assert wait_until(lambda: passed(obj) >= before + 5)
            link.detach()
            assert pylibbpf.xdp_query(veth.dev_a).prog_id == 0
            ran = passed(obj)
            send_udp(veth)
            assert passed(obj) == ran


def test_xdp_legacy_replace(bpf_objects, veth) -> None:
    with in_netns(veth.ns_a), pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj, \
            pylibbpf.Program.load_raw("xdp", pass_all(), name="pass") as other:
        obj.load()
        prog = obj.programs["xdp_rewrite"]
        first = other.attach_xdp(veth.dev_a, mode="generic", legacy=True)
        with pytest.raises(pylibbpf.BPFError, match="replace=True"):
            prog.attach_xdp(veth.dev_a, mode="generic", legacy=True)
        second = prog.attach_xdp(veth.dev_a, mode="generic", legacy=True, replace=True)
        assert pylibbpf.xdp_query(veth.dev_a).generic_prog_id == prog.id
        send_udp(veth)
        assert wait_until(lambda: passed(obj) >= 5)
        first.close()  # no longer attached: leaves the replacement alone
        assert pylibbpf.xdp_query(veth.dev_a).generic_prog_id == prog.id
        second.close()
        assert pylibbpf.xdp_query(veth.dev_a).prog_id == 0


def test_xdp_legacy_closed_outside_its_namespace(veth) -> None:
    with pylibbpf.Program.load_raw("xdp", pass_all(), name="pass") as prog:
        with in_netns(veth.ns_a):
            link = prog.attach_xdp(veth.dev_a, mode="generic", legacy=True)
        link.close()  # detached in ns_a, not in the root namespace
        with in_netns(veth.ns_a):
            assert pylibbpf.xdp_query(veth.dev_a).prog_id == 0


def test_in_netns_by_name_path_and_errors(veth) -> None:
    import os

    import socket

    outside = os.stat("/proc/thread-self/ns/net").st_ino
    with pylibbpf.in_netns(veth.ns_a):
        assert socket.if_nametoindex(veth.dev_a) > 0
        inside = os.stat("/proc/thread-self/ns/net").st_ino
    assert inside != outside == os.stat("/proc/thread-self/ns/net").st_ino
    with pylibbpf.in_netns(f"/run/netns/{veth.ns_b}"):
        assert socket.if_nametoindex(veth.dev_b) > 0
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-ns"):
        with pylibbpf.in_netns("no-such-ns"):
            pass
    with pytest.raises(TypeError, match="netns"):
        with pylibbpf.in_netns(1.5):  # type: ignore[arg-type]
            pass
