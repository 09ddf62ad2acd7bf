"""What is loaded on the system (pylibbpf.system, `pylibbpf list`) and maps opened
by id, name or pin path (`pylibbpf map …`, Map.from_name), against programs,
maps and links this test makes."""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

import pylibbpf
from pylibbpf import AttachType, system
from pylibbpf._ffi import lib
from pylibbpf.map import possible_cpus

from _children import same_pylibbpf
from _kernel import support, without_unknown_program_types
from _netutil import make_cgroup
from conftest import in_netns


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylibbpf", *args], capture_output=True,
                          text=True, check=check, **same_pylibbpf())


@pytest.fixture
def globals_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(bpf_objects["cli_globals"]) as obj:
        obj.load()
        yield obj


def libc_path() -> str:
    return next(line.split()[-1] for line in open("/proc/self/maps")
                if "/libc.so" in line or "/libc-" in line)


# --- programs ---------------------------------------------------------------------------

def test_programs_show_load_time_uid_insns_and_holders(globals_obj) -> None:
    before = time.time()
    obj = globals_obj
    prog = obj.programs["on_getpgid"]
    mine = {p.id: p for p in system.programs()}[prog.id]
    assert (mine.name, mine.type, mine.uid) == ("on_getpgid", pylibbpf.ProgramType.TRACEPOINT,
                                                os.getuid())
    assert len(mine.tag) == 16 and int(mine.tag, 16) >= 0
    assert mine.loaded_at is not None and mine.loaded_at <= time.time() + 1
    assert mine.loaded_at > before - 600   # loaded by this test's fixture, not at boot
    assert mine.verified_insns > 0 and mine.xlated_len > 0 and mine.btf_id > 0
    assert mine.memlock > 0
    assert obj.maps["labels"].id in mine.map_ids
    assert (os.getpid(), prog.fd) in [(h.pid, h.fd) for h in mine.holders]
    assert all(h.comm for h in mine.holders)


def test_programs_count_runs_while_stats_are_on(globals_obj) -> None:
    prog = globals_obj.programs["on_getpgid"]
    stats_fd = lib.bpf_enable_stats(0)   # BPF_STATS_RUN_TIME, for as long as the fd is open
    assert stats_fd >= 0
    try:
        with prog.attach():
            start = {p.id: p for p in system.programs()}[prog.id].run_cnt
            for _ in range(5):
                os.getpgid(0)
            after = {p.id: p for p in system.programs()}[prog.id]
        assert after.run_cnt >= start + 5
        assert after.run_time_ns > 0
    finally:
        os.close(stats_fd)


def test_list_programs_cli_shows_holders_and_json(globals_obj) -> None:
    prog = globals_obj.programs["on_getpgid"]
    data = json.loads(cli("list", "programs", "--json").stdout)
    mine = next(p for p in data if p["id"] == prog.id)
    assert (mine["name"], mine["type"]) == ("on_getpgid", "tracepoint")
    assert {"pid": os.getpid(), "comm": mine["holders"][0]["comm"], "fd": prog.fd} in \
        mine["holders"]
    assert mine["verified_insns"] > 0 and isinstance(mine["loaded_at"], float)
    table = cli("list", "programs").stdout
    header, *rows = table.splitlines()
    assert header.split()[:5] == ["ID", "TYPE", "NAME", "TAG", "LOADED"]
    row = next(r for r in rows if r.split()[0] == str(prog.id))
    assert f"({os.getpid()})" in row and "on_getpgid" in row


# --- maps -------------------------------------------------------------------------------

def test_maps_show_btf_types_memory_and_holders(globals_obj) -> None:
    labels = globals_obj.maps["labels"]
    mine = {m.id: m for m in system.maps()}[labels.id]
    assert (mine.name, mine.type, mine.max_entries) == ("labels", pylibbpf.MapType.HASH, 64)
    assert (mine.key_type, mine.value_type) == ("unsigned int", "struct label")
    assert mine.memlock > 0 and mine.btf_id > 0
    assert (os.getpid(), labels.fd) in [(h.pid, h.fd) for h in mine.holders]
    data = json.loads(cli("list", "maps", "--json").stdout)
    entry = next(m for m in data if m["id"] == labels.id)
    assert (entry["key_type"], entry["value_type"], entry["type"]) == (
        "unsigned int", "struct label", "hash")


def test_pinned_objects_are_listed_with_their_paths(globals_obj, bpffs_dir) -> None:
    labels = globals_obj.maps["labels"]
    path = bpffs_dir / "labels"
    labels.pin(path)
    try:
        mine = {m.id: m for m in system.maps()}[labels.id]
        assert mine.pinned == (str(path),)
    finally:
        labels.unpin(path)


# --- links ------------------------------------------------------------------------------

