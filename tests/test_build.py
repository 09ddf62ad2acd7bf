"""The extension embeds the pinned libbpf and ships its headers."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pylibbpf
from pylibbpf import include_dir

ROOT = Path(__file__).resolve().parent.parent


def pinned_version() -> str:
    text = (ROOT / "vendor" / "libbpf" / "pin.toml").read_text()
    m = re.search(r'^version = "(\d+)\.(\d+)\.\d+"', text, re.M)
    assert m
    return f"{m.group(1)}.{m.group(2)}"


def test_libbpf_version_is_the_pin() -> None:
    assert pylibbpf.libbpf_version() == pinned_version()


def test_headers_are_installed_with_the_package() -> None:
    inc = include_dir() / "bpf"
    for name in ("bpf_helpers.h", "bpf_tracing.h", "bpf_core_read.h", "usdt.bpf.h",
                 "bpf_helper_defs.h", "bpf_endian.h", "libbpf.h"):
        assert (inc / name).is_file(), name
    version_h = (inc / "libbpf_version.h").read_text()
    major, minor = pinned_version().split(".")
    assert re.search(rf"LIBBPF_MAJOR_VERSION\s+{major}\b", version_h)
    assert re.search(rf"LIBBPF_MINOR_VERSION\s+{minor}\b", version_h)


def test_import_from_another_directory(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import pylibbpf; print(pylibbpf.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "pylibbpf" in out.stdout


def test_vmlinux_h_is_generated_from_kernel_btf() -> None:
    text = pylibbpf.vmlinux_h()
    assert text.startswith("/*") and "#ifndef __VMLINUX_H__" in text
    assert re.search(r"^struct task_struct \{", text, re.M)
    assert "preserve_access_index" in text
    assert text.rstrip().endswith("#endif /* __VMLINUX_H__ */")


def test_vmlinux_h_from_missing_btf_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.btf"
    try:
        pylibbpf.vmlinux_h(missing)
    except pylibbpf.BPFNotFoundError as e:
        assert str(missing) in str(e)
    else:
        raise AssertionError("expected BPFNotFoundError")


def test_libbpf_messages_go_to_logging(bpf_objects, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="pylibbpf")
    with pylibbpf.Object(bpf_objects["core_task"]) as obj:
        obj.load()
    assert any(r.name == "pylibbpf" and r.getMessage().startswith("libbpf: ")
               for r in caplog.records)
