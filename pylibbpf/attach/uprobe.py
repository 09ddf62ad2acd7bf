"""uprobe / uretprobe (and uprobe.multi / uprobe.session, from uprobe_multi.py),
at file offsets resolved by pylibbpf.elf.

libbpf is always given ``func_name=NULL`` and the offset pylibbpf computed, so
the resolution shown by :func:`pylibbpf.elf.explain` is the one used.
"""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Union

from .._ffi import ffi, lib, libbpf_log, opts
from ..errors import BPFError
from ..link import Link
from ..types import ProgramType
from ._common import during, require_type
# the helpers both kinds use; attach_uprobe_multi lives there (and is re-exported)
from .uprobe_multi import (_U64, _bpf_program, _check_int, _check_pid, _display, _is_multi,
                           _is_session, attach_uprobe_multi)

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_uprobe", "attach_uprobe_multi"]

if TYPE_CHECKING:
    PathLike = Union[str, "os.PathLike[str]"]

def attach_uprobe(prog: "Program", binary: PathLike, symbol: Optional[str] = None, *,
                  offset: int = 0, pid: int = -1, retprobe: bool = False,
                  ref_ctr_offset: int = 0, cookie: int = 0) -> Link:
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"symbol {symbol!r}" if symbol is not None else f"offset {offset:#x}" \
        if isinstance(offset, int) else f"offset {offset!r}"
    what = f"attach {kind} {prog.name!r} to {_display(binary)!r} {target}"
    pid = _check_pid(pid)
    if pid > 0:
        what += f" in pid {pid}"
    _check_int(offset, "offset", 0, _U64)
    _check_int(ref_ctr_offset, "ref_ctr_offset", 0, _U64)
    _check_int(cookie, "cookie", 0, _U64)
    require_type(prog, what, ProgramType.KPROBE)
    if _is_multi(prog):
        if prog.section.startswith("usdt"):
            raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is a USDT program "
                                          f"(SEC({prog.section!r})); use attach_usdt()")
        kind = "uprobe.session" if _is_session(prog) else "uprobe.multi"
        raise BPFError(_errno.EINVAL, f"{what}: program {prog.name!r} is a {kind} "
                                      "program; use attach_uprobe_multi()")
    ptr = _bpf_program(prog, what)
    with during(what):
        from ..elf import resolve

        res = resolve(binary, symbol, offset=offset, pid=pid if pid > 0 else None)
    keep: List[Any] = []
    path = ffi.new("char[]", res.path.encode("utf-8", "surrogateescape"))
    keep.append(path)
    o = opts("bpf_uprobe_opts", ref_ctr_offset=ref_ctr_offset, bpf_cookie=cookie,
             retprobe=bool(retprobe))
    o.func_name = ffi.NULL  # our offset is the one used
    if res.symbol is not None:
        what += f" ({res.path} offset {res.offset:#x})"
    with libbpf_log() as log:
        link_ptr = lib.bpf_program__attach_uprobe_opts(ptr, pid, path, res.offset, o)
        err = ffi.errno
    return Link._from_ptr(link_ptr, err, what, log, made_from=prog)
