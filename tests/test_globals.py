"""Global variables typed from BTF: .rodata before load, .data/.bss live, custom sections."""
from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys

import pytest

import pylibbpf
from _children import same_pylibbpf

libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def obj(bpf_objects):
    with pylibbpf.Object(bpf_objects["events_all"]) as o:
        yield o


def test_sections_list_their_variables(obj) -> None:
    assert set(obj.rodata) == {"target_pid", "min_arg", "big_arg"}
    assert {"hits", "emitted", "last_event"} <= set(obj.bss)
    assert obj.data.data_knob == 42
    assert obj.section(".data.custom").custom_counter == 7
    assert obj.rodata.big_arg == 1 << 30
    with pytest.raises(AttributeError, match="no variable 'nope'.*big_arg"):
        obj.rodata.nope
    with pytest.raises(LookupError, match="no data section '.data.nope'"):
        obj.section(".data.nope")


def test_rodata_changes_behaviour_and_bss_counts(obj) -> None:
    me = os.getpid()
    obj.rodata.target_pid = me
    obj.rodata["min_arg"] = 100
    obj.load()
    assert obj.rodata.min_arg == 100
    with pytest.raises(pylibbpf.BPFError, match="read-only after load"):
        obj.rodata.min_arg = 1
    with obj.programs["on_getpgid"].attach():
        for arg in (5, 150, 7, 200):
            libc.getpgid(arg)      # our own pid: only these calls count
    assert obj.bss.hits == 4
    assert obj.bss.emitted == 2                     # the .rodata filter dropped 5 and 7
    last = obj.bss.last_event
    assert last.arg == 200 and last.pid == me and last.kind.name == "EV_ENTER"
    assert obj.section(".data.custom").custom_counter == 7 + 4


def test_data_and_bss_are_writable_after_load(obj) -> None:
    obj.rodata.target_pid = os.getpid()
    obj.load()
    obj.bss.hits = 1000
    obj.section(".data.custom").custom_counter = 1
    with obj.programs["on_getpgid"].attach():
        libc.getpgid(1)
    assert obj.bss.hits == 1001                      # the program saw our write
    assert obj.section(".data.custom").custom_counter == 2
    obj.data.data_knob = -5
    assert obj.data.data_knob == -5
    with pytest.raises(TypeError, match="data_knob"):
        obj.data.data_knob = "x"


def test_struct_global_and_dict_view(obj) -> None:
    obj.bss.last_event = {"pid": 1, "comm": "abc", "kind": "EV_BIG"}
    e = obj.bss.last_event
    assert (e.pid, e.comm, e.kind.name) == (1, "abc", "EV_BIG")
    d = obj.bss.to_dict()
    assert d["last_event"] == e and d["hits"] == 0


def test_closed_object_sections_raise(bpf_objects) -> None:
    o = pylibbpf.Object(bpf_objects["events_all"])
    bss = o.bss
    o.close()
    with pytest.raises(pylibbpf.ClosedError):
        bss.hits
    with pytest.raises(pylibbpf.ClosedError):
        o.rodata


#: a child: load an object the verifier rejects, then set its globals (after libbpf
#: froze and remapped .rodata read-only, so a write there would be a SIGSEGV)
_AFTER_FAILED_LOAD = r"""
import sys, pylibbpf
obj = pylibbpf.Object(sys.argv[1])
obj.rodata.knob = 3
try:
    obj.load()
except pylibbpf.VerifierError as e:
    print("rejected", e.program)
for section, name, value in ((".rodata", "knob", 7), (".bss", "seen", 5)):
    try:
        obj.section(section)[name] = value
    except pylibbpf.BPFError as e:
        print(section, e.errno, e)
try:
    obj.maps[".rodata"].initial_value = bytes(4)
except pylibbpf.BPFError as e:
    print("initial_value", e.errno, e)
print("values", obj.rodata.knob, obj.bss.seen)
"""


def test_setting_globals_after_a_failed_load_is_refused(bpf_objects) -> None:
    proc = subprocess.run([sys.executable, "-c", _AFTER_FAILED_LOAD,
                           str(bpf_objects["rejected_rodata"])],
                          capture_output=True, text=True, timeout=60, **same_pylibbpf())
    assert proc.returncode == 0, proc.stderr  # not -SIGSEGV
    lines = proc.stdout.splitlines()
    assert lines[0] == "rejected unchecked_read_knob"
    for section, name in ((".rodata", "knob"), (".bss", "seen")):
        line = next(ln for ln in lines if ln.startswith(section + " "))
        assert line.startswith(f"{section} {errno.EBUSY} cannot set {section}.{name} of "
                               "'rejected_rodata': its load() failed"), line
    assert any(ln.startswith(f"initial_value {errno.EBUSY} set initial value: the load() "
                             "of Object 'rejected_rodata' failed") for ln in lines), lines
    assert lines[-1] == "values 3 0"  # reading stays possible, and nothing was written
