"""Recognising what this kernel cannot do, so it is reported as NotSupportedError."""
from __future__ import annotations

import errno as _errno
import os

from ..types import ProgramType

CAP_SYS_ADMIN = 21
CAP_BPF = 39

#: program types whose load needs a BPF trampoline
TRAMPOLINE_TYPES = (ProgramType.TRACING, ProgramType.LSM, ProgramType.EXT)


def has_capability(cap: int) -> bool:
    """Whether this process has ``cap`` in its effective set."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def privileged_for_bpf() -> bool:
    return has_capability(CAP_BPF) or has_capability(CAP_SYS_ADMIN)


def trampoline_refusal(err: int, ptype: ProgramType, log: str) -> str:
    """Explain an EPERM with an empty verifier log for a trampoline program.

    Some kernels (e.g. under lockdown or in some hypervisors' guests) refuse
    BPF trampolines outright; the verifier never runs, so its log is empty.
    Returns "" when the failure looks like something else.
    """
    if err != _errno.EPERM or ptype not in TRAMPOLINE_TYPES or log.strip():
        return ""
    if not privileged_for_bpf():
        return ""
    kind = {ProgramType.TRACING: "fentry/fexit/fmod_ret/tp_btf tracing",
            ProgramType.LSM: "LSM", ProgramType.EXT: "freplace"}[ptype]
    return (f"this kernel does not support {kind} programs: they need BPF trampolines, "
            "which it refuses (EPERM with an empty verifier log although the caller "
            "has CAP_BPF/CAP_SYS_ADMIN)")
