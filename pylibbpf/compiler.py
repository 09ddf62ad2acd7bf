"""Compile BPF C sources with clang, against pylibbpf's libbpf headers and a
``vmlinux.h`` generated from the running kernel's BTF."""
from __future__ import annotations

import errno as _errno
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence, Union

from .btf import KERNEL_BTF, vmlinux_h
from .errors import BPFError, BPFNotFoundError

__all__ = ["compile", "include_dir", "vmlinux_h_path", "CompileError"]

PathLike = Union[str, "os.PathLike[str]"]

_ARCH = {"x86_64": "x86", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390",
         "ppc64le": "powerpc", "riscv64": "riscv", "loongarch64": "loongarch"}


class CompileError(BPFError):
    """clang failed; ``output`` holds what it printed."""

    def __init__(self, source: str, output: str) -> None:
        self.output = output
        super().__init__(_errno.EINVAL, f"clang failed to compile {source!r}:\n{output.strip()}")


def include_dir() -> Path:
    """The directory holding ``bpf/bpf_helpers.h`` and libbpf's other headers."""
    return Path(__file__).resolve().parent / "include"


def cache_dir() -> Path:
    base = os.environ.get("PYLIBBPF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pylibbpf")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def vmlinux_h_path(btf_path: Optional[PathLike] = None) -> Path:
    """A directory-cached ``vmlinux.h`` for the running kernel (or ``btf_path``)."""
    src = os.fspath(btf_path) if btf_path is not None else KERNEL_BTF
    try:
        st = os.stat(src)
    except FileNotFoundError:
        raise BPFNotFoundError(_errno.ENOENT, f"BTF {src!r} does not exist "
                                              "(kernel built without CONFIG_DEBUG_INFO_BTF?)") \
            from None
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    del st
    out = cache_dir() / f"vmlinux-{digest}" / "vmlinux.h"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(vmlinux_h(btf_path))
        tmp.replace(out)
    return out


def compile(source: PathLike, output: Optional[PathLike] = None, *,
            cflags: Sequence[str] = (), include_dirs: Sequence[PathLike] = (),
            clang: Optional[str] = None) -> Path:
    """Compile ``source`` (a ``.bpf.c``) to a BPF object and return its path.

    Output defaults to the source's name with ``.o`` beside it.
    """
    src = Path(os.fspath(source))
    if not src.is_file():
        raise BPFNotFoundError(_errno.ENOENT, f"BPF source {str(src)!r} does not exist")
    out = Path(os.fspath(output)) if output is not None else src.with_suffix(".o")
    cc = clang or os.environ.get("CLANG") or shutil.which("clang")
    if not cc:
        raise BPFNotFoundError(_errno.ENOENT, "clang not found (install clang, or set CLANG)")
    arch = _ARCH.get(platform.machine(), platform.machine())
    multiarch = f"/usr/include/{platform.machine()}-linux-gnu"
    cmd = [cc, "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
           "-I", str(include_dir()), "-I", str(vmlinux_h_path().parent)]
    if os.path.isdir(multiarch):
        cmd += ["-idirafter", multiarch]
    for d in include_dirs:
        cmd += ["-I", os.fspath(d)]
    cmd += [*cflags, "-c", str(src), "-o", str(out)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise CompileError(str(src), proc.stdout)
    return out
