"""uprobes, uretprobes, uprobe.s, uprobe.multi and USDT on programs the suite
compiles (PIE, non-PIE, own shared library at a non-zero base, stripped with a
separate debug file, C++), on libc by short name and through a process in its
own mount namespace. Every attach test runs the target and checks the BPF
side saw the right arguments / return values for that pid."""
from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple

import pytest

import pylibbpf
from pylibbpf import elf
from pylibbpf._ffi import ffi, lib

SRC = Path(__file__).resolve().parent / "uprobe"
sys.path.insert(0, str(SRC))
import build_targets  # noqa: E402
N = 3  # calls of each function per run

K_ENTRY, K_RETURN, K_MULTI, K_MULTI_RET, K_SLEEPABLE, K_USDT = range(1, 7)
EVENT = struct.Struct("<IIqqQQ16s")


class Event(NamedTuple):
    pid: int
    kind: int
    a: int
    b: int
    cookie: int
    ip: int
    text: bytes


@pytest.fixture(scope="session")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """The test targets (tests/uprobe/build_targets.py), built once: name -> path."""
    return build_targets.build(tmp_path_factory.mktemp("uprobe"))


def _compile(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    src = Path(__file__).resolve().parent / "bpf" / f"{name}.bpf.c"
    out = tmp_path_factory.mktemp("uprobe_bpf") / f"{name}.bpf.o"
    return pylibbpf.compile(src, out, cflags=["-Wall", "-Werror"])


@pytest.fixture(scope="session")
def uprobe_bpf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/bpf/uprobe_test.bpf.c, compiled into this module's own directory
    (not the shared tests/.build, which concurrent runs may wipe)."""
    return _compile(tmp_path_factory, "uprobe_test")


@pytest.fixture
def obj(uprobe_bpf) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(uprobe_bpf) as o:
        o.load()
        yield o


def events(o: pylibbpf.Object, pid: int) -> List[Event]:
    """Events the BPF side logged for ``pid`` (plain map lookups, in order)."""
    key = ffi.new("__u32 *", 0)
    count = ffi.new("__u64 *")
    assert lib.bpf_map_lookup_elem(o.maps["event_count"].fd, key, count) == 0
    buf = ffi.new("char[]", EVENT.size)
    out = []
    fd = o.maps["event_log"].fd
    for i in range(min(int(count[0]), 4096)):
        key[0] = i
        assert lib.bpf_map_lookup_elem(fd, key, buf) == 0
        e = Event(*EVENT.unpack(ffi.buffer(buf, EVENT.size)[:]))
        if e.pid == pid:
            out.append(e._replace(text=e.text.split(b"\0")[0]))
    return out


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


class Child:
    def __init__(self, cmd: List[str], env: Dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.proc.kill()
            raise RuntimeError(f"{cmd} did not start")
        self.pid = int(line)

    def go(self) -> str:
        out, _ = self.proc.communicate("go\n", timeout=20)
        assert self.proc.returncode == 0, out
        return out


@contextmanager
def child(path: Path, n: int = N, env: Dict[str, str] | None = None) -> Iterator[Child]:
    c = Child([str(path), str(n)], env)
    try:
        yield c
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def run(path: Path, n: int = N) -> int:
    with child(path, n) as c:
        c.go()
        return c.pid


# --- uprobes and uretprobes on our own programs -----------------------------------------

@pytest.mark.parametrize("name", ["prog_pie", "prog_nopie", "prog_stripped"])
def test_uprobe_args_and_return(obj, progs, name) -> None:
    exe = progs[name]
    with obj.programs["on_entry"].attach_uprobe(exe, "add_i", cookie=7), \
            obj.programs["on_return"].attach_uprobe(exe, "add_i", retprobe=True, cookie=8):
        pid = run(exe)
    evs = events(obj, pid)
    entries = [(s32(e.a), s32(e.b), e.cookie) for e in evs if e.kind == K_ENTRY]
    rets = [(s32(e.a), e.cookie) for e in evs if e.kind == K_RETURN]
    assert entries == [(i, 100, 7) for i in range(1, N + 1)]
    assert rets == [(i + 100, 8) for i in range(1, N + 1)]


@pytest.mark.parametrize("name", ["prog_pie", "prog_nopie", "prog_stripped"])
def test_local_symbol_long_args(obj, progs, name) -> None:
    """A LOCAL (static) function is only in .symtab, or the stripped binary's debug file."""
    exe = progs[name]
    with obj.programs["on_entry"].attach_uprobe(exe, "local_twice"), \
            obj.programs["on_return"].attach_uprobe(exe, "mul_l", retprobe=True):
        pid = run(exe)
    evs = events(obj, pid)
    assert [s32(e.a) for e in evs if e.kind == K_ENTRY] == [1, 2, 3]
    assert [e.a for e in evs if e.kind == K_RETURN] == [-7, -14, -21]


def test_probe_stops_after_close(obj, progs) -> None:
    exe = progs["prog_pie"]
    link = obj.programs["on_entry"].attach_uprobe(exe, "add_i")
    pid = run(exe)
    assert len([e for e in events(obj, pid) if e.kind == K_ENTRY]) == N
    link.close()
    pid2 = run(exe)
    assert events(obj, pid2) == []


def test_shared_library_non_zero_base(obj, progs) -> None:
    """libplbtarget.so is linked at 0x20000000: address != file offset."""
    so = progs["libplbtarget.so"]
    r = elf.resolve(so, "lib_scale")
    assert r.address is not None and r.address >= 0x20000000
    assert r.offset == r.address - 0x20000000
    with obj.programs["on_return"].attach_uprobe(so, "lib_scale", retprobe=True):
        pid = run(progs["prog_pie"])
    assert [s32(e.a) for e in events(obj, pid) if e.kind == K_RETURN] == [4, 7, 10]


def test_library_by_short_name_and_pid(obj, progs) -> None:
    exe = progs["prog_nopie"]
    with child(exe) as c:
        path = elf.find_library("plbtarget", pid=c.pid)
        assert os.path.samefile(path, progs["libplbtarget.so"])
        t = elf.resolve_binary("prog_nopie", pid=c.pid)  # the process's executable by name
        assert os.path.samefile(t.path, exe) and "executable of pid" in t.how
        with obj.programs["on_entry"].attach_uprobe("plbtarget", "lib_scale", pid=c.pid), \
                obj.programs["on_return"].attach_uprobe("c", "getpgid", pid=c.pid,
                                                        retprobe=True):
            c.go()
    evs = events(obj, c.pid)
    assert [s32(e.a) for e in evs if e.kind == K_ENTRY] == [1, 2, 3]
    assert [e.a for e in evs if e.kind == K_RETURN] == [os.getpgid(0)] * N


def test_pid_filter(obj, progs) -> None:
    exe = progs["prog_pie"]
    with child(exe) as a, child(exe) as b:
        with obj.programs["on_entry"].attach_uprobe(exe, "add_i", pid=a.pid):
            a.go()
            b.go()
    assert len([e for e in events(obj, a.pid) if e.kind == K_ENTRY]) == N
    assert events(obj, b.pid) == []


def test_library_by_short_name_without_pid(progs, monkeypatch) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", str(progs["libplbtarget.so"].parent))
    assert os.path.samefile(elf.find_library("plbtarget"), progs["libplbtarget.so"])
    assert os.path.samefile(elf.find_library("libplbtarget.so"), progs["libplbtarget.so"])
    libc = elf.find_library("c")
    assert os.path.basename(libc).startswith("libc.so.")
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    expected = [ln.split("=>")[1].strip() for ln in out.splitlines()
                if ln.strip().startswith("libc.so.6 ") and "x86-64" in ln]
    if expected:
        assert os.path.samefile(libc, expected[0])


def test_container_process_through_proc_root(obj, progs, tmp_path) -> None:
    """A process in its own mount namespace sees another file at the same path:
    the probe must go on the file it maps (via /proc/PID/root)."""
    host_view, inner_view = tmp_path / "view", tmp_path / "inner"
    host_view.mkdir()
    inner_view.mkdir()
    for d, exe in ((host_view, "prog_nopie"), (inner_view, "prog_pie")):
        shutil.copy2(progs[exe], d / "prog")
        shutil.copy2(progs["libplbtarget.so"], d / "libplbtarget.so")
    script = f"mount --bind {inner_view} {host_view} && exec {host_view}/prog {N}"
    c = Child(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    try:
        assert elf.process_root(c.pid) == f"/proc/{c.pid}/root"
        r = elf.resolve(str(host_view / "prog"), "add_i", pid=c.pid)
        assert r.path == f"/proc/{c.pid}/root{host_view}/prog"
        assert r.offset == elf.resolve(progs["prog_pie"], "add_i").offset
        assert r.offset != elf.resolve(progs["prog_nopie"], "add_i").offset
        lib_path = elf.find_library("plbtarget", pid=c.pid)
        assert lib_path == f"/proc/{c.pid}/root{host_view}/libplbtarget.so"
        assert os.path.samefile(lib_path, inner_view / "libplbtarget.so")
        with obj.programs["on_entry"].attach_uprobe(host_view / "prog", "add_i", pid=c.pid):
            c.go()
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
    assert [s32(e.a) for e in events(obj, c.pid) if e.kind == K_ENTRY] == [1, 2, 3]


def test_sleepable_uprobe_reads_user_memory(obj, progs) -> None:
    exe = progs["prog_pie"]
    with obj.programs["on_greet"].attach_uprobe(exe, "greet"):
        pid = run(exe)
    assert [e.text for e in events(obj, pid) if e.kind == K_SLEEPABLE] == [b"pylibbpf"]


def test_explicit_offset_and_address(obj, progs) -> None:
    exe = progs["prog_nopie"]
    r = elf.resolve(exe, "add_i")
    assert r.address is not None and r.address > 0x400000 and r.offset < 0x400000
    assert elf.resolve(exe, address=r.address).offset == r.offset
    assert elf.resolve(exe, "add_i+0x0").offset == r.offset
    with obj.programs["on_entry"].attach_uprobe(exe, offset=r.offset, cookie=3):
        pid = run(exe)
    assert [(s32(e.a), e.cookie) for e in events(obj, pid) if e.kind == K_ENTRY] == \
        [(i, 3) for i in range(1, N + 1)]


# --- C++ ---------------------------------------------------------------------------------

def test_cxx_demangled_names(obj, progs) -> None:
    exe = progs["cxxprog"]
    area = elf.resolve(exe, "plb::area")
    assert area.symbol is not None and area.symbol.name == "_ZN3plb4areaEii"
    assert area.symbol.demangled == "plb::area(int, int)"
    assert elf.resolve(exe, "plb::area(int,int)").offset == area.offset
    with pytest.raises(elf.AmbiguousSymbolError) as ei:
        elf.resolve(exe, "plb::twice")
    assert {s.demangled for s in ei.value.candidates} == {"plb::twice(int)",
                                                          "plb::twice(double)"}
    with obj.programs["on_entry"].attach_uprobe(exe, "plb::area(int, int)"), \
            obj.programs["on_return"].attach_uprobe(exe, "plb::twice(int)", retprobe=True), \
            obj.programs["on_return"].attach_uprobe(exe, "plb::Shape::area", retprobe=True,
                                                    cookie=9):
        pid = run(exe)
    evs = events(obj, pid)
    assert [(s32(e.a), s32(e.b)) for e in evs if e.kind == K_ENTRY] == [(1, 10), (2, 10), (3, 10)]
    rets = [(s32(e.a), e.cookie) for e in evs if e.kind == K_RETURN]
    assert [v for v, c in rets if c == 0] == [2, 4, 6]
    assert [v for v, c in rets if c == 9] == [5, 10, 15]
    names = {s.demangled for s in elf.functions(exe, "plb::*")}
    assert {"plb::area(int, int)", "plb::twice(int)", "plb::Shape::area() const"} <= names


# --- uprobe.multi ----------------------------------------------------------------------------

def test_multi_glob_over_libc(obj, progs) -> None:
    matched = elf.functions("c", "getpg*")
    assert {s.name for s in matched} >= {"getpgid", "getpgrp"}
    with child(progs["prog_pie"]) as c:
        with obj.programs["on_multi"].attach_uprobe_multi("c", "getpg*", pid=c.pid) as link:
            assert link.info.type == pylibbpf.LinkType.UPROBE_MULTI
            c.go()
    evs = [e for e in events(obj, c.pid) if e.kind == K_MULTI]
    assert len(evs) >= 2 * N  # getpgid(0) and getpgrp() each call
    assert len({e.ip for e in evs}) >= 2  # two different functions fired


def test_multi_symbols_cookies_and_retprobe(obj, progs) -> None:
    exe = progs["prog_pie"]
    with obj.programs["on_multi"].attach_uprobe_multi(exe, symbols=["add_i", "mul_l"],
                                                      cookies=[11, 22]), \
            obj.programs["on_multi_ret"].attach_uprobe_multi(exe, symbols=["add_i"],
                                                             retprobe=True, cookies=[33]):
        pid = run(exe)
    evs = events(obj, pid)
    entries = [(e.cookie, s32(e.a), e.b) for e in evs if e.kind == K_MULTI]
    assert [(a, b) for c, a, b in entries if c == 11] == [(i, 100) for i in range(1, N + 1)]
    assert [(a, b) for c, a, b in entries if c == 22] == [(i, -7) for i in range(1, N + 1)]
    assert [(s32(e.a), e.cookie) for e in evs if e.kind == K_MULTI_RET] == \
        [(i + 100, 33) for i in range(1, N + 1)]


@pytest.mark.kind("uprobe_multi")
def test_multi_many_probes_attach_fire_and_detach_fast(obj, progs) -> None:
    # our own target with build_targets.MANY functions: libc's count depends on
    # whether its debug symbols (libc6-dbg) happen to be installed
    exe = progs["manyfuncs"]
    many = build_targets.MANY
    assert len(elf.resolve_pattern(exe, "plb_many_*")[1]) == many
    with child(exe) as c:
        t0 = time.monotonic()
        link = obj.programs["on_multi"].attach_uprobe_multi(exe, "plb_many_*", pid=c.pid)
        attach = time.monotonic() - t0
        assert link.info.type == pylibbpf.LinkType.UPROBE_MULTI
        assert c.go().split() == [str(2 * sum(range(many)))]
        t0 = time.monotonic()
        link.close()
        detach = time.monotonic() - t0
    evs = [e for e in events(obj, c.pid) if e.kind == K_MULTI]
    # every probe fired once, with its function's argument, at its own address
    assert sorted(e.a for e in evs) == list(range(many))
    assert len({e.ip for e in evs}) == many
    assert attach < 5.0 and detach < 5.0, \
        f"one uprobe.multi link of {many} probes: attach {attach:.2f}s, detach {detach:.2f}s"
    assert events(obj, run(exe)) == []  # detached: a new run is not seen


def test_uprobes_need_a_program_of_an_object(progs) -> None:
    exit0 = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])  # r0 = 0; exit
    with pylibbpf.Program.load_raw("kprobe", exit0, name="raw_probe") as raw:
        with pytest.raises(pylibbpf.BPFError) as ei:
            raw.attach_uprobe(progs["prog_pie"], "add_i")
    assert ei.value.errno == errno.EINVAL
    msg = str(ei.value)
    assert msg.startswith("attach uprobe 'raw_probe' to ") and "symbol 'add_i'" in msg, msg
    assert "program 'raw_probe' was loaded raw; uprobes attach programs of an Object" in msg


