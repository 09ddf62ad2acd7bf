"""Smoke test of an installed pylibbpf wheel on a machine without a compiler.

    python tools/wheel_smoke.py OBJ

OBJ is tools/wheel_smoke.bpf.c compiled elsewhere (./dev.sh wheel does it). Run as
root by ./dev.sh wheel-check in pristine chroots that have only python3 and
python3-venv: no gcc, clang, libelf or python3-dev. Checks, each printed as it passes:

* the extension's libelf and zlib resolve to the copies bundled in the wheel (ldd), and
  the libelf mapped in this process is the wheel's;
* ``pylibbpf version`` names the libbpf release and its verified sha256;
* the precompiled object loads, its tracepoint fires for this process's getppid() calls,
  and each call arrives as a ring-buffer record decoded from BTF, with the global count;
* raw bytecode loads and ``test_run`` returns its r0;
* the ELF symbol index resolves libc's getppid to the file offset this process maps;
* ``pylibbpf.compile()`` (which needs clang) says so with a BPFError.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path


def ok(what: str) -> None:
    print(f"ok  {what}", flush=True)


def check_bundled_libraries() -> None:
    import pylibbpf

    pylibbpf.libbpf_version()  # the extension is loaded
    maps = Path("/proc/self/maps").read_text().splitlines()
    paths = sorted({line.split(None, 5)[5] for line in maps if len(line.split(None, 5)) == 6})
    ext = [p for p in paths if "/pylibbpf/_libbpf" in p]
    assert ext, "pylibbpf's extension is not mapped"
    site = str(Path(ext[0]).parent.parent) + "/"  # site-packages
    # what the extension's dependencies resolve to: only the C library from the system
    ldd = subprocess.run(["ldd", ext[0]], capture_output=True, text=True, check=True).stdout
    for line in ldd.splitlines():
        if "=>" not in line:
            continue
        name, target = (x.strip() for x in line.split("=>", 1))
        target = target.split(" (")[0]
        if name.startswith(("libc.so", "libm.so", "ld-linux")):
            continue
        assert target.startswith(site), f"{name} resolves outside the wheel: {line.strip()}"
        ok(f"{name} from the wheel: {target[len(site):]}")
    for name in ("libelf", "libz"):
        assert any(name in line for line in ldd.splitlines()), f"ldd lists no {name}: {ldd}"
    # the libelf in this process is the wheel's (the interpreter may map the system's zlib)
    libelf = [p for p in paths if Path(p).name.startswith(("libelf.", "libelf-"))]
    assert libelf and all(p.startswith(site) for p in libelf), libelf
    ok(f"libelf mapped in this process: {libelf[0][len(site):]}")
    for lib in ("libelf.so.1", "libbpf.so.1"):
        found = list(Path("/usr/lib").rglob(lib)) + list(Path("/lib").rglob(lib))
        print(f"    (system {lib}: {[str(p) for p in found] or 'none'})")


def check_version_command(pin_sha256: str) -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "pylibbpf"), "version"],
                         capture_output=True, text=True, check=True).stdout
    print("    " + out.strip().replace("\n", "\n    "))
    assert out.startswith("pylibbpf "), out
    assert f"sha256 {pin_sha256}" in out, out
    assert "bundled with the wheel" in out, out
    ok("pylibbpf version: libbpf release, sha256, bundled libraries")


def check_object(obj_path: str) -> None:
    import pylibbpf

    with pylibbpf.Object(obj_path) as obj:
        obj.rodata.target_pid = os.getpid()
        obj.load()
        events = []
        with obj.programs["on_getppid"].attach(), \
                pylibbpf.RingBuffer(obj.maps["events"], events.append,
                                    record_type="event") as rb:
            for _ in range(3):
                os.getppid()
            rb.poll(timeout_ms=1000)
        got = [(e.pid, e.seq) for e in events]
        assert got == [(os.getpid(), 1), (os.getpid(), 2), (os.getpid(), 3)], got
        assert obj.bss.hits == 3, obj.bss.hits
    ok(f"precompiled object: tracepoint fired 3 times, ring-buffer records {got}")


def check_raw_bytecode() -> None:
    import pylibbpf

    insns = bytes.fromhex("b70000002a000000" "9500000000000000")  # r0 = 42; exit
    with pylibbpf.Program.load_raw("socket_filter", insns, license="GPL") as prog:
        retval = prog.test_run(b"\0" * 64).retval
    assert retval == 42, retval
    ok("raw bytecode: test_run returned 42")


def check_symbol_index() -> None:
    from pylibbpf import elf

    libc = ctypes.CDLL(None)
    addr = ctypes.cast(libc.getppid, ctypes.c_void_p).value
    assert addr
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(None, 5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= addr < hi and len(parts) == 6:
            path, offset = parts[5], addr - lo + int(parts[2], 16)
            break
    else:
        raise AssertionError(f"getppid at {addr:#x} is in no mapping")
    res = elf.resolve(path, "getppid")
    assert res.offset == offset, (res, offset)
    names = [s.name for s in elf.functions(path, "getpp*")]
    assert "getppid" in names, names
    ok(f"ELF symbol index: getppid in {path} at file offset {offset:#x}")


def check_compile_needs_clang() -> None:
    import tempfile

    import pylibbpf

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "x.bpf.c"
        src.write_text("int x;\n")
        try:
            pylibbpf.compile(src)
        except pylibbpf.BPFError as e:
            assert "clang" in str(e), e
            ok(f"pylibbpf.compile() without clang: {type(e).__name__}: {e}")
            return
    raise AssertionError("pylibbpf.compile() worked on a machine without clang")


def main() -> int:
    obj_path, pin_sha256 = sys.argv[1], sys.argv[2]
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    check_bundled_libraries()
    check_version_command(pin_sha256)
    check_object(obj_path)
    check_raw_bytecode()
    check_symbol_index()
    check_compile_needs_clang()
    print("wheel smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
