"""tc (clsact + cls_bpf through netlink), TCX links with ordering, netkit."""
from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess

import pytest

import pylibbpf
from conftest import in_netns
from _kernel import refused, support
from _netutil import (counter, create_netkit, netkit_newlink_message, pair_newlink_message,
                      parse_ack, receives, rtnl_request, send_udp, wait_until)

C_TC, C_DROP, C_ONE, C_TWO, C_THREE, C_TCX_EGRESS, C_NETKIT = 0, 1, 1, 2, 3, 4, 5


@pytest.fixture
def tc_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["net_tc"]) as obj:
        obj.load()
        yield obj




def qdiscs(ns: str, dev: str) -> str:
    return subprocess.run(["tc", "-n", ns, "qdisc", "show", "dev", dev], check=True,
                          capture_output=True, text=True).stdout


def seen(obj, i: int) -> int:
    m = obj.maps["seen"]
    if isinstance(getattr(type(m), "raw", None), property):
        m = m.raw
    v = m[struct.pack("I", i)]
    return v if isinstance(v, int) else struct.unpack("I", v)[0]


def test_tc_ingress_fires_and_cleans_up(tc_obj, veth) -> None:
    prog = tc_obj.programs["tc_count"]
    with in_netns(veth.ns_a):
        link = prog.attach_tc(veth.dev_a, direction="ingress")
        assert isinstance(link, pylibbpf.TCLink)
        assert link.handle > 0 and link.priority > 0
        assert "clsact" in qdiscs(veth.ns_a, veth.dev_a)
        assert pylibbpf.tc_query(veth.dev_a, handle=link.handle,
                                 priority=link.priority) == prog.id
        send_udp(veth)
        assert wait_until(lambda: counter(tc_obj, C_TC) >= 3)
        ran = counter(tc_obj, C_TC)
        link.close()
        assert "clsact" not in qdiscs(veth.ns_a, veth.dev_a)  # we created it: gone
        send_udp(veth)
        assert counter(tc_obj, C_TC) == ran


def test_tc_drop_verdict_and_replace(tc_obj, veth) -> None:
    drop, count = tc_obj.programs["tc_drop_9001"], tc_obj.programs["tc_count"]
    with in_netns(veth.ns_a):
        assert receives(veth, 9001)
        link = drop.attach_tc(veth.dev_a, priority=7, handle=3)
        assert (link.priority, link.handle) == (7, 3)
        assert not receives(veth, 9001)
        assert receives(veth, 9002)
        assert counter(tc_obj, C_DROP) >= 2  # both reached the program
        with pytest.raises(pylibbpf.BPFExistsError, match="replace=True"):
            count.attach_tc(veth.dev_a, priority=7, handle=3)
        assert "clsact" in qdiscs(veth.ns_a, veth.dev_a)  # the failure kept ours
        with count.attach_tc(veth.dev_a, priority=7, handle=3, replace=True):
            assert pylibbpf.tc_query(veth.dev_a, handle=3, priority=7) == count.id
            assert receives(veth, 9001)
        link.close()  # its filter was replaced and removed already
        assert receives(veth, 9001)
        assert "clsact" not in qdiscs(veth.ns_a, veth.dev_a)


def test_tc_shared_qdisc_and_existing_qdisc(tc_obj, veth) -> None:
    count, drop = tc_obj.programs["tc_count"], tc_obj.programs["tc_drop_9001"]
    with in_netns(veth.ns_a):
        first = count.attach_tc(veth.dev_a)
        second = drop.attach_tc(veth.dev_a)
        first.close()  # the qdisc stays for the second filter
        assert "clsact" in qdiscs(veth.ns_a, veth.dev_a)
        assert not receives(veth, 9001)
        second.close()
        assert "clsact" not in qdiscs(veth.ns_a, veth.dev_a)
        # a qdisc that was there before us stays
        subprocess.run(["tc", "-n", veth.ns_a, "qdisc", "add", "dev", veth.dev_a, "clsact"],
                       check=True)
        with count.attach_tc(veth.dev_a, direction="egress"):
            pass
        assert "clsact" in qdiscs(veth.ns_a, veth.dev_a)


