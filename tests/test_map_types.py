"""Typed maps: every map type round-trips BTF-typed keys and values."""
from __future__ import annotations

import ctypes
import ipaddress
import os
import struct
import threading

import pytest

import pylibbpf
from _children import Child
from pylibbpf import BPF_EXIST, BPF_NOEXIST, MapType
from pylibbpf.typed import CString, PerCPU, Record

@pytest.fixture
def maps_obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["maps_types"]) as obj:
        yield obj


@pytest.fixture
def loaded(maps_obj):
    maps_obj.load()
    return maps_obj


def test_struct_keys_and_values_round_trip(loaded) -> None:
    flows = loaded.maps["flows"]
    Key, Stats = flows.key_type, flows.value_type
    k = Key(saddr=0x0100007F, daddr=0x0200007F, sport=80, dport=443, proto=6)
    v = Stats(packets=10, bytes=1500, label="web", ports=[80, 443], state="ST_RUNNING",
              range={"lo": -5, "hi": 9}, flag_a=1, level=5, delta=-3, ok=True)
    flows[k] = v
    got = flows[k]
    assert isinstance(got, Record) and got == v
    assert (got.packets, got.bytes, got.ports, got.ok) == (10, 1500, [80, 443, 0], True)
    assert isinstance(got.label, CString) and got.label == "web" and f"{got.label:<4}" == "web "
    assert got.state == 1 and got.state.name == "ST_RUNNING"
    assert (got.range.lo, got.range.hi) == (-5, 9)
    assert (got.flag_a, got.level, got.delta) == (1, 5, -3)
    # dict keys work too, and the raw view sees the C layout
    assert flows[{"saddr": 0x0100007F, "daddr": 0x0200007F, "sport": 80, "dport": 443,
                  "proto": 6}].bytes == 1500
    raw_key = struct.pack("=IIHHB3x", 0x0100007F, 0x0200007F, 80, 443, 6)
    raw_val = flows.raw[raw_key]
    assert struct.unpack_from("=QQ12s", raw_val) == (10, 1500, b"web".ljust(12, b"\0"))
    assert list(flows.keys()) == [k]
    assert dict(flows.items()) == {k: v}
    with pytest.raises(TypeError, match="flows.*no field 'nope'"):
        flows[k] = {"nope": 1}
    with pytest.raises(ValueError, match="label"):
        flows[k] = {"label": "x" * 20}


def test_enum_array_and_update_flags(loaded) -> None:
    states = loaded.maps["states"]
    assert len(states) == 8 and states[3] == 0
    states[3] = "ST_DONE"
    assert states[3] == 7 and states[3].name == "ST_DONE"
    states.update(2, 1, flags=BPF_EXIST)
    with pytest.raises(pylibbpf.BPFExistsError):
        states.update(2, 1, flags=BPF_NOEXIST)
    assert dict(states.items())[2].name == "ST_RUNNING"
    states.clear()  # arrays: every element back to zero
    assert set(states.values()) == {0}
    with pytest.raises(KeyError):
        states[8]


def test_percpu_values_list_and_sum(loaded) -> None:
    ncpu = pylibbpf.map.possible_cpus()
    pc = loaded.maps["pc_counts"]
    pc[1] = 5                               # one value: written to every CPU
    assert pc[1] == [5] * ncpu and isinstance(pc[1], PerCPU)
    pc[2] = list(range(1, ncpu + 1))        # one value per CPU
    assert pc.sum(2) == ncpu * (ncpu + 1) // 2
    assert dict(pc.items())[2] == list(range(1, ncpu + 1))
    stats = loaded.maps["pc_stats"]
    stats[0] = [{"packets": i + 1, "label": "cpu"} for i in range(ncpu)]
    total = stats.sum(0)
    assert total.packets == ncpu * (ncpu + 1) // 2 and total.label == "cpu"


def test_lru_hash_and_batch_ops(loaded) -> None:
    lru = loaded.maps["lru"]
    lru.update({i: -i for i in range(10)})
    assert lru[7] == -7 and len(lru) == 10
    assert sorted(lru.items()) == [(i, -i) for i in range(10)]
    assert lru.lookup_and_delete(3) == -3 and 3 not in lru
    lru.clear()
    assert len(lru) == 0


