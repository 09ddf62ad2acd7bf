"""Release tooling: tools/bundle_zlib.py puts zlib into a wheel under a private name.

The whole path (./dev.sh wheel, then ./dev.sh wheel-check on pristine machines) runs
in CI after the suite; this checks the zlib step on a small wheel made here.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bundle_zlib", ROOT / "tools" / "bundle_zlib.py")
assert _spec and _spec.loader
bundle_zlib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bundle_zlib)

C_NEEDS_ZLIB = '#include <zlib.h>\nconst char *version(void) { return zlibVersion(); }\n'
C_PLAIN = 'int answer(void) { return 42; }\n'


def _wheel(tmp_path: Path, c_source: str, libs: list[str]) -> Path:
    """A wheel "pkg" with one extension pkg/_m.so built from ``c_source``; its run path
    points at pkg.libs/ as auditwheel's would."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "m.c").write_text(c_source)
    so = build / "_m.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(build / "m.c"), *libs],
                   check=True)
    subprocess.run(["patchelf", "--set-rpath", "$ORIGIN/../pkg.libs", str(so)], check=True)
    files = {
        "pkg/__init__.py": b"",
        "pkg/_m.so": so.read_bytes(),
        "pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
        "pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
                                   b"Tag: py3-none-linux_x86_64\n",
    }
    wheel = tmp_path / "pkg-1.0-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("pkg-1.0.dist-info/RECORD", "")
    return wheel


def _system_libz() -> Path:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("libz.so.1 ") and "x86-64" in line:
            return Path(line.split("=>")[1].strip()).resolve()
    pytest.fail("ldconfig knows no libz.so.1 (zlib1g)")


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("gcc", "patchelf"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (./dev.sh setup installs it)")


def test_zlib_is_bundled_under_a_private_name(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, C_NEEDS_ZLIB, ["-lz"])
    libz = _system_libz()
    message = bundle_zlib.bundle(wheel, libz)
    assert message.startswith(f"bundled {libz} as pkg.libs/libz-") and "pkg/_m.so" in message

    out = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(out)
    copies = [n for n in names if n.startswith("pkg.libs/")]
    assert len(copies) == 1 and re.fullmatch(r"pkg\.libs/libz-[0-9a-f]{8}\.so\.1", copies[0])
    private = copies[0].split("/")[1]
    assert (out / copies[0]).read_bytes()[:4] == b"\x7fELF"
    soname = subprocess.run(["patchelf", "--print-soname", str(out / copies[0])],
                            capture_output=True, text=True, check=True).stdout.split()
    assert soname == [private]
    needed = subprocess.run(["patchelf", "--print-needed", str(out / "pkg/_m.so")],
                            capture_output=True, text=True, check=True).stdout.split()
    assert private in needed and "libz.so.1" not in needed
    # the dynamic loader finds the bundled copy, not the system's
    ldd = subprocess.run(["ldd", str(out / "pkg/_m.so")], capture_output=True, text=True,
                         check=True).stdout
    line = next(l for l in ldd.splitlines() if private in l)
    assert str(out / "pkg/../pkg.libs" / private) in line
    # the metadata stays last and RECORD lists every file with its hash and size
    assert names[-1] == "pkg-1.0.dist-info/RECORD"
    assert names.index(copies[0]) < names.index("pkg-1.0.dist-info/METADATA")
    rows = list(csv.reader(io.StringIO((out / "pkg-1.0.dist-info/RECORD").read_text())))
    assert sorted(r[0] for r in rows) == sorted(names)
    for name, digest, size in rows:
        if name.endswith("RECORD"):
            assert digest == size == ""
            continue
        data = (out / name).read_bytes()
        want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={want}", len(data)), name


def test_wheel_without_zlib_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, C_PLAIN, [])
    before = wheel.read_bytes()
    with pytest.raises(SystemExit, match="nothing in it needs libz.so.1"):
        bundle_zlib.bundle(wheel, _system_libz())
    assert wheel.read_bytes() == before
