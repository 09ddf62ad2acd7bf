#!/usr/bin/env python3
"""Boot one of Debian's stock kernels in a VM and run a pytest selection inside it.

    python tests/vm/run.py --kernel 6.12                  # the default guest selection
    python tests/vm/run.py --kernel 6.1 -- tests/test_vm_tracing.py -k kprobe

The VM is virtme-ng (``vng``) on qemu, under TCG emulation unless ``PYLIBBPF_VM_KVM=1``
(this machine's /dev/kvm cannot run a full guest). The guest's root is the host's
filesystem, read-only; the repository is shared read-only and overlaid writable *inside
the guest only* (guest.sh); one run directory is shared read-write for results: the
junit XML, the pytest log, the exit status. The guest runs the host's Python with the host's PATH and
PYTHONPATH, and the BPF objects the host compiled (see guest_plugin.py).

Environment:
  PYLIBBPF_VM_KERNELS   kernels the test suite boots (default "6.1,6.12"); "none" turns the
                        matrix off on purpose (the terminal summary says so, loudly under CI)
  PYLIBBPF_VM_REQUIRED  1: a VM that cannot start, or a guest test skipped for an
                        infrastructure reason, FAILS instead of skipping; 0: they skip.
                        Unset: required exactly when CI is set to a true value (CI=true,
                        CI=1, …), as .ci/run does; so CI cannot go green with no VM run
  PYLIBBPF_VM_TIMEOUT   seconds one VM may run (default 1800)
  PYLIBBPF_VM_MEMORY    guest memory (default 2G); PYLIBBPF_VM_CPUS (default 2)
  PYLIBBPF_VM_CACHE     kernel cache (default ${XDG_CACHE_HOME:-~/.cache}/pylibbpf-vm)
  PYLIBBPF_VM_KEEP=1    keep the run directory (console log, junit XML) afterwards
  PYLIBBPF_VM_PARALLEL=0  boot the kernels one after the other (default: all at once)
  PYLIBBPF_VM_KVM=1     let qemu use KVM when /dev/kvm works

Pre-flight (``--check``, and before every boot): every program the VM path runs is
looked up first (VM_TOOLS: virtme-ng, qemu, a static busybox, file, kmod, udev,
iproute2); a missing one is named with the Debian package that provides it.
tests/vm/setup.sh installs them all.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from kernels import SUITES, Kernel, KernelError, cache_dir, ensure_kernel  # noqa: E402

# What the guest runs by default: every test marked ``vm`` (they skip on the host),
# plus a smoke run of fast host tests that touch the kernel (loading, maps, verifier).
VM_TESTS = ["tests/test_vm_guest.py", "tests/test_vm_tracing.py",
            # the example tools for kinds many hosts lack: their "supported" branch
            "tests/test_examples.py::test_kprobe", "tests/test_examples.py::test_fentry",
            "tests/test_examples.py::test_lsm",
            # the kernel-following suites: the same tests as on the host, which here
            # must fire (the kinds in REQUIRED_KINDS) or give the clean refusal (tcx,
            # uprobe_multi, netfilter … on 6.1)
            "tests/test_kernel_support.py", "tests/test_attach_tracing.py",
            "tests/test_attach_tc.py", "tests/test_attach_net.py", "tests/test_link.py",
            "tests/test_sessions.py", "tests/test_arena.py",
            # BPF tokens (6.9+: 6.12 loads through one, 6.1 refuses cleanly), streams
            # (6.17+: both refuse cleanly), Object.prepare()
            "tests/test_token.py", "tests/test_stream.py", "tests/test_prepare.py",
            # the kernel's BTF: parsed once; unchecked only where the kernel lets it be
            # mapped (elsewhere read and checked as before), and a forged one mounted
            # over it checked
            "tests/test_kernel_btf.py"]

#: kinds each guest kernel must have (PYLIBBPF_REQUIRE_KINDS, see tests/_kernel.py):
#: Debian's kernels have kprobes and trampolines; 6.1 has no fprobe (kprobe_multi)
REQUIRED_KINDS: Dict[str, str] = {
    "6.1": "kprobe,trampoline,tp_btf,iter,iter/bpf_map_elem,uprobe,usdt,perf_event,"
           "struct_ops",
    "6.12": "kprobe,kprobe_multi,trampoline,tp_btf,iter,iter/bpf_map_elem,uprobe,"
            "uprobe_multi,usdt,perf_event,perf_event_link_info,raw_tracepoint_cookie,"
            "struct_ops,struct_ops_link,sockmap_link,tcx,netkit,netfilter,arena,bpf_token",
}
SMOKE_TESTS = ["tests/test_object.py", "tests/test_map.py", "tests/test_errors.py"]


# Guest tests known to fail on a kernel for a reason that is not pylibbpf's: marked
# xfail (non-strict) in the guest, so the host reports them as skipped with the reason
# (and as passed once they pass). Keep this short and say what would fix each one.
KNOWN_ISSUES: Dict[Tuple[str, str], str] = {
    # ("6.1", "tests/test_x.py::test_y"): "why, and what would fix it",
}


def default_selection() -> List[str]:
    return [p for p in VM_TESTS + SMOKE_TESTS if (REPO / p.split("::")[0]).exists()]


# Drivers for the emulated machine's hardware (q35 chipset, AHCI + CD-ROM, watchdogs,
# PS/2, KVM, CPU crypto) that udev would load at boot: none is needed by the tests,
# and under TCG loading them took ~20 s of the boot.
GUEST_MODULE_BLACKLIST = (
    "kvm,kvm_amd,kvm_intel,pcspkr,iTCO_wdt,iTCO_vendor_support,lpc_ich,i2c_i801,ahci,"
    "libahci,sr_mod,cdrom,sg,psmouse,serio_raw,evdev,joydev,powernow_k8,acpi_cpufreq,"
    "i6300esb,floppy,intel_rapl_msr,intel_rapl_common,edac_core,amd64_edac,qemu_fw_cfg,"
    "aesni_intel,crypto_simd,cryptd,ghash_clmulni_intel,crct10dif_pclmul,crc32_pclmul,"
    "sha1_ssse3,sha256_ssse3,sha512_ssse3")


def kernels_wanted() -> List[str]:
    raw = os.environ.get("PYLIBBPF_VM_KERNELS", ",".join(SUITES))
    if raw.strip().lower() in ("", "none", "0", "off"):
        return []
    return [k.strip() for k in raw.split(",") if k.strip()]


class CannotStart(Exception):
    """The VM could not be started on this machine (the message says why)."""


@dataclass
class Outcome:
    outcome: str                 # passed | failed | skipped | xfailed
    message: str = ""
    seconds: float = 0.0


@dataclass
class VMRun:
    kernel: Kernel
    rundir: Path
    started: bool
    returncode: Optional[int]    # pytest's exit status in the guest; None: never finished
    timed_out: bool
    seconds: float               # wall time of the whole VM
    pytest_seconds: Optional[float]
    results: Dict[str, Outcome] = field(default_factory=dict)
    stray: List[Tuple[str, Outcome]] = field(default_factory=list)   # no nodeid (collection)
    uname: str = ""
    lsm: str = ""

    def log(self, name: str, tail: int = 4000) -> str:
        try:
            text = (self.rundir / name).read_text(errors="replace")
        except OSError:
            return f"({name} missing)"
        return text[-tail:]


@dataclass(frozen=True)
class Tool:
    """A program the VM path runs, and where it comes from."""
    name: str
    package: str                 # the Debian package that provides it (pip: see pypi)
    why: str
    dirs: Tuple[str, ...] = ()   # looked for only there (not on PATH) when given
    pypi: bool = False           # installed from PyPI into the venv by setup.sh


# Every external program the VM path needs that a minimal Debian (plus what dev.sh
# installs) may lack. tests/vm/setup.sh installs each Debian package named here
# (tests/test_vm_matrix.py checks both that and the name -> package mapping).
VM_TOOLS: Tuple[Tool, ...] = (
    Tool("vng", "virtme-ng", "boots the kernel (virtme-ng)", pypi=True),
    Tool("virtme-run", "virtme-ng", "vng runs it to start qemu", pypi=True),
    Tool("qemu-system-x86_64", "qemu-system-x86", "the emulator (TCG)"),
    Tool("busybox", "busybox-static", "virtme-ng's initramfs; must be statically linked"),
    Tool("file", "file", "virtme-ng: the kernel's version, whether busybox is static"),
    Tool("depmod", "kmod", "the module index of the unpacked kernel (kernels.py, virtme-ng)"),
    Tool("modprobe", "kmod", "virtme-ng picks the guest's drivers; the guest loads modules"),
    Tool("systemd-udevd", "udev", "the guest's device manager (virtme-ng-init)",
         dirs=("/usr/lib/systemd", "/lib/systemd")),
    Tool("udevadm", "udev", "virtme-ng-init waits for the guest's devices"),
    Tool("ip", "iproute2", "guest tests: network namespaces and veth pairs"),
)

# Where virtme-ng and the guest also look, whatever the caller's PATH is.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _tool(name: str, path: Optional[str] = None) -> Optional[str]:
    """``name`` on ``path`` (default $PATH), else in this venv, else in the system's bin
    and sbin directories; None when it is nowhere."""
    found = shutil.which(name, path=path)
    if found:
        return found
    beside = _venv_bin() / name      # installed into this venv
    if beside.exists():
        return str(beside)
    return shutil.which(name, path=os.pathsep.join(SYSTEM_DIRS))


def _find(tool: Tool) -> Optional[str]:
    if tool.dirs:
        for d in tool.dirs:
            p = os.path.join(d, tool.name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        return None
    return _tool(tool.name)


def _elf_is_static(path: str) -> Optional[bool]:
    """True when the ELF file has no program interpreter (statically linked);
    None when it is not an ELF file."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or len(head) < 52:
                return None
            end = "<" if head[5] == 1 else ">"
            if head[4] == 2:                                  # ELFCLASS64
                phoff = struct.unpack_from(end + "Q", head, 32)[0]
                phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            else:
                phoff = struct.unpack_from(end + "I", head, 28)[0]
                phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    for i in range(phnum):
        if len(table) >= (i + 1) * phentsize and \
                struct.unpack_from(end + "I", table, i * phentsize)[0] == 3:   # PT_INTERP
            return False
    return True


