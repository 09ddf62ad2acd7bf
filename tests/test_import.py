"""``import pylibbpf`` stays light: NumPy, pyelftools, asyncio, the compiler, the ELF
reader and the tools are imported when first used (PEP 562), and every public
name still resolves to the same object as before. Behaviour checks only: the
import's time is a benchmark (bench/bench_map_ops.py), not a test."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

import pylibbpf

from _children import same_pylibbpf


def _child(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_does_not_pull_numpy_elftools_or_asyncio() -> None:
    out = _child("import pylibbpf, sys; print(sorted(m for m in "
                 "('numpy','elftools','asyncio') if m in sys.modules))")
    assert out == "[]"


def test_import_does_not_pull_typing_logging_re_or_threading() -> None:
    """typing is for annotations only (TYPE_CHECKING), the logger is made by the first
    message, regular expressions are compiled by their first use, threading and
    weakref are imported by the first ring or perf buffer."""
    out = _child("import pylibbpf, sys; print(sorted(m for m in ('typing', 'logging', 're', "
                 "'contextlib', 'threading', 'weakref') if m in sys.modules))")
    assert out == "[]"


def test_libbpf_messages_reach_logging_imported_before_or_after_pylibbpf() -> None:
    """With logging never imported, a libbpf warning reaches stderr (logging's last
    resort) and a debug message is not formatted; a ``pylibbpf`` logger set to DEBUG
    after the import gets the debug messages from the next Object on, and one set
    to DEBUG before the import gets them from the start."""
    after = """
import json, sys, pylibbpf
from pylibbpf._ffi import lib
lib.pylibbpf_log_emit(lib.LIBBPF_DEBUG, b"libbpf: a debug line before\\n")
lib.pylibbpf_log_emit(lib.LIBBPF_WARN, b"libbpf: a warning before\\n")
import logging
got = []
class H(logging.Handler):
    def emit(self, r): got.append([r.name, r.levelno, r.getMessage()])
logging.getLogger("pylibbpf").addHandler(H())
logging.getLogger("pylibbpf").setLevel(logging.DEBUG)
try:
    pylibbpf.Object(b"not an ELF file")
except pylibbpf.ELFError:
    pass
lib.pylibbpf_log_emit(lib.LIBBPF_DEBUG, b"libbpf: a debug line after\\n")
print(json.dumps(got[-1]))
"""
    out = subprocess.run([sys.executable, "-c", after], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert out.returncode == 0, out.stderr
    assert out.stderr == "libbpf: a warning before\n"
    assert json.loads(out.stdout) == ["pylibbpf", 10, "libbpf: a debug line after"]

    before = """
import json, logging
got = []
class H(logging.Handler):
    def emit(self, r): got.append([r.name, r.levelno, r.getMessage()])
logging.getLogger("pylibbpf").addHandler(H())
logging.getLogger("pylibbpf").setLevel(logging.DEBUG)
from pylibbpf._ffi import lib
lib.pylibbpf_log_emit(lib.LIBBPF_DEBUG, b"libbpf: a debug line\\n")
print(json.dumps(got))
"""
    assert json.loads(_child(before)) == [["pylibbpf", 10, "libbpf: a debug line"]]


def test_struct_format_items_split_as_the_regular_expression_does() -> None:
    import re

    from pylibbpf.typed import _ITEM, _format_items

    for fmt in ["", "I", "4sI", "Q2xI", "?", "3s", "10I?b", "I 4s", "4\nI", "I4", "\u0663I",
                "\u00b2I", "é"]:
        assert _format_items(fmt) == re.findall(_ITEM, fmt), fmt


def test_import_leaves_the_compiler_elf_reader_and_tools_for_later() -> None:
    heavy = ["subprocess", "tempfile", "hashlib", "dataclasses", "inspect", "ctypes",
             "socket", "ipaddress", "pylibbpf.compiler", "pylibbpf.elf", "pylibbpf.system",
             "pylibbpf.symbolize", "pylibbpf.flamegraph", "pylibbpf.trace_pipe",
             "pylibbpf._linkinfo", "pylibbpf._infos"]
    out = _child(f"import pylibbpf, sys, json; print(json.dumps([m for m in {heavy!r} "
                 "if m in sys.modules]))")
    assert json.loads(out) == []


def test_lazy_names_resolve_to_their_modules_objects() -> None:
    """Each public name, asked for in a fresh process, is the object its module
    defines; ``from pylibbpf import *`` gives every name of ``__all__``."""
    code = """
import importlib, json, pylibbpf
bad = []
for name, (mod, attr) in sorted(pylibbpf._LAZY.items()):
    m = importlib.import_module(mod, "pylibbpf")
    want = getattr(m, attr) if attr else m
    if getattr(pylibbpf, name) is not want:
        bad.append(name)
ns = {}
exec("from pylibbpf import *", ns)
missing = [n for n in pylibbpf.__all__ if n not in ns]
print(json.dumps([bad, missing, sorted(set(pylibbpf.__all__) - set(dir(pylibbpf)))]))
"""
    assert json.loads(_child(code)) == [[], [], []]


def test_tools_work_through_the_lazy_names() -> None:
    out = _child("import pylibbpf; print(pylibbpf.syscall_name(pylibbpf.syscall_number('getpid')),"
                 " pylibbpf.include_dir().is_dir(), pylibbpf.elf.__name__,"
                 " pylibbpf.system.__name__)")
    assert out == "getpid True pylibbpf.elf pylibbpf.system"


def test_info_classes_keep_their_module_and_pickle() -> None:
    from pylibbpf.link import XDPLinkInfo
    from pylibbpf.map import MapInfo
    from pylibbpf.program import ProgramInfo, TestRunResult

    assert pylibbpf.MapInfo is MapInfo and MapInfo.__module__ == "pylibbpf.map"
    assert pylibbpf.ProgramInfo is ProgramInfo and ProgramInfo.__module__ == "pylibbpf.program"
    assert pylibbpf.TestRunResult is TestRunResult
    with pylibbpf.Map.create("hash", key_type="I", value_type="I", max_entries=2,
                             name="infomod") as m:
        info = m.info()
    assert type(info) is MapInfo and info.name == "infomod"
    assert pickle.loads(pickle.dumps(info)) == info

    assert pylibbpf.XDPLinkInfo is XDPLinkInfo is pylibbpf.link.XDPLinkInfo
    assert XDPLinkInfo.__module__ == "pylibbpf.link"
    assert issubclass(XDPLinkInfo, pylibbpf.LinkInfo)
    xdp = XDPLinkInfo(type=pylibbpf.LinkType.XDP, id=1, program_id=2, ifindex=3)
    assert pickle.loads(pickle.dumps(xdp)) == xdp


def test_unknown_attributes_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        pylibbpf.no_such_name  # noqa: B018
    for mod in (pylibbpf.link, pylibbpf.map, pylibbpf.program):
        with pytest.raises(AttributeError, match="no attribute 'NoSuchInfo'"):
            mod.NoSuchInfo  # noqa: B018
    with pytest.raises(ImportError):
        from pylibbpf import no_such_name  # noqa: F401
