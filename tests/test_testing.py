"""pylibbpf.testing: namespaces, veth pairs, and the pytest plugin a tool's own tests use."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pylibbpf
from pylibbpf.testing import NetNS, VethPair, in_netns
from _netutil import wait_until

ROOT = Path(__file__).resolve().parent.parent
XDPCOUNT = ROOT / "examples" / "xdpcount.bpf.c"


def udp_count(obj: pylibbpf.Object) -> int:
    return sum(obj.maps["packets"][socket.IPPROTO_UDP])


def test_veth_fixture_carries_packets_an_xdp_counter_counts(bpf_veth, bpf_object) -> None:
    """The plugin's fixtures: a veth pair, and an object compiled once and loaded."""
    obj = bpf_object(XDPCOUNT)
    bpf_veth.send_udp(3)                    # not attached yet: not counted
    with bpf_veth.netns_b.enter(), obj.programs["count_packets"].attach_xdp(bpf_veth.dev_b):
        assert bpf_veth.send_udp(5) == 5    # a -> b, where the program is
        assert wait_until(lambda: udp_count(obj) >= 5)
    bpf_veth.send_udp(2)                    # detached again
    assert udp_count(obj) == 5


def test_veth_pair_addresses_and_cleanup() -> None:
    with VethPair(subnet="10.198.7.0/24") as veth:
        assert (veth.ip_a, veth.ip_b) == ("10.198.7.1", "10.198.7.2")
        assert os.path.exists(f"/run/netns/{veth.ns_a}") and veth.netns_b.name == veth.ns_b
        assert "10.198.7.2/24" in veth.netns_b.ip("-o", "addr", "show", "dev", veth.dev_b)
        with veth.socket_in("b") as r:       # a datagram from a arrives in b
            r.bind((veth.ip_b, 9123))
            r.settimeout(3)
            veth.send_udp(1, port=9123, payload=b"across")
            assert r.recv(64) == b"across"
        with veth.socket_in(veth.ns_a) as r:  # and the other way, by namespace name
            r.bind((veth.ip_a, 9124))
            r.settimeout(3)
            veth.send_udp(1, port=9124, payload=b"back", src="b")
            assert r.recv(64) == b"back"
    assert not os.path.exists(f"/run/netns/{veth.ns_a}")
    assert not os.path.exists(f"/run/netns/{veth.ns_b}")
    with pytest.raises(ValueError, match="neither side"):
        veth.socket_in("c")
    with pytest.raises(ValueError, match="IPv4"):
        VethPair(subnet="fd00::/64")


def test_netns_runs_code_inside_and_is_deleted(bpf_netns) -> None:
    own = os.stat("/proc/thread-self/ns/net").st_ino
    inside = bpf_netns.call(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
    assert inside == os.stat(bpf_netns.path).st_ino != own
    with bpf_netns.enter():
        assert socket.if_nametoindex("lo") == 1 and os.stat(
            "/proc/thread-self/ns/net").st_ino == inside
        assert [n for _, n in socket.if_nameindex()] == ["lo"]   # nothing else in it
    with in_netns(bpf_netns):                                   # a NetNS is a path
        assert os.stat("/proc/thread-self/ns/net").st_ino == inside
    assert os.stat("/proc/thread-self/ns/net").st_ino == own
    out = bpf_netns.run("cat", "/proc/net/dev", capture_output=True, text=True).stdout
    assert "lo:" in out and "veth" not in out
    with NetNS("plb-named-test") as ns:
        assert str(ns) == "plb-named-test" and os.path.exists("/run/netns/plb-named-test")
        with pytest.raises(pylibbpf.BPFExistsError, match="plb-named-test"):
            NetNS("plb-named-test")
    assert ns.closed and not os.path.exists("/run/netns/plb-named-test")
    with pytest.raises(ValueError, match="bad network namespace name"):
        NetNS("../etc")


def test_bpf_compile_compiles_once_per_session(bpf_compile, tmp_path) -> None:
    src = tmp_path / "t.bpf.c"
    shutil.copy(XDPCOUNT, src)
    first = bpf_compile(src)
    src.write_text("this is no C\n")          # the session's object is kept
    assert bpf_compile(src) == first and first.exists()
    with pytest.raises(pylibbpf.CompileError):
        bpf_compile(src, cflags=["-DAGAIN"])  # other flags: compiled again


# --- the plugin in a tool's own project --------------------------------------------------

TOOL_TEST = '''
import socket
import time

def test_tool_counts_udp(bpf_veth, bpf_object, bpf_netns, bpf_compile):
    assert bpf_compile("xdpcount.bpf.c") == bpf_compile("xdpcount.bpf.c")
    obj = bpf_object("xdpcount.bpf.c")
    with bpf_veth.netns_b.enter(), obj.programs["count_packets"].attach_xdp(bpf_veth.dev_b):
        bpf_veth.send_udp(4)
        deadline = time.monotonic() + 5
        while sum(obj.maps["packets"][socket.IPPROTO_UDP]) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert sum(obj.maps["packets"][socket.IPPROTO_UDP]) == 4
    assert bpf_netns.path.startswith("/run/netns/")
'''


def tool_project(tmp_path: Path, conftest: str = "") -> Path:
    proj = tmp_path / "mytool"
    (proj / "tests").mkdir(parents=True)
    shutil.copy(XDPCOUNT, proj / "tests" / "xdpcount.bpf.c")
    (proj / "tests" / "test_tool.py").write_text(TOOL_TEST)
    if conftest:
        (proj / "tests" / "conftest.py").write_text(conftest)
    return proj


def run_pytest(proj: Path, *args: str, pythonpath: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(proj), *args, "tests"], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=300)


def test_plugin_loaded_with_p_option(tmp_path) -> None:
    proj = tool_project(tmp_path)
    res = run_pytest(proj, "-p", "pylibbpf.testing", pythonpath=str(ROOT))
    assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout + res.stderr


def fake_install(tmp_path: Path) -> Path:
    """A site directory holding the package's metadata as pip would install it:
    the entry points are those pyproject.toml declares."""
    text = (ROOT / "pyproject.toml").read_text()
    table = re.search(r"^\[project\.entry-points\.pytest11\]\n((?:[^\[\n].*\n)+)", text, re.M)
    assert table, "pyproject.toml declares no pytest11 entry point"
    lines = [ln.replace('"', "") for ln in table.group(1).splitlines()
             if ln.strip() and not ln.startswith("#")]
    site = tmp_path / "site"
    dist = site / "libbpf_cffi_test-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: libbpf-cffi-test\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\n" + "\n".join(lines) + "\n")
    return site


def test_plugin_found_through_its_entry_point(tmp_path) -> None:
    """Installed, the plugin needs no -p: pytest finds it by its pytest11 entry
    point; a conftest naming it as well (as this project's does) is no conflict."""
    site = fake_install(tmp_path)
    pythonpath = os.pathsep.join([str(ROOT), str(site)])
    proj = tool_project(tmp_path)
    res = run_pytest(proj, pythonpath=pythonpath)
    assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout + res.stderr
    for extra in ([], ["-p", "pylibbpf.testing"]):
        again = tool_project(tmp_path / "with-conftest" / str(len(extra)),
                             conftest='pytest_plugins = ["pylibbpf.testing"]\n')
        res = run_pytest(again, *extra, pythonpath=pythonpath)
        assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout + res.stderr