def test_multi_needs_multi_program(obj, progs) -> None:
    with pytest.raises(pylibbpf.BPFError, match="not a uprobe.multi program"):
        obj.programs["on_entry"].attach_uprobe_multi(progs["prog_pie"], "add_*")
    with pytest.raises(pylibbpf.BPFError, match="uprobe.multi"):
        obj.programs["on_multi"].attach_uprobe(progs["prog_pie"], "add_i")
    with pytest.raises(pylibbpf.BPFError, match="use attach_usdt"):
        obj.programs["on_usdt"].attach_uprobe(progs["prog_pie"], "add_i")
    with pytest.raises(ValueError, match="exactly one"):
        obj.programs["on_multi"].attach_uprobe_multi(progs["prog_pie"], "add_*",
                                                     symbols=["add_i"])
    with pytest.raises(ValueError, match="cookies has 1 entries for 2"):
        obj.programs["on_multi"].attach_uprobe_multi(progs["prog_pie"],
                                                     symbols=["add_i", "mul_l"], cookies=[1])
    with pytest.raises(elf.SymbolNotFoundError, match="no function matches"):
        obj.programs["on_multi"].attach_uprobe_multi(progs["prog_pie"], "nothing_like_this*")


def test_multi_symbols_refused_as_resolve_symbols_refuses(obj, progs) -> None:
    """attach_uprobe_multi(symbols=...) chooses and refuses names as
    elf.resolve_symbols does (it skips only writing their reasons): a missing,
    empty or ambiguous name is an error naming it, before anything attaches."""
    prog = obj.programs["on_multi"]
    with pytest.raises(elf.SymbolNotFoundError, match="symbol 'add_ii' not found") as ei:
        prog.attach_uprobe_multi(progs["prog_pie"], symbols=["add_i", "add_ii"])
    assert "add_i" in ei.value.suggestions
    with pytest.raises(ValueError, match="symbol must not be empty"):
        prog.attach_uprobe_multi(progs["prog_pie"], symbols=["add_i", ""])
    with pytest.raises(TypeError, match="symbol must be a str, not int"):
        prog.attach_uprobe_multi(progs["prog_pie"], symbols=["add_i", 3])
    if "cxxprog" in progs:
        with pytest.raises(elf.AmbiguousSymbolError, match="'plb::twice' is ambiguous"):
            prog.attach_uprobe_multi(progs["cxxprog"], symbols=["plb::area", "plb::twice"])