def test_list_links_json_shows_the_tracepoint_of_our_link(globals_obj) -> None:
    with globals_obj.programs["on_getpgid"].attach() as link:
        link_id = link.id
        data = json.loads(cli("list", "links", "--json").stdout)
        table = cli("list", "links").stdout
    mine = next(ln for ln in data if ln["id"] == link_id)
    assert mine["program_id"] == globals_obj.programs["on_getpgid"].id
    assert mine["type"] == "perf_event"
    assert os.getpid() in [h["pid"] for h in mine["holders"]]
    row = next(r for r in table.splitlines() if r.split()[0] == str(link_id))
    if support("perf_event_link_info"):
        assert mine["attach_point"] == "tracepoint sys_enter_getpgid"
        assert mine["info"]["event_type"] == "tracepoint"
        assert "tracepoint sys_enter_getpgid" in row
    else:   # the kernel reports nothing more of perf_event links
        assert mine["attach_point"] == ""


@pytest.fixture
def info_obj(bpf_objects) -> Iterator[pylibbpf.Object]:
    with without_unknown_program_types(pylibbpf.Object(bpf_objects["attach_linkinfo"])) as obj:
        obj.load()
        yield obj


def link_of(link: pylibbpf.Link) -> system.SystemLink:
    return {ln.id: ln for ln in system.links()}[link.id]


def test_attach_points_of_uprobe_cgroup_netns_and_xdp_links(info_obj, veth) -> None:
    libc = libc_path()
    offset = next(s.offset for s in pylibbpf.elf.functions(libc, "getpid"))
    with info_obj.programs["on_uprobe"].attach_uprobe(libc, "getpid") as link:
        found = link_of(link)
    if support("perf_event_link_info"):
        assert found.attach_point == f"uprobe {os.path.realpath(libc)}+{offset:#x}"

    with make_cgroup() as cg:
        with info_obj.programs["cgroup_pass"].attach_cgroup(cg) as link:
            found = link_of(link)
        assert found.attach_point == f"cgroup {cg} inet_egress"
        assert system.cgroup_path(os.stat(cg).st_ino) == str(cg)

    ns = f"plb-list-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with info_obj.programs["lookup_pass"].attach_netns(f"/run/netns/{ns}") as link:
            found = link_of(link)
        ino = os.stat(f"/run/netns/{ns}").st_ino
        assert found.attach_point == f"netns {ns}(ino {ino}) sk_lookup"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)

    with in_netns(veth.ns_a):
        ifindex = socket.if_nametoindex(veth.dev_a)
        with info_obj.programs["xdp_pass"].attach_xdp(veth.dev_a) as link:
            if link.fd < 0:
                pytest.skip("XDP attached through netlink: no link to list")
            found = link_of(link)
    assert found.attach_point == f"xdp {veth.dev_a}(ifindex {ifindex})"


# --- map verbs ----------------------------------------------------------------------------

def test_map_dump_lookup_update_delete_by_id_typed_from_btf(globals_obj) -> None:
    labels = globals_obj.maps["labels"]
    labels[7] = {"weight": 70, "text": "seven"}
    mid = str(labels.id)
    dump = json.loads(cli("map", "dump", "id", mid, "--json").stdout)
    assert dump == [{"key": 7, "value": {"weight": 70, "text": "seven"}}]
    assert cli("map", "dump", "id", mid).stdout == '7: {"weight": 70, "text": "seven"}\n'

    cli("map", "update", "id", mid, "key", "0x9", "value", '{"weight": 9, "text": "nine"}')
    assert labels[9].weight == 9 and labels[9].text == "nine"
    out = cli("map", "lookup", "id", mid, "key", "9", "--json").stdout
    assert json.loads(out) == {"key": 9, "value": {"weight": 9, "text": "nine"}}

    cli("map", "delete", "id", mid, "key", "7")
    assert 7 not in labels
    res = cli("map", "delete", "id", mid, "key", "7", check=False)
    assert res.returncode == 2 and f"map 'labels' (id {mid}) has no key '7'" in res.stderr
    res = cli("map", "update", "id", mid, "key", "1", "value", '{"weight": 1, "colour": 2}',
              check=False)
    assert res.returncode == 2 and "no field 'colour'" in res.stderr
    res = cli("map", "update", "id", mid, "key", "1", "value", "12", check=False)
    assert res.returncode == 2 and "struct label" in res.stderr
    res = cli("map", "update", "id", mid, "key", "1", "value", '{"weight": 2}', "--flag",
              "exist", check=False)
    assert res.returncode == 1 and 1 not in labels   # BPF_EXIST: no such key to replace


def test_map_by_name_without_btf_reads_hex_and_ints() -> None:
    name = f"plb{uuid.uuid4().hex[:10]}"
    with pylibbpf.Map.create("hash", 4, 8, 16, name=name) as m:
        m[struct.pack("=I", 5)] = struct.pack("=Q", 0x1122)
        dump = json.loads(cli("map", "dump", "name", name, "--json").stdout)
        assert dump == [{"key": "05000000", "value": "2211000000000000"}]
        cli("map", "update", "name", name, "key", "06", "00", "00", "00", "value",
            "0x0100000000000000")
        cli("map", "update", "name", name, "key", "7", "value", "42")
        assert m[struct.pack("=I", 6)] == struct.pack("=Q", 1)
        assert m[struct.pack("=I", 7)] == struct.pack("=Q", 42)
        out = cli("map", "lookup", "name", name, "key", "6").stdout
        assert out == "06000000: 0100000000000000\n"
        res = cli("map", "update", "name", name, "key", "0a0b", "value", "1", check=False)
        assert res.returncode == 2 and "'0a0b' is 2 bytes, expected 4" in res.stderr
        with pytest.raises(pylibbpf.BPFError, match=f"open map named '{name}x': no such map"):
            pylibbpf.Map.from_name(name + "x")
        with pylibbpf.Map.create("array", 4, 4, 1, name=name):
            res = cli("map", "dump", "name", name, check=False)
            assert res.returncode == 1 and "2 maps have that name" in res.stderr
        with pylibbpf.Map.from_name(name) as again:
            assert again.id == m.id


