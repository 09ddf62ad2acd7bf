#!/usr/bin/env python3
"""Fetch, verify and unpack the pinned libbpf release.

Usage: ``python vendor/libbpf/fetch.py`` prints the path of a verified libbpf
source tree, fetching it first when needed. Sources, tried in order:

1. ``LIBBPF_SRC=/path/to/libbpf``: an existing tree (its version must match the
   pin unless ``LIBBPF_SRC_ANY_VERSION=1``); nothing is downloaded.
2. A tree already unpacked here from a verified tarball: nothing to do.
3. ``LIBBPF_TARBALL=/path/to/libbpf-X.Y.Z.tar.gz`` or a tarball already cached
   here.
4. Debian's source package, whose "orig" tarball is upstream's release archive
   byte for byte. The archive's address is taken from this machine's apt
   configuration (the URIs of its Debian entries), never written here.
5. Upstream's release tarball.

Whatever the source, a tarball's sha256 must equal the pin's. Next to the
unpacked tree, ``.pylibbpf-sha256`` holds that sha256 and ``.pylibbpf-origin``
where the tarball came from; :func:`describe` reads both (``pylibbpf version``
prints them).
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional

HERE = Path(__file__).resolve().parent


class FetchError(RuntimeError):
    pass


def read_pin(path: Path = HERE / "pin.toml") -> Dict[str, str]:
    """Parse the flat ``key = "value"`` pin file (no tomllib on old Pythons)."""
    pin: Dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r'\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*$', line)
        if m:
            pin[m.group(1)] = m.group(2)
    for key in ("version", "sha256"):
        if key not in pin:
            raise FetchError(f"{path}: missing {key!r}")
    return pin


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_version(tree: Path) -> Optional[str]:
    """The version a libbpf tree declares in src/libbpf_version.h."""
    hdr = tree / "src" / "libbpf_version.h"
    try:
        text = hdr.read_text()
    except OSError:
        return None
    major = re.search(r"LIBBPF_MAJOR_VERSION\s+(\d+)", text)
    minor = re.search(r"LIBBPF_MINOR_VERSION\s+(\d+)", text)
    if not (major and minor):
        return None
    return f"{major.group(1)}.{minor.group(1)}"


def _check_tree(tree: Path, pin: Dict[str, str]) -> None:
    if not (tree / "src" / "libbpf.c").is_file():
        raise FetchError(f"{tree} is not a libbpf source tree (no src/libbpf.c)")
    want = ".".join(pin["version"].split(".")[:2])
    have = tree_version(tree)
    if have != want and os.environ.get("LIBBPF_SRC_ANY_VERSION") != "1":
        raise FetchError(
            f"{tree} holds libbpf {have}, the pin is {pin['version']} "
            "(set LIBBPF_SRC_ANY_VERSION=1 to use it anyway)"
        )


def _unpack(tarball: Path, pin: Dict[str, str], dest: Path, origin: str) -> Path:
    digest = sha256_of(tarball)
    if digest != pin["sha256"]:
        raise FetchError(
            f"{tarball}: sha256 {digest} does not match the pin {pin['sha256']}"
        )
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(tarball) as tf:
            for member in tf.getmembers():
                name = member.name
                if name.startswith("/") or ".." in Path(name).parts:
                    raise FetchError(f"{tarball}: unsafe member {name!r}")
                if member.issym() or member.islnk():
                    target = member.linkname
                    if target.startswith("/") or ".." in Path(target).parts:
                        # libbpf's archive has none of these; refuse rather than guess
                        raise FetchError(f"{tarball}: unsafe link {name!r}")
            tf.extractall(work)
        tops = [p for p in work.iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise FetchError(f"{tarball}: expected one top-level directory")
        _check_tree(tops[0], pin)
        (tops[0] / ".pylibbpf-sha256").write_text(digest + "\n")
        (tops[0] / ".pylibbpf-origin").write_text(origin + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tops[0].rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


# --- Debian: the archive's URIs come from this machine's apt configuration ----

def _apt_source_files(etc: Path) -> Iterator[Path]:
    if (etc / "sources.list").is_file():
        yield etc / "sources.list"
    yield from sorted((etc / "sources.list.d").glob("*.list"))
    yield from sorted((etc / "sources.list.d").glob("*.sources"))


def debian_archive_uris(etc: Path = Path("/etc/apt")) -> List[str]:
    """URIs of the machine's Debian main archive (not -security, not others)."""
    uris: List[str] = []

    def consider(uri: str, suites: List[str], components: List[str]) -> None:
        if "main" not in components:
            return
        if any(s.endswith("-security") or "/updates" in s for s in suites):
            return
        if not re.search(r"/debian/?$", uri):
            return
        if uri not in uris:
            uris.append(uri)

    for path in _apt_source_files(etc):
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: Dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    consider(uri, fields.get("suites", "").split(),
                             fields.get("components", "").split())
        else:
            for line in text.splitlines():
                line = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
                if len(line) >= 4 and line[0] in ("deb", "deb-src"):
                    consider(line[1], [line[2]], line[3:])
    return uris