# --- USDT --------------------------------------------------------------------------------------

def test_usdt_in_binary(obj, progs) -> None:
    exe = progs["prog_pie"]
    (site,) = elf.usdt_probes(exe)
    assert (site.provider, site.name) == ("plbtest", "tick")
    with obj.programs["on_usdt"].attach_usdt(exe, "plbtest", "tick", cookie=5):
        pid = run(exe)
    assert [(e.a, e.b, e.cookie) for e in events(obj, pid) if e.kind == K_USDT] == \
        [(i, i * 1000, 5) for i in range(1, N + 1)]


def test_usdt_link_outlives_gc_of_its_object(uprobe_bpf, progs) -> None:
    """libbpf's USDT link reads its Object's memory when destroyed: the Link keeps it alive."""
    import gc
    import weakref

    o = pylibbpf.Object(uprobe_bpf)
    o.load()
    link = o.programs["on_usdt"].attach_usdt(progs["prog_pie"], "plbtest", "tick")
    ref = weakref.ref(o)
    del o
    gc.collect()
    assert ref() is not None and not ref().closed  # type: ignore[union-attr]
    link.close()  # reads the Object's memory: it must still be there
    del link
    gc.collect()
    assert ref() is None  # and is released with the link


def test_usdt_in_pid_libraries(obj, progs) -> None:
    with child(progs["prog_nopie"]) as c:
        with obj.programs["on_usdt1"].attach_usdt(None, "plblib", "scaled", pid=c.pid):
            c.go()
    assert [e.a for e in events(obj, c.pid) if e.kind == K_USDT] == [1, 2, 3]
    with child(progs["prog_nopie"]) as c:
        with obj.programs["on_usdt1"].attach_usdt("plbtarget", "plblib", "scaled", pid=c.pid):
            c.go()
    assert [e.a for e in events(obj, c.pid) if e.kind == K_USDT] == [1, 2, 3]