def test_map_pin_then_dump_pinned_with_per_cpu_values(globals_obj, bpffs_dir) -> None:
    hits = globals_obj.maps["per_cpu_hits"]
    ncpus = possible_cpus()
    hits[0] = list(range(1, ncpus + 1))
    path = bpffs_dir / "hits"
    cli("map", "pin", "id", str(hits.id), str(path))
    assert path.exists()
    dump = json.loads(cli("map", "dump", "pinned", str(path), "--json").stdout)
    assert dump == [{"key": 0, "value": sum(range(1, ncpus + 1))}]
    dump = json.loads(cli("map", "dump", "pinned", str(path), "--json", "--per-cpu").stdout)
    assert dump == [{"key": 0, "value": list(range(1, ncpus + 1))}]
    cli("map", "update", "pinned", str(path), "key", "0", "value", "3")   # every CPU
    assert list(hits[0]) == [3] * ncpus
    res = cli("map", "dump", "pinned", str(bpffs_dir / "nope"), check=False)
    assert res.returncode == 1 and "nope" in res.stderr and "Traceback" not in res.stderr


def test_map_verbs_refuse_keyless_maps_and_take_per_cpu_lists() -> None:
    with pylibbpf.Map.create("ringbuf", 0, 0, 4096, name="plb_list_rb") as rb:
        res = cli("map", "dump", "id", str(rb.id), check=False)
        assert res.returncode == 2
        assert f"map 'plb_list_rb' (id {rb.id}) is a ringbuf map: it has no keys to dump" \
            in res.stderr
    ncpus = possible_cpus()
    with pylibbpf.Map.create("percpu_array", 4, 8, 2) as pa:   # no BTF: raw per-CPU slots
        cli("map", "update", "id", str(pa.id), "key", "1", "value",
            json.dumps(list(range(10, 10 + ncpus))))
        raw = pa.raw[struct.pack("=I", 1)]
        assert [struct.unpack_from("=Q", raw, 8 * i)[0] for i in range(ncpus)] == \
            list(range(10, 10 + ncpus))


def test_notation_reads_each_kind_of_type(globals_obj) -> None:
    from pylibbpf import notation

    btf = globals_obj.btf
    label = btf.codec("struct label")
    assert notation.parse(btf.codec("enum mode"), "MODE_IGNORE") == "MODE_IGNORE"
    assert btf.codec("enum mode").encode(notation.parse(btf.codec("enum mode"), "2")) == \
        struct.pack("=I", 2)
    value = notation.parse(label, '{"weight": "0x10", "text": "abc"}')
    assert label.decode(label.encode(value)).to_dict() == {"weight": 16, "text": "abc"}
    assert notation.parse(btf.codec("unsigned int"), " 1_000 ") == 1000
    raw = pylibbpf.typed.RawCodec(4, "key")
    assert notation.parse(raw, "0a 0b 0c 0d") == bytes([10, 11, 12, 13])
    assert notation.parse(raw, "0x0a0b0c0d") == bytes([10, 11, 12, 13])
    assert notation.parse(raw, "258") == (258).to_bytes(4, sys.byteorder)
    with pytest.raises(ValueError, match=r"key: 'zz' is not hex bytes"):
        notation.parse(raw, "zz", "key")
    with pytest.raises(ValueError, match=r"is written as JSON \(e.g. \{\"weight\": …"):
        notation.parse(label, "weight=1")
    with pytest.raises(ValueError, match="'MODE_X' is no enumerator of enum mode"):
        notation.parse(btf.codec("enum mode"), "MODE_X")
    assert notation.to_json(label.decode(label.encode({"weight": 3, "text": "x"}))) == \
        {"weight": 3, "text": "x"}


def test_attach_points_of_raw_tracepoint_and_iter_links(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj, \
            pylibbpf.Object(bpf_objects["attach_iter"]) as it:
        for p in obj.programs.values():
            p.autoload = p.name == "raw_sys_enter"
        obj.load()
        with obj.programs["raw_sys_enter"].attach_raw_tracepoint("sys_enter") as link:
            assert link_of(link).attach_point == "raw_tracepoint sys_enter"
        if not support("iter/task"):
            return
        for p in it.programs.values():
            p.autoload = p.name == "dump_task"
        it.load()
        with it.programs["dump_task"].attach_iter() as link:
            found = link_of(link)
        assert found.attach_point == "iter task"
        assert found.info is not None and found.info.program_id == it.programs["dump_task"].id
