"""pytest plugin loaded INSIDE the VM (``-p guest_plugin``, see guest.sh).

- BPF objects: the host compiled every ``tests/bpf/*.bpf.c`` against its own
  kernel's BTF and put them in ``$PYLIBBPF_VM_OBJECTS``. The guest uses exactly those
  (CO-RE relocates them for the guest's kernel) instead of running clang under
  emulation: ``pylibbpf.compile`` copies the prebuilt object when there is one.
- Tests listed for this kernel in run.py's KNOWN_ISSUES are marked xfail (not
  strict) with the reason, so the host reports them as skipped, saying why.
- Every test case in the junit XML carries a ``nodeid`` property, so the host maps
  results back to test ids without guessing from class names.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Optional

import pytest


def _patch_compile() -> None:
    objs = os.environ.get("PYLIBBPF_VM_OBJECTS")
    if not objs:
        return
    import pylibbpf

    real_compile = pylibbpf.compile
    real_vmlinux_h_path = pylibbpf.vmlinux_h_path
    prebuilt = Path(objs)

    def compile(source: Any = None, output: Optional[Any] = None, **kw: Any) -> Path:
        if source is None:  # compile(text=...): nothing prebuilt to stand in for it
            return real_compile(source, output, **kw)
        src = Path(os.fspath(source))
        name = src.name[: -len(".bpf.c")] if src.name.endswith(".bpf.c") else src.stem
        obj = prebuilt / f"{name}.bpf.o"
        if obj.is_file():
            out = Path(os.fspath(output)) if output is not None else src.with_suffix(".o")
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(obj, out)
            return out
        return real_compile(source, output, **kw)

    def vmlinux_h_path(btf_path: Any = None) -> Path:
        # conftest calls this once before its parallel compiles: a no-op when every
        # source has a prebuilt object; otherwise (a source newer than the host's
        # build) generate the guest's vmlinux.h once, as on the host
        sources = (Path(os.environ.get("PYLIBBPF_REPO", ".")) / "tests" / "bpf").glob("*.bpf.c")
        if btf_path is None and all(
                (prebuilt / (src.name[: -len(".bpf.c")] + ".bpf.o")).is_file() for src in sources):
            return prebuilt
        return real_vmlinux_h_path(btf_path)

    pylibbpf.compile = compile  # type: ignore[assignment]
    pylibbpf.vmlinux_h_path = vmlinux_h_path  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    _patch_compile()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not any(k == "nodeid" for k, _ in item.user_properties):
        item.user_properties.append(("nodeid", item.nodeid))


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    run = os.environ.get("PYLIBBPF_VM_RUNDIR")
    known = {}
    if run and os.path.exists(os.path.join(run, "known")):
        for line in open(os.path.join(run, "known")):
            if "\t" in line:
                nodeid, why = line.rstrip("\n").split("\t", 1)
                known[nodeid] = why
    for item in items:
        if item.nodeid in known:
            item.add_marker(pytest.mark.xfail(
                reason=f"known issue on {os.environ.get('PYLIBBPF_VM_KERNEL')}: "
                       f"{known[item.nodeid]}", strict=False))
