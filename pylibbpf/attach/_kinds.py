"""Recognising what this kernel cannot do, so it is reported as NotSupportedError.

Every check here looks at the kernel itself (sysfs, tracefs, kallsyms, or a
tiny probe through the bpf() syscall) rather than guessing from an errno;
``pylibbpf.system.support()`` is the public face of these checks.
Results that cannot change while the process runs are cached.
"""
from __future__ import annotations

import errno as _errno
import functools
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Sequence, Tuple

from ..types import ProgramType

CAP_SYS_ADMIN = 21
CAP_BPF = 39

#: program types whose load needs a BPF trampoline
TRAMPOLINE_TYPES = (ProgramType.TRACING, ProgramType.LSM, ProgramType.EXT)

EVENT_SOURCES = "/sys/bus/event_source/devices"
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


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
    """CAP_BPF or CAP_SYS_ADMIN, in the initial user namespace: in another one they
    count for bpf() only through a BPF token."""
    from ..errors import in_user_namespace

    if in_user_namespace():
        return False
    return has_capability(CAP_BPF) or has_capability(CAP_SYS_ADMIN)


TRAMPOLINE_KIND = {ProgramType.TRACING: "fentry/fexit/fmod_ret (trampoline tracing)",
                    ProgramType.LSM: "LSM", ProgramType.EXT: "freplace"}

#: a verifier log that says the verifier stopped before looking at any instruction
_NOTHING_VERIFIED = r"^\s*(processed 0 insns\b.*|verification time .*|)\s*$"


def refused_before_verification(err: int, log: str) -> bool:
    """Whether a failed program load was refused by the kernel before the verifier
    looked at a single instruction: EPERM/EOPNOTSUPP/ENOTSUPP with an empty log or
    one that only says "processed 0 insns", or EINVAL with that line."""
    import re

    lines = log.strip().splitlines()
    if not all(re.match(_NOTHING_VERIFIED, line) for line in lines):
        return False  # the verifier said why: that is a verifier rejection
    if err in (_errno.EPERM, _errno.EOPNOTSUPP, 524):
        return True
    return err == _errno.EINVAL and any(line.startswith("processed 0 insns") for line in lines)


@functools.lru_cache(maxsize=None)
def prog_type_known(ptype: ProgramType) -> bool:
    """Whether this kernel loads programs of ``ptype`` (libbpf's probe, cached)."""
    from .._ffi import ffi, lib

    return int(lib.libbpf_probe_bpf_prog_type(ptype, ffi.NULL)) == 1


def prog_type_reason(ptype: ProgramType) -> str:
    """Why programs of ``ptype`` fail on a kernel that does not know the type."""
    return (f"this kernel has no {ptype.name.lower()} programs (the program type is "
            "unknown to it: an older kernel, or one built without it)")


def trampoline_reason(kind: str) -> str:
    """Why ``kind`` (fentry …, LSM, freplace) fails on a kernel that refuses trampolines."""
    return (f"this kernel does not support {kind} programs: they need BPF trampolines, "
            "which it refuses (EPERM with an empty verifier log although the caller "
            "has CAP_BPF/CAP_SYS_ADMIN; 'ulimit -l' is not the cause)")


#: errors with which a kernel turns down a kind it does not know
NOT_KNOWN_ERRNOS = (_errno.EINVAL, _errno.EOPNOTSUPP, 524, _errno.ENOSYS, _errno.EPERM)


def kind_refusal(kind: str, err: int, what: str, log: Sequence[str] = ()) -> None:
    """After ``what`` failed with ``err``: raise NotSupportedError naming ``kind``
    and the reason when this kernel lacks the kind (``pylibbpf.system.support``).
    Returns when the kernel has it (the failure has another cause)."""
    if abs(err) in NOT_KNOWN_ERRNOS:
        require_kind(kind, what, err, log)


def require_kind(kind: str, what: str, err: int = _errno.EOPNOTSUPP,
                 log: Sequence[str] = ()) -> None:
    """Raise NotSupportedError for ``what``, naming ``kind`` and the reason, when this
    kernel lacks ``kind`` (checked before a call that the kernel would get wrong or
    silently ignore, e.g. a cookie an old kernel drops)."""
    from ..errors import not_supported
    from ..system import support

    sup = support(kind)
    if not sup:
        exc = not_supported(err, f"{what}: {kind}", sup.reason, libbpf_log=log)
        raise exc from None


