"""cgroup v2 hooks: attach to a test cgroup, make a process in it do the thing
the hook watches, check the program ran (and its verdict), detach, check it stopped."""
from __future__ import annotations

import os
import socket

import pytest

import pylibbpf
from conftest import in_netns
from _netutil import counter, make_cgroup, run_in_child
from pylibbpf.attach.cgroup import CGROUP_ATTACH_TYPES

# slots of net_cgroup.bpf.c's counters
(C_EGRESS, C_INGRESS, C_SOCK_CREATE, C_SOCK_RELEASE, C_BIND4, C_CONNECT4, C_SENDMSG4,
 C_RECVMSG4, C_GETPEERNAME4, C_GETSOCKNAME4, C_CONNECT_UNIX, C_SYSCTL, C_GETSOCKOPT,
 C_SETSOCKOPT, C_DEVICE, C_SOCK_OPS, C_PASS_A, C_PASS_B) = range(18)


@pytest.fixture(scope="module")
def cg_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["net_cgroup"]) as obj:
        obj.load()
        yield obj


@pytest.fixture
def cgroup():
    with make_cgroup() as path:
        yield path


def udp_send(veth, payload: bytes = b"ping", port: int = 9050) -> int:
    """From inside the child: send a datagram from ns_b to ns_a."""
    with in_netns(veth.ns_b):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        return s.sendto(payload, (veth.ip_a, port))


def test_egress_drop_fails_send_then_stops(cg_obj, cgroup, veth) -> None:
    prog = cg_obj.programs["egress_drop"]
    before = counter(cg_obj, C_EGRESS)
    link = prog.attach_cgroup(cgroup)
    assert link.info.type == pylibbpf.LinkType.CGROUP
    with pytest.raises(PermissionError):
        run_in_child(lambda: udp_send(veth), cgroup=cgroup)
    assert counter(cg_obj, C_EGRESS) > before
    # a process outside the cgroup is not affected
    assert run_in_child(lambda: udp_send(veth)) == 4
    link.close()
    ran = counter(cg_obj, C_EGRESS)
    assert run_in_child(lambda: udp_send(veth), cgroup=cgroup) == 4
    assert counter(cg_obj, C_EGRESS) == ran


def test_ingress_counts_received_packets(cg_obj, cgroup, veth) -> None:
    with in_netns(veth.ns_b):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # outside the cgroup

    def receive() -> bytes:
        with in_netns(veth.ns_a):
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with r:
            r.bind((veth.ip_a, 9051))
            r.settimeout(2)
            sender.sendto(b"hello", (veth.ip_a, 9051))
            return r.recv(64)

    with sender, cg_obj.programs["ingress_count"].attach_cgroup(str(cgroup)):
        before = counter(cg_obj, C_INGRESS)
        assert run_in_child(receive, cgroup=cgroup) == b"hello"
        assert counter(cg_obj, C_INGRESS) > before
    ran = counter(cg_obj, C_INGRESS)
    with sender:
        pass
    assert counter(cg_obj, C_INGRESS) == ran


def test_attach_by_fd_and_query(cg_obj, cgroup) -> None:
    prog = cg_obj.programs["ingress_count"]
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with make_cgroup(cgroup) as sub:
            with prog.attach_cgroup(fd, attach_type="cgroup_inet_ingress") as link:
                q = pylibbpf.cgroup_query(cgroup, "cgroup_inet_ingress")
                assert q.prog_ids == (prog.id,)
                assert pylibbpf.cgroup_query(sub, "cgroup_inet_ingress").prog_ids == ()
                eff = pylibbpf.cgroup_query(sub, "cgroup_inet_ingress", effective=True)
                assert eff.prog_ids == (prog.id,)
                assert link.info.program_id == prog.id
            assert pylibbpf.cgroup_query(cgroup, "cgroup_inet_ingress").prog_ids == ()
    finally:
        os.close(fd)


