"""BPF arenas: memory shared by a program and Python without copies.

tests/bpf/arena/arena.bpf.c (kept out of tests/bpf/*.bpf.c: it needs clang 18+)
has ``__arena`` globals (``struct io io``: input Python writes, output the program
computes; ``magic``) and a page the program allocates with
``bpf_arena_alloc_pages()``. Python reaches all of it through ``obj.arena``:
memoryviews and NumPy arrays made once keep showing what the program writes.
"""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import pylibbpf
from pylibbpf import system
from pylibbpf.arena import BPF_F_SEGV_ON_FAULT, mapped_ranges

from _children import same_pylibbpf
from _clang import MIN_ARENA_CLANG, clang_major, newest_clang

SRC = Path(__file__).resolve().parent / "bpf" / "arena" / "arena.bpf.c"
N_IO = 64
IO = struct.Struct(f"<Q{N_IO}Q{N_IO}QQ")   # struct io: n, in[], out[], calls
OFF_IN, OFF_OUT, OFF_CALLS = 8, 8 + 8 * N_IO, 8 + 16 * N_IO


@pytest.fixture(scope="module")
def arena_obj_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = newest_clang()
    out = tmp_path_factory.mktemp("arena") / "arena.bpf.o"
    try:
        return pylibbpf.compile(SRC, out, cflags=["-Wall", "-Werror"], clang=cc)
    except pylibbpf.BPFError as e:
        major = clang_major(cc)
        if major < MIN_ARENA_CLANG:
            pytest.fail(f"arena programs need clang {MIN_ARENA_CLANG}+ (address_space(1) pointers); "
                        f"the newest clang found is {cc!r}, version {major}: install "
                        f"clang-{MIN_ARENA_CLANG} or newer, or set CLANG\n{e}")
        raise


@pytest.fixture
def obj(arena_obj_path) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(arena_obj_path) as o:
        o.load()
        yield o


def run(o: pylibbpf.Object) -> None:
    assert o.programs["compute"].test_run().retval == 0


def test_arena_needs_and_uses_a_new_clang(arena_obj_path) -> None:
    # the object holds an arena map and the __arena section: built by clang 18+
    with pylibbpf.Object(arena_obj_path) as o:
        assert o.maps["arena"].type == pylibbpf.MapType.ARENA
        assert set(o.section(".addr_space.1")) == {"io", "magic"}


@pytest.mark.kind("arena")
def test_arena_round_trip_without_copies(obj) -> None:
    arena = obj.arena
    assert arena.pages == 16 and arena.size == 16 * arena.page_size
    mem = arena.memory
    assert len(mem) == arena.size and not mem.readonly
    io = arena.global_offset("io")
    # arrays over the arena, made once, before the program ever ran
    inp = arena.numpy(np.uint64, offset=io + OFF_IN, count=N_IO)
    out = arena.numpy(np.uint64, offset=io + OFF_OUT, count=N_IO)
    # no copy: the array's data is the arena's own memory at that offset
    assert inp.__array_interface__["data"][0] == arena.address + io + OFF_IN
    # Python -> program: written straight into the arena
    inp[:5] = [3, 1, 4, 1, 5]
    mem[io:io + 8] = struct.pack("<Q", 5)                     # io.n = 5
    run(obj)                                                  # out[i] = in[i]**2 + calls
    # program -> Python: the views made earlier show the result
    assert out[:6].tolist() == [10, 2, 17, 2, 26, 0]
    assert struct.unpack_from("<Q", mem, io + OFF_CALLS)[0] == 1
    inp[:5] = [10, 20, 30, 40, 50]
    run(obj)
    assert out[:5].tolist() == [102, 402, 902, 1602, 2502]  # calls is now 2
    # what the program wrote is also what the named globals read
    assert obj.arena.globals.io.calls == 2
    assert list(obj.arena.globals.io.out[:2]) == [102, 402]