def test_tc_link_closed_in_another_namespace(tc_obj, veth) -> None:
    with in_netns(veth.ns_a):
        link = tc_obj.programs["tc_drop_9001"].attach_tc(veth.dev_a)
        assert not receives(veth, 9001)
    link.close()  # from the root namespace: still removed where it was added
    assert "clsact" not in qdiscs(veth.ns_a, veth.dev_a)
    with in_netns(veth.ns_a):
        assert receives(veth, 9001)


@pytest.mark.kind("tcx")
def test_tcx_order_before_after(tc_obj, veth) -> None:
    one, two, three = (tc_obj.programs[n] for n in ("tcx_one", "tcx_two", "tcx_three"))
    with in_netns(veth.ns_a):
        l1 = one.attach_tcx(veth.dev_a)
        l2 = two.attach_tcx(veth.dev_a, after=one)
        l3 = three.attach_tcx(veth.dev_a, before=l1)
        assert l1.info.type == pylibbpf.LinkType.TCX
        q = pylibbpf.tcx_query(veth.dev_a, "ingress")
        assert q.prog_ids == (three.id, one.id, two.id)
        assert q.link_ids == (l3.info.id, l1.info.id, l2.info.id)
        send_udp(veth)
        assert wait_until(lambda: counter(tc_obj, C_TWO) >= 3)
        assert [seen(tc_obj, i) for i in (3, 1, 2)] == [0, 3, 1]  # ran 3, 1, 2
        l1.close()
        send_udp(veth)
        assert wait_until(lambda: seen(tc_obj, 2) == 3)  # two now runs right after three
        assert pylibbpf.tcx_query(veth.dev_a, "ingress").prog_ids == (three.id, two.id)
        # first place, by program id, with the revision we expect
        rev = pylibbpf.tcx_query(veth.dev_a, "ingress").revision
        with pytest.raises(pylibbpf.BPFError):
            one.attach_tcx(veth.dev_a, before=True, expected_revision=rev + 5)
        l1 = one.attach_tcx(veth.dev_a, before=three.id, expected_revision=rev)
        assert pylibbpf.tcx_query(veth.dev_a, "ingress").prog_ids == (one.id, three.id,
                                                                       two.id)
        for link in (l1, l2, l3):
            link.close()
        assert pylibbpf.tcx_query(veth.dev_a, "ingress").prog_ids == ()
        ran = [counter(tc_obj, i) for i in (C_ONE, C_TWO, C_THREE)]
        send_udp(veth)
        assert [counter(tc_obj, i) for i in (C_ONE, C_TWO, C_THREE)] == ran


@pytest.mark.kind("tcx")
def test_tcx_egress_and_tc_section_program(tc_obj, veth) -> None:
    with in_netns(veth.ns_b):
        with tc_obj.programs["tcx_egress_count"].attach_tcx(veth.dev_b):
            # a SEC("tc") program needs the direction
            with pytest.raises(pylibbpf.BPFError, match="direction"):
                tc_obj.programs["tc_count"].attach_tcx(veth.dev_b)
            # last: tc_count returns TC_ACT_OK, which ends the chain
            with tc_obj.programs["tc_count"].attach_tcx(veth.dev_b, direction="egress",
                                                        after=True):
                before = counter(tc_obj, C_TCX_EGRESS), counter(tc_obj, C_TC)
                send_udp(veth)
                assert wait_until(lambda: counter(tc_obj, C_TCX_EGRESS) >= before[0] + 3)
                assert wait_until(lambda: counter(tc_obj, C_TC) >= before[1] + 3)
                # a SEC("tc") program goes through BPF_LINK_CREATE, ordered all the same
                ids = [tc_obj.programs[n].id for n in ("tcx_egress_count", "tc_count",
                                                       "tc_drop_9001")]
                with tc_obj.programs["tc_drop_9001"].attach_tcx(
                        veth.dev_b, direction="egress", after=tc_obj.programs["tc_count"]):
                    assert pylibbpf.tcx_query(veth.dev_b, "egress").prog_ids == tuple(ids)
                with tc_obj.programs["tc_drop_9001"].attach_tcx(
                        veth.dev_b, direction="egress", before=tc_obj.programs["tc_count"]):
                    assert pylibbpf.tcx_query(veth.dev_b, "egress").prog_ids == \
                        (ids[0], ids[2], ids[1])
        ran = counter(tc_obj, C_TCX_EGRESS)
        send_udp(veth)
        assert counter(tc_obj, C_TCX_EGRESS) == ran