def missing_tools() -> List[Tuple[Tool, str]]:
    """The VM_TOOLS this machine lacks, each with what is wrong."""
    out: List[Tuple[Tool, str]] = []
    for tool in VM_TOOLS:
        path = _find(tool)
        if path is None:
            out.append((tool, "not found"))
        elif tool.name == "busybox" and _elf_is_static(path) is False:
            out.append((tool, f"{path} is not statically linked"))
    return out


def describe_missing(missing: Sequence[Tuple[Tool, str]]) -> str:
    """One sentence naming each missing tool and the package that provides it."""
    parts = []
    for tool, what in missing:
        source = (f"PyPI package {tool.package}, into the venv" if tool.pypi
                  else f"Debian package {tool.package}")
        parts.append(f"{tool.name} ({what}; {source})")
    debs = sorted({t.package for t, _ in missing if not t.pypi})
    fix = "run tests/vm/setup.sh as root"
    if debs:
        fix += f", or: apt-get install {' '.join(debs)}"
    return f"missing {', '.join(parts)}: {fix}"


def check_tools() -> Dict[str, str]:
    """Paths of the tools a VM needs; raises CannotStart naming each missing tool and
    the Debian package that provides it."""
    missing = missing_tools()
    if missing:
        raise CannotStart(describe_missing(missing))
    return {tool.name: str(_find(tool)) for tool in VM_TOOLS}


