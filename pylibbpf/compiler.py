"""Compile BPF C sources with clang, against pylibbpf's libbpf headers and a
``vmlinux.h`` generated from the running kernel's BTF."""
from __future__ import annotations

import errno as _errno
import hashlib
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from .btf import KERNEL_BTF, vmlinux_h
from .errors import BPFError, BPFNotFoundError

__all__ = ["compile", "include_dir", "vmlinux_h_path", "CompileError"]

PathLike = Union[str, "os.PathLike[str]"]

_ARCH = {"x86_64": "x86", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390",
         "ppc64le": "powerpc", "riscv64": "riscv", "loongarch64": "loongarch"}


class CompileError(BPFError):
    """clang failed; ``output`` holds everything it printed, ``diagnostics`` the
    ``file:line:col: error: …`` lines. The message shows the diagnostics with
    their source excerpts (at most 40 lines), or, when clang itself crashed,
    what it was compiling."""

    MAX_LINES = 40

    def __init__(self, source: str, output: str) -> None:
        self.source = source
        self.output = output
        self.diagnostics = [ln for ln in output.splitlines()
                            if re.search(r":\d+:\d+: (?:fatal )?error: ", ln)]
        super().__init__(_errno.EINVAL, _summary(source, output, self.MAX_LINES))


def _summary(source: str, output: str, max_lines: int) -> str:
    lines = output.strip().splitlines()
    if "PLEASE submit a bug report" in output or "Stack dump:" in output:
        stages = [ln.split(".", 1)[1].strip() for ln in lines if re.match(r"^\d\.\t", ln)]
        where = "; ".join(s for s in stages if not s.startswith("Program arguments"))
        return (f"clang crashed compiling {source!r} ({where or 'no details'}): often a "
                "construct the BPF backend cannot lower (e.g. __builtin_clzll on old clang)")
    lines = [ln for ln in lines if not re.match(r"^\d+ (?:errors?|warnings?) generated", ln)]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return f"clang failed to compile {source!r}:\n" + "\n".join(lines)


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


def _clang_command(cc: str, src: Path, out: Path, cflags: Sequence[str],
                   include_dirs: Sequence[PathLike]) -> List[str]:
    arch = _ARCH.get(platform.machine(), platform.machine())
    multiarch = f"/usr/include/{platform.machine()}-linux-gnu"
    cmd = [cc, "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
           "-I", str(include_dir()), "-I", str(vmlinux_h_path().parent)]
    if os.path.isdir(multiarch):
        cmd += ["-idirafter", multiarch]
    for d in include_dirs:
        cmd += ["-I", os.fspath(d)]
    return cmd + [*cflags, "-c", str(src), "-o", str(out)]