def test_legacy_multi_and_replace(cg_obj, cgroup, veth) -> None:
    a, b, drop = (cg_obj.programs[n] for n in ("egress_pass_a", "egress_pass_b", "egress_drop"))
    la = a.attach_cgroup(cgroup, legacy=True, flags="multi")
    lb = b.attach_cgroup(cgroup, legacy=True, flags="multi")
    try:
        q = pylibbpf.cgroup_query(cgroup, "cgroup_inet_egress")
        assert q.prog_ids == (a.id, b.id)
        assert q.attach_flags == 2  # BPF_F_ALLOW_MULTI
        pa, pb = counter(cg_obj, C_PASS_A), counter(cg_obj, C_PASS_B)
        assert run_in_child(lambda: udp_send(veth), cgroup=cgroup) == 4
        assert counter(cg_obj, C_PASS_A) > pa and counter(cg_obj, C_PASS_B) > pb
        # swap a for the dropping program, in place
        ld = drop.attach_cgroup(cgroup, legacy=True, flags="multi", replace=a)
        assert pylibbpf.cgroup_query(cgroup, "cgroup_inet_egress").prog_ids == (drop.id, b.id)
        with pytest.raises(PermissionError):
            run_in_child(lambda: udp_send(veth), cgroup=cgroup)
        ld.close()
        assert pylibbpf.cgroup_query(cgroup, "cgroup_inet_egress").prog_ids == (b.id,)
        la.close()  # a was replaced already: closing is harmless
    finally:
        lb.close()
        la.close()
    assert pylibbpf.cgroup_query(cgroup, "cgroup_inet_egress").prog_ids == ()


def test_legacy_override_flags(cg_obj, cgroup) -> None:
    a, b = cg_obj.programs["egress_pass_a"], cg_obj.programs["egress_pass_b"]
    with make_cgroup(cgroup) as sub:
        # exclusive (no flags): a sub-cgroup may not attach its own program
        with a.attach_cgroup(cgroup, legacy=True):
            with pytest.raises(pylibbpf.BPFPermissionError, match="pylibbpf-test"):
                b.attach_cgroup(sub, legacy=True)
        # override: it may, and its program replaces the parent's there
        with a.attach_cgroup(cgroup, legacy=True, flags="override"):
            with b.attach_cgroup(sub, legacy=True, flags="override"):
                eff = pylibbpf.cgroup_query(sub, "cgroup_inet_egress", effective=True)
                assert eff.prog_ids == (b.id,)
            eff = pylibbpf.cgroup_query(sub, "cgroup_inet_egress", effective=True)
            assert eff.prog_ids == (a.id,)


def test_sock_create_and_release(cg_obj, cgroup) -> None:
    def make(family: int) -> bool:
        socket.socket(family, socket.SOCK_DGRAM).close()
        return True

    with cg_obj.programs["sock_create_deny"].attach_cgroup(cgroup), \
            cg_obj.programs["sock_release_count"].attach_cgroup(cgroup):
        created, released = counter(cg_obj, C_SOCK_CREATE), counter(cg_obj, C_SOCK_RELEASE)
        assert run_in_child(lambda: make(socket.AF_INET), cgroup=cgroup)
        with pytest.raises(PermissionError):
            run_in_child(lambda: make(socket.AF_INET6), cgroup=cgroup)
        assert counter(cg_obj, C_SOCK_CREATE) >= created + 2
        assert counter(cg_obj, C_SOCK_RELEASE) > released
    assert run_in_child(lambda: make(socket.AF_INET6), cgroup=cgroup)


def test_bind4_verdict(cg_obj, cgroup, veth) -> None:
    def bind(port: int) -> int:
        with in_netns(veth.ns_b):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.bind((veth.ip_b, port))
            return int(s.getsockname()[1])

    with cg_obj.programs["bind4_deny"].attach_cgroup(cgroup):
        before = counter(cg_obj, C_BIND4)
        with pytest.raises(PermissionError):
            run_in_child(lambda: bind(4242), cgroup=cgroup)
        assert run_in_child(lambda: bind(4243), cgroup=cgroup) == 4243
        assert counter(cg_obj, C_BIND4) == before + 2
    assert run_in_child(lambda: bind(4242), cgroup=cgroup) == 4242
    assert counter(cg_obj, C_BIND4) == before + 2


