"""pylibbpf.elf: symbol listing and lookup, offsets checked against what
readelf/nm imply, versions, hash-table lookups, caching, libraries, processes,
debug files, demangling, errors."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import pylibbpf
from pylibbpf import elf
from pylibbpf.elf._image import SHT_DYNSYM, SymbolTable

SRC = Path(__file__).resolve().parent / "uprobe"
sys.path.insert(0, str(SRC))
import build_targets  # noqa: E402
from _children import same_pylibbpf  # noqa: E402

LIBLLVM = "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"


@pytest.fixture(scope="session")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    return build_targets.build(tmp_path_factory.mktemp("elf"))


def load_segments(path: str) -> List[Tuple[int, int, int]]:
    """(vaddr, offset, filesz) of each PT_LOAD, as readelf prints them."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True,
                         check=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
    return segs


def readelf_functions(path: str) -> Dict[str, int]:
    """name (with @version in .dynsym) -> address of each defined FUNC/IFUNC."""
    out = subprocess.run(["readelf", "-sW", path], capture_output=True, text=True,
                         check=True).stdout
    funcs = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 8 and f[3] in ("FUNC", "IFUNC") and f[6] != "UND":
            funcs[f[7]] = int(f[1], 16)
    return funcs


def nm_addresses(path: str, dynamic: bool = False) -> Dict[str, int]:
    """name -> address of each defined text symbol nm lists."""
    cmd = ["nm", "--defined-only"] + (["-D"] if dynamic else []) + [path]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {f[2]: int(f[0], 16) for f in (ln.split() for ln in out.splitlines())
            if len(f) == 3 and f[1] in "TtWwi"}


def offset_from(segs: List[Tuple[int, int, int]], addr: int) -> int:
    for vaddr, off, filesz in segs:
        if vaddr <= addr < vaddr + filesz:
            return addr - vaddr + off
    raise AssertionError(f"{addr:#x} in no segment")


@pytest.mark.parametrize("name", ["prog_pie", "prog_nopie", "libplbtarget.so", "cxxprog",
                                  "prog_sysv"])
def test_offsets_agree_with_readelf_and_nm(progs, name) -> None:
    path = str(progs[name])
    segs = load_segments(path)
    expected = readelf_functions(path)
    assert "main" in expected or "lib_scale" in expected
    nm = nm_addresses(path)
    assert all(nm[n] == a for n, a in expected.items() if n in nm)
    got = {s.name: s for s in elf.functions(path)}
    for fname, addr in expected.items():
        assert fname in got, fname
        assert got[fname].address == addr
        assert got[fname].offset == offset_from(segs, addr), fname
    if name == "libplbtarget.so":
        assert all(s.offset != s.address for s in got.values())


def test_libc_offsets_and_versions_agree_with_nm(progs) -> None:
    libc = elf.find_library("c")
    segs = load_segments(libc)
    expected = {n: a for n, a in readelf_functions(libc).items() if "@" in n}
    assert len(expected) > 1000
    nm = nm_addresses(libc, dynamic=True)
    assert all(nm[n] == a for n, a in expected.items() if n in nm)
    got = {s.versioned_name: s for s in elf.functions(libc) if s.table == ".dynsym"}
    for vname, addr in expected.items():
        assert vname in got, vname
        assert got[vname].address == addr
        assert got[vname].offset == offset_from(segs, addr)
    # memcpy has an old hidden version and a default one
    old = elf.resolve(libc, "memcpy@GLIBC_2.2.5")
    new = elf.resolve(libc, "memcpy@@GLIBC_2.14")
    assert old.address == expected["memcpy@GLIBC_2.2.5"]
    assert new.address == expected["memcpy@@GLIBC_2.14"]
    assert elf.resolve(libc, "memcpy").address == new.address  # default version wins
    with pytest.raises(elf.SymbolNotFoundError):
        elf.resolve(libc, "memcpy@@GLIBC_2.2.5")  # that version is not the default


def _consistent(table: SymbolTable) -> int:
    """Every defined function is found through the table's lookup, by its name."""
    names = table.names()
    checked = 0
    for i in table.function_indexes():
        assert i in table.find(names[i]), names[i]
        checked += 1
    return checked