# --- required or not ------------------------------------------------------------

FALSE_WORDS = ("", "0", "false", "no", "off", "n")


def vm_required(env: Optional[Mapping[str, str]] = None) -> Tuple[bool, str]:
    """Whether the kernel matrix must run, and which setting says so.

    ``PYLIBBPF_VM_REQUIRED`` decides when it is set (1 on, 0 off); otherwise the matrix
    is required exactly when ``CI`` is set to a true value (anything but empty, 0, false,
    no, off)."""
    env = os.environ if env is None else env
    explicit = env.get("PYLIBBPF_VM_REQUIRED")
    if explicit is not None and explicit.strip():
        return explicit.strip().lower() not in FALSE_WORDS, f"PYLIBBPF_VM_REQUIRED={explicit}"
    ci = env.get("CI")
    if ci is not None and ci.strip().lower() not in FALSE_WORDS:
        return True, f"CI={ci}"
    return False, "neither CI nor PYLIBBPF_VM_REQUIRED is set"


# Guest skips that mean the VM or the guest's environment is broken, not that the
# kernel lacks something: failures when the matrix is required.
INFRASTRUCTURE_SKIPS = (
    "runs inside the kernel-matrix VM",     # a vm test did not see PYLIBBPF_IN_VM
    "cannot start",                         # a VM that could not start
    "VM infrastructure:",                   # for guest tests to say so explicitly
)