def test_connect4_redirect_and_getpeername4(cg_obj, cgroup, veth) -> None:
    with in_netns(veth.ns_a):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((veth.ip_a, 7001))
    server.listen(4)
    server.settimeout(2)

    def connect() -> tuple:
        with in_netns(veth.ns_b):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with c:
            c.settimeout(2)
            c.connect((veth.ip_a, 7000))
            c.sendall(b"redirected")
            conn, _ = server.accept()
            with conn:
                return conn.recv(64), c.getpeername()[1]

    with server:
        with cg_obj.programs["connect4_redirect"].attach_cgroup(cgroup), \
                cg_obj.programs["getpeername4_rewrite"].attach_cgroup(cgroup):
            before = counter(cg_obj, C_CONNECT4), counter(cg_obj, C_GETPEERNAME4)
            data, peer_port = run_in_child(connect, cgroup=cgroup)
            assert data == b"redirected"
            assert peer_port == 7000  # getpeername4 hides the real port 7001
            assert counter(cg_obj, C_CONNECT4) > before[0]
            assert counter(cg_obj, C_GETPEERNAME4) > before[1]
        with pytest.raises(ConnectionRefusedError):
            run_in_child(connect, cgroup=cgroup)


def test_sendmsg4_and_recvmsg4_rewrite(cg_obj, cgroup, veth) -> None:
    with in_netns(veth.ns_a):
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((veth.ip_a, 7101))
    server.settimeout(2)

    def exchange() -> int:
        with in_netns(veth.ns_b):
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with c:
            c.settimeout(2)
            c.sendto(b"q", (veth.ip_a, 7100))
            data, addr = server.recvfrom(64)
            server.sendto(b"r", addr)
            return int(c.recvfrom(64)[1][1])

    with server:
        with cg_obj.programs["sendmsg4_redirect"].attach_cgroup(cgroup), \
                cg_obj.programs["recvmsg4_rewrite"].attach_cgroup(cgroup):
            before = counter(cg_obj, C_SENDMSG4), counter(cg_obj, C_RECVMSG4)
            # sent to 7100, delivered to 7101; the reply seems to come from 7100
            assert run_in_child(exchange, cgroup=cgroup) == 7100
            assert counter(cg_obj, C_SENDMSG4) > before[0]
            assert counter(cg_obj, C_RECVMSG4) > before[1]
        with pytest.raises(TimeoutError):
            run_in_child(exchange, cgroup=cgroup)  # 7100: nobody listens now


def test_getsockname4_rewrite(cg_obj, cgroup, veth) -> None:
    def name() -> int:
        with in_netns(veth.ns_b):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.bind((veth.ip_b, 7500))
            return int(s.getsockname()[1])

    with cg_obj.programs["getsockname4_rewrite"].attach_cgroup(cgroup):
        before = counter(cg_obj, C_GETSOCKNAME4)
        assert run_in_child(name, cgroup=cgroup) == 7501
        assert counter(cg_obj, C_GETSOCKNAME4) > before
    assert run_in_child(name, cgroup=cgroup) == 7500


def test_connect_unix_denied(cg_obj, cgroup) -> None:
    addr = f"\0pylibbpf-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(addr)
    server.listen(2)

    def connect() -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(addr)
        return True

    with server:
        with cg_obj.programs["connect_unix_deny"].attach_cgroup(cgroup):
            before = counter(cg_obj, C_CONNECT_UNIX)
            with pytest.raises(PermissionError):
                run_in_child(connect, cgroup=cgroup)
            assert counter(cg_obj, C_CONNECT_UNIX) > before
        assert run_in_child(connect, cgroup=cgroup)


def test_sysctl_readonly(cg_obj, cgroup, veth) -> None:
    path = "/proc/sys/net/ipv4/ip_default_ttl"

    def read_then_write() -> str:
        with in_netns(veth.ns_b):  # only ever this test namespace's sysctl
            with open(path) as f:
                value = f.read()
            with open(path, "w") as f:
                f.write(value)
        return value

    with cg_obj.programs["sysctl_readonly"].attach_cgroup(cgroup):
        before = counter(cg_obj, C_SYSCTL)
        with pytest.raises(PermissionError):
            run_in_child(read_then_write, cgroup=cgroup)
        assert counter(cg_obj, C_SYSCTL) >= before + 2
    assert run_in_child(read_then_write, cgroup=cgroup).strip().isdigit()


