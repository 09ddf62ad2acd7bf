"""Map basics: bytes keys/values, CRUD, iteration, flags, pinning, standalone maps."""
from __future__ import annotations

import errno
import os
import struct

import pytest

import pylibbpf
from pylibbpf import BPF_EXIST, BPF_NOEXIST, MapType


def k(i: int) -> bytes:
    return struct.pack("I", i)


def v(i: int) -> bytes:
    return struct.pack("Q", i)


@pytest.fixture
def hmap():
    with pylibbpf.Map.create(MapType.HASH, 4, 8, 64, name="test_hash") as m:
        yield m


def test_create_reports_its_shape(hmap) -> None:
    assert (hmap.name, hmap.type, hmap.key_size, hmap.value_size, hmap.max_entries) == \
        ("test_hash", MapType.HASH, 4, 8, 64)
    info = hmap.info()
    assert info.id == hmap.id > 0 and info.max_entries == 64


def test_crud_and_iteration(hmap) -> None:
    assert len(hmap) == 0
    for i in range(10):
        hmap[k(i)] = v(i * i)
    assert len(hmap) == 10
    assert hmap[k(3)] == v(9)
    assert k(4) in hmap and k(40) not in hmap
    assert sorted(struct.unpack("I", key)[0] for key in hmap) == list(range(10))
    assert dict(hmap.items())[k(5)] == v(25)
    del hmap[k(3)]
    assert hmap.get(k(3)) is None
    with pytest.raises(KeyError):
        hmap[k(3)]
    with pytest.raises(KeyError):
        del hmap[k(3)]
    assert hmap.lookup_and_delete(k(4)) == v(16)
    assert k(4) not in hmap
    hmap.clear()
    assert len(hmap) == 0


def test_update_flags(hmap) -> None:
    hmap.update(k(1), v(1), flags=BPF_NOEXIST)
    with pytest.raises(pylibbpf.BPFExistsError) as ei:
        hmap.update(k(1), v(2), flags=BPF_NOEXIST)
    assert ei.value.errno == errno.EEXIST and "test_hash" in str(ei.value)
    with pytest.raises(pylibbpf.BPFNotFoundError):
        hmap.update(k(2), v(2), flags=BPF_EXIST)
    hmap.update({k(5): v(50), k(6): v(60)})
    assert hmap[k(6)] == v(60)


def test_full_map_raises(hmap) -> None:
    for i in range(64):
        hmap[k(i)] = v(i)
    with pytest.raises(pylibbpf.BPFError) as ei:
        hmap[k(1000)] = v(0)
    assert ei.value.errno == errno.E2BIG


def test_wrong_sizes_and_types_are_named(hmap) -> None:
    with pytest.raises(ValueError, match="key of map 'test_hash' must be 4 bytes, got 3"):
        hmap[b"abc"] = v(1)
    with pytest.raises(ValueError, match="value of map 'test_hash' must be 8 bytes, got 1"):
        hmap[k(1)] = b"x"
    with pytest.raises(TypeError, match="key of map 'test_hash' must be bytes-like"):
        hmap[1] = v(1)  # type: ignore[index]


def test_array_map_and_percpu_value_size() -> None:
    with pylibbpf.Map.create("array", 4, 4, 3) as arr:
        assert arr[k(2)] == b"\0" * 4  # arrays are pre-filled
        arr[k(2)] = b"abcd"
        assert arr[k(2)] == b"abcd"
        with pytest.raises(pylibbpf.BPFError):
            del arr[k(0)]  # arrays cannot delete
    with pylibbpf.Map.create("percpu_array", 4, 4, 1) as pc:
        ncpu = os.cpu_count() or 1
        assert pc.percpu and len(pc.raw[k(0)]) >= 8 * ncpu   # raw: padded slots
        assert len(pc[k(0)]) == pylibbpf.map.possible_cpus() >= ncpu  # one value per CPU