def load_refusal(err: int, ptype: ProgramType, log: str, *, section: str = "",
                 attach_type: Optional[int] = None) -> str:
    """Explain a program load that the kernel refused before verification.

    Some kernels refuse whole kinds outright, e.g. BPF trampolines (lockdown, some
    hypervisors' guests) or one iterator target while accepting others: the
    verifier never runs, so its log is empty or says "processed 0 insns".
    Returns the reason, naming the kind (and target), or "" when the failure looks
    like something else (an unprivileged caller, or a verifier that did run and
    said why).
    """
    from ..errors import errno_name
    from ..types import AttachType

    if not privileged_for_bpf():
        return ""
    session = {AttachType.TRACE_KPROBE_SESSION: "kprobe_session",
               AttachType.TRACE_UPROBE_SESSION: "uprobe_session"}.get(
                   attach_type if attach_type is not None else -1)  # type: ignore[call-overload]
    if ptype == ProgramType.KPROBE and session:
        # a kernel without the session kind refuses its kfuncs (bpf_session_cookie …)
        # in the verifier: the log says why, the kind is the cause
        from ..system import support

        sup = support(session)
        if not sup:
            return f"{session} (SEC {section!r}): {sup.reason}"
    if err == _errno.EINVAL and not log.strip() and not prog_type_known(ptype):
        return f"{section or ptype.name.lower()}: {prog_type_reason(ptype)}"
    if not refused_before_verification(err, log):
        return ""
    how = f"{errno_name(err)} before verification"
    if ptype == ProgramType.TRACING and attach_type == AttachType.TRACE_ITER:
        kind = section or "iter"
        return (f"{kind}: this kernel refuses this iterator target ({how}, although the "
                "caller has CAP_BPF/CAP_SYS_ADMIN; other iterator targets may load)")
    trampoline = (ptype != ProgramType.TRACING or attach_type is None or attach_type in (
        AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN))
    if ptype in TRAMPOLINE_KIND and trampoline and err == _errno.EPERM:
        return trampoline_reason(TRAMPOLINE_KIND[ptype])
    kind = section or ptype.name.lower()
    if attach_type is not None and not section:
        try:
            kind += f" ({AttachType(attach_type).name.lower()})"
        except ValueError:
            pass
    return (f"{kind}: this kernel refuses {ptype.name.lower()} programs of this kind "
            f"({how}, although the caller has CAP_BPF/CAP_SYS_ADMIN)")


# --- tracefs, perf PMUs, kallsyms -------------------------------------------------

def tracefs_dir() -> Optional[str]:
    """Where tracefs is mounted (``…/events`` exists), or None."""
    for path in TRACEFS_CANDIDATES:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    return None


def event_sources() -> List[str]:
    """The perf PMUs the kernel exposes (``/sys/bus/event_source/devices``)."""
    try:
        return sorted(os.listdir(EVENT_SOURCES))
    except OSError:
        return []


def has_pmu(name: str) -> bool:
    return os.path.exists(os.path.join(EVENT_SOURCES, name, "type"))


_KPROBE_REASON: Optional[str] = None


def kprobe_unsupported_reason() -> str:
    """Why this kernel cannot do kprobes, or "" when it can.

    Kernels with CONFIG_KPROBES (and CONFIG_KPROBE_EVENTS) expose the
    ``kprobe`` perf PMU (since 4.17) and tracefs' ``kprobe_events`` file.
    The answer is kept once tracefs is mounted (the kernel cannot change);
    a failing attach asks every time.
    """
    global _KPROBE_REASON
    if _KPROBE_REASON is None:
        reason = _kprobe_unsupported_reason()
        if tracefs_dir() is None:
            return reason  # tracefs may be mounted later: ask again then
        _KPROBE_REASON = reason
    return _KPROBE_REASON


def _kprobe_unsupported_reason() -> str:
    if has_pmu("kprobe"):
        return ""
    tracefs = tracefs_dir()
    if tracefs is not None and os.path.exists(os.path.join(tracefs, "kprobe_events")):
        return ""
    if tracefs is None:
        return ("this kernel has no kprobes (no kprobe PMU in "
                f"{EVENT_SOURCES}; tracefs is not mounted, so kprobe_events was not checked)")
    return ("this kernel has no kprobes (CONFIG_KPROBES off: no kprobe PMU in "
            f"{EVENT_SOURCES}, no kprobe_events in {tracefs})")