def test_sockopt_hooks(cg_obj, cgroup) -> None:
    def opts() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            value = s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, 3)
            return int(value)

    with cg_obj.programs["setsockopt_deny_priority"].attach_cgroup(cgroup), \
            cg_obj.programs["getsockopt_count"].attach_cgroup(cgroup):
        before = counter(cg_obj, C_SETSOCKOPT), counter(cg_obj, C_GETSOCKOPT)
        with pytest.raises(PermissionError):
            run_in_child(opts, cgroup=cgroup)
        assert counter(cg_obj, C_SETSOCKOPT) == before[0] + 2
        assert counter(cg_obj, C_GETSOCKOPT) == before[1] + 1
    assert run_in_child(opts, cgroup=cgroup) == 1
    assert counter(cg_obj, C_SETSOCKOPT) == before[0] + 2


def test_device_denied(cg_obj, cgroup) -> None:
    def open_null() -> bool:
        with open("/dev/null", "rb"):
            return True

    with cg_obj.programs["dev_deny_null"].attach_cgroup(cgroup) as link:
        assert pylibbpf.cgroup_query(cgroup, "cgroup_device").prog_ids == (
            cg_obj.programs["dev_deny_null"].id,)
        before = counter(cg_obj, C_DEVICE)
        with pytest.raises(PermissionError):
            run_in_child(open_null, cgroup=cgroup)
        assert counter(cg_obj, C_DEVICE) > before
        assert link.info.type == pylibbpf.LinkType.CGROUP
    assert run_in_child(open_null, cgroup=cgroup)


def test_sock_ops_sees_connect(cg_obj, cgroup, veth) -> None:
    with in_netns(veth.ns_a):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((veth.ip_a, 7600))
    server.listen(4)

    def connect() -> bool:
        with in_netns(veth.ns_b):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with c:
            c.settimeout(2)
            c.connect((veth.ip_a, 7600))
        return True

    with server:
        with cg_obj.programs["sockops_count"].attach_cgroup(cgroup):
            before = counter(cg_obj, C_SOCK_OPS)
            assert run_in_child(connect, cgroup=cgroup)
            assert counter(cg_obj, C_SOCK_OPS) == before + 1
        assert run_in_child(connect, cgroup=cgroup)
        assert counter(cg_obj, C_SOCK_OPS) == before + 1


def test_attach_raw_to_cgroup_fd(cg_obj, cgroup, veth) -> None:
    prog = cg_obj.programs["egress_drop"]
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        link = prog.attach_raw(fd, "cgroup_inet_egress", flags="multi")
    finally:
        os.close(fd)  # the Link keeps its own copy
    with link:
        assert link.fd == -1  # no bpf_link: a BPF_PROG_ATTACH attachment
        with pytest.raises(PermissionError):
            run_in_child(lambda: udp_send(veth), cgroup=cgroup)
    assert pylibbpf.cgroup_query(cgroup, "cgroup_inet_egress").prog_ids == ()
    assert run_in_child(lambda: udp_send(veth), cgroup=cgroup) == 4


