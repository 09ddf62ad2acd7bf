"""pylibbpf.system's support probes (what tests/_kernel.py asks) and the
NotSupportedError of a load that the kernel refuses before verification.

Each probe is checked against the real call on the running kernel: where the probe
says yes, the call works; where it says no, the call raises NotSupportedError with
the probe's reason. Nothing here knows what this machine's kernel lacks."""
from __future__ import annotations

import errno
import json
import re
import subprocess
import sys

import pytest

import pylibbpf
from pylibbpf import NotSupportedError, system
from pylibbpf.attach import _kinds

from _children import same_pylibbpf
from _kernel import refused, support

EXIT0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit


def test_every_kind_has_an_answer_and_a_reason_when_not() -> None:
    for kind in system.KINDS:
        sup = system.support(kind)
        assert sup.name == kind and bool(sup) is sup.supported
        assert bool(sup.reason) is not sup.supported, sup
    # kinds every kernel we run on has: the probes must not be wrong the other way
    for kind in ("raw_tracepoint", "uprobe", "socket_filter", "xdp", "tc", "perf_event"):
        assert system.support(kind), system.support(kind)


def test_unknown_kind_and_target_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown attach kind 'kprobes'.*kprobe_multi"):
        system.support("kprobes")
    sup = system.support("iter/no_such_target")
    assert not sup and "'no_such_target'" in sup.reason and "BTF" in sup.reason
    with pytest.raises(ValueError, match="unknown map type 'no_such_map'"):
        system.map_type_support("no_such_map")


def test_iterator_targets_come_from_the_kernel_and_match_a_real_load() -> None:
    targets = system.iter_targets()
    assert "task" in targets and "bpf_map_elem" in targets
    assert not any(t.endswith(("_new", "_next", "_destroy")) for t in targets)  # no kfuncs
    for target, sup in targets.items():
        assert sup.name == f"iter/{target}"
        btf_id = _kinds.vmlinux_type_id(f"bpf_iter_{target}", _kinds.BTF_KIND_FUNC)
        load = lambda: pylibbpf.Program.load_raw(  # noqa: E731
            "tracing", EXIT0, expected_attach_type="trace_iter", attach_btf_id=btf_id,
            name="plb_iter_raw")
        if sup:
            load().close()
        else:
            # a raw load names the target too (found from the BTF id)
            with refused(f"iter/{target}", "plb_iter_raw", reason=re.escape(sup.reason)):
                load()


def test_tp_btf_is_told_apart_from_trampolines(bpf_objects) -> None:
    """tp_btf programs are TRACING programs but need no trampoline: the probe and a
    real tp_btf load agree, whatever the kernel says about fentry."""
    from test_attach_tracing import load_only

    if support("tp_btf"):
        load_only(bpf_objects["attach_tp"], "btf_sys_enter").close()
    else:
        with refused("tp_btf", "btf_sys_enter"):
            load_only(bpf_objects["attach_tp"], "btf_sys_enter")


def test_map_type_support_matches_map_creation() -> None:
    assert system.map_type_support("hash") and system.map_type_support("ringbuf")
    sup = system.map_type_support("arena")
    assert sup.name == "arena" and bool(sup.reason) is not sup.supported


@pytest.mark.parametrize("err, log, refused_early", [
    (errno.EPERM, "", True),
    (errno.EOPNOTSUPP, "", True),
    (524, "\n", True),                                    # ENOTSUPP
    (errno.EPERM, "processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0"
                  " peak_states 0 mark_read 0\n", True),
    (errno.EINVAL, "processed 0 insns (limit 1000000) max_states_per_insn 0\n", True),
    (errno.EINVAL, "", False),        # EINVAL alone says nothing about the kernel
    (errno.EACCES, "", False),
    (errno.EPERM, "0: R1=ctx() R10=fp0\n0: (b7) r0 = 0\ninvalid read from stack\n"
                  "processed 3 insns (limit 1000000)\n", False),  # the verifier said why
])
def test_refused_before_verification(err, log, refused_early) -> None:
    assert _kinds.refused_before_verification(err, log) is refused_early


def test_refusal_names_kind_and_target() -> None:
    from pylibbpf import AttachType, ProgramType

    zero = "processed 0 insns (limit 1000000)\n"
    why = _kinds.load_refusal(errno.EPERM, ProgramType.TRACING, zero,
                              section="iter/bpf_map_elem", attach_type=AttachType.TRACE_ITER)
    assert why.startswith("iter/bpf_map_elem: this kernel refuses this iterator target (EPERM")
    why = _kinds.load_refusal(errno.EPERM, ProgramType.TRACING, "",
                              section="fexit/x", attach_type=AttachType.TRACE_FEXIT)
    assert "fentry/fexit/fmod_ret" in why and "trampolines" in why
    why = _kinds.load_refusal(errno.EPERM, ProgramType.TRACING, "",
                              section="tp_btf/sched_switch", attach_type=AttachType.TRACE_RAW_TP)
    assert why.startswith("tp_btf/sched_switch: this kernel refuses tracing programs")
    assert "trampoline" not in why
    why = _kinds.load_refusal(errno.EOPNOTSUPP, ProgramType.XDP, "", attach_type=None)
    assert why.startswith("xdp: this kernel refuses xdp programs") and "(ENOTSUP" in why
    assert _kinds.load_refusal(errno.EPERM, ProgramType.XDP, "R1 invalid mem access\n") == ""


