"""Child-process helpers for the tests.

* ``Child``: a process that makes getpgid(arg) calls when told to, so a BPF
  program set up meanwhile (filtering by the child's pid) sees exactly those calls.
* ``same_pylibbpf()``: subprocess arguments under which a ``python -c`` child
  imports the same pylibbpf as the tests.
* ``Unprivileged``: runs Python code that imports pylibbpf as an unprivileged
  user with no capabilities, wherever the checkout and its venv live."""
from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

#: the child names itself ``comm``, waits for a line on stdin, calls getpgid(a)
#: for each arg, then prints its pid
GETPGID_SCRIPT = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, {comm!r}, 0, 0, 0)
sys.stdin.readline()
for a in {args!r}:
    libc.getpgid(a)
print(os.getpid(), flush=True)
"""


class Child:
    """``Child(args, comm=b"…")``; ``run()`` = ``start()`` then ``finish()``.

    ``script`` may replace GETPGID_SCRIPT (formatted with ``args`` and ``comm``).
    """

    def __init__(self, args: Iterable[int], comm: bytes = b"plb-child",
                 script: str = GETPGID_SCRIPT) -> None:
        code = script.format(args=list(args), comm=comm)
        self.p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid

    def run(self) -> None:
        self.start()
        self.finish()

    def start(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def finish(self) -> None:
        assert self.p.stdout is not None
        assert int(self.p.stdout.readline()) == self.pid
        self.p.wait(10)


def same_pylibbpf(env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Keyword arguments for subprocess so that ``sys.executable -c …`` imports the
    pylibbpf these tests import, not whatever copy the current directory holds
    (run from the checkout's top, ``-c`` code would import the source tree, which
    has no compiled extension unless build_ffi.py put one there):
    ``subprocess.run([sys.executable, "-c", code], **same_pylibbpf())``."""
    import pylibbpf

    top = str(Path(pylibbpf.__file__).resolve().parents[1])
    base = {**os.environ, **(env or {})}
    path = base.get("PYTHONPATH")
    base["PYTHONPATH"] = top + (os.pathsep + path if path else "")
    return {"env": base, "cwd": "/"}


# --- Python code run as an unprivileged user ------------------------------------------------

#: directories a scratch tree may live in, first usable one wins (pytest's own
#: tmp_path and $TMPDIR may be 0700 or under /root, which other users can't enter)
_SCRATCH_BASES = ("/tmp", "/var/tmp", "/dev/shm")


