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
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from ._files import cache_base, open_regular, regular_file
from .btf import KERNEL_BTF, vmlinux_h
from .errors import BPFError, BPFNotFoundError, BPFPermissionError, as_path, error_from_errno

__all__ = ["compile", "include_dir", "vmlinux_h_path", "CompileError", "Clang", "find_clang"]

PathLike = Union[str, "os.PathLike[str]"]

_ARCH = {"x86_64": "x86", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390",
         "ppc64le": "powerpc", "riscv64": "riscv", "loongarch64": "loongarch"}


class Clang(NamedTuple):
    """A clang that :func:`compile` runs: its ``path``, its ``version``
    (``"19.1.7"``, ``""`` when it printed none) and the first line of its
    ``--version`` (``banner``)."""

    path: str
    version: str
    banner: str

    @property
    def major(self) -> int:
        """The major version (19 for 19.1.7), 0 when unknown."""
        m = re.match(r"\d+", self.version)
        return int(m.group()) if m else 0

    def __str__(self) -> str:
        return f"clang {self.version or '(unknown version)'} ({self.path})"


class CompileError(BPFError):
    """clang failed; ``output`` holds everything it printed, ``diagnostics`` the
    ``file:line:col: error: …`` lines, ``clang`` the :class:`Clang` that ran. The
    message names that clang and its version, and shows the diagnostics with
    their source excerpts (at most 40 lines), or, when clang itself crashed,
    what it was compiling. Where the failure is a feature this clang is too old
    for (``-mcpu=v4``, ``may_goto``), the message says which clang it needs."""

    MAX_LINES = 40

    def __init__(self, source: str, output: str, clang: Optional[Clang] = None) -> None:
        self.source = source
        self.output = output
        self.clang = clang
        self.diagnostics = [ln for ln in output.splitlines()
                            if re.search(r":\d+:\d+: (?:fatal )?error: ", ln)]
        super().__init__(_errno.EINVAL, _summary(source, output, self.MAX_LINES, clang))


#: (what clang prints, the feature, the first clang release that has it)
_TOO_OLD = [
    (re.compile(r"unknown target CPU 'v4'"), "-mcpu=v4 (BPF CPU v4 instructions)", 18),
    (re.compile(r"may_goto"), "may_goto (open-coded loops: can_loop, bpf_for)", 19),
]


def _too_old(output: str, clang: Optional[Clang]) -> str:
    """A sentence saying which feature needs a newer clang, or ""."""
    for pattern, feature, major in _TOO_OLD:
        if pattern.search(output) and (clang is None or clang.major < major):
            have = f"clang {clang.version}" if clang and clang.version else "this clang"
            return (f"{feature} needs clang {major} or newer; {have} is too old "
                    "(install a newer clang; compile() picks the newest installed, "
                    "or set CLANG)")
    return ""


def _summary(source: str, output: str, max_lines: int, clang: Optional[Clang] = None) -> str:
    who = str(clang) if clang else "clang"
    lines = output.strip().splitlines()
    if "PLEASE submit a bug report" in output or "Stack dump:" in output:
        stages = [ln.split(".", 1)[1].strip() for ln in lines if re.match(r"^\d\.\t", ln)]
        where = "; ".join(s for s in stages if not s.startswith("Program arguments"))
        return (f"{who} crashed compiling {source!r} ({where or 'no details'}): often a "
                "construct the BPF backend cannot lower (e.g. __builtin_clzll on old clang)")
    lines = [ln for ln in lines if not re.match(r"^\d+ (?:errors?|warnings?) generated", ln)]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    hint = _too_old(output, clang)
    return (f"{who} failed to compile {source!r}" + (f": {hint}" if hint else "") + ":\n"
            + "\n".join(lines))


def include_dir() -> Path:
    """The directory holding ``bpf/bpf_helpers.h`` and libbpf's other headers."""
    return Path(__file__).resolve().parent / "include"


class _CacheError(BPFError):
    """pylibbpf's cache directory can't be created or written (the message names it)."""


class _CachePermissionError(_CacheError, BPFPermissionError):
    pass


