"""Bundle zlib into a wheel that ``auditwheel repair`` already made self-contained.

    python tools/bundle_zlib.py WHEEL LIBZ

The manylinux policies count ``libz.so.1`` as part of the system, so auditwheel leaves
it out; pylibbpf's wheels bundle it anyway, so they need nothing of the machine but the
C library. LIBZ (the build machine's ``libz.so.1``) is copied into the wheel's
``<dist>.libs/`` as ``libz-<hash>.so.1`` (its own soname, so it never stands in for the
system's), and every ELF file of the wheel that needs ``libz.so.1`` is pointed at it
with patchelf (``$ORIGIN`` run paths for the bundled libraries). The wheel is
rewritten in place with an updated RECORD. Used by tools/wheels.sh in the build chroot.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List


def _patchelf(*args: str) -> str:
    return subprocess.run(["patchelf", *args], check=True, capture_output=True,
                          text=True).stdout


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def bundle(wheel: Path, libz: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        modes: Dict[str, int] = {i.filename: i.external_attr for i in infos}
        tmp = Path(tempfile.mkdtemp(prefix="bundle-zlib-"))
        zf.extractall(tmp)
    try:
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        dist = record.split("-", 1)[0]
        libs = f"{dist}.libs"
        data = libz.read_bytes()
        new_name = f"libz-{hashlib.sha256(data).hexdigest()[:8]}.so.1"
        (tmp / libs).mkdir(exist_ok=True)
        dest = tmp / libs / new_name
        shutil.copyfile(libz, dest)
        os.chmod(dest, 0o755)
        _patchelf("--set-soname", new_name, str(dest))
        patched: List[str] = []
        for name in names:
            path = tmp / name
            if not name.endswith("/") and ".so" in name and _is_elf(path):
                if "libz.so.1" in _patchelf("--print-needed", str(path)).split():
                    _patchelf("--replace-needed", "libz.so.1", new_name, str(path))
                    patched.append(name)
                if name.startswith(libs + "/"):  # bundled libraries find each other
                    _patchelf("--set-rpath", "$ORIGIN", str(path))
        if not patched:
            raise SystemExit(f"{wheel}: nothing in it needs libz.so.1")
        # RECORD: every file with its hash and size (RECORD itself without)
        files = [n for n in names if n != record and not n.endswith("/")]
        meta = [n for n in files if n.split("/", 1)[0].endswith(".dist-info")]
        out_names = [n for n in files if n not in meta] + [f"{libs}/{new_name}"] + meta
        rows = []
        for name in out_names:
            blob = (tmp / name).read_bytes()
            rows.append([name, _record_hash(blob), str(len(blob))])
        rows.append([record, "", ""])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        (tmp / record).write_text(buf.getvalue())
        staged = wheel.with_name(wheel.name + ".new")
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as out:
            for name in out_names + [record]:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = modes.get(name, 0o755 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, (tmp / name).read_bytes())
        staged.replace(wheel)
        return f"bundled {libz} as {libs}/{new_name}; patched {', '.join(patched)}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(bundle(Path(sys.argv[1]), Path(sys.argv[2]).resolve()))
