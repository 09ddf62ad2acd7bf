"""Helpers for the networking attach tests: cgroups, child processes, counters,
netkit device pairs (rtnetlink)."""
from __future__ import annotations

import errno
import os
import pickle
import socket
import struct
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple


def cgroup2_root() -> Path:
    """The first cgroup2 mount in /proc/self/mounts."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    raise RuntimeError("no cgroup2 mount")


def _rmdir(path: Path) -> None:
    for sub in sorted(path.glob("*/"), reverse=True):
        if sub.is_dir() and (sub / "cgroup.procs").exists():
            _rmdir(sub)
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)  # the last exited child may still be accounted
    path.rmdir()


@contextmanager
def make_cgroup(parent: Optional[Path] = None) -> Iterator[Path]:
    """A fresh child cgroup (under the cgroup2 root), removed afterwards."""
    path = (parent or cgroup2_root()) / f"pylibbpf-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        _rmdir(path)


class ChildError(Exception):
    """An exception raised in the child, with its traceback as text."""


def run_in_child(fn: Callable[[], Any], *, cgroup: Optional[Path] = None,
                 timeout: float = 10.0) -> Any:
    """Run ``fn`` in a forked child that first joins ``cgroup``; return its result.

    An OSError raised in the child is re-raised here as the same type and errno.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(r)
            if cgroup is not None:
                with open(cgroup / "cgroup.procs", "w") as f:
                    f.write("0")
            try:
                payload = ("ok", fn())
            except OSError as e:
                payload = ("oserror", (type(e).__name__, e.errno, str(e)))
            except BaseException as e:  # noqa: BLE001
                payload = ("error", f"{e!r}\n{traceback.format_exc()}")
            data = pickle.dumps(payload)
            os.write(w, struct.pack("Q", len(data)))
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        with os.fdopen(r, "rb") as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError("child took too long")
    finally:
        os.waitpid(pid, 0)
    data = b"".join(chunks)
    if len(data) < 8:
        raise ChildError("child died without an answer")
    kind, value = pickle.loads(data[8:8 + struct.unpack("Q", data[:8])[0]])
    if kind == "ok":
        return value
    if kind == "oserror":
        name, err, text = value
        if name == "TimeoutError" or err is None:
            raise TimeoutError(text) if name == "TimeoutError" else OSError(text)
        raise OSError(err, text)  # becomes PermissionError etc. by errno
    raise ChildError(value)


def counter(obj: Any, slot: int, map_name: str = "counts") -> int:
    """A u64 counter of an array map."""
    m = obj.maps[map_name]
    if isinstance(getattr(type(m), "raw", None), property):
        m = m.raw  # bytes in, bytes out, whatever the map's BTF says
    value = m[struct.pack("I", slot)]
    return value if isinstance(value, int) else int(struct.unpack("Q", value)[0])


def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``cond`` until it holds (packets may wait for ARP or a busy softirq)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def send_udp(veth: Any, port: int = 9000, n: int = 3) -> None:
    """``n`` 32-byte datagrams from the veth pair's ns_b to ns_a:``port``."""
    veth.send_udp(n, port=port, payload=b"x" * 32, src="b")
    time.sleep(0.05)


def receives(veth: Any, port: int) -> bool:
    """Whether a datagram sent from ns_b to ns_a:``port`` arrives."""
    with veth.socket_in(veth.ns_a) as r:
        r.bind((veth.ip_a, port))
        r.settimeout(1.0)
        send_udp(veth, port, 1)
        try:
            return bool(r.recv(64) == b"x" * 32)
        except TimeoutError:
            return False


# --- netkit device pairs through rtnetlink --------------------------------------------
#
# ``ip link add … type netkit`` needs iproute2 >= 6.7 (Debian bookworm has 6.1), so
# the tests send the RTM_NEWLINK request themselves. The layout and the numbers are
# the kernel's uapi: linux/netlink.h, linux/rtnetlink.h, linux/if_link.h.

NLMSG_ERROR = 2
RTM_NEWLINK = 16
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an NLMSG_ERROR acknowledgement
NLA_F_NESTED = 0x8000
NLMSGERR_ATTR_MSG = 1  # the kernel's extended-ack text
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
(IFLA_NETKIT_PEER_INFO, IFLA_NETKIT_PRIMARY, IFLA_NETKIT_POLICY, IFLA_NETKIT_PEER_POLICY,
 IFLA_NETKIT_MODE) = range(1, 6)
NETKIT_MODES = {"l2": 0, "l3": 1}  # enum netkit_mode; the kernel's default is l3
NETKIT_POLICIES = {"pass": 0, "drop": 2}  # enum netkit_action, for packets no program saw

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
_NLATTR = struct.Struct("=HH")  # len, type