def test_hash_table_lookups(progs) -> None:
    libc = elf.symbol_index(elf.find_library("c")).image.dynsym
    assert libc is not None and libc._gnu is not None
    assert _consistent(libc) > 1000
    sysv = elf.symbol_index(progs["prog_sysv"]).image.dynsym
    assert sysv is not None and sysv._sysv is not None and sysv._gnu is None
    assert _consistent(sysv) >= 5
    assert sysv.find(b"add_i") and sysv.find(b"no_such_function") == []
    symtab = elf.symbol_index(progs["prog_pie"]).image.symtab
    assert symtab is not None and symtab._gnu is None and symtab._sysv is None
    assert symtab.find(b"main") and symtab._by_name is not None  # built by the first find
    assert _consistent(symtab) >= 5


def test_glob_regex_and_listing(progs) -> None:
    exe = progs["prog_pie"]
    names = {s.name for s in elf.functions(exe)}
    assert {"main", "add_i", "mul_l", "local_twice", "greet"} <= names
    assert {s.name for s in elf.functions(exe, "*_i")} == {"add_i"}
    assert {s.name for s in elf.functions(exe, "^(add|mul)_", regex=True)} == {"add_i", "mul_l"}
    local = elf.resolve(exe, "local_twice").symbol
    assert local is not None and local.binding == "LOCAL" and local.table == ".symtab"
    assert local.size > 0 and local.type == "FUNC"
    cxx = elf.functions(progs["cxxprog"], "plb::twice(*)")
    assert sorted(s.demangled for s in cxx) == ["plb::twice(double)", "plb::twice(int)"]
    assert all(s.name.startswith("_ZN3plb5twice") for s in cxx)
    raw = elf.functions(progs["cxxprog"], "_ZN*3plb*", demangled=False)
    assert len(raw) >= 4


def test_stripped_binary_uses_debuglink(progs) -> None:
    idx = elf.symbol_index(progs["prog_stripped"])
    assert idx.stripped and idx.image.debuglink is not None
    dbg, _looked = idx.debug_index()
    assert dbg is not None and dbg.path.endswith("prog.debug")
    r = elf.resolve(progs["prog_stripped"], "local_twice")
    assert r.symbol is not None and r.symbol.file == dbg.path
    assert r.offset == elf.resolve(progs["prog_pie"], "local_twice").offset
    assert {"add_i", "local_twice"} <= {s.name for s in elf.functions(progs["prog_stripped"])}


def test_debuglink_is_found_beside_the_real_path_of_a_symlink(progs, tmp_path) -> None:
    """The debug link's directory is the binary's real one (as gdb's), resolved
    with realpath(3): a symlink elsewhere, or a path through one, finds it."""
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy2(progs["prog_stripped"], real / "prog_stripped")
    shutil.copy2(Path(progs["prog_stripped"]).parent / "prog.debug", real / "prog.debug")
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "tool").symlink_to(real / "prog_stripped")
    (tmp_path / "via").symlink_to(real)
    for path in (tmp_path / "links" / "tool", tmp_path / "via" / "prog_stripped"):
        dbg, looked = elf.symbol_index(path).debug_index()
        assert dbg is not None and dbg.path == str(real / "prog.debug"), looked
        assert str(real / "prog.debug") in looked
    # the debug file itself through a link is not its own debug file
    (real / "prog.debug").unlink()
    (real / "prog.debug").symlink_to(real / "prog_stripped")
    elf.clear_cache()
    dbg, looked = elf.symbol_index(tmp_path / "via" / "prog_stripped").debug_index()
    assert dbg is None and str(real / "prog.debug") in looked


def test_debuglink_crc_mismatch_is_ignored(progs, tmp_path) -> None:
    shutil.copy2(progs["prog_stripped"], tmp_path / "prog_stripped")
    (tmp_path / "prog.debug").write_bytes(b"\x7fELF not the right debug file")
    with pytest.raises(elf.SymbolNotFoundError, match="no separate debug file"):
        elf.resolve(tmp_path / "prog_stripped", "local_twice")


