"""USDT probes (SystemTap SDT notes) by provider and name.

pylibbpf.elf finds the binary (a path, a library name, or any file a process
maps) and checks the probe exists, so a typo gets a clean error with the probes
that do exist; libbpf then decodes the probe's arguments and attaches.
BPF programs use ``SEC("usdt")`` and ``#include <bpf/usdt.bpf.h>``.
"""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..elf import find_usdt
from ..errors import BPFError
from ..link import USDT_COMPOSITE, Link
from ..types import ProgramType
from ._common import during, require_type
from .uprobe_multi import _bpf_program, _check_int, _check_pid

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_usdt"]

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]


def attach_usdt(prog: "Program", binary: Optional[PathLike], provider: str, name: str, *,
                pid: int = -1, cookie: int = 0) -> Link:
    where = "pid's files" if binary is None else repr(os.fspath(binary))
    what = f"attach usdt {prog.name!r} to {provider}:{name} in {where}"
    pid = _check_pid(pid)
    if pid > 0:
        what += f" of pid {pid}"
    _check_int(cookie, "cookie", 0, (1 << 64) - 1)
    if binary is None and pid <= 0:
        raise ValueError(f"{what}: give a binary, or a pid whose files are searched")
    require_type(prog, what, ProgramType.KPROBE)
    ptr = _bpf_program(prog, what)
    with during(what):
        target, sites = find_usdt(binary, provider, name, pid=pid if pid > 0 else None)
    what = f"attach usdt {prog.name!r} to {provider}:{name} in {target.given!r}" \
           f" ({len(sites)} site{'s' if len(sites) != 1 else ''} in {target.path})"
    keep: List[Any] = []
    for s in (target.path, provider, name):
        keep.append(ffi.new("char[]", s.encode("utf-8", "surrogateescape")))
    o = opts("bpf_usdt_opts", usdt_cookie=cookie)
    with libbpf_log() as log:
        link_ptr = lib.bpf_program__attach_usdt(ptr, pid, keep[0], keep[1], keep[2], o)
        err = ffi.errno
    if link_ptr == ffi.NULL and err == _errno.ESRCH and any(
            "usdt" in w and "map" in w for w in log.warnings):
        raise BPFError(err, f"{what}: the BPF object has no USDT support maps; "
                            "include <bpf/usdt.bpf.h> in the BPF program")
    # libbpf's USDT link reads its Object's memory when destroyed: the Object
    # holds the link and closes it before freeing itself (see Link's needs_owner)
    return Link._from_ptr(link_ptr, err, what, log, made_from=prog, needs_owner=True,
                          composite=USDT_COMPOSITE)
