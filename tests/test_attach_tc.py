"""tc (clsact + cls_bpf through netlink), TCX links with ordering, netkit."""
from __future__ import annotations

import struct
import subprocess

import pytest

import pylibbpf
from conftest import in_netns
from _kernel import refused, support
from _netutil import counter, receives, send_udp, wait_until

C_TC, C_DROP, C_ONE, C_TWO, C_THREE, C_TCX_EGRESS = 0, 1, 1, 2, 3, 4


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


def test_netkit(tc_obj, veth) -> None:
    if support("netkit"):
        pytest.skip("netkit attach on a netkit device: creating one needs iproute2 >= 6.7 "
                    "(Debian bookworm has 6.1)")
    with in_netns(veth.ns_a):
        with refused("netkit", "netkit_pass", "veth-a"):
            tc_obj.programs["netkit_pass"].attach_netkit(veth.dev_a)


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