def test_usdt_without_support_maps(progs, tmp_path_factory) -> None:
    with pylibbpf.Object(_compile(tmp_path_factory, "uprobe_nousdt")) as o:
        o.load()
        with pytest.raises(pylibbpf.BPFError, match="usdt.bpf.h"):
            o.programs["usdt_without_maps"].attach_usdt(progs["prog_pie"], "plbtest", "tick")


def test_usdt_missing_probe(obj, progs) -> None:
    with pytest.raises(elf.USDTNotFoundError) as ei:
        obj.programs["on_usdt"].attach_usdt(progs["prog_pie"], "plbtest", "tock")
    assert "plbtest:tick" in str(ei.value) and "prog_pie" in str(ei.value)
    with pytest.raises(elf.USDTNotFoundError, match="no .note.stapsdt"):
        obj.programs["on_usdt"].attach_usdt(progs["cxxprog"], "plbtest", "tick")


# --- errors -----------------------------------------------------------------------------------

def test_missing_symbol_suggests(obj, progs) -> None:
    exe = progs["prog_pie"]
    with pytest.raises(elf.SymbolNotFoundError) as ei:
        obj.programs["on_entry"].attach_uprobe(exe, "add_ii")
    err = ei.value
    assert isinstance(err, pylibbpf.BPFNotFoundError) and isinstance(err, LookupError)
    assert "add_ii" in str(err) and str(exe) in str(err)
    assert "add_i" in err.suggestions
    assert "did you mean: add_i" in str(err)