def _cache_error(e: OSError, path: Path) -> BPFError:
    err = e.errno or _errno.EIO
    msg = error_from_errno(err, f"write pylibbpf's cache directory {str(path)!r}",
                           hint="set PYLIBBPF_CACHE (or XDG_CACHE_HOME) to a writable "
                                "directory, or give compile() an output path").strerror
    cls = _CachePermissionError if err in (_errno.EACCES, _errno.EPERM) else _CacheError
    return cls(err, str(msg))


def cache_dir() -> Path:
    path = Path(cache_base())
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cache_error(e, path) from None
    return path


def _absolute(path: str) -> str:
    """``path`` made absolute against the working directory, unnormalised (a
    relative path must not reach clang, which reads ``-x`` as an option and
    ``@x`` as a file of options, even after ``--``)."""
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def vmlinux_h_path(btf_path: Optional[PathLike] = None) -> Path:
    """A directory-cached ``vmlinux.h`` for the running kernel (or ``btf_path``)."""
    return _vmlinux_h_in(cache_dir(), btf_path)


def _vmlinux_h_in(directory: Path, btf_path: Optional[PathLike]) -> Path:
    src = as_path(btf_path, "btf_path") if btf_path is not None else KERNEL_BTF
    try:
        f = open_regular(src, "BTF file")
    except FileNotFoundError:
        raise BPFNotFoundError(_errno.ENOENT, f"BTF {src!r} does not exist "
                                              "(kernel built without CONFIG_DEBUG_INFO_BTF?)") \
            from None
    with f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = directory / f"vmlinux-{digest}" / "vmlinux.h"
    if not out.exists():
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _cache_error(e, out.parent) from None
        text = vmlinux_h(btf_path)
        try:
            tmp.write_text(text)
            tmp.replace(out)
        except OSError as e:
            raise _cache_error(e, out.parent) from None
    return out


class _Source(NamedTuple):
    """The source as clang is given it."""

    real: Path  #: the user's file, absolute
    arg: Path  #: the path clang reads it by
    flags: List[str]  #: what that takes


def _clang_source(src: Path, scratch: str) -> _Source:
    """clang's driver hands the source's base name to its compiler proper
    (``-main-file-name``), which expands an argument starting with ``@`` as a
    file of options (relative to the working directory), wherever the source
    lies. Such a source is given through a symbolic link of another name in
    ``scratch``; ``-iquote`` keeps its own directory first for ``#include "…"``."""
    if not src.name.startswith("@"):
        return _Source(src, src, [])
    link = Path(scratch) / ("_" + src.name)
    os.symlink(src, link)
    return _Source(src, link, ["-iquote", str(src.parent)])


def _clang_command(cc: str, src: _Source, out: Path, cflags: Sequence[str],
                   include_dirs: Sequence[PathLike], vmlinux_dir: Path) -> List[str]:
    """clang's arguments; every path in them is absolute (``src``, ``out`` and
    ``vmlinux_dir`` already are), so none can be read as an option."""
    arch = _ARCH.get(platform.machine(), platform.machine())
    multiarch = f"/usr/include/{platform.machine()}-linux-gnu"
    cmd = [cc, "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
           "-I", str(include_dir()), "-I", str(vmlinux_dir)]
    if os.path.isdir(multiarch):
        cmd += ["-idirafter", multiarch]
    for d in include_dirs:
        cmd += ["-I", _absolute(os.fspath(d))]
    cmd += src.flags + list(cflags)
    # the source is C whatever its name (clang would take "x" for a linker input)
    if not any(f.startswith("-x") for f in cflags):
        cmd += ["-x", "c"]
    return cmd + ["-c", str(src.arg), "-o", str(out)]


#: the target name asked of ``clang -M`` (-MT), so the depfile's first rule is known
_DEP_TARGET = "pylibbpf-deps"


