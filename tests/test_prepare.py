"""Object.prepare() (libbpf 1.7's bpf_object__prepare): maps created and
inspectable, and filled, before any program loads; load() then finishes."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Dict

import pytest

import pylibbpf
from pylibbpf import BPFError

PACKET = bytes(64)


def test_prepare_creates_maps_before_programs_load(bpf_objects: Dict[str, Path]) -> None:
    with pylibbpf.Object(bpf_objects["prepare"]) as obj:
        obj.maps["counts"].max_entries = 32   # configurable until prepare()
        obj.rodata.mult = 4
        assert obj.prepare() is obj
        assert obj.prepared and not obj.loaded
        counts = obj.maps["counts"]
        info = counts.info()   # the kernel's map: fd, id, final size and BTF types
        assert counts.fd >= 0 and info.id > 0 and info.max_entries == 32
        assert (info.key_size, info.value_size) == (4, 8)
        assert (counts.key_type.size, counts.value_type.size) == (4, 8)
        assert counts.key_type.name == "unsigned int"
        counts[0] = 100          # filled before the program exists
        obj.data.add = 5         # .data/.bss stay writable
        prog = obj.programs["count"]
        with pytest.raises(BPFError, match="is not loaded"):
            prog.fd
        obj.load()
        assert obj.loaded and obj.prepared
        prog.test_run(PACKET)
        prog.test_run(PACKET)
        assert counts[0] == 102 and obj.bss.total == 2 * 5 * 4


def test_after_prepare_only_safe_settings_change(bpf_objects: Dict[str, Path]) -> None:
    with pylibbpf.Object(bpf_objects["prepare"]) as obj:
        obj.prepare()
        with pytest.raises(BPFError, match="already prepared") as info:
            obj.maps["counts"].max_entries = 64
        assert info.value.errno == errno.EBUSY
        with pytest.raises(BPFError, match="already prepared"):
            obj.programs["count"].type = "xdp"
        obj.programs["count"].log_level = 1      # still allowed: load() reads them
        obj.programs["count"].autoload = True
        with pytest.raises(BPFError, match="already prepared or loaded"):
            obj.prepare()
        obj.load()
        with pytest.raises(BPFError, match="already loaded"):
            obj.load()
        assert obj.programs["count"].log is not None


def test_rodata_is_read_only_after_prepare(bpf_objects: Dict[str, Path]) -> None:
    """libbpf freezes .rodata when it creates its map: a write must be refused, not
    crash (run in a child: before the check, it wrote to read-only memory)."""
    path = bpf_objects["prepare"]
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            with pylibbpf.Object(path) as obj:
                obj.prepare()
                assert obj.rodata.mult == 3
                try:
                    obj.rodata.mult = 9
                    code = 2
                except BPFError as e:
                    code = 0 if e.errno == errno.EPERM and "read-only" in str(e) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child died: {status:#x}"
    assert os.WEXITSTATUS(status) == 0


def test_failed_prepare_is_the_load_error(bpf_objects: Dict[str, Path]) -> None:
    with pylibbpf.Object(bpf_objects["prepare"]) as obj:
        obj.maps["counts"].max_entries = 0   # the kernel refuses a hash map of 0 entries
        with pytest.raises(BPFError) as info:
            obj.prepare()
        assert "load BPF object 'prepare'" in str(info.value)
        assert "max_entries 0" in str(info.value)
        assert not obj.prepared
        with pytest.raises(BPFError, match="was already loaded"):
            obj.load()
