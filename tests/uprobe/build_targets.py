"""Build the uprobe test targets from tests/uprobe/*.c{,pp} (used by the
session fixtures of tests/test_uprobe.py and tests/test_elf.py)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict

SRC = Path(__file__).resolve().parent


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}")


class Targets(Dict[str, Path]):
    """name -> path; a target that could not be built (no g++) skips the test."""

    def __missing__(self, key: str) -> Path:
        if key == "cxxprog":
            import pytest

            pytest.skip("g++ is not installed (Debian package g++): no C++ target")
        raise KeyError(key)


def build(d: Path) -> Dict[str, Path]:
    """Compile every target into ``d``; returns file name -> path.

    * libplbtarget.so: own shared library, linked at 0x20000000 (address != offset)
    * prog_pie / prog_nopie: the C target, PIE and non-PIE, linked to it
    * prog_sysv: PIE with a SysV .hash only and every symbol exported
    * cxxprog: C++ target (mangled names, overloads, a member function)
    * semprog: a USDT probe guarded by a semaphore
    * prog_stripped + prog.debug: stripped, debug file found by .gnu_debuglink
    * prog_bare: stripped, no debug link
    """
    inc = f"-I{SRC}"
    _run("gcc", "-O1", "-g", "-shared", "-fPIC", "-Wl,-Ttext-segment=0x20000000",
         "-o", str(d / "libplbtarget.so"), str(SRC / "target_lib.c"))
    link = ["-L", str(d), "-lplbtarget", "-Wl,-rpath,$ORIGIN"]
    _run("gcc", "-O1", "-g", "-fPIE", "-pie", inc, str(SRC / "prog.c"), *link,
         "-o", str(d / "prog_pie"))
    _run("gcc", "-O1", "-g", "-fno-pie", "-no-pie", inc, str(SRC / "prog.c"), *link,
         "-o", str(d / "prog_nopie"))
    _run("gcc", "-O1", "-g", "-fPIE", "-pie", "-rdynamic", "-Wl,--hash-style=sysv", inc,
         str(SRC / "prog.c"), *link, "-o", str(d / "prog_sysv"))
    if shutil.which("g++"):  # without it the C++ tests skip (Debian package g++)
        _run("g++", "-O1", "-g", "-fPIE", "-pie", str(SRC / "cxxprog.cpp"),
             "-o", str(d / "cxxprog"))
    _run("gcc", "-O1", "-g", "-fPIE", "-pie", str(SRC / "semprog.c"), "-o", str(d / "semprog"))
    _run("objcopy", "--only-keep-debug", str(d / "prog_pie"), str(d / "prog.debug"))
    _run("strip", "--strip-all", "-o", str(d / "prog_stripped"), str(d / "prog_pie"))
    _run("objcopy", f"--add-gnu-debuglink={d / 'prog.debug'}", str(d / "prog_stripped"))
    _run("strip", "--strip-all", "-o", str(d / "prog_bare"), str(d / "prog_pie"))
    return Targets({p.name: p for p in d.iterdir()})