def _depfile_words(text: str) -> List[str]:
    """The words of a make-style dependency file (``clang -M``): backslash-newline
    continues a line, ``\\ `` is a space and ``\\#`` a ``#`` inside a name (2N
    backslashes before a space stand for N backslashes, then a separator), ``$$``
    is ``$``. The first word is the target, with its colon."""
    words: List[str] = []
    word: List[str] = []
    i, n = 0, len(text)

    def flush() -> None:
        w = "".join(word)
        if w:
            words.append(w)
        word.clear()

    while i < n:
        c = text[i]
        if c == "\\":
            j = i
            while j < n and text[j] == "\\":
                j += 1
            count, nxt = j - i, text[j] if j < n else ""
            if nxt == "\n" or (nxt == "\r" and text[j + 1:j + 2] == "\n"):
                word.append("\\" * (count - 1))  # a continuation
                flush()
                i = j + (2 if nxt == "\r" else 1)
            elif nxt in (" ", "\t", "#"):
                word.append("\\" * (count // 2))
                if count % 2:  # escaped: part of the name
                    word.append(nxt)
                    i = j + 1
                else:
                    i = j
            else:
                word.append("\\" * count)
                i = j
        elif c == "$" and text[i + 1:i + 2] == "$":
            word.append("$")
            i += 2
        elif c in " \t\r\n":
            flush()
            i += 1
        else:
            word.append(c)
            i += 1
    flush()
    return words


def _dependencies(cc: str, src: _Source, cflags: Sequence[str],
                  include_dirs: Sequence[PathLike], vmlinux_dir: Path) -> Optional[List[str]]:
    """Every file the preprocessor reads for ``src`` (clang -M -MG), or None."""
    cmd = _clang_command(cc, src, Path(os.devnull), cflags, include_dirs, vmlinux_dir)[:-4]
    cmd += ["-M", "-MG", "-MT", _DEP_TARGET, "-MF", "-", str(src.arg)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="surrogateescape")
    words = _depfile_words(proc.stdout)
    if proc.returncode != 0 or words[:1] != [_DEP_TARGET + ":"]:
        return None
    return sorted(set(str(src.real) if w == str(src.arg) else w for w in words[1:]))


def _cache_key(cc: Clang, src: _Source, cflags: Sequence[str],
               include_dirs: Sequence[PathLike], vmlinux_dir: Path) -> Optional[str]:
    deps = _dependencies(cc.path, src, cflags, include_dirs, vmlinux_dir)
    if deps is None:
        return None  # let the real compile report the error
    h = hashlib.sha256()
    # which clang (its path and its version) is part of the key
    h.update(repr((cc.path, cc.banner, list(cflags),
                   [_absolute(os.fspath(d)) for d in include_dirs])).encode())
    for dep in [str(src.real)] + deps:
        name = dep.encode("utf-8", "surrogateescape")
        try:
            with open_regular(dep, "header") as f:  # not a FIFO: its read would block
                h.update(name + b"\0" + hashlib.sha256(f.read()).digest())
        except OSError:
            h.update(name + b"\0missing")
    return h.hexdigest()[:24]


#: path -> (mtime, banner): ``clang --version`` runs once per binary
_CLANG_VERSIONS: Dict[str, Tuple[float, str]] = {}

#: names compile() looks for on PATH: clang, and Debian's/LLVM's versioned clang-19 …
_CLANG_NAME = re.compile(r"clang(?:-(\d+))?$")


def _clang_banner(path: str) -> str:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = -1.0
    cached = _CLANG_VERSIONS.get(path)
    if cached is None or cached[0] != mtime:
        try:
            proc = subprocess.run([path, "--version"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=60)
            out = proc.stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        cached = (mtime, out.splitlines()[0] if out else "")
        _CLANG_VERSIONS[path] = cached
    return cached[1]


def _clang(path: str) -> Clang:
    banner = _clang_banner(path)
    m = re.search(r"clang version (\d+(?:\.\d+)*)", banner)
    return Clang(path, m.group(1) if m else "", banner)


def _version_key(c: Clang) -> Tuple[int, ...]:
    return tuple(int(x) for x in c.version.split(".")) if c.version else ()


def find_clang(clang: Optional[str] = None) -> Clang:
    """The clang :func:`compile` runs: ``clang`` if given (a path, or a name
    looked up on ``PATH``), else ``$CLANG``, else the newest of the clangs on
    ``PATH`` (``clang``, ``clang-19``, ``clang-14``, … by their ``--version``).
    None found is a ``BPFNotFoundError``.

    >>> str(pylibbpf.find_clang())                                # doctest: +SKIP
    'clang 19.1.7 (/usr/bin/clang-19)'
    """
    chosen = clang or os.environ.get("CLANG")
    if chosen:
        path = chosen if os.sep in chosen else shutil.which(chosen)
        if not path:
            where = "clang=" if clang else "CLANG"
            raise BPFNotFoundError(_errno.ENOENT, f"clang {chosen!r} ({where}) not found")
        return _clang(_absolute(path))
    found: Dict[str, Clang] = {}
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        try:
            names = os.listdir(d or ".")
        except OSError:
            continue
        for name in sorted(names):
            path = os.path.join(_absolute(d or "."), name)
            if not _CLANG_NAME.match(name) or not os.access(path, os.X_OK) \
                    or os.path.isdir(path):
                continue
            real = os.path.realpath(path)
            if real not in found:  # clang -> clang-14: the first name found stands
                found[real] = _clang(path)
    if not found:
        raise BPFNotFoundError(_errno.ENOENT, "clang not found (install clang, or set CLANG)")
    # the newest version; among equals the first on PATH
    order = list(found.values())
    return max(order, key=lambda c: (_version_key(c), -order.index(c)))


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
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{stem}.tmp{os.getpid()}"
            tmp.write_bytes(data)
            tmp.replace(src)
        except OSError as e:
            raise _cache_error(e, folder) from None
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

    The clang is ``clang`` if given, else ``$CLANG``, else the newest clang
    installed on ``PATH`` (:func:`find_clang`: e.g. ``clang-19`` beside
    Debian's default ``clang`` 14; open-coded loops with ``may_goto`` need
    clang 19, ``-mcpu=v4`` clang 18, and a :class:`CompileError` from an older
    one says so).
    It runs with ``-target bpf -g -O2``, the architecture's ``__TARGET_ARCH_*``,
    pylibbpf's libbpf headers (``<bpf/bpf_helpers.h>`` …) and a ``vmlinux.h``
    generated from the running kernel's BTF on the include path.

    Without ``output``, the object goes to the ``objects`` directory of
    pylibbpf's cache (``$PYLIBBPF_CACHE/objects``, else
    ``$XDG_CACHE_HOME/pylibbpf/objects``, else ``~/.cache/pylibbpf/objects``)
    under a hash of the source, every header it includes, the flags and the
    clang (its path and version): an unchanged source is not compiled again
    (``cache=False`` forces it).
    A cache directory that can't be written is a :class:`BPFError` naming it;
    with ``output``, no cache is needed (``vmlinux.h`` is then generated in a
    temporary directory).
    ``text`` is first written to the cache's ``sources`` directory, as
    ``<hash of text>/<name>.bpf.c`` (``name`` defaults to ``"text"``; clang's
    messages name that file): the same text compiles once.
    clang's diagnostics become a :class:`CompileError` (``.output``). The
    source is compiled as C whatever its name (unless ``cflags`` has ``-x``);
    a missing one is a ``BPFNotFoundError``, a FIFO or device a ``BPFError``.

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
    given = as_path(source, "source")
    # not a FIFO (clang would wait on it), and never a bare name clang could take for
    # an option ("-x…") or a response file ("@x", read even after "--"): absolute
    regular_file(given, "BPF source")
    src = Path(_absolute(given))
    cc = find_clang(clang)
    with tempfile.TemporaryDirectory(prefix="pylibbpf-") as scratch:
        arg = _clang_source(src, scratch)
        if output is not None:
            out = Path(_absolute(as_path(output, "output")))
            try:
                vmlinux_dir = vmlinux_h_path().parent
            except _CacheError:  # the cache is only a cache: this compile needs none
                vmlinux_dir = _vmlinux_h_in(Path(scratch), None).parent
        else:
            vmlinux_dir = vmlinux_h_path().parent
            key = _cache_key(cc, arg, cflags, include_dirs, vmlinux_dir) if cache else None
            stem = src.name[:-len(".bpf.c")] if src.name.endswith(".bpf.c") else src.stem
            objs = cache_dir() / "objects"
            try:
                objs.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _cache_error(e, objs) from None
            if key is not None:
                out = objs / f"{stem}-{key}.bpf.o"
                if out.exists():
                    return out
            else:
                out = objs / f"{stem}-{os.getpid()}.bpf.o"
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        proc = subprocess.run(_clang_command(cc.path, arg, tmp, cflags, include_dirs,
                                             vmlinux_dir),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not tmp.exists():
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise CompileError(given, proc.stdout if proc.returncode != 0 else
                           f"clang exited 0 but wrote no object:\n{proc.stdout}", cc)
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
