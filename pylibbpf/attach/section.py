"""Attach by SEC() definition: libbpf parses the section name (``tp/…``,
``uprobe/…``, ``cgroup_skb/egress`` …) and picks the attach kind."""
from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Optional

from .._ffi import ffi, lib, libbpf_log
from ..link import Link

if TYPE_CHECKING:
    from ..program import Program


def attach_by_section(prog: "Program", *, auto: bool = False) -> Optional[Link]:
    """Attach ``prog`` as its SEC() says.

    With ``auto`` (``Object.attach_all()``), a section that does not say where
    to attach (``SEC("xdp")``, ``SEC("tc")`` …) gives None instead of an error.
    """
    prog._check_has_ptr("attach by section")
    prog.fd  # raises when not loaded
    what = f"attach program {prog.name!r} (SEC {prog.section!r})"
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach(prog._ptr)
        err = ffi.errno
    if auto and ptr == ffi.NULL and err == _errno.EOPNOTSUPP and not log.warnings:
        return None  # not auto-attachable
    return Link._from_ptr(ptr, err, what, log)
