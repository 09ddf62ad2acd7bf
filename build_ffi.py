"""Build pylibbpf._libbpf: cffi API mode, with libbpf compiled in from source.

The pinned libbpf release is fetched and verified by vendor/libbpf/fetch.py
(or taken from LIBBPF_SRC). Its C sources are compiled into the extension
together with pylibbpf's small shims; only libelf and zlib are linked.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

from cffi import FFI

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "vendor" / "libbpf"))
from fetch import ensure_libbpf  # noqa: E402

# Headers installed with the package, so BPF programs and C code can be built
# against the same libbpf that pylibbpf runs.
PACKAGED_HEADERS = (
    "bpf_helpers.h", "bpf_helper_defs.h", "bpf_tracing.h", "bpf_core_read.h",
    "bpf_endian.h", "usdt.bpf.h", "libbpf.h", "libbpf_common.h", "libbpf_legacy.h",
    "libbpf_version.h", "bpf.h", "btf.h", "skel_internal.h",
)


def libbpf_tree() -> Path:
    return ensure_libbpf()


def install_headers(tree: Path) -> None:
    dest = ROOT / "pylibbpf" / "include" / "bpf"
    dest.mkdir(parents=True, exist_ok=True)
    for name in PACKAGED_HEADERS:
        shutil.copy2(tree / "src" / name, dest / name)


LIBBPF_CFLAGS = ["-O2", "-g", "-fPIC", "-fvisibility=hidden", "-DLIBBPF_API=",
                 "-D_LARGEFILE64_SOURCE", "-D_FILE_OFFSET_BITS=64", "-Wno-unused-function"]


def build_libbpf_archive(tree: Path) -> Path:
    """Compile libbpf's sources (in parallel) into a static archive, cached by content.

    Only pylibbpf's own module is recompiled on later builds.
    """
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    src = tree / "src"
    sources = sorted(src.glob("*.c"))
    includes = ["-I", str(src), "-I", str(tree / "include"), "-I", str(tree / "include" / "uapi")]
    key = hashlib.sha256()
    for part in (cc, LIBBPF_CFLAGS, includes):
        key.update(repr(part).encode())
    for path in sorted(src.glob("*.[ch]")):
        key.update(path.name.encode())
        key.update(path.read_bytes())
    out_dir = ROOT / "build" / f"libbpf-{key.hexdigest()[:16]}"
    archive = out_dir / "libbpf.a"
    if archive.exists():
        return archive
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    def compile_one(c: Path) -> Path:
        obj = tmp / (c.stem + ".o")
        subprocess.run([*cc, *LIBBPF_CFLAGS, *includes, "-c", str(c), "-o", str(obj)],
                       check=True)
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs: List[Path] = list(pool.map(compile_one, sources))
    subprocess.run(["ar", "rcs", str(tmp / "libbpf.a"), *map(str, objs)], check=True)
    if out_dir.exists():
        shutil.rmtree(out_dir, ignore_errors=True)
    try:
        tmp.rename(out_dir)
    except OSError:  # another build won the race; use its archive
        shutil.rmtree(tmp, ignore_errors=True)
    return archive


def cdefs() -> str:
    parts = sorted((ROOT / "pylibbpf" / "_cdefs").glob("*.h"))
    return "\n".join(p.read_text() for p in parts)


def make_ffi() -> FFI:
    tree = libbpf_tree()
    install_headers(tree)
    src = tree / "src"
    archive = build_libbpf_archive(tree)
    ffi = FFI()
    ffi.cdef(cdefs())
    preamble = "\n".join([
        '#include "libbpf.h"',
        '#include "bpf.h"',
        '#include "btf.h"',
        '#include "libbpf_version.h"',
        "#include <linux/if_link.h>",
        (ROOT / "pylibbpf" / "_csrc" / "shims.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "events.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "fast.c").read_text(),
    ])
    ffi.set_source(
        "pylibbpf._libbpf",
        preamble,
        include_dirs=[str(src), str(tree / "include"), str(tree / "include" / "uapi")],
        # _fast.c uses the full CPython API (vectorcall, tuple internals)
        define_macros=[("_LARGEFILE64_SOURCE", None), ("_FILE_OFFSET_BITS", "64"),
                       ("LIBBPF_API", ""), ("_CFFI_NO_LIMITED_API", None)],
        py_limited_api=False,
        extra_compile_args=["-O2", "-fvisibility=hidden", "-Wno-unused-function"],
        extra_objects=[str(archive)],
        libraries=["elf", "z"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    # development build: python build_ffi.py  -> pylibbpf/_libbpf*.so, swapped in atomically
    import tempfile

    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmpdir:
        built = Path(ffibuilder.compile(tmpdir=tmpdir))
        dest = ROOT / "pylibbpf" / built.name
        staged = dest.with_name(dest.name + ".new")
        shutil.copy2(built, staged)
        staged.replace(dest)
    print(dest)