def _allows(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    """Whether mode bits ``bits`` (4 read, 2 write, 1 search/execute) are granted
    to ``uid``/``gid`` with no supplementary groups (ACLs aside)."""
    shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
    return (st.st_mode >> shift) & bits == bits


def unreachable_part(path: str, uid: int, gid: int, bits: int) -> Optional[str]:
    """The first directory of ``path`` (resolved) that ``uid`` cannot enter, or the
    file itself if it lacks ``bits`` for ``uid``; None if the user can use it.

    Checked from the mode bits rather than by trying: some kernels let execve()
    through a directory its caller may not search, which a real machine refuses."""
    real = os.path.realpath(path)
    parts = real.split("/")[1:]
    for i in range(len(parts)):
        d = "/" + "/".join(parts[:i])
        if not _allows(os.stat(d), uid, gid, 1):
            return d
    return None if _allows(os.stat(real), uid, gid, bits) else real


def _requirement_names(dist: importlib.metadata.Distribution) -> List[str]:
    """Names of ``dist``'s requirements that aren't behind an extra."""
    names = []
    for req in dist.requires or []:
        name, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
        if m:
            names.append(m.group(1))
    return names


def _runtime_distributions() -> List[importlib.metadata.Distribution]:
    """The installed distributions ``import pylibbpf`` may need: the declared
    dependencies of the project (from its installed metadata, else from
    pyproject.toml), and theirs, recursively."""
    try:
        todo = _requirement_names(importlib.metadata.distribution("libbpf-cffi"))
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        import tomllib

        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as f:
            todo = [re.split(r"[^A-Za-z0-9._-]", r, 1)[0]
                    for r in tomllib.load(f)["project"]["dependencies"]]
    seen: Dict[str, importlib.metadata.Distribution] = {}
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for another platform or implementation
        seen[key] = dist
        todo.extend(_requirement_names(dist))
    return list(seen.values())


class Unprivileged:
    """Run Python code as an unprivileged user (``nobody`` by default) with no
    capabilities, importing the same pylibbpf as the tests.

    The checkout, its virtual environment and even the interpreter may sit where
    that user can't go (a root user's clone under 0700 /root), so this copies the
    pylibbpf package under test (with its compiled extension) and its declared
    dependencies' installed files (cffi's _cffi_backend, pyelftools, …) into a
    world-readable tree under /tmp, and runs an interpreter of the same ABI that
    the user can execute: the venv's base interpreter, or a system one.

    ``with Unprivileged() as u: u.run(code)``; ``u.new_dir()`` gives a fresh
    directory the user can read, for files to hand to the code.
    """

    def __init__(self, uid: int = 65534, gid: int = 65534) -> None:
        self.uid, self.gid = uid, gid
        if shutil.which("setpriv") is None:  # util-linux, installed by dev.sh
            raise RuntimeError("setpriv not found (Debian package util-linux)")
        self.root = self._scratch_root()
        try:
            self.site = self.root / "site"
            self._copy_packages()
            self.python = self._interpreter()
            self.home = self.root / "home"  # writable: caches (PYLIBBPF_CACHE) go here
            self.home.mkdir()
            os.chown(self.home, uid, gid)
            self._n = 0
        except BaseException:
            self.close()
            raise

    def _scratch_root(self) -> Path:
        for base in _SCRATCH_BASES:
            if (os.path.isdir(base) and unreachable_part(base, self.uid, self.gid, 1) is None
                    and not os.statvfs(base).f_flag & os.ST_NOEXEC):  # .so files load from it
                root = Path(tempfile.mkdtemp(prefix="pylibbpf-unpriv-", dir=base))
                root.chmod(0o755)
                return root
        raise RuntimeError(f"none of {_SCRATCH_BASES} is usable by uid {self.uid} "
                           "(missing, not searchable, or mounted noexec)")

    def _copy(self, src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        dst.chmod(0o755 if os.access(src, os.X_OK) else 0o644)

    def _copy_packages(self) -> None:
        import pylibbpf  # the package the tests import, wherever that is

        pkg = Path(pylibbpf.__file__).resolve().parent
        for src in pkg.rglob("*"):
            if src.is_file() and "__pycache__" not in src.parts:
                self._copy(src, self.site / "pylibbpf" / src.relative_to(pkg))
        for dist in _runtime_distributions():
            for rel in dist.files or []:
                if ".." in rel.parts or "__pycache__" in rel.parts:
                    continue  # scripts in bin/, bytecode
                src = Path(str(dist.locate_file(rel)))
                if src.is_file():
                    self._copy(src, self.site / Path(*rel.parts))
        for d in [self.site, *(p for p in self.site.rglob("*") if p.is_dir())]:
            d.chmod(0o755)

    def _interpreter(self) -> str:
        """A CPython of this ABI that the user can execute, with a standard library
        it can read (checked by running it as the user)."""
        ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        want = f"{sys.implementation.cache_tag} {importlib.machinery.EXTENSION_SUFFIXES[0]}"
        candidates = [getattr(sys, "_base_executable", ""), sys.executable,
                      os.path.join(sys.base_prefix, "bin", ver),
                      shutil.which(ver, path="/usr/local/bin:/usr/bin:/bin") or ""]
        tried = []
        for c in dict.fromkeys(os.path.realpath(c) for c in candidates if c):
            if not os.path.isfile(c):
                continue
            blocked = unreachable_part(c, self.uid, self.gid, 5)
            if blocked is not None:
                tried.append(f"{c} ({blocked} is closed to uid {self.uid})")
                continue
            probe = self._spawn(c, ["-I", "-c", "import importlib.machinery as m, sys; "
                                    "print(sys.implementation.cache_tag, m.EXTENSION_SUFFIXES[0])"],
                                env={"PATH": "/usr/bin:/bin"}, timeout=30)
            if probe.returncode == 0 and probe.stdout.strip() == want:
                return c
            tried.append(f"{c} (as uid {self.uid}: {(probe.stdout + probe.stderr).strip()[-200:]!r})")
        import pytest

        pytest.skip(f"no {ver} ({want}) that uid {self.uid} can run: " + "; ".join(tried))

    def _spawn(self, python: str, args: List[str], env: Dict[str, str],
               timeout: float) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                               "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                               python, *args],
                              capture_output=True, text=True, env=env, cwd=self.root,
                              timeout=timeout)

    def new_dir(self) -> Path:
        """A fresh empty directory the user can read and search (mode 0755)."""
        self._n += 1
        d = self.root / f"files-{self._n}"
        d.mkdir(mode=0o755)
        d.chmod(0o755)
        return d

    def run(self, code: str, env: Optional[Dict[str, str]] = None,
            timeout: float = 60) -> "subprocess.CompletedProcess[str]":
        """Run ``python -c code`` as the user, with no capabilities (inheritable
        and bounding sets cleared), in a clean environment plus ``env``."""
        base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home),
                "PYTHONPATH": str(self.site), "PYTHONNOUSERSITE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8",
                "PYLIBBPF_CACHE": str(self.home / "cache")}
        # -S: no site-packages of the interpreter, so only the copied tree is importable
        return self._spawn(self.python, ["-S", "-c", code], {**base, **(env or {})}, timeout)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Unprivileged":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