def test_stripped_without_debug_file(progs) -> None:
    with pytest.raises(elf.SymbolNotFoundError, match="stripped") as ei:
        elf.resolve(progs["prog_bare"], "local_twice")
    assert "no separate debug file" in str(ei.value)


def test_debug_file_by_build_id(progs, tmp_path, monkeypatch) -> None:
    bare = tmp_path / "prog_bid"
    shutil.copy2(progs["prog_bare"], bare)
    bid = elf.symbol_index(bare).image.build_id
    assert bid
    dest = tmp_path / "debug" / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
    dest.parent.mkdir(parents=True)
    shutil.copy2(progs["prog.debug"], dest)
    monkeypatch.setattr(elf._paths, "DEBUG_DIRS", [str(tmp_path / "debug")])
    elf.clear_cache()
    r = elf.resolve(bare, "local_twice")
    assert r.symbol is not None and r.symbol.file == str(dest)
    assert r.offset == elf.resolve(progs["prog_pie"], "local_twice").offset
    assert "debug file" in r.explain()


def test_wrong_program_type_before_syscall(obj, progs) -> None:
    with pytest.raises(pylibbpf.BPFError, match="raw_tracepoint, this needs kprobe"):
        obj.programs["not_a_uprobe"].attach_uprobe(progs["prog_pie"], "add_i")
    with pytest.raises(pylibbpf.BPFError, match="raw_tracepoint"):
        obj.programs["not_a_uprobe"].attach_usdt(progs["prog_pie"], "plbtest", "tick")