def test_cache_per_file_identity(progs, tmp_path) -> None:
    p = tmp_path / "prog"
    shutil.copy2(progs["prog_pie"], p)
    a = elf.symbol_index(p)
    assert elf.symbol_index(str(p)) is a
    shutil.copy2(progs["prog_nopie"], p)  # same path, new contents
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    b = elf.symbol_index(p)
    assert b is not a
    assert b.image.elf_type == "ET_EXEC" and a.image.elf_type == "ET_DYN"


def test_find_library(progs, monkeypatch) -> None:
    libc = elf.find_library("c")
    assert elf.find_library("libc") == libc == elf.find_library("libc.so.6")
    assert not re.search(r"libc\.so$", libc)  # never the linker-script dev link
    with pytest.raises(pylibbpf.BPFNotFoundError, match="not found"):
        elf.find_library("no-such-library-xyz")
    cache = {so for so, _p, _f in elf.ld_so_cache()}
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    listed = {ln.split()[0] for ln in out.splitlines()[1:] if "=>" in ln}
    assert listed and listed == cache
    # a process's own mapping
    mine = elf.find_library("c", pid=os.getpid())
    assert os.path.samefile(mine, libc)
    with pytest.raises(pylibbpf.BPFNotFoundError, match="not mapped by pid"):
        elf.find_library("plbtarget", pid=os.getpid())
    monkeypatch.setenv("LD_LIBRARY_PATH", str(progs["libplbtarget.so"].parent))
    assert os.path.samefile(elf.find_library("plbtarget"), progs["libplbtarget.so"])


def test_resolve_binary_names() -> None:
    t = elf.resolve_binary("sh")
    assert t.path == shutil.which("sh") and "PATH" in t.how
    t = elf.resolve_binary("c")
    assert "libc.so" in t.path
    t = elf.resolve_binary("python3", pid=os.getpid()) if \
        os.path.basename(os.readlink("/proc/self/exe")) == "python3" else None
    if t is not None:
        assert os.path.samefile(t.path, "/proc/self/exe")


def test_usdt_probes_listing(progs) -> None:
    (site,) = elf.usdt_probes(progs["prog_nopie"])
    assert site.full_name == "plbtest:tick" and site.semaphore == 0
    assert site.offset is not None and site.address - site.offset == 0x400000
    assert "-4@" in site.arguments and "8@" in site.arguments
    (libsite,) = elf.usdt_probes(progs["libplbtarget.so"])
    assert libsite.full_name == "plblib:scaled" and libsite.address >= 0x20000000
    text = elf.explain_usdt(progs["prog_pie"], "plbtest", "tick")
    assert "site 0" in text


def test_demangle() -> None:
    assert elf.demangle("_ZN3plb4areaEii") == "plb::area(int, int)"
    assert elf.demangle("_ZN4core3fmt9Formatter9write_str17h7c0b3bb3a5b6b5a6E") == \
        "core::fmt::Formatter::write_str"
    assert elf.demangle("_RNvCs1234_7mycrate3foo") == "mycrate::foo"
    assert elf.demangle("main") == "main"
    assert elf.demangle("_Znot_valid") == "_Znot_valid"


def test_errors_name_the_input(progs, tmp_path) -> None:
    with pytest.raises(pylibbpf.ELFError, match="not a valid ELF file"):
        elf.symbol_index(SRC / "prog.c")
    trunc = tmp_path / "trunc"
    trunc.write_bytes(progs["prog_pie"].read_bytes()[:200])
    with pytest.raises(pylibbpf.ELFError, match="trunc"):
        elf.symbol_index(trunc)
    with pytest.raises(pylibbpf.BPFNotFoundError, match="does not exist"):
        elf.resolve("/no/such/binary", "f")
    with pytest.raises(pylibbpf.ELFError, match="directory"):
        elf.resolve(tmp_path, "f")
    with pytest.raises(ValueError, match="not both"):
        elf.resolve(progs["prog_pie"], "add_i", address=0x1000)
    with pytest.raises(elf.SymbolNotFoundError) as ei:
        elf.resolve(progs["cxxprog"], "plb::aera")
    assert "plb::area" in ei.value.suggestions
    with pytest.raises(pylibbpf.ELFError, match="no loadable segment"):
        elf.resolve(progs["prog_pie"], address=0x7FFF0000)
    with pytest.raises(pylibbpf.ELFError, match="not in code"):
        elf.resolve(progs["prog_pie"], offset=0x10)  # the ELF header


