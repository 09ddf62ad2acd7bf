"""BPF streams: a program's stdout/stderr (Program.stdout/.stderr, `pylibbpf run`).

The kernel knows streams from 6.17 (kind ``prog_stream``: the read command); it
buffers what programs print only where its lock-free page allocator gives it
memory (kind ``prog_stream_write``: a probe prints and reads back). Where it
refuses, the kfunc answers a negative errno and the streams stay empty."""
from __future__ import annotations

import errno
from pathlib import Path
from typing import Dict, List

import pytest

import pylibbpf
from pylibbpf import BPFError, ClosedError, system
from pylibbpf.cli import _StreamPrinter

from _kernel import expect_unsupported

OUT = "hello 42 from bpf\n"
ERR = "oops: 7\n"


def _signed(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


@pytest.mark.kind("prog_stream")
def test_program_prints_to_stdout_and_stderr(bpf_objects: Dict[str, Path]) -> None:
    with pylibbpf.Object(bpf_objects["stream_print"]) as obj:
        obj.load()
        prog = obj.programs["say"]
        retval = prog.test_run().retval
        out, err = prog.stdout.read_text(), prog.stderr.read_text()   # (refused before 6.17)
        assert retval == 0   # the kfunc exists
        ret_out, ret_err = _signed(obj.data.ret_out), _signed(obj.data.ret_err)
        if system.support("prog_stream_write"):
            assert (ret_out, ret_err) == (len(OUT), len(ERR))
            assert out == OUT and err == ERR
        else:
            expect_unsupported("prog_stream_write")
            # what the probe saw, the program sees: the kfunc refuses, nothing is buffered
            assert ret_out < 0 and ret_err < 0
            assert errno.errorcode[-ret_out] in system.support("prog_stream_write").reason
            assert out == "" and err == ""
        # reading consumed it: a second read finds nothing
        assert prog.stdout.read() == b"" and prog.stderr.read() == b""


@pytest.mark.kind("prog_stream")
def test_streams_are_binary_files(bpf_objects: Dict[str, Path]) -> None:
    with pylibbpf.Object(bpf_objects["stream_print"]) as obj:
        obj.load()
        prog = obj.programs["say"]
        stdout = prog.stdout
        assert stdout.readable() and not stdout.writable() and stdout.name == "stdout"
        assert stdout.stream_id == 1 and prog.stderr.stream_id == 2
        buf = bytearray(8)
        assert stdout.readinto(buf) == 0   # nothing printed yet: empty, not blocking
        assert repr(prog.stderr) == "<ProgramStream stderr of 'say'>"


def test_stream_of_closed_or_unloaded_program(bpf_objects: Dict[str, Path]) -> None:
    obj = pylibbpf.Object(bpf_objects["stream_print"])
    stream = obj.programs["say"].stdout
    with pytest.raises(BPFError, match="program 'say' is not loaded"):
        stream.read()
    obj.close()
    with pytest.raises(ClosedError):
        stream.read()


class _FakeStream:
    def __init__(self, name: str, chunks: List[str]) -> None:
        self.name, self.chunks = name, chunks

    def read_text(self) -> str:
        return self.chunks.pop(0) if self.chunks else ""


def test_run_prints_stream_lines_whole(capsys: pytest.CaptureFixture[str]) -> None:
    """`run`'s printer holds an unfinished line until its end (or the end of the run)."""
    printer = _StreamPrinter.__new__(_StreamPrinter)
    printer.as_json, printer.partial = False, {}
    printer.streams = [("p", _FakeStream("stdout", ["a\nb", "c\n", "tail"])),  # type: ignore
                       ("p", _FakeStream("stderr", ["e1\n"]))]
    printer.drain()
    printer.drain()
    printer.drain(final=True)
    out, err = capsys.readouterr()
    assert out == "p: a\np: bc\np: tail\n" and err == "p (stderr): e1\n"


def test_cli_run_prints_program_streams(bpf_objects: Dict[str, Path]) -> None:
    """`run --json` prints each line a program writes to its streams (nothing where
    the kernel has none, or buffers nothing)."""
    from test_cli import finish, getpgid_child, start_run

    proc = start_run("--json", "-d", "2", "--no-dump", str(bpf_objects["stream_print"]))
    getpgid_child(4243, 4243)
    lines = [e for e in finish(proc) if "stream" in e]
    if system.support("prog_stream_write"):
        out = {"program": "on_getpgid", "stream": "stdout", "text": "getpgid(4243)"}
        err = {"program": "on_getpgid", "stream": "stderr", "text": "warned 1"}
        assert sorted(lines, key=str) == sorted([out, out, err, err], key=str)
    else:
        expect_unsupported("prog_stream_write")
        assert lines == []


GC_CHILD = """
import gc, sys, pylibbpf
gc.disable()
def once(mode):
    try:
        with pylibbpf.Object(sys.argv[1]) as obj:
            obj.load()
            s = obj.programs["say"].stdout
            s.stream_id = 3          # no such stream: every read fails
            if mode == 0: s.read_text()
            elif mode == 1: s.readinto(bytearray(8))
            else: s.read(5)
    except pylibbpf.BPFError as e:
        e.cycle = e                  # only the garbage collector frees it
for i in range(60):
    once(i % 3)
gc.collect()
print("collected")
"""


def test_failed_reads_leave_nothing_the_collector_crashes_on(
        bpf_objects: Dict[str, Path]) -> None:
    """A read that raised kept the caller's buffer exported to cffi in its traceback;
    collecting that cycle crashed the interpreter (seen in the 6.12 guest, where
    every read raises NotSupportedError). Run in a child."""
    import subprocess
    import sys

    from _children import same_pylibbpf

    res = subprocess.run([sys.executable, "-c", GC_CHILD, str(bpf_objects["stream_print"])],
                         capture_output=True, text=True, timeout=120, **same_pylibbpf())
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "collected"
