"""Network-namespace hooks (sk_lookup, flow dissector), netfilter, sockmap
programs (sk_msg, sk_skb), SO_REUSEPORT programs and raw BPF_PROG_ATTACH."""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest

import pylibbpf
from conftest import in_netns
from _kernel import refused, support
from _netutil import counter, receives, send_udp, wait_until


def raw_map(m):
    return m.raw if isinstance(getattr(type(m), "raw", None), property) else m


def put_socket(m, key: int, sock: socket.socket) -> None:
    raw_map(m)[struct.pack("I", key)] = struct.pack("Q", sock.fileno())


def del_socket(m, key: int) -> None:
    del raw_map(m)[struct.pack("I", key)]




def tcp_pair(veth, port: int):
    """A connected TCP pair: (client in ns_b, server side in ns_a)."""
    with in_netns(veth.ns_a):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.bind((veth.ip_a, port))
        listener.listen(1)
        with in_netns(veth.ns_b):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(2)
        client.connect((veth.ip_a, port))
        server, _ = listener.accept()
    server.settimeout(2)
    return client, server


# --- network namespace: sk_lookup and flow dissector -----------------------------

@pytest.fixture
def netns_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["net_netns"]) as obj:
        obj.load()
        yield obj


def test_sk_lookup_steers_connections(netns_obj, veth) -> None:
    prog = netns_obj.programs["steer_7300"]
    with in_netns(veth.ns_a):
        target = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with target:
        target.bind((veth.ip_a, 7301))
        target.listen(4)
        target.settimeout(2)
        put_socket(netns_obj.maps["target"], 0, target)

        def connect() -> bytes:
            with in_netns(veth.ns_b):
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with c:
                c.settimeout(2)
                c.connect((veth.ip_a, 7300))  # nobody listens on 7300
                c.sendall(b"steered")
                conn, _ = target.accept()
                with conn:
                    return conn.recv(64)

        link = prog.attach_netns(veth.ns_a)  # by /run/netns name, from outside it
        assert link.info.type == pylibbpf.LinkType.NETNS
        assert pylibbpf.netns_query(veth.ns_a, "sk_lookup").prog_ids == (prog.id,)
        assert connect() == b"steered"
        assert counter(netns_obj, 0) >= 1
        link.close()
        assert pylibbpf.netns_query(veth.ns_a, "sk_lookup").prog_ids == ()
        with pytest.raises(ConnectionRefusedError):
            connect()


def _frame(veth) -> bytes:
    """An Ethernet + IPv4 + UDP frame from ns_b's address to ns_a's."""
    src = socket.inet_aton(veth.ip_b)
    dst = socket.inet_aton(veth.ip_a)
    udp = struct.pack("!HHHH", 5555, 9090, 8 + 4, 0) + b"data"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def test_flow_dissector_runs_on_packets(netns_obj, veth) -> None:
    prog = netns_obj.programs["dissect_ipv4"]
    with in_netns(veth.ns_b):
        ns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        raw.bind((veth.dev_b, 0))
        link = prog.attach_netns(ns_fd)  # by fd
        with link:
            assert pylibbpf.netns_query(ns_fd, "flow_dissector").prog_ids == (prog.id,)
            before = counter(netns_obj, 1)
            for _ in range(3):
                raw.send(_frame(veth))  # AF_PACKET probes the headers with the dissector
            assert counter(netns_obj, 1) >= before + 3
        ran = counter(netns_obj, 1)
        raw.send(_frame(veth))
        assert counter(netns_obj, 1) == ran
    finally:
        raw.close()
        os.close(ns_fd)


def test_netns_errors(netns_obj, bpf_objects) -> None:
    prog = netns_obj.programs["steer_7300"]
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-netns"):
        prog.attach_netns("no-such-netns")
    with pytest.raises(pylibbpf.BPFNotFoundError, match="/nonexistent/ns"):
        prog.attach_netns("/nonexistent/ns")
    with pylibbpf.Object(bpf_objects["net_tc"]) as obj:
        obj.load()
        with pytest.raises(pylibbpf.BPFError, match="needs flow_dissector or sk_lookup"):
            obj.programs["tc_count"].attach_netns()


# --- netfilter ----------------------------------------------------------------------

@pytest.fixture
def nf_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["net_netfilter"]) as obj:
        obj.load()
        yield obj


@pytest.mark.kind("netfilter")
def test_netfilter_counts_and_stops(nf_obj, veth) -> None:
    with in_netns(veth.ns_a):
        link = nf_obj.programs["nf_count"].attach_netfilter(family="ipv4", hook="local_in",
                                                            priority=-100)
    with link:
        assert link.info.type == pylibbpf.LinkType.NETFILTER
        send_udp(veth, 9100)
        assert wait_until(lambda: counter(nf_obj, 0) >= 3)
        ran = counter(nf_obj, 0)
    send_udp(veth, 9100)
    assert counter(nf_obj, 0) == ran