#: a netkit pair across the veth fixture's namespaces: primary in ns_a, peer in ns_b
NK_A, NK_B, NK_IP_A, NK_IP_B = "nk-a", "nk-b", "10.99.0.1", "10.99.0.2"


def make_netkit_pair(veth) -> None:
    """NK_A (primary, in veth.ns_a) and its peer NK_B (in veth.ns_b), with addresses
    and up; they go with the namespaces."""
    with in_netns(veth.ns_a):
        create_netkit(NK_A, NK_B, peer_netns=veth.ns_b, mode="l3")
    for ns, dev, ip in ((veth.ns_a, NK_A, NK_IP_A), (veth.ns_b, NK_B, NK_IP_B)):
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)


def netkit_udp(veth, src_ns: str, dst_ns: str, dst_ip: str, n: int = 3,
               port: int = 9000) -> int:
    """Send ``n`` test datagrams from ``src_ns`` to ``dst_ip``:``port`` (in
    ``dst_ns``), over the netkit pair; how many arrived."""
    with veth.socket_in(dst_ns) as r, veth.socket_in(src_ns) as s:
        r.bind((dst_ip, port))
        r.settimeout(2.0)
        for _ in range(n):
            s.sendto(b"x" * 32, (dst_ip, port))
        got = 0
        try:
            while got < n:
                got += r.recv(64) == b"x" * 32
        except TimeoutError:
            pass
        return got


def test_netkit(tc_obj, veth) -> None:
    prog = tc_obj.programs["netkit_pass"]
    if not support("netkit"):
        with in_netns(veth.ns_a):
            with refused("netkit", "netkit_pass", "veth-a"):
                prog.attach_netkit(veth.dev_a)
            # and no netkit device can be made: the helper says why
            with pytest.raises(OSError, match="this kernel has no netkit driver") as info:
                create_netkit(NK_A, NK_B, peer_netns=veth.ns_b)
            assert info.value.errno == errno.EOPNOTSUPP
        return
    make_netkit_pair(veth)
    a_to_b = lambda: netkit_udp(veth, veth.ns_a, veth.ns_b, NK_IP_B)  # noqa: E731
    b_to_a = lambda: netkit_udp(veth, veth.ns_b, veth.ns_a, NK_IP_A)  # noqa: E731
    assert a_to_b() == 3 and b_to_a() == 3  # the pair forwards, before any program
    assert counter(tc_obj, C_NETKIT) == 0
    with in_netns(veth.ns_a):
        nk_a = socket.if_nametoindex(NK_A)
        # primary: runs on what the primary sends; returns NETKIT_NEXT, so it passes
        link = prog.attach_netkit(NK_A, side="primary")
        info = link.info
        assert info.type == pylibbpf.LinkType.NETKIT
        assert (info.ifindex, info.attach_type) == (nk_a, pylibbpf.AttachType.NETKIT_PRIMARY)
        assert a_to_b() == 3
        assert wait_until(lambda: counter(tc_obj, C_NETKIT) == 3)
        assert b_to_a() == 3  # the peer's traffic is not the primary's
        assert counter(tc_obj, C_NETKIT) == 3
        link.close()
        assert a_to_b() == 3
        assert counter(tc_obj, C_NETKIT) == 3  # detached: it no longer runs
        # peer: attached through the primary device, runs on what the peer sends
        with prog.attach_netkit(NK_A, side="peer") as peer_link:
            assert peer_link.info.attach_type == pylibbpf.AttachType.NETKIT_PEER
            assert b_to_a() == 3
            assert wait_until(lambda: counter(tc_obj, C_NETKIT) == 6)
            assert a_to_b() == 3
            assert counter(tc_obj, C_NETKIT) == 6
        assert b_to_a() == 3
        assert counter(tc_obj, C_NETKIT) == 6
        # a device that is no netkit device
        with pytest.raises(pylibbpf.BPFError, match="is not a netkit device"):
            prog.attach_netkit(veth.dev_a, side="primary")
    with in_netns(veth.ns_b):
        # the peer device itself is no attach point: the kernel refuses (EACCES)
        with pytest.raises(pylibbpf.BPFError, match=f"'{NK_B}': that is the peer device"):
            prog.attach_netkit(NK_B, side="peer")


