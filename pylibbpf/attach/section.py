"""Attach by SEC() definition: libbpf parses the section name (``tp/…``,
``uprobe/…``, ``cgroup_skb/egress`` …) and picks the attach kind.

When the attach fails, the section says which kind was meant, so the error
can name it: kinds the kernel lacks become :class:`NotSupportedError`, a
missing tracepoint or function :class:`BPFNotFoundError`.
"""
from __future__ import annotations

import errno as _errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

from .._ffi import ffi, lib, libbpf_log
from ..errors import (BPFError, BPFNotFoundError, NoAttachTargetError, NotSupportedError,
                      error_from_errno)
from ..link import USDT_COMPOSITE, Link
from ._kinds import (kernel_symbol_exists, kprobe_multi_unsupported_reason,
                     kprobe_unsupported_reason, missing_symbol_note)

if TYPE_CHECKING:
    from ..program import Program

#: SEC() prefixes that need an explicit target, and the method that takes it
_EXPLICIT = {
    "tp": "attach_tracepoint(category, name)", "tracepoint": "attach_tracepoint(category, name)",
    "raw_tp": "attach_raw_tracepoint(name)", "raw_tracepoint": "attach_raw_tracepoint(name)",
    "kprobe": "attach_kprobe(symbol)", "kretprobe": "attach_kprobe(symbol, retprobe=True)",
    "ksyscall": "attach_ksyscall(name)", "kretsyscall": "attach_ksyscall(name, retprobe=True)",
    "kprobe.multi": "attach_kprobe_multi(pattern)",
    "kretprobe.multi": "attach_kprobe_multi(pattern, retprobe=True)",
    "kprobe.session": "attach_kprobe_multi(pattern, session=True)",
    "perf_event": "attach_perf_event(fd) or attach_perf_events()",
    "iter": "attach_iter()", "freplace": "attach_freplace(target, function)",
    "uprobe": "attach_uprobe(...)", "uretprobe": "attach_uprobe(..., retprobe=True)",
    "uprobe.multi": "attach_uprobe_multi(...)",
    "uretprobe.multi": "attach_uprobe_multi(..., retprobe=True)",
    "uprobe.session": "attach_uprobe_multi(...)",
    "usdt": "attach_usdt(...)", "xdp": "attach_xdp(interface)", "tc": "attach_tc(...)",
    "tcx/ingress": "attach_tcx(...)", "tcx/egress": "attach_tcx(...)",
    "socket": "attach_socket(sock)", "netfilter": "attach_netfilter(...)",
    "struct_ops": "Map.attach_struct_ops() on the struct_ops map that holds it",
    "struct_ops.s": "Map.attach_struct_ops() on the struct_ops map that holds it",
}


def attach_by_section(prog: "Program", *, auto: bool = False) -> Optional[Link]:
    """Attach ``prog`` as its SEC() says.

    With ``auto`` (``Object.attach_all()``), a section that does not say where
    to attach (``SEC("xdp")``, ``SEC("tc")`` …) gives None instead of an error.
    """
    prog._check_has_ptr("attach by section")
    prog.fd  # raises when not loaded
    section = prog.section
    what = f"attach program {prog.name!r} (SEC {section!r})"
    with libbpf_log() as log:
        ptr = lib.bpf_program__attach(prog._ptr)
        err = ffi.errno
    if ptr == ffi.NULL:
        if err == _errno.EOPNOTSUPP and not log.warnings:
            if auto:
                return None  # not auto-attachable
            method = _EXPLICIT.get(section.split("/")[0]) or _EXPLICIT.get(section)
            hint = f"; use {method}" if method else ""
            raise NoAttachTargetError(f"{what}: the section does not say where to "
                                      f"attach{hint}", program=prog.name, section=section,
                                      method=method or "")
        raise _section_error(err, section, what, log.warnings)
    usdt = section.split("/")[0] in ("usdt", "usdt.s")
    return Link(made_from=prog, ptr=ptr, description=f"{section!r} ({prog.name!r})",
                needs_owner=usdt, composite=USDT_COMPOSITE if usdt else None)


def _section_error(err: int, section: str, what: str, warnings: List[str]) -> BPFError:
    kind, _, target = section.partition("/")
    if kind in ("kprobe", "kretprobe", "ksyscall", "kretsyscall") and target:
        reason = kprobe_unsupported_reason()
        symbol = target.split("+")[0]
        if reason:
            note = missing_symbol_note(symbol) if kind in ("kprobe", "kretprobe") else ""
            return NotSupportedError(err, f"{what}: {kind} on {target!r}: {reason}{note}",
                                     libbpf_log=warnings)
        if kind in ("kprobe", "kretprobe") and kernel_symbol_exists(symbol) is False:
            return BPFNotFoundError(err, f"{what}: no kernel function {symbol!r} "
                                         "(not in /proc/kallsyms)", libbpf_log=warnings)
    if kind in ("kprobe.multi", "kretprobe.multi", "kprobe.session"):
        reason = kprobe_multi_unsupported_reason(session=kind == "kprobe.session")
        if reason:
            return NotSupportedError(err, f"{what}: {kind} on {target!r}: {reason}",
                                     libbpf_log=warnings)
    if kind in ("uprobe.multi", "uretprobe.multi", "uprobe.session"):
        from ..system import support

        sup = support("uprobe_session" if kind == "uprobe.session" else "uprobe_multi")
        if not sup:
            return NotSupportedError(err, f"{what}: {kind} on {target!r}: {sup.reason}",
                                     libbpf_log=warnings)
    if kind in ("tp", "tracepoint") and err == _errno.ENOENT and target.count("/") == 1:
        from .tracepoint import _tracepoint_error

        category, name = target.split("/")
        return _tracepoint_error(err, category, name, what, warnings)
    if kind in ("raw_tp", "raw_tracepoint") and err == _errno.ENOENT:
        from .tracepoint import _raw_did_you_mean

        return BPFNotFoundError(err, f"{what}: the kernel has no tracepoint {target!r}"
                                     + _raw_did_you_mean(target),
                                libbpf_log=warnings)
    return error_from_errno(err, what, libbpf_log=warnings)