def test_cgroup_errors(cg_obj, cgroup, tmp_path) -> None:
    prog = cg_obj.programs["egress_drop"]
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-cgroup"):
        prog.attach_cgroup(cgroup / "no-such-cgroup")
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no-such-cgroup"):
        pylibbpf.cgroup_query(cgroup / "no-such-cgroup", "cgroup_inet_egress")
    # wrong hook for this program type: refused before any syscall
    with pytest.raises(pylibbpf.BPFError, match="cgroup_inet4_connect needs cgroup_sock_addr"):
        prog.attach_cgroup(cgroup, attach_type="cgroup_inet4_connect")
    with pytest.raises(pylibbpf.BPFError, match="not a cgroup attach type"):
        prog.attach_cgroup(cgroup, attach_type="xdp")
    with pytest.raises(ValueError, match="legacy=True"):
        prog.attach_cgroup(cgroup, flags="multi")
    with pytest.raises(ValueError, match="unknown attach flags"):
        prog.attach_cgroup(cgroup, legacy=True, flags="sometimes")
    # a directory that is not a cgroup
    with pytest.raises(pylibbpf.BPFError, match=str(tmp_path)):
        prog.attach_cgroup(tmp_path)
    # a raw program of a type with several hooks needs attach_type
    import struct
    code = struct.pack("<BBhi", 0xB7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    with pylibbpf.Program.load_raw("cgroup_skb", code) as raw:
        with pytest.raises(pylibbpf.BPFError, match="attach_type"):
            raw.attach_cgroup(cgroup)
        with raw.attach_cgroup(cgroup, attach_type="cgroup_inet_ingress"):
            assert pylibbpf.cgroup_query(cgroup, "cgroup_inet_ingress").prog_ids == (raw.id,)


def _return_one() -> bytes:
    import struct
    return struct.pack("<BBhi", 0xB7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)


@pytest.mark.parametrize("atype", sorted(CGROUP_ATTACH_TYPES, key=int),
                         ids=lambda t: t.name.lower())
def test_every_cgroup_attach_type(cgroup, atype) -> None:
    """Each cgroup hook takes a program of its type, as a link and with BPF_PROG_ATTACH."""
    ptype = CGROUP_ATTACH_TYPES[atype][0]
    with pylibbpf.Program.load_raw(ptype, _return_one(), name="allow",
                                   expected_attach_type=atype) as prog:
        with prog.attach_cgroup(cgroup, attach_type=atype) as link:
            assert link.info.type == pylibbpf.LinkType.CGROUP
            assert pylibbpf.cgroup_query(cgroup, atype).prog_ids == (prog.id,)
        assert pylibbpf.cgroup_query(cgroup, atype).prog_ids == ()
        with prog.attach_cgroup(cgroup, attach_type=atype.name.lower(), legacy=True,
                                flags="override"):
            q = pylibbpf.cgroup_query(cgroup, atype)
            assert q.prog_ids == (prog.id,) and q.attach_flags == 1
        assert pylibbpf.cgroup_query(cgroup, atype).prog_ids == ()


# --- every hook triggered: a "deny" program makes the syscall fail, then not ---------

V6_A, V6_B = "fd77::1", "fd77::2"


@pytest.fixture
def veth6(veth):
    """The veth pair with IPv6 addresses too (no duplicate address detection)."""
    import subprocess

    for ns, dev, ip in ((veth.ns_a, veth.dev_a, V6_A), (veth.ns_b, veth.dev_b, V6_B)):
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/64", "dev", dev, "nodad"],
                       check=True)
    return veth


def _deny() -> bytes:
    import struct
    return struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)