def test_netkit_newlink_message(veth) -> None:
    """The RTM_NEWLINK request of create_netkit(), byte by byte (include/uapi/linux:
    netlink.h, rtnetlink.h, if_link.h), and the same layout accepted by this kernel
    for a veth pair (its VETH_INFO_PEER is shaped as IFLA_NETKIT_PEER_INFO)."""
    msg = netkit_newlink_message("nk0", "nk1", peer_netns_fd=7, mode="l3", policy="pass",
                                 peer_policy="drop", seq=5)
    assert msg == bytes.fromhex(
        "78000000 1000 0506 05000000 00000000"  # nlmsghdr: RTM_NEWLINK, REQ|ACK|EXCL|CREATE
        + "00" * 16                             # ifinfomsg: AF_UNSPEC, ifindex 0
        + "0800 0300 6e6b3000"                  # IFLA_IFNAME "nk0"
        + "5000 1280"                           # IFLA_LINKINFO (nested)
        + "0b00 0100 6e65746b697400 00"         #  IFLA_INFO_KIND "netkit", padded
        + "4000 0280"                           #  IFLA_INFO_DATA (nested)
        + "2400 0100" + "00" * 16               #   IFLA_NETKIT_PEER_INFO: ifinfomsg
        + "0800 0300 6e6b3100"                  #    IFLA_IFNAME "nk1"
        + "0800 1c00 07000000"                  #    IFLA_NET_NS_FD 7
        + "0800 0500 01000000"                  #   IFLA_NETKIT_MODE NETKIT_L3
        + "0800 0300 00000000"                  #   IFLA_NETKIT_POLICY NETKIT_PASS
        + "0800 0400 02000000")                 #   IFLA_NETKIT_PEER_POLICY NETKIT_DROP
    plain = netkit_newlink_message("nk0", "nk1")  # the kernel's defaults: no extras
    assert len(plain) == 88 and plain[44:56] == msg[44:56]  # the same kind
    assert plain[-28:] == bytes.fromhex("1c00 0100" + "00" * 16 + "0800 0300 6e6b3100")
    with pytest.raises(ValueError, match="interface name"):
        netkit_newlink_message("x" * 16, "nk1")
    with pytest.raises(ValueError, match="l2"):
        netkit_newlink_message("nk0", "nk1", mode="l4")
    # an acknowledgement carrying an error and the kernel's extended-ack text
    req = plain[:16]
    ack = (struct.pack("=IHHII", 16 + 4 + 16 + 24, 2, 0x100 | 0x200, 1, 0)
           + struct.pack("=i", -errno.EOPNOTSUPP) + req
           + struct.pack("=HH", 4 + 20, 1) + b"Unknown device type\0")
    assert parse_ack(ack, 1) == (errno.EOPNOTSUPP, "Unknown device type")
    assert parse_ack(ack, 2) is None
    # the same layout, kind veth, peer moved to the other namespace: this kernel agrees
    fd = os.open(f"/run/netns/{veth.ns_b}", os.O_RDONLY)
    try:
        with in_netns(veth.ns_a):
            assert rtnl_request(pair_newlink_message("veth", "vx-a", "vx-b",
                                                     peer_netns_fd=fd)) == (0, "")
            assert rtnl_request(pair_newlink_message("veth", "vx-a", "vx-c"))[0] == \
                errno.EEXIST
    finally:
        os.close(fd)
    out = subprocess.run(["ip", "-n", veth.ns_b, "-o", "link", "show", "vx-b"],
                         check=True, capture_output=True, text=True).stdout
    assert "vx-b@" in out


def test_tc_errors(tc_obj, bpf_objects, veth) -> None:
    prog = tc_obj.programs["tc_count"]
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-if0"):
        prog.attach_tc("no-such-if0")
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-if0"):
        prog.attach_tcx("no-such-if0", direction="ingress")
    with pytest.raises(ValueError, match="direction"):
        prog.attach_tc("lo", direction="sideways")
    with pytest.raises(ValueError, match="65535"):
        prog.attach_tc("lo", priority=70000)
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        xdp = obj.programs["xdp_rewrite"]
        with in_netns(veth.ns_a):
            with pytest.raises(pylibbpf.BPFError, match="needs sched_cls"):
                xdp.attach_tc(veth.dev_a)
            with pytest.raises(pylibbpf.BPFError, match="needs sched_cls"):
                xdp.attach_tcx(veth.dev_a, direction="ingress")
            assert "clsact" not in qdiscs(veth.ns_a, veth.dev_a)
