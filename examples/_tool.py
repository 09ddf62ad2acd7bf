"""What the example tools share: running in the project's venv, the command line
and the timed loop. Not part of pylibbpf; each example imports it from its own
directory. (The packet examples' playground, two network namespaces joined by a
veth pair, is pylibbpf.testing.VethPair.)"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent


def _run_in_the_project_venv() -> None:
    """``python3 examples/x.py`` (or ``sudo python3 …``) with an interpreter that
    cannot import pylibbpf: run the tool again with the project's ``.venv`` (made by
    ``./dev.sh setup``), or say how to set it up."""
    try:
        import pylibbpf  # noqa: F401
        return
    except ModuleNotFoundError as e:
        if e.name not in ("pylibbpf", "_cffi_backend", "cffi", "elftools"):
            raise
        missing = e.name
    venv = HERE.parent / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(python), [str(python), *sys.argv])
    sys.exit(f"{Path(sys.argv[0]).name}: {sys.executable} cannot import {missing}. "
             "Set up the project with ./dev.sh setup, then run the tool with "
             f"./dev.sh python examples/{Path(sys.argv[0]).name}")


_run_in_the_project_venv()

# Command names and paths read from the kernel are bytes, decoded into str with
# surrogateescape (pylibbpf.CString): print the ones that are not UTF-8 byte for
# byte, as a C tool would, instead of failing with UnicodeEncodeError.
if hasattr(sys.stdout, "reconfigure"):
    sys.stdout.reconfigure(errors="surrogateescape")


def arguments(doc: Optional[str], default_duration: float = 5.0,
              setup: Optional[Callable[[argparse.ArgumentParser], object]] = None
              ) -> argparse.Namespace:
    """``--duration SECONDS`` (0: until Ctrl-C) plus whatever ``setup`` adds."""
    first = (doc or "").strip().split("\n\n")[0]
    ap = argparse.ArgumentParser(description=first)
    ap.add_argument("--duration", type=float, default=default_duration,
                    help=f"seconds to run (0: until Ctrl-C); default {default_duration:g}")
    if setup is not None:
        setup(ap)
    return ap.parse_args()


def run_for(duration: float, step: Callable[[], object]) -> None:
    """Call ``step()`` (which should block briefly, e.g. ``rb.poll(100)``) until
    ``duration`` seconds have passed (forever with 0) or Ctrl-C."""
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            step()
    except KeyboardInterrupt:
        pass


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("this example needs root (CAP_BPF, CAP_SYS_ADMIN)")