def is_infrastructure_skip(message: str) -> bool:
    return any(p.lower() in message.lower() for p in INFRASTRUCTURE_SKIPS)


def _required_note(why: str) -> str:
    return (f"(the kernel matrix is required: {why}; PYLIBBPF_VM_REQUIRED=0 makes this "
            f"a skip)")


def cannot_start_verdict(kernel: str, err: BaseException,
                         env: Optional[Mapping[str, str]] = None) -> Tuple[str, str]:
    """("failed" | "skipped", message) for a test of a kernel whose VM cannot start."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    head = lines[0] if lines else repr(err)
    required, why = vm_required(env)
    if required:
        return "failed", f"kernel {kernel}: VM cannot start: {err}\n{_required_note(why)}"
    msg = f"kernel {kernel}: VM cannot start here: {head}"
    if len(lines) > 1:
        msg += f" ({lines[-1][-200:]})"
    return "skipped", msg


def guest_verdict(kernel: str, nodeid: str, result: Outcome, uname: str = "",
                  env: Optional[Mapping[str, str]] = None) -> Tuple[str, str]:
    """(host outcome, message) for one guest test's result: passed, failed, skipped or
    xfailed as in the guest, except that an infrastructure skip fails when required."""
    if result.outcome == "failed":
        return "failed", f"[{kernel} {uname}] {nodeid} failed in the VM:\n{result.message}"
    if result.outcome == "xfailed":
        return "xfailed", f"[{kernel} guest] {result.message}"
    if result.outcome == "skipped":
        required, why = vm_required(env)
        if required and is_infrastructure_skip(result.message):
            return "failed", (f"[{kernel} guest] {nodeid} was skipped for an infrastructure "
                              f"reason: {result.message}\n{_required_note(why)}")
        return "skipped", f"[{kernel} guest] {result.message}"
    return "passed", ""


# --- what the matrix did, for the terminal summary ------------------------------------

# Filled by tests/test_vm_matrix.py: the kernels asked for, and per kernel the VMRun
# or the CannotStart; read by terminal_summary() (conftest's pytest_terminal_summary).
MATRIX: Dict[str, Any] = {"collected": False, "kernels": [], "results": {}, "expected": 0}


def summary_lines(kernels: Sequence[str], results: Mapping[str, Any], expected: int = 0,
                  env: Optional[Mapping[str, str]] = None) -> List[str]:
    """One line per kernel: guest tests ran / passed / failed / skipped / xfailed and
    the VM's wall time; or why the matrix did not run."""
    env = os.environ if env is None else env
    required, why = vm_required(env)
    if not kernels:
        raw = env.get("PYLIBBPF_VM_KERNELS", "")
        line = (f"kernel matrix: OFF (PYLIBBPF_VM_KERNELS={raw or 'none'}): "
                f"no kernel was booted, no guest test ran")
        if required:
            line += f" -- turned off explicitly although the matrix is required ({why})"
        return [line]
    lines = []
    for k in kernels:
        run = results.get(k)
        if run is None:
            lines.append(f"kernel matrix: {k}: not booted (none of its tests ran)")
        elif isinstance(run, BaseException):
            first = next((ln.strip() for ln in str(run).splitlines() if ln.strip()), repr(run))
            verdict = f"FAILED ({why})" if required else "its tests were skipped"
            lines.append(f"kernel matrix: {k}: VM did not start: {first} -- {verdict}")
        else:
            counts: Dict[str, int] = {}
            for o in run.results.values():
                counts[o.outcome] = counts.get(o.outcome, 0) + 1
            detail = ", ".join(f"{counts[o]} {o}" for o in
                               ("passed", "failed", "skipped", "xfailed") if counts.get(o))
            line = (f"kernel matrix: {k} ({run.uname or '?'}): {len(run.results)} ran"
                    f"{f' ({detail})' if detail else ''} in {run.seconds:.0f} s")
            if expected and len(run.results) < expected:
                line += f"; {expected - len(run.results)} of {expected} without a result"
            if run.timed_out:
                line += " -- TIMED OUT"
            elif run.returncode not in (0, 1):
                line += f" -- guest pytest exited {run.returncode}"
            lines.append(line)
    return lines