def test_queue_stack_and_bloom(loaded) -> None:
    fifo, lifo, bloom = loaded.maps["fifo"], loaded.maps["lifo"], loaded.maps["bloom"]
    for i in range(3):
        fifo.push({"prefixlen": i, "addr": bytes([i] * 4)})
        lifo.push(i)
    assert fifo.peek().prefixlen == 0
    assert [fifo.pop().prefixlen for _ in range(3)] == [0, 1, 2]
    assert [lifo.pop() for _ in range(3)] == [2, 1, 0]
    with pytest.raises(IndexError, match="empty map 'fifo'"):
        fifo.pop()
    assert lifo.pop(None) is None
    lifo.push(9)
    lifo.clear()
    assert lifo.peek() is None
    bloom.push(1234)
    assert 1234 in bloom
    assert sum(1 for v in range(10000, 10100) if v in bloom) < 50  # mostly "absent"


def test_lpm_trie_prefix_keys_match_in_bpf(maps_obj) -> None:
    maps_obj.load()
    routes = maps_obj.maps["routes"]
    routes[ipaddress.ip_network("10.0.0.0/8")] = 8
    routes["10.1.0.0/16"] = 16
    routes[(32, "10.1.2.3")] = 32
    keys = sorted((k.prefixlen, bytes(k.addr)) for k in routes)
    assert keys == [(8, bytes([10, 0, 0, 0])), (16, bytes([10, 1, 0, 0])),
                    (32, bytes([10, 1, 2, 3]))]
    assert routes[(16, "10.1.0.0")] == 16
    del routes["10.1.0.0/16"]
    assert len(routes) == 2


def _run_prog(obj, arg: int) -> None:
    child = Child([arg], comm=b"plb-maps")
    obj.bss  # section access works before/after attach
    obj.maps[".bss"]
    with obj.programs["on_getpgid"].attach():
        child.run()


def test_map_in_map_prog_array_and_stack_traces(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["maps_types"]) as obj:
        obj.programs["tail_target"].autoload = True
        child = Child([0x0302010A], comm=b"plb-maps")  # 10.1.2.3 in memory order
        obj.rodata.target_pid = child.pid
        obj.load()
        outer, inner_a, inner_b = obj.maps["outer"], obj.maps["inner_a"], obj.maps["inner_b"]
        assert outer[0] == inner_a.id            # read back as the inner map's id
        inner_b[1] = 4242
        outer[0] = inner_b                       # set an inner map
        assert outer.get_map(0).id == inner_b.id
        jumps = obj.maps["jumps"]
        jumps[0] = obj.programs["tail_target"]   # a tail-call target
        assert jumps[0] == obj.programs["tail_target"].info().id
        obj.maps["routes"]["10.1.2.0/24"] = 24
        with obj.programs["on_getpgid"].attach():
            child.run()
        assert obj.bss.inner_seen == 4242
        assert obj.bss.tail_hits == 1
        assert obj.bss.route_hit == 24
        stack_id = obj.data.last_stack
        assert stack_id >= 0
        ips = obj.maps["stacks"][stack_id]
        assert ips and all(isinstance(ip, int) and ip > 0 for ip in ips)
        del jumps[0]
        assert 0 not in jumps


def test_standalone_typed_create_and_overrides() -> None:
    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_int32)]

    with pylibbpf.Map.create("hash", key_type=ctypes.c_uint64, value_type=Pair,
                             max_entries=8, name="typed") as m:
        assert (m.key_size, m.value_size) == (8, 8)
        m[5] = Pair(1, -2)
        got = m[5]
        assert (got.a, got.b) == (1, -2)
        m[6] = {"a": 3, "b": 4}
        assert m[6].b == 4
        view = m.typed(value="<iI")
        assert view[5] == (1, 0xFFFFFFFE)
        assert m.raw[struct.pack("Q", 5)] == struct.pack("Ii", 1, -2)
    with pylibbpf.Map.create("array", key_type="I", value_type="Q", max_entries=4) as a:
        a[1] = 2 ** 64 - 1
        assert a[1] == 2 ** 64 - 1
        with pytest.raises((OverflowError, TypeError, ValueError)):
            a[1] = -1
        with pytest.raises(ValueError, match="is 8 bytes, not 4"):
            pylibbpf.Map.create("hash", 4, 4, 4, key_type="Q")