@pytest.mark.skipif(not os.path.exists(LIBLLVM), reason="libLLVM-14 not installed")
def test_large_library_index_and_lookups() -> None:
    elf.clear_cache()
    t0 = time.perf_counter()
    idx = elf.symbol_index(LIBLLVM)
    build = time.perf_counter() - t0
    assert build < 1.0, f"index of libLLVM-14 took {build:.3f}s"
    sym = "_ZNK4llvm5APInt4sdivERKS0_"
    t0 = time.perf_counter()
    for _ in range(200):
        hits = idx.lookup(sym)
    per = (time.perf_counter() - t0) / 200
    assert hits and per < 1e-3
    r = elf.resolve(LIBLLVM, "llvm::APInt::sdiv(llvm::APInt const&) const")
    assert r.symbol is not None and r.symbol.name == sym


@pytest.mark.parametrize("mangling", [None, "v0"])
def test_rust_demangled_names(tmp_path, mangling) -> None:
    # Rust-mangled symbols as rustc names them, built with gcc: no rustc needed
    exe = tmp_path / f"rtgt_{mangling or 'legacy'}"
    flags = ["-DV0"] if mangling else []
    subprocess.run(["gcc", "-O1", *flags, "-o", str(exe), str(SRC / "rtgt_mangled.c")],
                   check=True, capture_output=True)
    (sym,) = elf.functions(exe, "rtgt::sc*")
    assert sym.demangled == "rtgt::scale"
    assert sym.name.startswith("_R" if mangling else "_ZN4rtgt5scale17h")
    r = elf.resolve(exe, "rtgt::scale")
    assert r.symbol == sym
    segs = load_segments(str(exe))
    assert r.offset == offset_from(segs, nm_addresses(str(exe))[sym.name])
    assert {s.demangled for s in elf.functions(exe, "rtgt::*")} == {"rtgt::scale", "rtgt::shift"}


def test_command_line_dry_run(progs) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pylibbpf.elf", *args],
                              capture_output=True, text=True, **same_pylibbpf())

    out = cli("explain", str(progs["prog_nopie"]), "add_i")
    assert out.returncode == 0 and "non-PIE executable" in out.stdout
    assert f"{elf.resolve(progs['prog_nopie'], 'add_i').offset:#x}" in out.stdout
    out = cli("list", str(progs["cxxprog"]), "plb::twice*")
    assert out.returncode == 0 and "plb::twice(int)" in out.stdout
    out = cli("usdt", str(progs["prog_pie"]))
    assert "plbtest:tick" in out.stdout
    out = cli("explain", str(progs["prog_pie"]), "add_ii")
    assert out.returncode == 1 and "did you mean: add_i" in out.stderr