def nlattr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute: header, payload, zeros up to a multiple of 4."""
    raw = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _ifname(name: str) -> bytes:
    raw = name.encode()
    if not 0 < len(raw) < 16 or b"\0" in raw or b"/" in raw:
        raise ValueError(f"{name!r} is not a valid interface name (1 to 15 bytes)")
    return raw + b"\0"


def pair_newlink_message(kind: str, name: str, peer: str, *,
                         peer_netns_fd: Optional[int] = None, data: bytes = b"",
                         seq: int = 1) -> bytes:
    """An RTM_NEWLINK request for a device pair of link kind ``kind`` whose
    IFLA_INFO_DATA starts with the peer's info as attribute 1 (netkit's
    IFLA_NETKIT_PEER_INFO, veth's VETH_INFO_PEER): ``name``, and ``peer`` in the
    namespace of ``peer_netns_fd`` (else the same one); ``data``: more attributes
    of IFLA_INFO_DATA."""
    peer_attrs = nlattr(IFLA_IFNAME, _ifname(peer))
    if peer_netns_fd is not None:
        peer_attrs += nlattr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    # the peer info is no nested attribute list: an ifinfomsg, then the attributes
    info = nlattr(IFLA_NETKIT_PEER_INFO,  # = VETH_INFO_PEER = 1
                  _IFINFOMSG.pack(0, 0, 0, 0, 0) + peer_attrs) + data
    linkinfo = (nlattr(IFLA_INFO_KIND, kind.encode() + b"\0")
                + nlattr(IFLA_INFO_DATA | NLA_F_NESTED, info))
    body = (_IFINFOMSG.pack(0, 0, 0, 0, 0)  # AF_UNSPEC, the kernel picks the ifindex
            + nlattr(IFLA_IFNAME, _ifname(name))
            + nlattr(IFLA_LINKINFO | NLA_F_NESTED, linkinfo))
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_NEWLINK, flags, seq, 0) + body


def netkit_newlink_message(name: str, peer: str, *, peer_netns_fd: Optional[int] = None,
                           mode: Optional[str] = None, policy: Optional[str] = None,
                           peer_policy: Optional[str] = None, seq: int = 1) -> bytes:
    """The RTM_NEWLINK request that creates netkit device ``name`` (the primary) with
    its peer ``peer`` (in the namespace of ``peer_netns_fd``, else the same one).

    ``mode`` "l2"/"l3" and the default ``policy``/``peer_policy`` "pass"/"drop" are
    left to the kernel (l3, pass) when None."""
    data = b""
    for kind, value, names in ((IFLA_NETKIT_MODE, mode, NETKIT_MODES),
                               (IFLA_NETKIT_POLICY, policy, NETKIT_POLICIES),
                               (IFLA_NETKIT_PEER_POLICY, peer_policy, NETKIT_POLICIES)):
        if value is not None:
            if value not in names:
                raise ValueError(f"{value!r} is none of {sorted(names)}")
            data += nlattr(kind, struct.pack("=I", names[value]))
    return pair_newlink_message("netkit", name, peer, peer_netns_fd=peer_netns_fd,
                                data=data, seq=seq)


def parse_ack(data: bytes, seq: int) -> Optional[Tuple[int, str]]:
    """(errno, extended-ack text) of the NLMSG_ERROR answering request ``seq`` in
    ``data`` (errno 0: success), or None when ``data`` holds no answer to it."""
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, kind, flags, mseq, _ = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            break
        msg = data[off + _NLMSGHDR.size:off + length]
        off += (length + 3) & ~3
        if kind != NLMSG_ERROR or mseq != seq:
            continue
        (error,) = struct.unpack_from("=i", msg)
        text = ""
        if flags & NLM_F_ACK_TLVS:
            # after the error: the request's header (all of the request unless capped)
            (req_len,) = struct.unpack_from("=I", msg, 4)
            pos = 4 + (_NLMSGHDR.size if flags & NLM_F_CAPPED else (req_len + 3) & ~3)
            while pos + _NLATTR.size <= len(msg):
                alen, atype = _NLATTR.unpack_from(msg, pos)
                if alen < _NLATTR.size:
                    break
                if atype & ~NLA_F_NESTED == NLMSGERR_ATTR_MSG:
                    text = msg[pos + 4:pos + alen].split(b"\0")[0].decode(errors="replace")
                pos += (alen + 3) & ~3
        return -error, text
    return None


def _netns_fd(netns: str) -> int:
    path = netns if "/" in netns else f"/run/netns/{netns}"
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def rtnl_request(request: bytes) -> Tuple[int, str]:
    """Send one NETLINK_ROUTE request (from the current network namespace) and wait
    for its acknowledgement: (errno, the kernel's extended-ack text); errno 0: done."""
    (seq,) = struct.unpack_from("=I", request, 8)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       socket.NETLINK_ROUTE) as s:
        try:
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # the kernel says why
        except OSError:
            pass
        s.bind((0, 0))
        s.settimeout(5.0)
        s.sendto(request, (0, 0))
        while True:
            answer = parse_ack(s.recv(65536), seq)
            if answer is not None:
                return answer


def create_netkit(name: str, peer: str, *, peer_netns: Optional[str] = None,
                  mode: Optional[str] = None, policy: Optional[str] = None,
                  peer_policy: Optional[str] = None) -> None:
    """Create a netkit pair in the current network namespace (enter one with
    ``pylibbpf.in_netns``): primary ``name``, and ``peer``, moved to ``peer_netns``
    (a name in /run/netns or a path) when given. Both start down, without addresses.

    Raises OSError with the kernel's errno; EOPNOTSUPP where the kernel has no netkit.
    """
    fd = _netns_fd(peer_netns) if peer_netns is not None else None
    try:
        err, text = rtnl_request(netkit_newlink_message(
            name, peer, peer_netns_fd=fd, mode=mode, policy=policy,
            peer_policy=peer_policy))
    finally:
        if fd is not None:
            os.close(fd)
    if err == 0:
        return
    what = f"create netkit pair {name!r}/{peer!r}"
    why = f": {text}" if text else ""
    if err == errno.EOPNOTSUPP:
        raise OSError(err, f"{what}: this kernel has no netkit driver (CONFIG_NETKIT, "
                           f"Linux 6.7+){why}")
    raise OSError(err, f"{what}: {os.strerror(err)}{why}")
