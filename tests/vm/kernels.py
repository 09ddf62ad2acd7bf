"""Debian's stock kernels for the VM matrix: fetched once, unpacked, cached.

Each kernel is Debian's ``linux-image-amd64`` of one suite (bookworm: 6.1, trixie:
6.12). We resolve it with a private apt configuration whose archive URIs come from
this machine's own apt sources (``vendor/libbpf/fetch.py``), ``apt-get download``
the image package, and ``dpkg -x`` it: nothing is installed on the host.

The cache lives in ``$PYLIBBPF_VM_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/pylibbpf-vm``.
Never put it under /var/cache or /var/tmp: the guest mounts a tmpfs over both, which
would hide the kernel's modules from it.
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]

# name -> Debian suite whose linux-image-amd64 we boot
SUITES: Dict[str, str] = {"6.1": "bookworm", "6.12": "trixie"}
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class KernelError(RuntimeError):
    """A kernel could not be fetched or unpacked (the reason is the message)."""


@dataclass(frozen=True)
class Kernel:
    name: str          # "6.12"
    suite: str         # "trixie"
    package: str       # "linux-image-6.12.107+deb13-amd64"
    version: str       # "6.12.107-1" (Debian's)
    root: Path         # dpkg -x tree
    release: str       # "6.12.107+deb13-amd64" (uname -r)

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def config(self) -> Path:
        return self.root / "boot" / f"config-{self.release}"


def cache_dir() -> Path:
    base = os.environ.get("PYLIBBPF_VM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pylibbpf-vm")
    path = Path(base).resolve()
    for hidden in ("/var/cache", "/var/tmp", "/tmp", "/run"):
        if path == Path(hidden) or Path(hidden) in path.parents:
            raise KernelError(f"the VM cache {path} is under {hidden}, which the guest hides "
                              "behind a tmpfs; set PYLIBBPF_VM_CACHE elsewhere")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _debian_uris() -> List[str]:
    """The machine's Debian archive URIs, by the same logic that fetches libbpf."""
    spec = importlib.util.spec_from_file_location(
        "_pylibbpf_vendor_fetch", REPO / "vendor" / "libbpf" / "fetch.py")
    if spec is None or spec.loader is None:
        raise KernelError("cannot load vendor/libbpf/fetch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    uris: List[str] = mod.debian_archive_uris()
    return uris


class _Apt:
    """apt-get/apt-cache with a private configuration for one suite."""

    def __init__(self, suite: str, work: Path) -> None:
        self.work = work
        uris = _debian_uris()
        if not uris:
            raise KernelError("no Debian archive in this machine's apt configuration")
        (work / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (work / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (work / "parts").mkdir(exist_ok=True)
        signed = f"Signed-By: {KEYRING}\n" if os.path.exists(KEYRING) else ""
        (work / "parts" / f"{suite}.sources").write_text(
            f"Types: deb\nURIs: {' '.join(uris)}\nSuites: {suite}\nComponents: main\n"
            "Architectures: amd64\n" + signed)
        self.opts = [
            "-o", "Dir::Etc::SourceList=/dev/null",
            "-o", f"Dir::Etc::SourceParts={work / 'parts'}",
            "-o", f"Dir::State::Lists={work / 'lists'}",
            "-o", "Dir::State::status=/dev/null",
            "-o", f"Dir::Cache={work / 'cache'}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "APT::Architecture=amd64",
            "-q",
        ]

    def run(self, tool: str, *args: str) -> str:
        proc = subprocess.run([tool, *self.opts, *args], cwd=self.work, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise KernelError(f"{tool} {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
        return proc.stdout


def _field(stanza: str, name: str) -> Optional[str]:
    m = re.search(rf"^{name}:\s*(.+)$", stanza, re.M)
    return m.group(1).strip() if m else None


def _say(msg: str) -> None:
    print(f"pylibbpf-vm: {msg}", file=sys.stderr, flush=True)


def _find_cached(name: str) -> Optional[Kernel]:
    base = cache_dir() / "kernels" / name
    for marker in sorted(base.glob("*/.complete"), reverse=True):
        root = marker.parent
        fields = dict(line.split("=", 1) for line in marker.read_text().splitlines() if "=" in line)
        try:
            k = Kernel(name, fields["suite"], fields["package"], fields["version"], root,
                       fields["release"])
        except KeyError:
            continue
        if k.vmlinuz.is_file():
            return k
    return None


def _depmod(root: Path, release: str) -> None:
    # Debian trixie ships modules in usr/lib/modules (merged /usr); virtme and
    # depmod look for <root>/lib/modules, so give the tree a usrmerge-style link.
    if not (root / "lib").exists() and (root / "usr" / "lib" / "modules").is_dir():
        (root / "lib").symlink_to("usr/lib")
    depmod = shutil.which("depmod") or "/usr/sbin/depmod"
    if not os.path.exists(depmod):
        raise KernelError("depmod not found (install kmod: tests/vm/setup.sh)")
    proc = subprocess.run([depmod, "-a", "-b", str(root), release], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not (root / "lib" / "modules" / release / "modules.dep").is_file():
        raise KernelError(f"depmod for {release} failed: {proc.stdout.strip()[-500:]}")


def ensure_kernel(name: str, *, refresh: bool = False) -> Kernel:
    """The unpacked kernel ``name`` ("6.1" or "6.12"), fetching it on first use.

    ``refresh`` (or ``PYLIBBPF_VM_REFRESH=1``) looks for a newer Debian upload even
    when a kernel is cached. Concurrent callers (parallel test runs) wait for each other.
    """
    if name not in SUITES:
        raise KernelError(f"unknown kernel {name!r}; known: {', '.join(SUITES)}")
    with open(cache_dir() / f".lock-{name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_kernel(name, refresh)


def _ensure_kernel(name: str, refresh: bool) -> Kernel:
    if name not in SUITES:
        raise KernelError(f"unknown kernel {name!r}; known: {', '.join(SUITES)}")
    refresh = refresh or os.environ.get("PYLIBBPF_VM_REFRESH") == "1"
    cached = _find_cached(name)
    if cached is not None and not refresh:
        return cached
    suite = SUITES[name]
    for tool in ("apt-get", "apt-cache", "dpkg"):
        if not shutil.which(tool):
            raise KernelError(f"{tool} not found: the VM kernels come from Debian's archive")
    work = cache_dir() / "apt" / suite
    apt = _Apt(suite, work)
    _say(f"resolving linux-image-amd64 in Debian {suite}")
    apt.run("apt-get", "update")
    meta = apt.run("apt-cache", "show", "linux-image-amd64").split("\n\n")[0]
    dep = _field(meta, "Depends") or ""
    m = re.match(r"(linux-image-[^\s,(]+)\s*\(=\s*([^)\s]+)\)", dep)
    if not m:
        raise KernelError(f"cannot read the image package from linux-image-amd64's "
                          f"Depends: {dep!r}")
    package, version = m.group(1), m.group(2)
    release = package[len("linux-image-"):]
    if cached is not None and (cached.package, cached.version) == (package, version):
        return cached
    root = cache_dir() / "kernels" / name / f"{package}_{version}"
    dl = work / "download"
    shutil.rmtree(dl, ignore_errors=True)
    dl.mkdir(parents=True)
    _say(f"downloading {package}={version}")
    subprocess.run(["apt-get", *apt.opts, "download", f"{package}={version}"], cwd=dl,
                   check=True, stdout=subprocess.DEVNULL)
    debs = list(dl.glob("*.deb"))
    if len(debs) != 1:
        raise KernelError(f"apt-get download {package} gave {debs}")
    shutil.rmtree(root, ignore_errors=True)
    tmp = root.with_name(root.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(["dpkg", "-x", str(debs[0]), str(tmp)], check=True)
    shutil.rmtree(dl, ignore_errors=True)
    if not (tmp / "boot" / f"vmlinuz-{release}").is_file():
        raise KernelError(f"{package} has no boot/vmlinuz-{release}")
    _depmod(tmp, release)
    tmp.rename(root)
    (root / ".complete").write_text(
        f"suite={suite}\npackage={package}\nversion={version}\nrelease={release}\n")
    # older uploads of the same kernel line are no longer needed
    for old in (cache_dir() / "kernels" / name).iterdir():
        if old != root:
            shutil.rmtree(old, ignore_errors=True)
    _say(f"kernel {name}: {package} {version} unpacked in {root}")
    return Kernel(name, suite, package, version, root, release)


if __name__ == "__main__":
    for n in sys.argv[1:] or list(SUITES):
        k = ensure_kernel(n)
        print(f"{k.name}\t{k.package}\t{k.version}\t{k.vmlinuz}")