def terminal_summary(terminalreporter: Any) -> None:
    """pytest_terminal_summary for the kernel matrix (called from tests/conftest.py)."""
    if not MATRIX["collected"]:
        return
    lines = summary_lines(MATRIX["kernels"], MATRIX["results"], MATRIX["expected"])
    terminalreporter.write_sep("-", "kernel matrix")
    for line in lines:
        bad = "FAILED" in line or "TIMED OUT" in line or "OFF" in line and "required" in line
        terminalreporter.write_line(line, red=bad, bold=bad)


# Directories the guest mounts a tmpfs over (virtme-ng), hiding the host's files there.
HIDDEN_IN_GUEST = ("/var/tmp", "/var/cache", "/var/log", "/var/lib/private", "/var/lib/apt",
                   "/run", "/usr/lib/modules")


def _hidden_prefixes() -> List[str]:
    """The Python installation, when it lives where the guest would not see it."""
    out: List[str] = []
    for p in {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}:
        if any(p == h or p.startswith(h + "/") for h in HIDDEN_IN_GUEST) and \
                not p.startswith(str(REPO) + "/"):
            out.append(p)
    return sorted(out)


def _write_env(rundir: Path, kernel: Kernel, objects: Optional[Path]) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(
            [str(HERE)] + [os.path.abspath(p) for p in
                           os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        "PYLIBBPF_IN_VM": "1",
        "PYLIBBPF_VM_KERNEL": kernel.name,
        "PYLIBBPF_REQUIRE_KINDS": REQUIRED_KINDS.get(kernel.name, ""),
        "PYLIBBPF_VM_PYTHON": sys.executable,
        "PYLIBBPF_REPO": str(REPO),
        "PYLIBBPF_VM_BOOT": str(kernel.root / "boot"),     # config-<release> for libbpf
        "PYLIBBPF_VM_RUNDIR": str(rundir),
        "PYLIBBPF_CACHE": "/tmp/pylibbpf-guest-cache",   # guest-only (overlay)
        "HOME": "/root",
    }
    if objects is not None:
        env["PYLIBBPF_VM_OBJECTS"] = str(objects)
    (rundir / "env").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))


def compile_objects(dest: Path) -> Path:
    """Compile every tests/bpf/*.bpf.c on the host (what conftest's fixture does)."""
    import pylibbpf

    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted((REPO / "tests" / "bpf").glob("*.bpf.c")):
        pylibbpf.compile(src, dest / src.name.replace(".bpf.c", ".bpf.o"),
                         cflags=["-Wall", "-Werror"])
    # programs that need a newer clang (arena pointers: 18+), built as tests/test_arena.py does
    sys.path.insert(0, str(REPO / "tests"))
    from _clang import MIN_ARENA_CLANG, clang_major, newest_clang

    cc = newest_clang()
    if clang_major(cc) >= MIN_ARENA_CLANG:
        for src in sorted((REPO / "tests" / "bpf" / "arena").glob("*.bpf.c")):
            pylibbpf.compile(src, dest / src.name.replace(".bpf.c", ".bpf.o"),
                             cflags=["-Wall", "-Werror"], clang=cc)
    return dest