@pytest.mark.kind("arena")
def test_arena_page_allocated_by_the_program(obj) -> None:
    run(obj)
    arena = obj.arena
    addr = obj.bss.page                # the program's arena pointer, as it stored it
    off = arena.offset_of(addr)
    assert off % arena.page_size == 0
    page = arena.numpy(np.uint64, offset=off, count=arena.page_size // 8)
    assert page[:3].tolist() == [1000, 1001, 1002] and page[-1] == 1000 + 511
    run(obj)                           # the same array shows the second run
    assert page[:3].tolist() == [2000, 2001, 2002]
    with pytest.raises(ValueError, match="not in arena 'arena'"):
        arena.offset_of(arena.address + arena.size)


@pytest.mark.kind("arena")
def test_arena_globals_by_name(arena_obj_path) -> None:
    with pylibbpf.Object(arena_obj_path) as o:
        sec = o.section(".addr_space.1")
        assert sec.magic == 0x5EED                 # initial value, before load
        sec.magic = 0xABCD                         # set before load: copied into the arena
        o.load()
        arena = o.arena
        assert arena.globals is sec and sec.magic == 0xABCD
        off = arena.global_offset("magic")
        assert struct.unpack_from("<Q", arena.memory, off)[0] == 0xABCD
        arena.memory[off:off + 8] = struct.pack("<Q", 77)   # the view and the name agree
        assert sec.magic == 77
        sec.magic = 78
        assert struct.unpack_from("<Q", arena.memory, off)[0] == 78
        found, var = pylibbpf.globals.find_variable(o, "magic")
        assert found is sec and var.name == "magic"
        with pytest.raises(KeyError, match="no __arena global 'nope'"):
            arena.global_offset("nope")


@pytest.mark.kind("arena")
def test_arena_before_load_and_wrong_maps(arena_obj_path) -> None:
    with pylibbpf.Object(arena_obj_path) as o:
        with pytest.raises(pylibbpf.BPFError, match="call load"):
            o.arena
        o.load()
        bss = next(m for m in o.maps.values() if m.name.endswith(".bss"))
        with pytest.raises(pylibbpf.BPFError, match="not an arena"):
            bss.arena


def _child(code: str, obj_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` (with ``OBJ``, the object's path) in a child Python: a crash
    there is a failed test, not a dead test run. The object is loaded here first:
    on a kernel without arenas that raises the NotSupportedError the ``kind``
    marker expects."""
    with pylibbpf.Object(obj_path) as o:
        o.load()
    prog = f"OBJ = {str(obj_path)!r}\n" + code
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          timeout=120, **same_pylibbpf())


@pytest.mark.kind("arena")
def test_arena_untouched_pages_read_as_zero(arena_obj_path) -> None:
    # a page no program allocated: the kernel allocates a zeroed one on first touch
    proc = _child("""
import pylibbpf
with pylibbpf.Object(OBJ) as o:
    o.load()
    a = o.arena
    mem = a.memory
    off = 7 * a.page_size                      # the program never allocates page 7
    print(bytes(mem[off:off + 16]).hex())
    mem[off:off + 4] = b"abcd"
    print(bytes(mem[off:off + 4]).decode())
""", arena_obj_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["00" * 16, "abcd"]


@pytest.mark.kind("arena")
def test_arena_view_outlives_object_close(arena_obj_path) -> None:
    proc = _child("""
import gc, struct, os
import numpy as np
import pylibbpf
from pylibbpf._ffi import lib
o = pylibbpf.Object(OBJ)
o.load()
prog_id = o.programs["compute"].info().id
o.programs["compute"].test_run()
a = o.arena
mem = a.memory
off = a.offset_of(o.bss.page)
arr = a.numpy(np.uint64, offset=off, count=4)
o.close()
print(arr.tolist())                  # still the arena: what the program wrote
arr[0] = 99
print(struct.unpack_from("<Q", mem, off)[0])    # the memoryview sees the array's write
try:
    a.memory
except pylibbpf.ClosedError as e:
    print("closed:", e)
fd = lib.bpf_prog_get_fd_by_id(prog_id)
print("program alive:", fd >= 0)
if fd >= 0:
    os.close(fd)
del a, mem, arr
gc.collect()
fd = lib.bpf_prog_get_fd_by_id(prog_id)
print("program alive:", fd >= 0)
""", arena_obj_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "[1000, 1001, 1002, 1003]"
    assert lines[1] == "99"
    assert lines[2].startswith("closed: ") and "views made before stay valid" in lines[2]
    # the object is released once the last view is gone, not before
    assert lines[3:] == ["program alive: True", "program alive: False"]


@pytest.mark.kind("arena")
def test_arena_segv_on_fault_gives_no_view(tmp_path) -> None:
    # tests/bpf/arena/arena_segv.bpf.c: an arena with BPF_F_SEGV_ON_FAULT, no globals
    src = SRC.with_name("arena_segv.bpf.c")
    path = pylibbpf.compile(src, tmp_path / "arena_segv.bpf.o", cflags=["-Wall", "-Werror"],
                            clang=newest_clang())
    with pylibbpf.Object(path) as o:
        o.load()
        assert o.maps["arena"].flags & BPF_F_SEGV_ON_FAULT
        with pytest.raises(pylibbpf.BPFError, match="BPF_F_SEGV_ON_FAULT") as info:
            o.arena
        assert info.value.errno == 1


@pytest.mark.kind("arena")
def test_arena_segv_on_fault_with_globals_is_refused_before_load(arena_obj_path) -> None:
    # libbpf would write the globals' initial values into unallocated arena pages
    # at load: SIGSEGV. Checked in a child, in case the refusal is missing.
    proc = _child(f"""
import pylibbpf
with pylibbpf.Object(OBJ) as o:
    m = o.maps["arena"]
    m.flags = m.flags | {BPF_F_SEGV_ON_FAULT}
    try:
        o.load()
    except pylibbpf.BPFError as e:
        print(type(e).__name__, e.errno, e)
""", arena_obj_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("BPFError 22 ")
    assert "has __arena globals and BPF_F_SEGV_ON_FAULT" in proc.stdout


def _free_4g_slot() -> int:
    """A 4 GiB-aligned 4 GiB range this process does not map."""
    used = mapped_ranges()
    for start in range(0x100000000000, 0x700000000000, 1 << 32):
        end = start + (1 << 32)
        if not any(lo < end and start < hi for lo, hi, _ in used):
            return start
    pytest.fail("no free 4 GiB range in this process")


@pytest.mark.kind("arena")
def test_arena_at_a_chosen_address(arena_obj_path) -> None:
    where = _free_4g_slot()
    with pylibbpf.Object(arena_obj_path) as o:
        o.maps["arena"].map_extra = where
        assert o.maps["arena"].map_extra == where
        o.load()
        run(o)
        arena = o.arena
        assert arena.address == where
        # the program's pointers are addresses at that placement
        assert where <= o.bss.page < where + arena.size
        assert arena.numpy(np.uint64, offset=arena.offset_of(o.bss.page), count=1)[0] == 1000


@pytest.mark.kind("arena")
def test_arena_address_over_our_own_memory_is_refused(arena_obj_path) -> None:
    # libbpf maps the arena MAP_FIXED at map_extra: over the interpreter's memory that
    # would crash it; pylibbpf refuses before load (in a child, in case it did not)
    proc = _child("""
import pylibbpf
from pylibbpf.arena import mapped_ranges
heap = next(lo for lo, hi, what in mapped_ranges() if what == "[heap]")
with pylibbpf.Object(OBJ) as o:
    o.maps["arena"].map_extra = heap
    try:
        o.load()
    except pylibbpf.BPFError as e:
        print(type(e).__name__, e.errno, e)
""", arena_obj_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("BPFError 17 ")
    assert "overlaps memory this process maps" in proc.stdout and "[heap]" in proc.stdout


def test_arena_support_matches_the_map_type_probe() -> None:
    sup = system.support("arena")
    assert sup.supported == system.features().map_types["arena"]
    assert "arena" in system.features().attach_kinds


@pytest.mark.kind("arena")
def test_arena_of_a_reused_map_is_refused(arena_obj_path, bpffs_dir) -> None:
    # libbpf does not map an arena it reuses (a pinned one): its pointer is then its
    # copy of the globals, far smaller than the arena. No view of that (in a child,
    # in case one were made: reading past the copy could crash)
    pin = bpffs_dir / "arena"
    proc = _child(f"""
import pylibbpf
from pylibbpf._ffi import lib
with pylibbpf.Object(OBJ) as first:
    first.load()
    first.maps["arena"].pin({str(pin)!r})
    first.arena.globals.magic = 4242
    with pylibbpf.Object(OBJ) as second:
        assert lib.bpf_map__set_pin_path(second.maps["arena"]._ptr, {str(pin)!r}.encode()) == 0
        second.load()
        try:
            second.arena
        except pylibbpf.BPFError as e:
            print(type(e).__name__, e)
""", arena_obj_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("BPFError ") and "not mapped in this process" in proc.stdout
