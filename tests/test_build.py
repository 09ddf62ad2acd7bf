"""The extension embeds the pinned libbpf and ships its headers."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Optional, Sequence, Tuple

import pytest

import pylibbpf
import pylibbpf._libbpf
from pylibbpf import include_dir
from _children import same_pylibbpf

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


def test_captured_libbpf_messages_are_whole_in_order_and_per_thread(caplog) -> None:
    """libbpf_log() captures in C (a buffer, no Python callback per line): messages come
    back whole (also past the buffer's first 512 bytes and the 1 KiB format buffer), in
    order, undecodable bytes replaced; a nested capture takes its own; another thread's
    messages are not captured here and reach logging; at DEBUG the captured ones are
    logged too, only at DEBUG."""
    import logging
    import threading

    from pylibbpf._ffi import lib, libbpf_log

    caplog.set_level(logging.DEBUG, logger="pylibbpf")
    long = "".join(f"{i:05d}," for i in range(1500))  # 9,000 bytes
    with libbpf_log() as outer:
        lib.pylibbpf_log_emit(lib.LIBBPF_WARN, b"libbpf: first\n")
        with libbpf_log() as inner:
            lib.pylibbpf_log_emit(lib.LIBBPF_WARN, long.encode())
            lib.pylibbpf_log_emit(lib.LIBBPF_INFO, b"an info line\n")
        assert inner.warnings == [long]  # read while the outer capture goes on
        t = threading.Thread(target=lib.pylibbpf_log_emit,
                             args=(lib.LIBBPF_WARN, b"libbpf: from another thread\n"))
        t.start()
        t.join()
        assert outer.warnings == ["libbpf: first"]  # read mid-capture, then more comes
        lib.pylibbpf_log_emit(lib.LIBBPF_WARN, "libbpf: second é ".encode() + b"\xff\n")
    assert outer.warnings == ["libbpf: first", "libbpf: second é \ufffd"]
    assert inner.records == [(lib.LIBBPF_WARN, long), (lib.LIBBPF_INFO, "an info line\n")]
    assert inner.text() == long + "an info line\n"
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "pylibbpf"]
    assert (logging.WARNING, "libbpf: from another thread") in logged
    assert (logging.DEBUG, "libbpf: first") in logged and (logging.DEBUG, long) in logged
    assert not any(lvl > logging.DEBUG and "from another thread" not in msg
                   for lvl, msg in logged)


def test_a_capture_dropped_while_on_never_frees_what_libbpf_writes_to() -> None:
    """libbpf_log()'s __enter__ is one C call, so an exception can't separate switching
    the print target from the with-block's cleanup; a capture that dies while still on
    (entered by hand, never left) keeps its buffer: libbpf's next messages land there,
    not in freed memory. In a child: the capture is abandoned on purpose."""
    import subprocess

    code = ("import gc, pylibbpf\nfrom pylibbpf._ffi import lib, libbpf_log\n"
            "cap = libbpf_log()\ncap.__enter__()\ndel cap\ngc.collect()\n"
            "for i in range(2000):\n    lib.pylibbpf_log_emit(lib.LIBBPF_WARN, b'x' * 3000)\n"
            "with libbpf_log() as log:\n    lib.pylibbpf_log_emit(lib.LIBBPF_WARN, b'mine')\n"
            "print(log.warnings)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
    assert res.stdout.strip() == "['mine']", res.stdout


# --- when the extension does not import: one message per cause -------------------------

def _package_copy(top: Path, so_name: Optional[str] = None, so_target: Optional[Path] = None,
                  so_bytes: bytes = b"") -> Path:
    """A copy of the package's import path (__init__ and _ffi) under ``top``, with an
    extension file ``so_name`` (a symlink to ``so_target``, or ``so_bytes``) or none."""
    pkg = top / "pylibbpf"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "_ffi.py"):
        shutil.copy2(ROOT / "pylibbpf" / name, pkg / name)
    if so_name and so_target:
        (pkg / so_name).symlink_to(so_target)
    elif so_name:
        (pkg / so_name).write_bytes(so_bytes)
    return pkg


def _import_error(top: Path, *python_flags: str) -> str:
    """Import the copy under ``top`` in a fresh interpreter; its ImportError's message."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    code = (f"import sys; sys.path.insert(0, {str(top)!r})\n"
            "try:\n    import pylibbpf\n"
            "except ImportError as e:\n    print(e)\nelse:\n    print('IMPORTED')\n")
    res = subprocess.run([sys.executable, *python_flags, "-c", code], cwd=top, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "IMPORTED" not in res.stdout
    return res.stdout


def _ext_suffix() -> str:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    assert suffix
    return str(suffix)


def test_extension_not_built_says_how_to_build(tmp_path: Path) -> None:
    _package_copy(tmp_path)
    msg = _import_error(tmp_path)
    assert "is not built" in msg and "_libbpf*.so" in msg
    assert "./dev.sh setup" in msg and "pip install ." in msg
    assert str(tmp_path / "pylibbpf") in msg


def test_extension_without_cffi_names_the_interpreter(tmp_path: Path) -> None:
    """The wrong Python (the system's python3, no cffi): -S keeps site-packages, and
    with them _cffi_backend, off sys.path."""
    probe = subprocess.run([sys.executable, "-S", "-c", "import _cffi_backend"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode != 0, "_cffi_backend importable without site-packages?"
    real = Path(pylibbpf._libbpf.__file__).resolve()
    top = tmp_path / "checkout"
    _package_copy(top, real.name, real)
    msg = _import_error(top, "-S")
    assert msg.startswith(f"cffi is not installed for the Python running now, {sys.executable} ")
    assert "_cffi_backend" in msg and "wrong interpreter" in msg
    assert "pip install cffi" in msg                    # no .venv next to this copy
    # in a checkout set up by dev.sh, it names the environment's python
    (top / ".venv" / "bin").mkdir(parents=True)
    (top / ".venv" / "bin" / "python").touch()
    (top / "dev.sh").touch()
    msg = _import_error(top, "-S")
    assert str(top / ".venv" / "bin" / "python") in msg
    assert ". .venv/bin/activate" in msg and "./dev.sh python" in msg
    assert "sudo .venv/bin/python" in msg


def test_extension_for_another_python_names_both(tmp_path: Path) -> None:
    m = re.match(r"\.cpython-(\d)(\d+)(.*)$", _ext_suffix())
    if not m:
        pytest.skip(f"not a CPython extension suffix: {_ext_suffix()}")
    other = f"_libbpf.cpython-{m.group(1)}{int(m.group(2)) + 1}{m.group(3)}"
    _package_copy(tmp_path, other, so_bytes=b"\x7fELF")
    msg = _import_error(tmp_path)
    assert "built for another Python" in msg
    assert f"{other} (CPython {m.group(1)}.{int(m.group(2)) + 1})" in msg
    assert f"loads only _libbpf{_ext_suffix()}" in msg and sys.executable in msg
    assert "./dev.sh setup" in msg


def test_extension_that_fails_to_load_quotes_the_loader(tmp_path: Path) -> None:
    _package_copy(tmp_path, "_libbpf" + _ext_suffix(), so_bytes=b"not an ELF file")
    msg = _import_error(tmp_path)
    assert "failed to load" in msg and str(tmp_path / "pylibbpf" / "_libbpf") in msg


# --- build_ffi.py: missing build dependencies, all named at once ------------------------

def _build_ffi() -> ModuleType:
    """build_ffi.py as a module: imported under its own name it builds nothing."""
    spec = importlib.util.spec_from_file_location("build_ffi", ROOT / "build_ffi.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert not hasattr(mod, "ffibuilder")
    return mod


def _fake_tree(tmp_path: Path, tools: Sequence[str], headers: Sequence[str],
               python_h: bool) -> Tuple[str, str, str]:
    """(PATH, include dir, Python include dir) holding only what is asked for."""
    bin_dir, inc, pyinc = tmp_path / "bin", tmp_path / "include", tmp_path / "python3.x"
    for d in (bin_dir, inc, pyinc):
        d.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    for header in headers:
        (inc / header).write_text("/* fake */\n")
    if python_h:
        (pyinc / "Python.h").write_text("/* fake */\n")
    return str(bin_dir), str(inc), str(pyinc)


def test_build_deps_all_present(tmp_path: Path) -> None:
    b = _build_ffi()
    path, inc, pyinc = _fake_tree(tmp_path, ["x86_64-linux-gnu-gcc", "ar"],
                                  ["libelf.h", "zlib.h"], True)
    assert b.check_build_deps(cc=["x86_64-linux-gnu-gcc", "-pthread"], path=path,
                              include_dirs=[str(tmp_path / "nope"), inc],
                              python_include=pyinc) == []


def test_build_deps_all_missing_in_one_message(tmp_path: Path) -> None:
    b = _build_ffi()
    path, inc, pyinc = _fake_tree(tmp_path, [], [], False)
    missing = b.check_build_deps(cc=["x86_64-linux-gnu-gcc"], path=path, include_dirs=[inc],
                                 python_include=pyinc)
    assert [pkg for _, pkg in missing] == ["gcc", "binutils", "python3-dev", "libelf-dev",
                                           "zlib1g-dev"]
    msg = b.build_deps_message(missing)
    assert msg == ("cannot build pylibbpf: missing C compiler x86_64-linux-gnu-gcc (Debian "
                   "package gcc), ar (binutils), Python.h (python3-dev), libelf.h (libelf-dev), "
                   "zlib.h (zlib1g-dev) — install with: apt-get install gcc binutils "
                   "python3-dev libelf-dev zlib1g-dev")


def test_build_deps_some_missing(tmp_path: Path) -> None:
    b = _build_ffi()
    path, inc, pyinc = _fake_tree(tmp_path, ["clang", "ar"], ["zlib.h"], True)
    missing = b.check_build_deps(cc=["clang"], path=path, include_dirs=[inc],
                                 python_include=pyinc)
    assert b.build_deps_message(missing) == (
        "cannot build pylibbpf: missing libelf.h (Debian package libelf-dev) — install with: "
        "apt-get install libelf-dev")
    missing = b.check_build_deps(cc=["clang-19"], path=str(tmp_path / "empty"),
                                 include_dirs=[inc], python_include=pyinc)
    assert missing[0] == ("C compiler clang-19", "clang")


def test_compiler_search_list_is_parsed() -> None:
    gcc_output = ("ignoring nonexistent directory \"/usr/local/include/x86_64-linux-gnu\"\n"
                  "#include \"...\" search starts here:\n"
                  "#include <...> search starts here:\n"
                  " /usr/lib/gcc/x86_64-linux-gnu/12/include\n"
                  " /usr/local/include\n"
                  " /usr/include\n"
                  "End of search list.\n"
                  " /not/this\n")
    assert _build_ffi().parse_search_dirs(gcc_output) == [
        "/usr/lib/gcc/x86_64-linux-gnu/12/include", "/usr/local/include", "/usr/include"]
    clang_output = ("#include <...> search starts here:\n"
                    " /usr/include\n"
                    " /Library/Frameworks (framework directory)\n"
                    "End of search list.\n")
    assert _build_ffi().parse_search_dirs(clang_output) == ["/usr/include",
                                                            "/Library/Frameworks"]


def test_build_stops_before_fetching_when_the_compiler_is_missing(tmp_path: Path) -> None:
    """'python build_ffi.py' (and pip, which runs the same file) ends with the one message,
    not a compiler traceback; nothing is fetched or compiled first."""
    env = dict(os.environ, CC="pylibbpf-test-no-such-cc", LIBBPF_SRC=str(tmp_path / "none"))
    res = subprocess.run([sys.executable, str(ROOT / "build_ffi.py")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.startswith("cannot build pylibbpf: missing C compiler "
                                 "pylibbpf-test-no-such-cc (Debian package gcc)")
    assert "apt-get install gcc" in res.stderr and "Traceback" not in res.stderr


# --- build_ffi.py: the kernel-BTF hook in libbpf's btf.c --------------------------------

def test_the_kernel_btf_hook_changes_one_line_of_the_pinned_btf_c(tmp_path: Path) -> None:
    b = _build_ffi()
    src = next((ROOT / "vendor" / "libbpf").glob("libbpf-*/src"))
    original = (src / "btf.c").read_text().splitlines()
    hooked = b.hooked_btf_source(src).splitlines()
    added = [line for line in hooked if line not in original]
    assert len(added) == 3 and "pylibbpf_kernel_btf_trusted(void) __attribute__((weak));" \
        in added[1] and added[2] == "\terr = err ?: ((is_mmap && pylibbpf_kernel_btf_trusted " \
        "&& pylibbpf_kernel_btf_trusted()) ? 0 : btf_sanity_check(btf));", added
    assert [line for line in original if line not in hooked] == \
        ["\terr = err ?: btf_sanity_check(btf);"]
    # another release whose btf_new() reads otherwise: the build stops and says why
    (tmp_path / "btf.c").write_text("\n".join(original).replace("bool is_mmap)", "bool m)"))
    with pytest.raises(SystemExit, match="btf_new.. is not what pylibbpf's kernel-BTF hook"):
        b.hooked_btf_source(tmp_path)