def _dependencies(cc: str, src: Path, cflags: Sequence[str],
                  include_dirs: Sequence[PathLike]) -> Optional[List[str]]:
    """Every file the preprocessor reads for ``src`` (clang -MM -MG), or None."""
    cmd = _clang_command(cc, src, Path(os.devnull), cflags, include_dirs)[:-4]
    cmd += ["-M", "-MG", "-MF", "-", str(src)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return None
    text = proc.stdout.replace("\\\n", " ")
    deps = text.split(":", 1)[1].split() if ":" in text else []
    return sorted(set(deps))


def _cache_key(cc: str, src: Path, cflags: Sequence[str],
               include_dirs: Sequence[PathLike]) -> Optional[str]:
    deps = _dependencies(cc, src, cflags, include_dirs)
    if deps is None:
        return None  # let the real compile report the error
    h = hashlib.sha256()
    h.update(repr((cc, list(cflags), [os.fspath(d) for d in include_dirs],
                   _clang_version(cc))).encode())
    for dep in [str(src)] + deps:
        try:
            with open(dep, "rb") as f:
                h.update(dep.encode() + b"\0" + hashlib.sha256(f.read()).digest())
        except OSError:
            h.update(dep.encode() + b"\0missing")
    return h.hexdigest()[:24]


_CLANG_VERSIONS: Dict[str, str] = {}


def _clang_version(cc: str) -> str:
    if cc not in _CLANG_VERSIONS:
        proc = subprocess.run([cc, "--version"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        _CLANG_VERSIONS[cc] = proc.stdout.splitlines()[0] if proc.stdout else ""
    return _CLANG_VERSIONS[cc]


#: sources given as text kept in the cache (the oldest are removed)
KEEP_TEXT_SOURCES = 64


def _text_source(text: str, name: Optional[str]) -> Path:
    """``text`` written once to ``<cache>/sources/<hash of text>/<name>.bpf.c``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str of C source, not {type(text).__name__}")
    if name is None:
        name = "text"
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a file name (no '/', not hidden), not {name!r}")
    data = text.encode("utf-8", "surrogateescape")
    stem = name[:-len(".bpf.c")] if name.endswith(".bpf.c") else name
    root = cache_dir() / "sources"
    folder = root / hashlib.sha256(data).hexdigest()[:24]
    src = folder / f"{stem}.bpf.c"
    if not src.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{stem}.tmp{os.getpid()}"
        tmp.write_bytes(data)
        tmp.replace(src)
        _prune_sources(root)
    return src


def _prune_sources(root: Path) -> None:
    dirs = []
    for d in root.iterdir():
        try:
            dirs.append((d.stat().st_mtime, d))
        except FileNotFoundError:
            pass
    for _, d in sorted(dirs, reverse=True)[KEEP_TEXT_SOURCES:]:
        shutil.rmtree(d, ignore_errors=True)


def compile(source: Optional[PathLike] = None, output: Optional[PathLike] = None, *,
            text: Optional[str] = None, name: Optional[str] = None,
            cflags: Sequence[str] = (), include_dirs: Sequence[PathLike] = (),
            clang: Optional[str] = None, cache: bool = True) -> Path:
    """Compile ``source`` (a ``.bpf.c``), or the C source ``text`` (as bcc's
    ``BPF(text=…)``), to a BPF object and return its path.

    clang runs with ``-target bpf -g -O2``, the architecture's ``__TARGET_ARCH_*``,
    pylibbpf's libbpf headers (``<bpf/bpf_helpers.h>`` …) and a ``vmlinux.h``
    generated from the running kernel's BTF on the include path.

    Without ``output``, the object goes to the ``objects`` directory of
    pylibbpf's cache (``$PYLIBBPF_CACHE/objects``, else
    ``$XDG_CACHE_HOME/pylibbpf/objects``, else ``~/.cache/pylibbpf/objects``)
    under a hash of the source, every header it includes, the flags and clang's
    version: an unchanged source is not compiled again (``cache=False`` forces it).
    ``text`` is first written to the cache's ``sources`` directory, as
    ``<hash of text>/<name>.bpf.c`` (``name`` defaults to ``"text"``; clang's
    messages name that file): the same text compiles once.
    clang's diagnostics become a :class:`CompileError` (``.output``).

    >>> obj = pylibbpf.compile("tool.bpf.c")                     # doctest: +SKIP
    >>> obj.name                                                  # doctest: +SKIP
    'tool-3f5c0e1a9d2b7c44e1f0aa12.bpf.o'
    >>> pylibbpf.compile(text=SOURCE, name="counter").name       # doctest: +SKIP
    'counter-9e1b0c7d55a3f2e8b4d61c0a.bpf.o'
    """
    if text is not None:
        if source is not None:
            raise TypeError("compile() takes a source path or text=, not both")
        source = _text_source(text, name)
    elif source is None:
        raise TypeError("compile() needs a source path or text=")
    elif name is not None:
        raise TypeError("name= goes with text= (a source file is named by its path)")
    src = Path(os.fspath(source))
    if not src.is_file():
        raise BPFNotFoundError(_errno.ENOENT, f"BPF source {str(src)!r} does not exist")
    cc = clang or os.environ.get("CLANG") or shutil.which("clang")
    if not cc:
        raise BPFNotFoundError(_errno.ENOENT, "clang not found (install clang, or set CLANG)")
    if output is not None:
        out = Path(os.fspath(output))
    else:
        key = _cache_key(cc, src, cflags, include_dirs) if cache else None
        stem = src.name[:-len(".bpf.c")] if src.name.endswith(".bpf.c") else src.stem
        objs = cache_dir() / "objects"
        objs.mkdir(parents=True, exist_ok=True)
        if key is not None:
            out = objs / f"{stem}-{key}.bpf.o"
            if out.exists():
                return out
        else:
            out = objs / f"{stem}-{os.getpid()}.bpf.o"
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    proc = subprocess.run(_clang_command(cc, src, tmp, cflags, include_dirs),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise CompileError(str(src), proc.stdout)
    tmp.replace(out)
    if output is None:
        _prune(out)
    return out


#: cached objects kept per source name (older builds of the same file are removed)
KEEP_PER_SOURCE = 8


def _prune(newest: Path) -> None:
    stem = newest.name.rsplit("-", 1)[0]
    olds = []
    for p in newest.parent.glob(f"{stem}-*.bpf.o"):
        if p.name.rsplit("-", 1)[0] != stem:
            continue
        try:
            olds.append((p.stat().st_mtime, p))
        except FileNotFoundError:
            pass
    for _, p in sorted(olds, reverse=True)[KEEP_PER_SOURCE:]:
        try:
            p.unlink()
        except OSError:
            pass