def test_bad_arguments(obj, progs) -> None:
    p = obj.programs["on_entry"]
    with pytest.raises(TypeError, match="pid"):
        p.attach_uprobe(progs["prog_pie"], "add_i", pid="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cookie"):
        p.attach_uprobe(progs["prog_pie"], "add_i", cookie=-1)
    with pytest.raises(pylibbpf.BPFNotFoundError, match="does not exist"):
        p.attach_uprobe("/nonexistent/prog", "add_i")
    with pytest.raises(pylibbpf.BPFNotFoundError, match="no process with pid"):
        p.attach_uprobe("c", "getpgid", pid=2**22 + 12345)
    with pytest.raises(pylibbpf.ELFError, match="not a valid ELF"):
        p.attach_uprobe(str(SRC / "prog.c"), "main")


#: run as root in a child: load the object, start a root-owned target process,
#: drop to uid/gid 65534 (the program's fd stays usable), then attach to the
#: target by pid; prints "<class> | <message>" for each attempt
_UNPRIVILEGED_PID = """
import os, subprocess, sys
import pylibbpf
# everything the attempts import, imported while still root: the checkout (and
# its virtualenv) may live under a directory uid 65534 cannot read, e.g. /root
import pylibbpf.attach.uprobe, pylibbpf.attach.usdt, pylibbpf.elf
target = subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    with pylibbpf.Object(sys.argv[1]) as obj:
        obj.load()
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        p = obj.programs
        for call in (lambda: p["on_entry"].attach_uprobe("c", "malloc", pid=target.pid),
                     lambda: p["on_entry"].attach_uprobe("/bin/sh", "main", pid=target.pid),
                     lambda: p["on_multi"].attach_uprobe_multi("c", "mall*", pid=target.pid),
                     lambda: p["on_usdt"].attach_usdt(None, "x", "y", pid=target.pid)):
            try:
                call()
                print("attached", flush=True)
            except Exception as e:
                print(type(e).__name__, ",".join(c.__name__ for c in type(e).__mro__), "|",
                      str(e).replace("\\n", " "), flush=True)
finally:
    print("target", target.pid, flush=True)  # killed by the test (we may no longer)
"""