@pytest.mark.kind("netfilter")
def test_netfilter_drop_verdict(nf_obj, veth) -> None:
    with in_netns(veth.ns_a):
        assert receives(veth, 9101)
        with nf_obj.programs["nf_drop"].attach_netfilter(hook="prerouting", priority=10,
                                                         defrag=True):
            assert not receives(veth, 9101)
            assert counter(nf_obj, 1) >= 1
        assert receives(veth, 9101)


@pytest.mark.kind("netfilter")
def test_netfilter_errors(nf_obj, netns_obj) -> None:
    prog = nf_obj.programs["nf_count"]
    with pytest.raises(ValueError, match="unknown netfilter family"):
        prog.attach_netfilter(family="ipx")
    with pytest.raises(ValueError, match="unknown netfilter hook"):
        prog.attach_netfilter(hook="sideways")
    with pytest.raises(ValueError, match="priority"):
        prog.attach_netfilter(priority=-(1 << 31))
    with pytest.raises(pylibbpf.BPFError, match="needs netfilter"):
        netns_obj.programs["steer_7300"].attach_netfilter()


# --- sockmap / sockhash -------------------------------------------------------------

C_MSG, C_PARSER, C_STREAM_VERDICT, C_VERDICT = range(4)


@pytest.fixture
def sk_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["net_sockmap"]) as obj:
        obj.load()
        yield obj


@pytest.mark.parametrize("legacy", [False, True], ids=["link", "legacy"])
def test_sk_msg_verdict(sk_obj, veth, legacy) -> None:
    prog, socks = sk_obj.programs["msg_verdict"], sk_obj.maps["msg_socks"]
    if not legacy and not support("sockmap_link"):   # before Linux 6.10
        with refused("sockmap_link", "msg_verdict", "legacy=True"):
            prog.attach_sockmap(socks)
        return
    client, server = tcp_pair(veth, 7800)
    with client, server:
        link = prog.attach_sockmap(socks, legacy=legacy)
        assert pylibbpf.sockmap_query(socks, "sk_msg_verdict").prog_ids == (prog.id,)
        if not legacy:
            assert link.info.type == pylibbpf.LinkType.SOCKMAP
        put_socket(socks, 1, client)
        before = counter(sk_obj, C_MSG)
        client.sendall(b"hello")
        assert server.recv(64) == b"hello"
        assert counter(sk_obj, C_MSG) == before + 1
        with pytest.raises(PermissionError):
            client.send(b"thirteen byte")  # the program drops 13-byte messages
        assert counter(sk_obj, C_MSG) == before + 2
        link.close()
        assert pylibbpf.sockmap_query(socks, "sk_msg_verdict").prog_ids == ()
        del_socket(socks, 1)
        put_socket(socks, 1, client)  # re-added after the detach: no program
        client.sendall(b"thirteen byte")
        assert server.recv(64) == b"thirteen byte"
        assert counter(sk_obj, C_MSG) == before + 2
        del_socket(socks, 1)


def test_sk_skb_stream_parser_and_verdict(sk_obj, veth) -> None:
    socks = sk_obj.maps["stream_socks"]
    client, server = tcp_pair(veth, 7801)
    with client, server:
        legacy = not support("sockmap_link")   # before Linux 6.10: BPF_PROG_ATTACH
        if legacy:
            with refused("sockmap_link", "skb_parser"):
                sk_obj.programs["skb_parser"].attach_sockmap(socks)
        parser = sk_obj.programs["skb_parser"].attach_sockmap(socks, legacy=legacy)
        verdict = sk_obj.programs["skb_stream_verdict"].attach_sockmap(
            socks, attach_type="sk_skb_stream_verdict", legacy=legacy)
        put_socket(socks, 0, server)
        before = counter(sk_obj, C_PARSER), counter(sk_obj, C_STREAM_VERDICT)
        client.sendall(b"through the parser")
        assert server.recv(64) == b"through the parser"
        assert counter(sk_obj, C_PARSER) > before[0]
        assert counter(sk_obj, C_STREAM_VERDICT) > before[1]
        verdict.close()
        parser.close()
        del_socket(socks, 0)


