"""Object: open from path/bytes with options, configure, load (CO-RE), close."""
from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pylibbpf
from pylibbpf import AttachType, MapType, ProgramType

CHILD = ("import ctypes, os; ctypes.CDLL(None).prctl(15, b'plb-core', 0, 0, 0); "
         "os.getpgid(0); print(os.getpid())")


def run_child() -> int:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


@pytest.mark.parametrize("from_bytes", [False, True])
def test_open_lists_programs_and_maps(bpf_objects, from_bytes) -> None:
    path = bpf_objects["core_task"]
    src = path.read_bytes() if from_bytes else path
    with pylibbpf.Object(src, name="core") as obj:
        assert obj.name == "core"
        assert list(obj.programs) == ["on_getpgid"]
        assert list(obj.maps) == ["seen"]
        prog = obj.programs["on_getpgid"]
        assert prog.section == "tp/syscalls/sys_enter_getpgid"
        assert prog.type == ProgramType.TRACEPOINT
        assert prog.autoload is True
        assert prog.insn_count > 10
        m = obj.maps["seen"]
        assert (m.type, m.key_size, m.value_size, m.max_entries) == (MapType.HASH, 4, 28, 1024)
        assert not obj.loaded


def test_default_name_comes_from_file(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        assert obj.name == "core_task"


def test_missing_program_or_map_lists_what_exists(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        with pytest.raises(KeyError, match=r"no program 'nope'.*on_getpgid"):
            obj.programs["nope"]
        with pytest.raises(KeyError, match=r"no map 'nope'.*seen"):
            obj.maps["nope"]


def test_object_indexed_by_map_name_like_bcc(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        assert obj["seen"] is obj.maps["seen"] and obj["seen"].name == "seen"
        obj.load()
        with obj.programs["on_getpgid"].attach():
            pid = run_child()
        seen = obj["seen"][pid]                     # typed from BTF, as obj.maps gives
        assert seen.pid == pid and seen.comm == "plb-core"
        for missing in ("nope", "on_getpgid"):
            with pytest.raises(pylibbpf.BPFKeyError) as ei:
                obj[missing]
            err = ei.value
            # a KeyError and a LookupError for `except KeyError`, a BPFError for the rest
            assert isinstance(err, KeyError) and isinstance(err, LookupError)
            assert isinstance(err, pylibbpf.BPFNotFoundError) and err.errno == errno.ENOENT
            assert f"no map {missing!r} in object 'core_task'" in str(err)
            assert "it has: " in str(err) and "seen" in str(err)
        assert "'on_getpgid' is a program: obj.programs['on_getpgid']" in str(err)
        assert "seen" in obj and "nope" not in obj
        with pytest.raises(TypeError, match="iterate obj.maps or obj.programs"):
            list(obj)


@pytest.mark.parametrize("from_bytes", [False, True])
def test_core_program_reports_pid_and_comm(bpf_objects, from_bytes) -> None:
    path = bpf_objects["core_task"]
    with pylibbpf.Object(path.read_bytes() if from_bytes else path) as obj:
        obj.load()
        assert obj.loaded
        with obj.programs["on_getpgid"].attach():
            pid = run_child()
        raw = obj.maps["seen"].raw[struct.pack("I", pid)]  # bytes, not the BTF record
        got_pid, tgid, ppid, comm = struct.unpack("III16s", raw)
        assert (got_pid, tgid, ppid) == (pid, pid, os.getpid())
        assert comm.rstrip(b"\0") == b"plb-core"


def test_btf_custom_path_relocates_against_it(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"],
                         btf_custom_path="/sys/kernel/btf/vmlinux") as obj:
        obj.load()
        with obj.programs["on_getpgid"].attach():
            pid = run_child()
        assert struct.pack("I", pid) in obj.maps["seen"]


def test_btf_custom_path_missing_is_named(bpf_objects, tmp_path) -> None:
    missing = tmp_path / "missing.btf"
    with pytest.raises(pylibbpf.BPFNotFoundError, match=str(missing)):
        pylibbpf.Object(bpf_objects["core_task"], btf_custom_path=missing)


def test_autoload_off_skips_the_program(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["retype"]) as obj:
        obj.programs["return_kconfig"].autoload = False
        obj.load()
        assert obj.programs["return_one"].loaded
        assert not obj.programs["return_kconfig"].loaded
        with pytest.raises(pylibbpf.BPFError, match="'return_kconfig' is not loaded"):
            obj.programs["return_kconfig"].fd


def test_program_type_changed_before_load(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["retype"]) as obj:
        prog = obj.programs["return_one"]
        assert prog.type == ProgramType.SOCKET_FILTER
        prog.type = ProgramType.XDP
        prog.expected_attach_type = "xdp"
        assert prog.expected_attach_type == AttachType.XDP
        obj.load()
        assert prog.info().type == ProgramType.XDP
        # as XDP, returning 1 means XDP_DROP
        assert prog.test_run(b"\0" * 64).retval == 1


def test_settings_refused_after_load(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["retype"]) as obj:
        obj.load()
        with pytest.raises(pylibbpf.BPFError, match="already loaded"):
            obj.programs["return_one"].type = "xdp"
        with pytest.raises(pylibbpf.BPFError, match="already loaded"):
            obj.maps["resizable"].max_entries = 4
        with pytest.raises(pylibbpf.BPFError, match="already loaded"):
            obj.load()


def test_bad_program_type_name_is_a_value_error(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["retype"]) as obj:
        with pytest.raises(ValueError, match="unknown program type 'bogus'"):
            obj.programs["return_one"].type = "bogus"
        with pytest.raises(TypeError):
            obj.programs["return_one"].type = 1.5  # type: ignore[assignment]


def test_map_resized_before_load(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["retype"]) as obj:
        obj.maps["resizable"].max_entries = 4096
        obj.load()
        assert obj.maps["resizable"].info().max_entries == 4096


def test_kconfig_option_reaches_the_program(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["retype"], kconfig="CONFIG_PYLIBBPF_TEST_VALUE=42") as obj:
        obj.load()
        assert obj.programs["return_kconfig"].test_run(b"\0" * 64).retval == 42
    with pylibbpf.Object(bpf_objects["retype"]) as obj:  # __weak: 0 without it
        obj.load()
        assert obj.programs["return_kconfig"].test_run(b"\0" * 64).retval == 0


def test_pin_root_path_pins_maps_by_name(bpf_objects, bpffs_dir) -> None:
    with pylibbpf.Object(bpf_objects["retype"], pin_root_path=bpffs_dir) as obj:
        obj.load()
        prog = obj.programs["return_one"]
        prog.test_run(b"\0" * 64, repeat=3)
    pinned = bpffs_dir / "pinned_counter"
    assert pinned.exists()
    with pylibbpf.Map.open_pinned(pinned) as m:
        assert struct.unpack("Q", m.raw[struct.pack("I", 0)])[0] == 3


def test_rodata_initial_value_changes_behaviour(bpf_objects) -> None:
    packet = b"\x01" * 64
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        assert obj.maps[".rodata"].initial_value == struct.pack("I", 14)
        obj.load()
        assert obj.programs["xdp_rewrite"].test_run(packet).retval == 2  # XDP_PASS
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.maps[".rodata"].initial_value = struct.pack("I", 100)
        obj.load()
        assert obj.programs["xdp_rewrite"].test_run(packet).retval == 1  # XDP_DROP: runt


def test_rodata_wrong_size_is_refused(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        with pytest.raises(ValueError, match="must be 4 bytes, got 2"):
            obj.maps[".rodata"].initial_value = b"\0\0"


def test_log_level_keeps_the_verifier_log(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        prog = obj.programs["on_getpgid"]
        assert prog.log is None
        prog.log_level = 2
        obj.load()
        assert "processed" in prog.log and "insns" in prog.log


def test_kernel_log_level_option_loads(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"], kernel_log_level=1) as obj:
        obj.load()
        assert obj.programs["on_getpgid"].fd >= 0


def test_program_info_after_load(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        obj.load()
        prog = obj.programs["on_getpgid"]
        info = prog.info()
        assert info.name == "on_getpgid" and info.type == ProgramType.TRACEPOINT
        assert prog.id == info.id > 0
        assert len(prog.tag) == 16 and int(prog.tag, 16) >= 0


def test_close_is_idempotent_and_context_manager_closes(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["core_task"])
    with obj:
        obj.load()
    assert obj.closed
    obj.close()
    obj.close()


def test_attach_all_attaches_by_section(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        obj.load()
        links = obj.attach_all()
        assert len(links) == 1
        pid = run_child()
        for link in links:
            link.close()
        assert struct.pack("I", pid) in obj.maps["seen"]
        pid2 = run_child()
        assert struct.pack("I", pid2) not in obj.maps["seen"]


def test_attach_all_skips_sections_without_attach_point(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        obj.load()
        assert obj.attach_all() == []


def test_object_gc_without_close_is_safe(bpf_objects) -> None:
    import gc

    for _ in range(5):
        obj = pylibbpf.Object(bpf_objects["core_task"])
        obj.load()
        prog = obj.programs["on_getpgid"]
        del obj
        gc.collect()
        assert prog.fd >= 0  # the program keeps its Object alive
        del prog
        gc.collect()