KALLSYMS = "/proc/kallsyms"
PROC_MODULES = "/proc/modules"


def _module_list() -> bytes:
    """The names of the loaded kernel modules (b"" when none or unreadable)."""
    try:
        with open(PROC_MODULES, "rb") as f:
            return b"\n".join(line.split(b" ", 1)[0] for line in f.read().splitlines())
    except OSError:
        return b""


class KallsymsIndex:
    """Which names ``/proc/kallsyms`` holds, read once: a failing attach asks
    whether its function exists, and reading the file costs ~100 ms (the kernel
    formats every line), far more than the failed attach itself.

    A miss may be a module loaded since the index was read: when the list of
    modules has changed (looked at, on a miss, at most once every
    ``RECHECK_S`` seconds) the index is read again. The names are kept as one
    frozenset (~10 MB for ~120k symbols): built in ~30 ms from the text, where
    a compact sorted array of hashes took longer to build than the read itself.
    """

    RECHECK_S = 1.0

    def __init__(self, path: Optional[str] = None) -> None:
        modules = _module_list()
        import re

        with open(path or KALLSYMS, "rb") as f:
            data = f.read()
        names = re.findall(rb"^\S+ \S (\S+)", data, re.M)
        del data
        self._names = frozenset(names)
        #: kernel functions behind syscalls (``__x64_sys_read``, ``sys_read`` …)
        self.syscall_names: List[str] = [n.decode("utf-8", "replace") for n in names
                                         if b"sys_" in n]
        self.count = len(names)
        self.modules = modules
        self.checked = time.monotonic()

    def __contains__(self, name: str) -> bool:
        return name.encode("utf-8", "surrogateescape") in self._names

    def names(self) -> List[str]:
        """Every name (decoded), for suggestions on an error path."""
        return [n.decode("utf-8", "replace") for n in self._names]


_INDEX: Optional[KallsymsIndex] = None


def kallsyms_index(*, fresh: bool = False) -> Optional[KallsymsIndex]:
    """The process's :class:`KallsymsIndex`, built on first use (None when
    /proc/kallsyms cannot be read)."""
    global _INDEX
    if _INDEX is None or fresh:
        try:
            _INDEX = KallsymsIndex()
        except OSError:
            return None
    return _INDEX


def kernel_symbol_exists(name: str) -> Optional[bool]:
    """Whether ``name`` is a kernel (or module) symbol; None when kallsyms is unreadable."""
    idx = kallsyms_index()
    if idx is None:
        return None
    if name in idx:
        return True
    now = time.monotonic()
    if now - idx.checked >= idx.RECHECK_S:  # a module loaded since the index was read?
        idx.checked = now
        if _module_list() != idx.modules:
            idx = kallsyms_index(fresh=True)
            return None if idx is None else name in idx
    return False


def syscall_symbols(syscall: str) -> Optional[List[str]]:
    """The kernel functions that implement ``syscall`` (``__x64_sys_…``, ``__se_sys_…``);
    None when kallsyms is unreadable."""
    idx = kallsyms_index()
    if idx is None:
        return None
    suffix = f"_sys_{syscall}"
    return [n for n in idx.syscall_names
            if n == f"sys_{syscall}" or (n.endswith(suffix) and n.startswith("__")
                                         and n.count("_sys_") == 1
                                         and not n.startswith("__pfx_"))]


def missing_symbol_note(symbol: str) -> str:
    """" ('x' is not a kernel symbol)" when kallsyms says so, else ""."""
    if kernel_symbol_exists(symbol) is False:
        return f"; besides, {symbol!r} is not in /proc/kallsyms"
    return ""


# --- kprobe_multi / kprobe.session: a real probe ----------------------------------

_MOV_R0_0_EXIT = bytes.fromhex("b700000000000000" "9500000000000000")