def test_unreadable_process_is_a_bpf_error_naming_probe_and_pid(uprobe_bpf) -> None:
    """A process whose /proc entries we may not read (another user's, here a root
    process seen by uid 65534; in a container, the host's pid 1) gives a
    BPFPermissionError naming the probe, the pid and the /proc file, not a raw
    PermissionError from os.readlink."""
    from _children import same_pylibbpf

    out = subprocess.run([sys.executable, "-c", _UNPRIVILEGED_PID, str(uprobe_bpf)],
                         capture_output=True, text=True, timeout=60, **same_pylibbpf())
    lines = out.stdout.splitlines()
    assert lines and lines[-1].startswith("target "), out.stdout + out.stderr
    pid = int(lines[-1].split()[1])
    try:
        os.kill(pid, 9)  # the child could not, having dropped its privileges
    except ProcessLookupError:
        pass
    results = lines[:-1]
    assert len(results) == 4, out.stdout + out.stderr
    probes = ["attach uprobe 'on_entry' to 'c' symbol 'malloc'",
              "attach uprobe 'on_entry' to '/bin/sh' symbol 'main'",
              "attach uprobe.multi 'on_multi' to 'c' pattern 'mall*'",
              "attach usdt 'on_usdt' to x:y"]
    for line, probe in zip(results, probes):
        head, _, message = line.partition(" | ")
        name, mro = head.split()
        assert name == "BPFPermissionError", line
        assert "BPFError" in mro.split(",") and "PermissionError" in mro.split(","), line
        assert message.startswith(probe), line
        assert f"pid {pid}" in message and f"/proc/{pid}/" in message, line
        assert "Permission denied" in message and "CAP_SYS_PTRACE" in message, line


def test_explain_dry_run(progs) -> None:
    text = elf.explain(progs["prog_nopie"], "add_i")
    assert "non-PIE executable" in text and "PT_LOAD" in text and "add_i" in text
    r = elf.resolve(progs["prog_nopie"], "add_i")
    assert f"{r.offset:#x}" in text
    text = elf.explain("c", "memcpy")
    assert "default version" in text and "GLIBC_2.14" in text