def test_features_reports_kinds_targets_and_reasons() -> None:
    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "pylibbpf", "features", *args],
                              capture_output=True, text=True, check=True,
                              **same_pylibbpf()).stdout

    feats = json.loads(run("--json"))
    assert set(system.KINDS) <= set(feats["attach_kinds"])
    assert feats["attach_kinds"]["tp_btf"] is bool(support("tp_btf"))
    assert feats["iter_targets"] == {t: s.supported for t, s in system.iter_targets().items()}
    for kind, ok in feats["attach_kinds"].items():
        assert (kind in feats["reasons"]) is (not ok)
    for target, ok in feats["iter_targets"].items():
        assert (f"iter/{target}" in feats["reasons"]) is (not ok)
    text = run()
    assert "iterator targets:\n" in text
    for kind, reason in feats["reasons"].items():
        name = kind.removeprefix("iter/")
        assert f"  no   {name} " in text and f"({reason})" in text


def test_not_supported_error_carries_the_reason() -> None:
    sup = support("fentry")
    btf_id = _kinds.vmlinux_type_id("bpf_fentry_test1", _kinds.BTF_KIND_FUNC)

    def load() -> pylibbpf.Program:
        return pylibbpf.Program.load_raw("tracing", EXIT0, expected_attach_type="trace_fentry",
                                         attach_btf_id=btf_id)
    if sup:
        load().close()
        return
    with refused("fentry") as e:
        load()
    assert e.value.reason == sup.reason and e.value.errno == errno.EPERM


MARKER_TESTS = '''
import pytest
import _kernel
from pylibbpf import NotSupportedError, system

REASON = "this kernel has no frobnicator (CONFIG_FROB off)"
system.support = lambda kind: system.Support(kind, kind == "have", "" if kind == "have" else REASON)

def refusal(kind="frob"):
    return NotSupportedError(95, f"attach x: {kind}: {REASON}")

@pytest.fixture
def loaded():
    raise refusal()

@pytest.mark.kind("frob")
def test_refused_cleanly():
    raise refusal()

@pytest.mark.kind("frob")
def test_fixture_refused_cleanly(loaded):
    raise AssertionError("never runs")

@pytest.mark.kind("frob")
def test_passes_although_unsupported():
    pass

@pytest.mark.kind("frob")
def test_other_error():
    raise ValueError("something else")

@pytest.mark.kind("frob")
def test_refusal_without_the_reason():
    raise NotSupportedError(95, "attach x: frob: no")

@pytest.mark.kind("have")
def test_supported_runs_as_written():
    pass

@pytest.mark.kind("have")
def test_supported_failure_stays():
    raise refusal("have")
'''


@pytest.mark.parametrize("required, expected", [
    ("", {"test_refused_cleanly": "passed", "test_fixture_refused_cleanly": "passed",
          "test_passes_although_unsupported": "failed", "test_other_error": "failed",
          "test_refusal_without_the_reason": "failed",
          "test_supported_runs_as_written": "passed", "test_supported_failure_stays": "failed"}),
    ("frob", {"test_refused_cleanly": "failed", "test_fixture_refused_cleanly": "error",
              "test_passes_although_unsupported": "failed", "test_other_error": "failed",
              "test_refusal_without_the_reason": "failed",
              "test_supported_runs_as_written": "passed",
              "test_supported_failure_stays": "failed"}),
])
def test_kind_marker(tmp_path, required, expected) -> None:
    """The ``kind`` marker (tests/_kernel.py) passes a test on a kernel without the
    kind only when it ended in the clean refusal, and fails it where the kind is
    required (PYLIBBPF_REQUIRE_KINDS)."""
    import os
    from pathlib import Path

    (tmp_path / "conftest.py").write_text('pytest_plugins = ["_kernel"]\n')
    (tmp_path / "test_marker.py").write_text(MARKER_TESTS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]),
        PYLIBBPF_REQUIRE_KINDS=required)
    res = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider",
                          "-q", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    got = {}
    for line in res.stdout.splitlines():
        m = re.match(r"(PASSED|FAILED|ERROR) \S*::(test_\w+)", line)
        if m:
            got[m.group(2)] = m.group(1).lower()
    assert got == expected, res.stdout[-3000:]