def parse_junit(path: Path) -> Tuple[Dict[str, Outcome], List[Tuple[str, Outcome]]]:
    results: Dict[str, Outcome] = {}
    stray: List[Tuple[str, Outcome]] = []
    rank = {"passed": 0, "xfailed": 1, "skipped": 1, "failed": 2}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        nodeid = None
        for prop in case.iter("property"):
            if prop.get("name") == "nodeid":
                nodeid = prop.get("value")
        outcome, message = "passed", ""
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                outcome = "failed"
                message = f"{el.get('message', '')}\n{el.text or ''}".strip()
                break
        else:
            el = case.find("skipped")
            if el is not None:
                # pytest writes an expected failure as <skipped type="pytest.xfail">
                outcome = "xfailed" if el.get("type") == "pytest.xfail" else "skipped"
                message = el.get("message", "") or (el.text or "")
        out = Outcome(outcome, message, float(case.get("time", "0") or 0))
        if nodeid is None:
            stray.append((f"{case.get('classname', '')}::{case.get('name', '')}", out))
            continue
        prev = results.get(nodeid)
        if prev is None or rank[out.outcome] > rank[prev.outcome]:
            if prev is not None:
                out.seconds += prev.seconds
            results[nodeid] = out
    return results, stray


def run_vm(kernel_name: str, pytest_args: Sequence[str], *, objects: Optional[Path] = None,
           timeout: Optional[float] = None, keep: Optional[bool] = None,
           cpus: Optional[str] = None, quiet: bool = False) -> VMRun:
    """Boot ``kernel_name`` and run ``pytest pytest_args`` inside; raises CannotStart."""
    tools = check_tools()
    try:
        kernel = ensure_kernel(kernel_name)
    except (KernelError, subprocess.CalledProcessError, OSError) as e:
        raise CannotStart(f"kernel {kernel_name}: {e}") from None
    timeout = timeout or float(os.environ.get("PYLIBBPF_VM_TIMEOUT", "1800"))
    keep = keep if keep is not None else os.environ.get("PYLIBBPF_VM_KEEP") == "1"
    runs = cache_dir() / "runs"
    runs.mkdir(exist_ok=True)
    for old in runs.iterdir():     # leftovers of runs kept or killed more than a day ago
        if time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    rundir = Path(tempfile.mkdtemp(prefix=f"{kernel_name}-", dir=runs))
    if objects is not None:
        shutil.copytree(objects, rundir / "objs", dirs_exist_ok=True)
        guest_objs: Optional[Path] = rundir / "objs"
    else:
        guest_objs = None
    _write_env(rundir, kernel, guest_objs)
    (rundir / "args").write_text("".join(f"{a}\n" for a in pytest_args))
    (rundir / "known").write_text("".join(f"{nodeid}\t{why}\n" for (k, nodeid), why
                                          in KNOWN_ISSUES.items() if k == kernel_name))

    kvm = os.environ.get("PYLIBBPF_VM_KVM") == "1"
    cmd = [tools["vng"], "--run", str(kernel.vmlinuz),
           "--force-9p",                      # no virtiofsd: don't wait for it
           "--memory", os.environ.get("PYLIBBPF_VM_MEMORY", "2G"),
           "--cpus", cpus or os.environ.get("PYLIBBPF_VM_CPUS", "2"),
           f"--rwdir={rundir}",
           f"--rodir={REPO}",                 # guest.sh overlays it: writes stay in the guest
           *[f"--rodir={p}" for p in _hidden_prefixes()],
           "--cwd", str(REPO),
           "--append", f"modprobe.blacklist={GUEST_MODULE_BLACKLIST}",
           "--exec", f"sh {shlex.quote(str(HERE / 'guest.sh'))} {shlex.quote(str(rundir))}"]
    if not kvm:
        cmd.insert(3, "--disable-kvm")
    env = dict(os.environ)
    # the PATH the pre-flight searched: vng, file, modprobe… are found as checked
    env["PATH"] = os.pathsep.join([str(Path(tools["vng"]).parent),
                                   str(Path(tools["virtme-run"]).parent),
                                   env.get("PATH", ""), *SYSTEM_DIRS])
    if not quiet:
        print(f"pylibbpf-vm: booting {kernel.package} {kernel.version} "
              f"({'KVM' if kvm else 'TCG'}), {len(pytest_args)} pytest args; run dir {rundir}",
              file=sys.stderr, flush=True)
    t0 = time.monotonic()
    timed_out = False
    with open(rundir / "console.log", "wb") as console:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
                                start_new_session=True)
        def stop() -> None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()

        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop()
        except BaseException:          # Ctrl-C: never leave a qemu behind
            stop()
            raise
    seconds = time.monotonic() - t0

    def read(name: str) -> Optional[str]:
        try:
            return (rundir / name).read_text().strip()
        except OSError:
            return None

    started = read("started") is not None
    rc_text = read("rc")
    t_start, t_end = read("pytest-start"), read("pytest-end")
    run = VMRun(kernel=kernel, rundir=rundir, started=started,
                returncode=int(rc_text) if rc_text and rc_text.lstrip("-").isdigit() else None,
                timed_out=timed_out, seconds=seconds,
                pytest_seconds=(float(t_end) - float(t_start)) if t_start and t_end else None,
                uname=read("started") or "", lsm=read("lsm") or "")
    if (rundir / "junit.xml").is_file():
        try:
            run.results, run.stray = parse_junit(rundir / "junit.xml")
        except ET.ParseError:
            pass
    if not started:
        reason = "timed out before the guest ran its command" if timed_out else \
            f"vng exited with status {proc.returncode} before the guest ran its command"
        tail = run.log("console.log", 1500)
        if not keep:
            shutil.rmtree(rundir, ignore_errors=True)
        raise CannotStart(f"the VM with kernel {kernel.release} did not start: {reason}\n{tail}")
    if not keep and run.returncode in (0, 1, 5) and not timed_out:
        # results are in memory; keep the directory only when something went wrong
        # beyond ordinary test failures (the logs are needed then)
        shutil.rmtree(rundir, ignore_errors=True)
    return run


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--kernel", "-k", action="append", choices=sorted(SUITES),
                    help="kernel to boot (repeatable; default: all)")
    ap.add_argument("--fetch-only", action="store_true", help="only fetch and unpack kernels")
    ap.add_argument("--check", action="store_true",
                    help="only the pre-flight: list the tools a VM needs and where each is; "
                         "exit 3 naming the Debian package of any that is missing")
    ap.add_argument("--no-objects", action="store_true",
                    help="do not compile tests/bpf on the host (the guest compiles)")
    ap.add_argument("pytest_args", nargs="*", help="pytest arguments (after --)")
    args = ap.parse_args(argv)
    names = args.kernel or list(SUITES)
    if args.check:
        return check_main()
    if args.fetch_only:
        for n in names:
            k = ensure_kernel(n)
            print(f"{k.name}\t{k.package}\t{k.version}\t{k.vmlinuz}")
        return 0
    selection = args.pytest_args or default_selection()
    status = 0
    results: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pylibbpf-vm-objs-") as tmp:
        objects = None if args.no_objects else compile_objects(Path(tmp))
        for n in names:
            try:
                run = run_vm(n, selection, objects=objects, keep=True)
            except CannotStart as e:
                print(f"[{n}] cannot start: {e}", file=sys.stderr)
                results[n] = e
                status = status or 3
                continue
            results[n] = run
            print(run.log("pytest.log", 20000))
            counts: Dict[str, int] = {}
            for o in run.results.values():
                counts[o.outcome] = counts.get(o.outcome, 0) + 1
            print(f"[{n}] {run.uname}: guest pytest exit {run.returncode}, "
                  f"{', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}; "
                  f"VM {run.seconds:.0f} s, pytest {run.pytest_seconds or 0:.0f} s"
                  f"{' (TIMED OUT)' if run.timed_out else ''}; logs in {run.rundir}")
            if run.returncode != 0:
                status = status or (run.returncode if run.returncode is not None else 4)
    for line in summary_lines(names, results):
        print(line)
    return status


def check_main() -> int:
    """``run.py --check``: the pre-flight, tool by tool."""
    missing = dict((t.name, what) for t, what in missing_tools())
    for tool in VM_TOOLS:
        where = missing.get(tool.name) or _find(tool)
        source = f"{tool.package} (PyPI)" if tool.pypi else tool.package
        print(f"{'MISSING' if tool.name in missing else 'ok':8} {tool.name:20} {source:16} "
              f"{where}  -- {tool.why}")
    if missing:
        print(describe_missing(missing_tools()), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