def test_replaced_binary_uses_the_mapped_file(obj, progs, tmp_path) -> None:
    """A binary replaced on disk after the process started: the probe goes on
    the file the process still maps (/proc/PID/map_files), not the new one."""
    exe = tmp_path / "prog"
    shutil.copy2(progs["prog_pie"], exe)
    shutil.copy2(progs["libplbtarget.so"], tmp_path / "libplbtarget.so")
    with child(exe) as c:
        exe.unlink()
        shutil.copy2(progs["prog_nopie"], exe)  # a different file at the same path
        r = elf.resolve(exe, "add_i", pid=c.pid)
        assert r.path.startswith(f"/proc/{c.pid}/map_files/")
        assert r.offset == elf.resolve(progs["prog_pie"], "add_i").offset
        with obj.programs["on_entry"].attach_uprobe(exe, "add_i", pid=c.pid):
            c.go()
    assert [s32(e.a) for e in events(obj, c.pid) if e.kind == K_ENTRY] == [1, 2, 3]


def test_usdt_semaphore(obj, progs) -> None:
    """libbpf raises the probe's semaphore through the uprobe's ref_ctr_offset,
    so the guarded branch runs only while attached."""
    exe = progs["semprog"]
    with child(exe) as c:
        assert c.go().split()[-1] == "0"  # nobody attached: the branch never ran
    with child(exe) as c:
        with obj.programs["on_usdt1"].attach_usdt(exe, "plbsem", "hit", cookie=1):
            assert c.go().split()[-1] == str(N)
    assert [e.a for e in events(obj, c.pid) if e.kind == K_USDT] == [1, 2, 3]


def test_uprobe_ref_ctr_offset(obj, progs) -> None:
    """A plain uprobe on a USDT site with ref_ctr_offset: pylibbpf's semaphore
    file offset must be right for the kernel to raise it."""
    exe = progs["semprog"]
    (site,) = elf.usdt_probes(exe)
    assert site.semaphore and site.semaphore_offset and site.offset is not None
    with child(exe) as c:
        with obj.programs["on_entry"].attach_uprobe(exe, offset=site.offset, cookie=4,
                                                    ref_ctr_offset=site.semaphore_offset):
            assert c.go().split()[-1] == str(N)
    assert [e.cookie for e in events(obj, c.pid) if e.kind == K_ENTRY] == [4] * N


def test_fully_stripped_binary_and_library(obj, progs, tmp_path) -> None:
    """No .symtab and no debug file: a library's exported functions still come
    from .dynsym; the executable's own functions take an explicit offset."""
    exe, so = tmp_path / "prog", tmp_path / "libplbtarget.so"
    shutil.copy2(progs["prog_bare"], exe)
    subprocess.run(["strip", "--strip-all", "-o", str(so), str(progs["libplbtarget.so"])],
                   check=True)
    idx = elf.symbol_index(so)
    assert idx.stripped and idx.image.symtab is None
    r = elf.resolve(so, "lib_scale")
    assert r.symbol is not None and r.symbol.table == ".dynsym"
    assert r.offset == elf.resolve(progs["libplbtarget.so"], "lib_scale").offset
    with pytest.raises(elf.SymbolNotFoundError, match="stripped"):
        elf.resolve(exe, "add_i")
    add_i = elf.resolve(progs["prog_pie"], "add_i").offset
    with obj.programs["on_entry"].attach_uprobe(so, "lib_scale", cookie=1), \
            obj.programs["on_entry"].attach_uprobe(exe, offset=add_i, cookie=2):
        pid = run(exe)
    evs = [(e.cookie, s32(e.a)) for e in events(obj, pid) if e.kind == K_ENTRY]
    assert [a for c, a in evs if c == 1] == [1, 2, 3]
    assert [a for c, a in evs if c == 2] == [1, 2, 3]