def test_sk_skb_verdict_and_raw_attach(sk_obj, veth) -> None:
    socks = sk_obj.maps["verdict_socks"]
    prog = sk_obj.programs["skb_verdict"]
    client, server = tcp_pair(veth, 7802)
    with client, server:
        link = prog.attach_raw(socks, "sk_skb_verdict")  # BPF_PROG_ATTACH to the map fd
        assert pylibbpf.sockmap_query(socks, "sk_skb_verdict").prog_ids == (prog.id,)
        assert pylibbpf.query_raw(socks.fd, "sk_skb_verdict").prog_ids == (prog.id,)
        put_socket(socks, 0, server)
        before = counter(sk_obj, C_VERDICT)
        client.sendall(b"verdict")
        assert server.recv(64) == b"verdict"
        assert counter(sk_obj, C_VERDICT) > before
        link.close()
        assert pylibbpf.sockmap_query(socks, "sk_skb_verdict").prog_ids == ()
        del_socket(socks, 0)


def test_sockmap_errors(sk_obj, netns_obj) -> None:
    with pytest.raises(pylibbpf.BPFError, match="need a sockmap or sockhash"):
        sk_obj.programs["msg_verdict"].attach_sockmap(sk_obj.maps["counts"])
    with pytest.raises(pylibbpf.BPFError, match="sk_msg_verdict needs sk_msg"):
        sk_obj.programs["skb_verdict"].attach_sockmap(sk_obj.maps["verdict_socks"],
                                                      attach_type="sk_msg_verdict")
    with pytest.raises(pylibbpf.BPFError, match="not a sockmap attach type"):
        sk_obj.programs["skb_verdict"].attach_sockmap(sk_obj.maps["verdict_socks"],
                                                      attach_type="xdp")
    with pytest.raises(pylibbpf.BPFError, match="this needs sk_msg or sk_skb"):
        netns_obj.programs["steer_7300"].attach_sockmap(sk_obj.maps["verdict_socks"])


# --- SO_REUSEPORT -----------------------------------------------------------------------

def test_reuseport_select(bpf_objects, veth) -> None:
    with pylibbpf.Object(bpf_objects["net_reuseport"]) as obj:
        obj.load()
        prog = obj.programs["pick_second"]
        socks = []
        with in_netns(veth.ns_a):
            for _ in range(2):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                s.bind((veth.ip_a, 7700))
                s.setblocking(False)
                socks.append(s)
        try:
            for i, s in enumerate(socks):
                put_socket(obj.maps["group"], i, s)
            prog.attach_reuseport(socks[0])
            for port in range(5):  # different source ports: different hashes
                with veth.socket_in(veth.ns_b) as c:
                    c.sendto(b"x", (veth.ip_a, 7700))
            got = [0, 0]

            def drain() -> bool:
                for i, s in enumerate(socks):
                    while True:
                        try:
                            s.recv(8)
                            got[i] += 1
                        except BlockingIOError:
                            break
                return sum(got) >= 5

            assert wait_until(drain)
            time.sleep(0.05)
            drain()
            assert got == [0, 5]
            ran = counter(obj, 0)
            assert ran == 5
            prog.detach_reuseport(socks[0])
            send_udp(veth, 7700, 3)
            assert counter(obj, 0) == ran
            with pytest.raises(pylibbpf.BPFError, match="needs sk_reuseport or socket_filter"):
                with pylibbpf.Object(bpf_objects["net_tc"]) as tc:
                    tc.load()
                    tc.programs["tc_count"].attach_reuseport(socks[0])
        finally:
            for s in socks:
                s.close()


def test_attach_raw_errors(sk_obj) -> None:
    prog = sk_obj.programs["skb_verdict"]
    with pytest.raises(ValueError, match="unknown attach type"):
        prog.attach_raw(sk_obj.maps["verdict_socks"], "no_such_type")
    with pytest.raises(pylibbpf.BPFError, match="fd 99999"):
        prog.attach_raw(99999, "sk_skb_verdict")
    with pytest.raises(ValueError, match="attach_tcx"):
        prog.attach_raw(1, "tcx_ingress")


def test_attach_with_closed_object_raises(bpf_objects, veth) -> None:
    obj = pylibbpf.Object(bpf_objects["net_tc"])
    obj.load()
    progs = dict(obj.programs)
    obj.close()
    with in_netns(veth.ns_a):
        for call in (lambda: progs["tcx_one"].attach_tcx(veth.dev_a),
                     lambda: progs["tc_count"].attach_tcx(veth.dev_a, direction="ingress"),
                     lambda: progs["tc_count"].attach_tc(veth.dev_a),
                     lambda: progs["netkit_pass"].attach_netkit(veth.dev_a),
                     lambda: progs["tc_count"].attach_cgroup("/"),
                     lambda: progs["tc_count"].attach_netns(),
                     lambda: progs["tc_count"].attach_sockmap(3),
                     lambda: progs["tc_count"].attach_netfilter(),
                     lambda: progs["tc_count"].attach_raw(0, "sk_msg_verdict")):
            with pytest.raises(pylibbpf.ClosedError):
                call()