def test_pinned_map_keeps_its_types(loaded, bpffs_dir) -> None:
    flows = loaded.maps["flows"]
    k = flows.key_type(sport=1)
    flows[k] = {"packets": 3}
    flows.pin(bpffs_dir / "flows")
    with pylibbpf.Map.open_pinned(bpffs_dir / "flows") as again:
        assert again[{"sport": 1}].packets == 3     # decoded with the kernel's BTF
    with pylibbpf.Map.from_id(flows.id) as by_id:
        assert by_id.value_type.name == "struct fstats"


def test_iteration_survives_concurrent_deletion() -> None:
    with pylibbpf.Map.create("hash", key_type="I", value_type="I", max_entries=4096) as m:
        m.update({i: i for i in range(4000)})
        seen = []
        for i, key in enumerate(m):
            if i == 10:
                for j in range(0, 4000, 2):
                    m.pop(j, None)
            seen.append(key)
        assert len(seen) == len(set(seen)) == 4000   # a snapshot: no repeats, no loop
        assert len(m) == 2000


def test_batch_equals_per_element() -> None:
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=20000) as m:
        data = {i: i * 3 for i in range(20000)}
        m.update(data)                              # batch update
        per_element = {k: m[k] for k in data}
        assert dict(m.items()) == data == per_element
        popped = dict(m.pop_all())
        assert popped == data and len(m) == 0
        for k, v in list(data.items())[:100]:
            m[k] = v
        m.clear()
        assert len(m) == 0


def test_fallback_without_batch_support() -> None:
    with pylibbpf.Map.create("lpm_trie", 8, 4, 16, flags=1) as m:  # BPF_F_NO_PREALLOC
        m.update({struct.pack("I4s", 8, b"\x0a\0\0\0"): struct.pack("I", 1),
                  struct.pack("I4s", 16, b"\x0a\x01\0\0"): struct.pack("I", 2)})
        assert len(m.items()) == 2
        m.clear()
        assert len(m) == 0


def test_threads_share_a_map() -> None:
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=4096) as m:
        def work(base: int) -> None:
            for i in range(500):
                m[base + i] = base + i
                assert m[base + i] == base + i

        ts = [threading.Thread(target=work, args=(b * 1000,)) for b in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(m) == 2000


def test_closed_map_raises() -> None:
    m = pylibbpf.Map.create("hash", key_type="I", value_type="I", max_entries=4)
    m[1] = 1
    raw = m.raw
    m.close()
    for op in (lambda: m[1], lambda: m.__setitem__(1, 2), lambda: list(m.items()),
               lambda: raw[b"\0" * 4], lambda: m.update({1: 1}), lambda: m.clear()):
        with pytest.raises(pylibbpf.ClosedError):
            op()


def test_object_closed_map_raises(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["maps_types"])
    obj.load()
    lru = obj.maps["lru"]
    lru[1] = 1
    obj.close()
    with pytest.raises(pylibbpf.ClosedError):
        lru[1]
    assert os.getpid() > 0


def test_typed_fast_paths_see_close(bpf_objects) -> None:
    """m[k] / m[k] = v cache the fd: closing the map or its Object must still be seen."""
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=4) as m:
        m[1] = 2
        view = m.typed(key="I", value="Q")
        assert m[1] == 2 and view[1] == 2
    for target in (m, view):
        with pytest.raises(pylibbpf.ClosedError):
            target[1]
        with pytest.raises(pylibbpf.ClosedError):
            target[1] = 3
    obj = pylibbpf.Object(bpf_objects["xdp_rewrite"])
    obj.load()
    actions = obj.maps["actions"]
    actions[2] = 7
    assert actions[2] == 7
    assert actions._fast_k == 4  # served by Map's C base, which must see the close too
    obj.close()
    with pytest.raises(pylibbpf.ClosedError):
        actions[2]
    with pytest.raises(pylibbpf.ClosedError):
        actions[2] = 8