def test_pin_open_pinned_from_id_from_fd(hmap, bpffs_dir) -> None:
    hmap[k(7)] = v(77)
    path = bpffs_dir / "hash"
    hmap.pin(path)
    with pylibbpf.Map.open_pinned(path) as again:
        assert again[k(7)] == v(77) and again.id == hmap.id
        again[k(8)] = v(88)
    assert hmap[k(8)] == v(88)
    with pylibbpf.Map.from_id(hmap.id) as by_id:
        assert by_id[k(7)] == v(77)
    with pylibbpf.Map.from_fd(hmap.fd) as by_fd:
        assert by_fd.name == "test_hash"
    assert hmap[k(7)] == v(77)  # from_fd duplicated: our fd still works
    hmap.unpin(path)
    assert not path.exists()


def test_open_pinned_missing_is_named(bpffs_dir) -> None:
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        pylibbpf.Map.open_pinned(bpffs_dir / "nothing-here")


def test_object_map_pin_survives_object(bpf_objects, bpffs_dir) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        obj.load()
        obj.maps["seen"][k(1)] = b"\1" * 28
        obj.maps["seen"].pin(bpffs_dir / "seen")
    with pylibbpf.Map.open_pinned(bpffs_dir / "seen") as m:
        assert m.raw[k(1)] == b"\1" * 28
        # typed from the BTF the kernel keeps for the map
        assert m[1].pid == 0x01010101


def test_object_map_fd_before_load(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        with pytest.raises(pylibbpf.BPFError, match="not created yet"):
            obj.maps["seen"].fd


def test_create_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown map type"):
        pylibbpf.Map.create("nonsense", 4, 4, 1)
    with pytest.raises(ValueError, match="max_entries"):
        pylibbpf.Map.create("hash", 4, 4, -1)
    with pytest.raises(pylibbpf.BPFError) as ei:
        pylibbpf.Map.create("hash", 4, 4, 0)   # the kernel refuses zero entries
    assert ei.value.errno == errno.EINVAL


def test_freeze() -> None:
    with pylibbpf.Map.create("array", 4, 4, 1) as m:
        m.freeze()
        with pytest.raises(pylibbpf.BPFPermissionError):
            m[k(0)] = b"abcd"


def test_autocreate_off_leaves_the_map_out(bpf_objects) -> None:
    """A map with autocreate off is not created at load; using it says so (libbpf
    keeps a placeholder fd for it, which must never pass for the map)."""
    with pylibbpf.Object(bpf_objects["maps_types"]) as obj:
        for prog in obj.programs.values():
            prog.autoload = False  # (a program that used the map could not load)
        m = obj.maps["lifo"]
        assert m.autocreate is True
        with pytest.raises(TypeError, match="autocreate must be a bool"):
            m.autocreate = 0  # type: ignore[assignment]
        m.autocreate = False
        obj.load()
        assert m.autocreate is False
        assert obj.maps["fifo"].id in {x.id for x in pylibbpf.system.maps()}
        for use in (lambda: m.fd, lambda: m.id, lambda: m.push(1)):
            with pytest.raises(pylibbpf.BPFError, match="'lifo' was not created"):
                use()
        with pytest.raises(pylibbpf.BPFError, match="already loaded"):
            m.autocreate = True


def test_map_of_an_unknown_type_fails_as_a_bpf_error(bpf_objects) -> None:
    """A map type number pylibbpf has no name for (the fuzzer found one in a mutated
    object) ends in a BPFError naming the object, not a ValueError from our enum."""
    from pylibbpf._ffi import lib

    with pylibbpf.Object(bpf_objects["maps_types"]) as obj:
        lib.bpf_map__set_type(obj.maps["lifo"]._ptr, 3036676105)
        with pytest.raises(pylibbpf.BPFError, match="maps_types") as e:
            obj.load()
        assert not isinstance(e.value, pylibbpf.NotSupportedError)
