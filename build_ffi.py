"""Build pylibbpf._libbpf: cffi API mode, with libbpf compiled in from source.

The pinned libbpf release is fetched and verified by vendor/libbpf/fetch.py
(or taken from LIBBPF_SRC). Its C sources are compiled into the extension
together with pylibbpf's small shims; only libelf and zlib are linked.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

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


def cdefs() -> str:
    parts = sorted((ROOT / "pylibbpf" / "_cdefs").glob("*.h"))
    return "\n".join(p.read_text() for p in parts)


def make_ffi() -> FFI:
    tree = libbpf_tree()
    install_headers(tree)
    src = tree / "src"
    libbpf_sources = sorted(str(p) for p in src.glob("*.c"))
    ffi = FFI()
    ffi.cdef(cdefs())
    preamble = "\n".join([
        '#include "libbpf.h"',
        '#include "bpf.h"',
        '#include "btf.h"',
        '#include "libbpf_version.h"',
        "#include <linux/if_link.h>",
        (ROOT / "pylibbpf" / "_csrc" / "shims.c").read_text(),
    ])
    ffi.set_source(
        "pylibbpf._libbpf",
        preamble,
        sources=libbpf_sources,
        include_dirs=[str(src), str(tree / "include"), str(tree / "include" / "uapi")],
        define_macros=[("_LARGEFILE64_SOURCE", None), ("_FILE_OFFSET_BITS", "64"),
                       ("LIBBPF_API", "")],
        extra_compile_args=["-O2", "-fvisibility=hidden", "-Wno-unused-function",
                            "-Wno-sign-compare", "-Wno-missing-field-initializers"],
        libraries=["elf", "z"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