def test_symtab_hash_persistent_cache(progs, tmp_path, monkeypatch) -> None:
    """The hash of a large .symtab is stored in pylibbpf's cache directory and read
    by the next index; a truncated, corrupt or padded cache file is ignored and
    rewritten, and an unusable cache directory is not used: the offsets are the
    same every time."""
    from pylibbpf.elf import _diskcache

    monkeypatch.setattr(_diskcache, "MIN_ENTRIES", 1)  # prog_pie's .symtab is small
    exe = str(progs["prog_pie"])
    names = ["local_twice", "add_i", "mul_l", "main", "greet"]

    def offsets() -> List[int]:
        elf.clear_cache()
        return [elf.resolve(exe, n).offset for n in names]

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PYLIBBPF_CACHE", str(tmp_path / "a-file" / "cache"))  # can't be made
    expected = offsets()
    assert all(expected) and not (tmp_path / "a-file" / "cache").exists()
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYLIBBPF_CACHE", str(cache))
    assert offsets() == expected  # built, stored
    files = list((cache / "elf").glob("*.symhash"))
    assert len(files) == 1
    good = files[0].read_bytes()
    inode = files[0].stat().st_ino
    assert offsets() == expected  # read back: the file is not rewritten
    assert files[0].stat().st_ino == inode
    flipped = bytearray(good)
    flipped[-3] ^= 0x40
    for bad in (good[:len(good) // 2], good[:10], b"", bytes(flipped), bytes(len(good)),
                good + b"extra", b"\xff" * len(good)):
        files[0].write_bytes(bad)
        assert offsets() == expected
        assert files[0].read_bytes() == good  # ignored and rewritten
    assert len(list((cache / "elf").glob("*"))) == 1  # no temporary files left


def test_c_lookup_matches_the_python_path(progs) -> None:
    """The C lookup (pylibbpf/_csrc/elfsym.c: .gnu.hash, .hash, a hash of .symtab,
    debug files, versions, copies merged) returns exactly what the Python path
    returns, for every function of each file and for versioned names."""
    from dataclasses import astuple

    from pylibbpf.elf import ElfImage, SymbolIndex

    files = [elf.find_library("c")] + [str(progs[k]) for k in
                                       ("prog_pie", "prog_nopie", "prog_sysv", "prog_stripped",
                                        "libplbtarget.so") if k in progs]
    if "cxxprog" in progs:
        files.append(str(progs["cxxprog"]))
    for path in files:
        fast = elf.symbol_index(path)
        assert fast._fast_lookup("") is not None, path
        slow = SymbolIndex(ElfImage(path))
        slow._fast[""] = None  # the Python path
        names = fast.function_names()
        queries = names + [n + "@" + v for n in names[:300] for v in ("GLIBC_2.2.5", "V1")]
        queries += ["no_such_function", "memcpy@@GLIBC_2.14", "memcpy@GLIBC_2.2.5", "@x", ""]
        for q in queries:
            a, b = fast.lookup(q), slow.lookup(q)
            assert [astuple(s) for s in a] == [astuple(s) for s in b], (path, q)
        assert sum(bool(fast.lookup(n)) for n in names) == len(names), path


def test_lookup_through_the_c_entry_point_keeps_every_form(progs) -> None:
    """Once the C lookup is set up, ``idx.lookup`` is pylibbpf/_csrc/elfsym.c's
    entry point: plain names, versioned names, ``root=``, a wrong call and the
    index's lifetime behave as through the Python method."""
    import gc
    import weakref

    from pylibbpf.elf import ElfImage, SymbolIndex

    libc = elf.find_library("c")
    idx = SymbolIndex(ElfImage(libc))
    plain = SymbolIndex(ElfImage(libc))
    plain._fast[""] = None  # the Python path
    first = idx.lookup("malloc")
    assert first and all(s.name == "malloc" for s in first)
    for q in ("malloc", "memcpy@@GLIBC_2.14", "memcpy@GLIBC_2.2.5", "no_such_function", ""):
        assert idx.lookup(q) == plain.lookup(q), q
        assert idx.lookup(q, root="") == plain.lookup(q, root=""), q
        assert idx.lookup(q, root="/") == plain.lookup(q, root="/"), q
    with pytest.raises(TypeError):
        idx.lookup("malloc", "x")  # type: ignore[misc]
    with pytest.raises(TypeError):
        idx.lookup("malloc", rot="/")  # type: ignore[call-arg]
    ref = weakref.ref(idx)
    del idx
    gc.collect()
    assert ref() is None  # no reference cycle keeps an index (and its tables) alive


_VERSIONED_A = r"""
/* foo: a compat version and a default one; bar, qux: a compat version only;
 * baz: a default version, and a static baz elsewhere (versioned.b.c) */
__attribute__((noinline, noipa)) int foo_v1(int x) { return x + 1; }
__attribute__((noinline, noipa)) int foo_v2(int x) { return x + 2; }
__attribute__((noinline, noipa)) int bar_v1(int x) { return x + 3; }
__attribute__((noinline, noipa)) int qux_v1(int x) { return x + 4; }
__attribute__((noinline, noipa)) int baz(int x) { return x + 5; }
__asm__(".symver foo_v1, foo@V1");
__asm__(".symver foo_v2, foo@@V2");
__asm__(".symver bar_v1, bar@V1");
__asm__(".symver qux_v1, qux@V1");
"""
_VERSIONED_B = r"""
__attribute__((noinline, noipa)) static int baz(int x) { return x * 7; }
__attribute__((noinline, noipa)) static int qux(int x) { return x * 11; }
int use_locals(int x) { return baz(x) + qux(x); }
"""
_VERSIONED_MAP = "V1 { global: foo; bar; qux; local: *; };\nV2 { global: foo; baz; use_locals; } V1;\n"


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:  # noqa: BLE001 - the error itself is what is compared
        return (type(e).__name__, str(e))


def test_symbol_offsets_choose_as_resolve_does(progs, tmp_path) -> None:
    """The multi-uprobe resolution (every name in C at once: elfsym.c's
    Lookup.offsets, .dynsym alone first) gives the offsets resolve() gives, and
    the same error for the first bad name: default and compat versions, a static
    function of the same name in .symtab or in the debug file, name+0x4,
    versions, names not found, empty or not a str."""
    from pylibbpf.elf import ElfImage, SymbolIndex
    from pylibbpf.elf._resolve import symbol_offsets

    for name, text in (("versioned_a.c", _VERSIONED_A), ("versioned_b.c", _VERSIONED_B),
                       ("versioned.map", _VERSIONED_MAP)):
        (tmp_path / name).write_text(text)
    lib = tmp_path / "libversioned.so"
    subprocess.run(["gcc", "-O1", "-g", "-shared", "-fPIC", f"-Wl,--version-script={tmp_path}/versioned.map",
                    "-o", str(lib), str(tmp_path / "versioned_a.c"), str(tmp_path / "versioned_b.c")],
                   check=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(tmp_path / "libversioned.debug")],
                   check=True)
    stripped = tmp_path / "libversioned_stripped.so"
    subprocess.run(["strip", "--strip-all", "-o", str(stripped), str(lib)], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={tmp_path / 'libversioned.debug'}",
                    str(stripped)], check=True)
    for path in (str(lib), str(stripped)):
        # the static baz and qux are there, at other addresses than the exported ones
        local = {s.name for s in elf.symbol_index(path).lookup("baz") if s.binding == "LOCAL"}
        assert local == {"baz"}, path
    files = [str(lib), str(stripped), elf.find_library("c"), str(progs["prog_pie"]),
             str(progs["prog_stripped"]), str(progs["libplbtarget.so"])]
    odd = ["foo", "foo@V1", "foo@@V2", "bar", "qux", "baz", "baz+0x4", "use_locals",
           "no_such_function", "", None, 7, b"foo", "memcpy", "memcpy@GLIBC_2.2.5",
           "local_twice", "add_i", "\udcff"]
    for path in files:
        names = elf.symbol_index(path).function_names()[:400] + odd
        elf.clear_cache()
        want = [_outcome(lambda n: elf.resolve(path, n).offset, n) for n in names]
        for n, w in zip(names, want):
            assert _outcome(lambda: symbol_offsets(path, [n])[1][0]) == w, (path, n)
        good = [n for n, w in zip(names, want) if w[0] == "ok"]
        elf.clear_cache()
        assert symbol_offsets(path, good)[1] == [w[1] for w in want if w[0] == "ok"], path
        # a list with bad names fails as the first bad one does alone
        for bad in [i for i, w in enumerate(want) if w[0] != "ok"][:6]:
            mixed = good[:50] + names[bad:]
            first = next(w for w in want[bad:] if w[0] != "ok")
            elf.clear_cache()
            assert _outcome(lambda: symbol_offsets(path, mixed)) == first, (path, names[bad])
    # names with one default version are answered from .dynsym: the debug file is
    # not read for them. It is for a compat-only name: bar has one address there,
    # qux two (the static one), which the Python path chooses between
    idx = SymbolIndex(ElfImage(str(stripped)))
    assert idx._offsets(["foo", "baz", "use_locals"]) == \
        [elf.resolve(str(lib), n).offset for n in ("foo", "baz", "use_locals")]
    assert idx._debug is None
    assert idx._offsets(["bar", "qux"]) == [elf.resolve(str(lib), "bar").offset, None]
    assert idx._debug is not None and idx._debug[0] is not None