def _fetch_debian(pin: Dict[str, str], cache: Path) -> Path:
    if not shutil.which("apt-get"):
        raise FetchError("apt-get not found")
    uris = debian_archive_uris()
    if not uris:
        raise FetchError("no Debian archive in this machine's apt configuration")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    work = cache.parent / ".work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "parts").mkdir()
    signed = f"Signed-By: {keyring}\n" if os.path.exists(keyring) else ""
    (work / "parts" / "libbpf-src.sources").write_text(
        "Types: deb-src\n"
        f"URIs: {' '.join(uris)}\n"
        f"Suites: {pin.get('debian_suite', 'trixie')}\n"
        "Components: main\n" + signed
    )
    opts = [
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", f"Dir::Etc::SourceParts={work / 'parts'}",
        "-o", f"Dir::State::Lists={work / 'lists'}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
        "-q",
    ]
    try:
        subprocess.run(["apt-get", *opts, "update"], check=True, cwd=work,
                       stdout=subprocess.DEVNULL)
        spec = f"{pin.get('debian_source', 'libbpf')}={pin['debian_version']}"
        subprocess.run(["apt-get", *opts, "source", "--download-only", spec],
                       check=True, cwd=work, stdout=subprocess.DEVNULL)
        origs = glob.glob(str(work / "*.orig.tar.*"))
        if len(origs) != 1:
            raise FetchError("Debian source package has no orig tarball")
        shutil.move(origs[0], cache)
    except subprocess.CalledProcessError as e:
        raise FetchError(f"apt-get failed: {e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cache


def _fetch_upstream(pin: Dict[str, str], cache: Path) -> Path:
    url = pin["upstream_url"].format(version=pin["version"])
    tmp = cache.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        raise FetchError(f"{url}: {e}") from None
    tmp.rename(cache)
    return cache


def ensure_libbpf(quiet: bool = False, workdir: Path = HERE,
                  pin: Optional[Dict[str, str]] = None) -> Path:
    """Return the path of a verified libbpf tree for the pinned release.

    ``workdir`` is where tarballs are cached and trees unpacked.
    """
    pin = pin or read_pin()

    def say(msg: str) -> None:
        if not quiet:
            print(f"libbpf: {msg}", file=sys.stderr)

    env_src = os.environ.get("LIBBPF_SRC")
    if env_src:
        tree = Path(env_src).resolve()
        _check_tree(tree, pin)
        say(f"using LIBBPF_SRC={tree}")
        return tree

    dest = workdir / f"libbpf-{pin['version']}"
    marker = dest / ".pylibbpf-sha256"
    if marker.is_file() and marker.read_text().strip() == pin["sha256"]:
        return dest

    cache = workdir / f"libbpf-{pin['version']}.tar.gz"
    env_tar = os.environ.get("LIBBPF_TARBALL")
    if env_tar:
        say(f"using LIBBPF_TARBALL={env_tar}")
        return _unpack(Path(env_tar), pin, dest, "LIBBPF_TARBALL")
    if cache.is_file() and sha256_of(cache) == pin["sha256"]:
        # in an sdist, the tarball it ships; in a checkout, an earlier fetch
        origin = (cache.with_name(cache.name + ".origin").read_text().strip()
                  if cache.with_name(cache.name + ".origin").is_file() else "a cached tarball")
        return _unpack(cache, pin, dest, origin)

    errors = []
    for name, fetch in (("Debian source package", _fetch_debian),
                        ("upstream release", _fetch_upstream)):
        try:
            say(f"fetching {pin['version']} from the {name}")
            tarball = fetch(pin, cache)
            origin = (f"Debian source package {pin.get('debian_source', 'libbpf')} "
                      f"{pin.get('debian_version', '')}".strip()
                      if fetch is _fetch_debian else "upstream release tarball")
            cache.with_name(cache.name + ".origin").write_text(origin + "\n")
            tree = _unpack(tarball, pin, dest, origin)
            say(f"verified sha256 {pin['sha256']}, unpacked to {tree}")
            return tree
        except FetchError as e:
            cache.unlink(missing_ok=True)
            errors.append(f"{name}: {e}")
    raise FetchError(
        "could not fetch libbpf " + pin["version"] + ":\n  " + "\n  ".join(errors)
        + "\nSet LIBBPF_SRC to a libbpf tree or LIBBPF_TARBALL to its release tarball."
    )


def describe(tree: Path, pin: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """What is known about where a libbpf tree came from: ``version`` (the pin's, or
    the tree's major.minor), ``sha256`` (of the verified tarball, "" for a
    LIBBPF_SRC tree) and ``origin``."""
    def marker(name: str) -> str:
        try:
            return (tree / name).read_text().strip()
        except OSError:
            return ""
    sha = marker(".pylibbpf-sha256")
    pin = pin or read_pin()
    if sha and sha == pin["sha256"]:
        return {"version": pin["version"], "sha256": sha,
                "origin": marker(".pylibbpf-origin") or "a verified tarball"}
    return {"version": tree_version(tree) or "unknown", "sha256": "",
            "origin": f"LIBBPF_SRC tree {tree} (not checksummed)"}


if __name__ == "__main__":
    try:
        print(ensure_libbpf())
    except FetchError as e:
        sys.exit(f"error: {e}")
