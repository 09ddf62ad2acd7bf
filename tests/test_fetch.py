"""vendor/libbpf/fetch.py: the pin, the sources it tries, the checksum it enforces."""
from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("libbpf_fetch", ROOT / "vendor/libbpf/fetch.py")
assert _spec and _spec.loader
fetch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetch)


def test_pin_has_version_and_sha256() -> None:
    pin = fetch.read_pin()
    assert pin["version"].count(".") == 2
    assert len(pin["sha256"]) == 64 and int(pin["sha256"], 16) >= 0


def test_debian_uris_come_from_apt_config(tmp_path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n"
        "Components: main\nEnabled: no\n")
    (d / "other.list").write_text("deb [arch=amd64] https://vendor.example/apt stable main\n"
                                  "deb http://second.example/debian/ bookworm main contrib\n")
    assert fetch.debian_archive_uris(tmp_path) == ["http://second.example/debian/",
                                                  "http://mirror.example/debian"]


def test_libbpf_src_must_be_a_libbpf_tree(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LIBBPF_SRC", str(tmp_path))
    with pytest.raises(fetch.FetchError, match="not a libbpf source tree"):
        fetch.ensure_libbpf(quiet=True, workdir=tmp_path)


def test_libbpf_src_is_used_as_is(monkeypatch) -> None:
    tree = fetch.ensure_libbpf(quiet=True)  # the tree the build used
    monkeypatch.setenv("LIBBPF_SRC", str(tree))
    assert fetch.ensure_libbpf(quiet=True) == tree


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_wrong_checksum_is_refused(tmp_path, monkeypatch) -> None:
    bad = _tarball(tmp_path / "libbpf-x.tar.gz", {"libbpf-x/src/libbpf.c": b"/* */"})
    monkeypatch.setenv("LIBBPF_TARBALL", str(bad))
    monkeypatch.delenv("LIBBPF_SRC", raising=False)
    with pytest.raises(fetch.FetchError, match="does not match the pin"):
        fetch.ensure_libbpf(quiet=True, workdir=tmp_path)
    assert not (tmp_path / f"libbpf-{fetch.read_pin()['version']}").exists()


def test_verified_tarball_unpacks_once(tmp_path, monkeypatch) -> None:
    files = {
        "libbpf-9.9.0/src/libbpf.c": b"/* */",
        "libbpf-9.9.0/src/libbpf_version.h":
            b"#define LIBBPF_MAJOR_VERSION 9\n#define LIBBPF_MINOR_VERSION 9\n",
    }
    tar = _tarball(tmp_path / "t.tar.gz", files)
    pin = {"version": "9.9.0", "sha256": fetch.sha256_of(tar), "upstream_url": "http://x/{version}"}
    monkeypatch.setenv("LIBBPF_TARBALL", str(tar))
    monkeypatch.delenv("LIBBPF_SRC", raising=False)
    tree = fetch.ensure_libbpf(quiet=True, workdir=tmp_path, pin=pin)
    assert (tree / "src" / "libbpf.c").read_bytes() == b"/* */"
    monkeypatch.delenv("LIBBPF_TARBALL")
    tar.unlink()
    assert fetch.ensure_libbpf(quiet=True, workdir=tmp_path, pin=pin) == tree  # no refetch


def test_unsafe_tarball_member_is_refused(tmp_path, monkeypatch) -> None:
    tar = _tarball(tmp_path / "evil.tar.gz", {"../escape/src/libbpf.c": b"x"})
    pin = {"version": "9.9.0", "sha256": fetch.sha256_of(tar), "upstream_url": "http://x"}
    monkeypatch.setenv("LIBBPF_TARBALL", str(tar))
    monkeypatch.delenv("LIBBPF_SRC", raising=False)
    with pytest.raises(fetch.FetchError, match="unsafe member"):
        fetch.ensure_libbpf(quiet=True, workdir=tmp_path, pin=pin)


def test_tree_records_where_its_tarball_came_from(tmp_path, monkeypatch) -> None:
    """The sdist ships the tarball with a note of its origin; the unpacked tree keeps
    both the verified sha256 and that origin (``pylibbpf version`` prints them)."""
    files = {
        "libbpf-9.9.0/src/libbpf.c": b"/* */",
        "libbpf-9.9.0/src/libbpf_version.h":
            b"#define LIBBPF_MAJOR_VERSION 9\n#define LIBBPF_MINOR_VERSION 9\n",
    }
    tar = _tarball(tmp_path / "libbpf-9.9.0.tar.gz", files)
    (tmp_path / "libbpf-9.9.0.tar.gz.origin").write_text("the sdist's tarball\n")
    pin = {"version": "9.9.0", "sha256": fetch.sha256_of(tar), "upstream_url": "http://x/{version}"}
    monkeypatch.delenv("LIBBPF_TARBALL", raising=False)
    monkeypatch.delenv("LIBBPF_SRC", raising=False)
    tree = fetch.ensure_libbpf(quiet=True, workdir=tmp_path, pin=pin)
    assert fetch.describe(tree, pin) == {"version": "9.9.0", "sha256": pin["sha256"],
                                         "origin": "the sdist's tarball"}


def test_tree_from_libbpf_src_is_described_as_unverified(tmp_path) -> None:
    tree = tmp_path / "libbpf"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "libbpf_version.h").write_text(
        "#define LIBBPF_MAJOR_VERSION 1\n#define LIBBPF_MINOR_VERSION 5\n")
    info = fetch.describe(tree)
    assert info["sha256"] == "" and info["version"] == "1.5"
    assert info["origin"] == f"LIBBPF_SRC tree {tree} (not checksummed)"