def _in_b(veth, family: int, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    with in_netns(veth.ns_b):
        return socket.socket(family, kind)


def _actions(veth, unix_addr: str):
    A = pylibbpf.AttachType
    v4, v6 = socket.AF_INET, socket.AF_INET6

    def bind(family, ip):
        def go():
            with _in_b(veth, family) as s:
                s.bind((ip, 0))
        return go

    def connect(family, ip):
        def go():
            with _in_b(veth, family) as s:
                s.connect((ip, 9))
        return go

    def sendto(family, ip):
        def go():
            with _in_b(veth, family) as s:
                s.sendto(b"x", (ip, 9))
        return go

    def unix(op):
        def go():
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                if op == "connect":
                    s.connect(unix_addr)
                else:
                    s.sendto(b"x", unix_addr)
        return go

    def sockopt(get):
        def go():
            with _in_b(veth, v4) as s:
                if get:
                    s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
                else:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return go

    def sysctl():
        with in_netns(veth.ns_b):
            with open("/proc/sys/net/ipv4/ip_default_ttl") as f:
                f.read()

    def device():
        with open("/dev/null", "rb"):
            pass

    def create():
        _in_b(veth, v4).close()

    return {
        A.CGROUP_INET_EGRESS: sendto(v4, veth.ip_a),
        A.CGROUP_INET_SOCK_CREATE: create,
        A.CGROUP_INET4_POST_BIND: bind(v4, veth.ip_b),
        A.CGROUP_INET6_POST_BIND: bind(v6, V6_B),
        A.CGROUP_INET4_BIND: bind(v4, veth.ip_b),
        A.CGROUP_INET6_BIND: bind(v6, V6_B),
        A.CGROUP_INET4_CONNECT: connect(v4, veth.ip_a),
        A.CGROUP_INET6_CONNECT: connect(v6, V6_A),
        A.CGROUP_UNIX_CONNECT: unix("connect"),
        A.CGROUP_UDP4_SENDMSG: sendto(v4, veth.ip_a),
        A.CGROUP_UDP6_SENDMSG: sendto(v6, V6_A),
        A.CGROUP_UNIX_SENDMSG: unix("sendto"),
        A.CGROUP_SYSCTL: sysctl,
        A.CGROUP_GETSOCKOPT: sockopt(True),
        A.CGROUP_SETSOCKOPT: sockopt(False),
        A.CGROUP_DEVICE: device,
    }


DENY_TYPES = [t for t in sorted(CGROUP_ATTACH_TYPES, key=int)
              if t.name not in ("CGROUP_INET_INGRESS", "CGROUP_INET_SOCK_RELEASE",
                                "CGROUP_SOCK_OPS") and "RECVMSG" not in t.name
              and "GETPEERNAME" not in t.name and "GETSOCKNAME" not in t.name]


@pytest.mark.parametrize("atype", DENY_TYPES, ids=lambda t: t.name.lower())
def test_deny_program_on_every_hook(cgroup, veth6, atype) -> None:
    unix_addr = f"\0pylibbpf-deny-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(unix_addr)
    action = _actions(veth6, unix_addr)[atype]
    ptype = CGROUP_ATTACH_TYPES[atype][0]
    with server, pylibbpf.Program.load_raw(ptype, _deny(), name="deny",
                                           expected_attach_type=atype) as prog:
        assert run_in_child(action, cgroup=cgroup) is None  # works before
        with prog.attach_cgroup(cgroup, attach_type=atype):
            with pytest.raises(PermissionError):
                run_in_child(action, cgroup=cgroup)
            assert run_in_child(action) is None  # outside the cgroup: unaffected
        assert run_in_child(action, cgroup=cgroup) is None  # detached


def test_ipv6_and_unix_address_hooks_run(cg_obj, cgroup, veth6) -> None:
    names = ["count_recvmsg6", "count_getpeername6", "count_getsockname6",
             "count_recvmsg_unix", "count_getpeername_unix", "count_getsockname_unix"]
    slots = range(18, 24)
    with in_netns(veth6.ns_a):
        server6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    server6.bind((V6_A, 7900))
    unix_addr = f"\0pylibbpf-unix-{os.getpid()}"

    def exercise() -> bool:
        with _in_b(veth6, socket.AF_INET6) as c:
            c.settimeout(2)
            c.connect((V6_A, 7900))
            c.getpeername()
            c.getsockname()
            c.send(b"q")
            data, addr = server6.recvfrom(8)
            server6.sendto(b"r", addr)
            c.recvfrom(8)
        # unix getpeername runs the peer's cgroup programs: both ends in the cgroup
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv, \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u:
            srv.bind(unix_addr)
            u.bind(f"\0pylibbpf-unix-client-{os.getpid()}")
            u.connect(unix_addr)
            u.getpeername()
            u.getsockname()
            u.send(b"q")
            data, addr = srv.recvfrom(8)
            srv.sendto(b"r", addr)
            u.settimeout(2)
            u.recvfrom(8)
        return True

    with server6:
        links = [cg_obj.programs[n].attach_cgroup(cgroup) for n in names]
        before = [counter(cg_obj, s) for s in slots]
        assert run_in_child(exercise, cgroup=cgroup)
        after = [counter(cg_obj, s) for s in slots]
        assert all(a > b for a, b in zip(after, before)), list(zip(names, before, after))
        for link in links:
            link.close()
        assert run_in_child(exercise, cgroup=cgroup)
        assert [counter(cg_obj, s) for s in slots] == after


def test_a_raw_program_holds_its_links_until_it_closes(cgroup, veth6) -> None:
    """Program.load_raw programs hold their links like an Object does: a dropped
    Link stays attached (the deny program fires) until the program is closed."""
    import gc

    atype = pylibbpf.AttachType.CGROUP_INET_SOCK_CREATE
    action = _actions(veth6, f"\0pylibbpf-hold-{os.getpid()}")[atype]
    prog = pylibbpf.Program.load_raw(CGROUP_ATTACH_TYPES[atype][0], _deny(), name="deny",
                                     expected_attach_type=atype)
    try:
        prog.attach_cgroup(cgroup, attach_type=atype)  # the Link is dropped
        gc.collect()
        with pytest.raises(PermissionError):
            run_in_child(action, cgroup=cgroup)
    finally:
        prog.close()
    assert run_in_child(action, cgroup=cgroup) is None  # closing the program detached it