@functools.lru_cache(maxsize=None)
def _probe_kprobe_multi(session: bool) -> Tuple[int, str]:
    """(errno of BPF_LINK_CREATE with no functions, what failed) for a tiny kprobe program.

    With multi-kprobe support the kernel answers EINVAL (no functions given);
    without CONFIG_FPROBE it answers EOPNOTSUPP.
    """
    from .._ffi import ffi, lib, opts
    from ..errors import BPFError
    from ..program import Program
    from ..types import AttachType

    attach = AttachType.TRACE_KPROBE_SESSION if session else AttachType.TRACE_KPROBE_MULTI
    try:
        prog = Program.load_raw(ProgramType.KPROBE, _MOV_R0_0_EXIT, name="plb_probe_kpm",
                                expected_attach_type=attach)
    except BPFError as e:
        return (e.errno or _errno.EINVAL, "load")
    try:
        fd = lib.bpf_link_create(prog.fd, 0, attach, opts("bpf_link_create_opts"))
        err = ffi.errno
        if fd >= 0:  # cannot happen with no functions, but never leak it
            os.close(fd)
            return (0, "link")
        return (err, "link")
    finally:
        prog.close()


# --- the kernel's own BTF ------------------------------------------------------------

BTF_KIND_STRUCT, BTF_KIND_ENUM, BTF_KIND_TYPEDEF, BTF_KIND_FUNC = 4, 6, 8, 12


@functools.lru_cache(maxsize=1)
def _vmlinux_btf() -> Any:
    """The kernel's BTF, parsed once and kept for the process (None: none)."""
    from .._ffi import ffi, lib

    btf = lib.btf__load_vmlinux_btf()
    return None if btf == ffi.NULL else btf


@functools.lru_cache(maxsize=None)
def vmlinux_type_id(name: str, kind: int) -> int:
    """The id of type ``name`` of BTF ``kind`` in the kernel's BTF (0: absent)."""
    from .._ffi import lib

    btf = _vmlinux_btf()
    return 0 if btf is None else max(0, int(lib.btf__find_by_name_kind(btf, name.encode(), kind)))


def vmlinux_type_name(type_id: int) -> str:
    """The name of type ``type_id`` in the kernel's BTF ("" when unknown)."""
    from .._ffi import ffi, lib, to_str

    btf = _vmlinux_btf()
    info = ffi.new("struct pylibbpf_btf_info *")
    if btf is None or lib.pylibbpf_btf_info(btf, type_id, info) < 0 or info.name == ffi.NULL:
        return ""
    return to_str(info.name)


@functools.lru_cache(maxsize=None)
def vmlinux_enum_has(enum: str, value: str) -> Optional[bool]:
    """Whether ``enum`` in the kernel's BTF has the enumerator ``value`` (None: no
    such enum, or no BTF)."""
    from .._ffi import ffi, lib

    tid = vmlinux_type_id(enum, BTF_KIND_ENUM)
    if not tid:
        return None
    btf = _vmlinux_btf()
    info = ffi.new("struct pylibbpf_btf_info *")
    member = ffi.new("struct pylibbpf_btf_member *")
    if lib.pylibbpf_btf_info(btf, tid, info) < 0:
        return None
    return any(lib.pylibbpf_btf_member(btf, tid, i, member) == 0 and member.name != ffi.NULL
               and ffi.string(member.name).decode() == value for i in range(info.vlen))


def kprobe_multi_unsupported_reason(session: bool = False) -> str:
    """Why this kernel cannot do kprobe_multi (or kprobe.session) links, or ""."""
    kind = "kprobe.session" if session else "kprobe_multi"
    if session and vmlinux_enum_has("bpf_attach_type", "BPF_TRACE_KPROBE_SESSION") is False:
        # older kernels take the unknown attach type for a perf link: no clean errno
        return (f"this kernel does not know {kind} programs (no BPF_TRACE_KPROBE_SESSION "
                "in its BTF: Linux 6.10+)")
    err, stage = _probe_kprobe_multi(session)
    if stage == "load":
        if session and err in (_errno.EINVAL, _errno.E2BIG):
            return (f"this kernel does not know {kind} programs (BPF_TRACE_KPROBE_SESSION "
                    "needs Linux 6.10)")
        return ""  # a load failure says nothing about the kernel's support
    if err in (_errno.EOPNOTSUPP, 524):
        return (f"this kernel has no {kind} links (CONFIG_FPROBE off: BPF_LINK_CREATE "
                "for a multi-kprobe answers EOPNOTSUPP)")
    return ""
