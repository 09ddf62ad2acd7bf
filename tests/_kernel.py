"""What the running kernel supports: the one place the tests ask.

Tests never encode what one machine's kernel lacks. A test of a kind asks here
(:func:`support`, :func:`iter_target`, :func:`map_type`, all answered by
``pylibbpf.system``'s probes), then runs the real call either way and asserts that
the program fired where the kernel supports the kind, or, where it does not, that
the call raised the clean ``NotSupportedError`` naming the kind and the probe's
reason (:func:`refused`).

``PYLIBBPF_REQUIRE_KINDS=kprobe,fentry,…`` (or ``all``) turns "not supported" into a
failure, for kernels that must have those kinds (the kernel-matrix VMs set it).
"""
from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator, Optional, Union

import pytest

import pylibbpf
from pylibbpf import NotSupportedError, system

#: kinds that must work (comma-separated, or "all")
REQUIRED_KINDS = {k.strip() for k in os.environ.get("PYLIBBPF_REQUIRE_KINDS", "").split(",")
                  if k.strip()}

#: old names kept for PYLIBBPF_REQUIRE_KINDS: one word requires several kinds
_GROUPS = {"trampoline": ("fentry", "fexit", "fmod_ret", "freplace", "lsm"),
           "kprobe": ("kretprobe", "ksyscall", "kretsyscall"),
           "kprobe_multi": ("kprobe_multi", "kprobe_session")}


def support(kind: str) -> system.Support:
    """Attach kind ``kind`` (``system.KINDS``, or ``iter/TARGET``) on this kernel; a
    test that asks about a kind PYLIBBPF_REQUIRE_KINDS requires fails where it's missing."""
    sup = system.support(kind)
    if not sup and required(kind):
        pytest.fail(f"this kernel lacks {kind} ({sup.reason}), which "
                    "PYLIBBPF_REQUIRE_KINDS requires")
    return sup


def iter_target(target: str) -> system.Support:
    """Iterator target ``target`` (``"task"``, ``"bpf_map_elem"`` …) on this kernel."""
    return support(f"iter/{target}")


def map_type(map_type: Union[pylibbpf.MapType, str]) -> system.Support:
    return system.map_type_support(map_type)


def without_unknown_program_types(obj: pylibbpf.Object) -> pylibbpf.Object:
    """Turn autoload off for the object's programs of a type this kernel does not know
    (netfilter before 6.4 …), so the rest loads; returns ``obj``."""
    from pylibbpf.attach._kinds import prog_type_known

    for prog in obj.programs.values():
        if not prog_type_known(prog.type):
            prog.autoload = False
    return obj


def required(kind: str) -> bool:
    if "all" in REQUIRED_KINDS or kind in REQUIRED_KINDS:
        return True
    return any(kind in kinds for group, kinds in _GROUPS.items() if group in REQUIRED_KINDS)


def expect_unsupported(kind: str) -> None:
    """Called where the kernel lacks ``kind``: fine, unless the environment requires it."""
    if required(kind):
        why = ""
        if kind in system.KINDS or kind.startswith("iter/"):
            why = f" ({system.support(kind).reason})"
        pytest.fail(f"this kernel lacks {kind}{why}, which PYLIBBPF_REQUIRE_KINDS requires")


@contextlib.contextmanager
def refused(kind: str, *names: str, reason: Optional[str] = None
            ) -> Iterator[pytest.ExceptionInfo[NotSupportedError]]:
    """The block must raise NotSupportedError whose message names ``kind`` (and each
    of ``names``: the program, the target …) and the reason the probe gave (or
    ``reason``, a regular expression). Fails instead where the kind is required."""
    expect_unsupported(kind)
    with pytest.raises(NotSupportedError) as info:
        yield info
    text = str(info.value)
    why = reason if reason is not None else re.escape(system.support(kind).reason)
    assert re.search(why, text), f"{text!r} does not give the reason {why!r}"
    for name in (kind, *names):
        assert name.lower() in text.lower(), f"{text!r} does not name {name!r}"


# --- the ``kind`` marker --------------------------------------------------------------
#
# ``@pytest.mark.kind("tcx")`` on a test that exercises one attach kind: where the
# kernel has the kind, the test runs as written (and asserts that the program fired);
# where it lacks it, the test still runs the real calls, and must end in the
# NotSupportedError naming the kind and the probe's reason. A test that passes there
# fails: the probe said "not supported" but the call worked.

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kind(name): the test exercises attach kind NAME (pylibbpf.system.KINDS "
        "or iter/TARGET); where this kernel lacks it, the test must end in the "
        "NotSupportedError that names the kind and the reason")


def _marked(item: pytest.Item) -> Optional[system.Support]:
    marker = item.get_closest_marker("kind")
    return system.support(marker.args[0]) if marker is not None else None


def _clean_refusal(exc: Optional[BaseException], sup: system.Support) -> bool:
    return (isinstance(exc, NotSupportedError) and sup.name.lower() in str(exc).lower()
            and sup.reason in str(exc))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """A fixture that loads an object of a kind this kernel lacks ends the test there:
    its clean refusal is the test's result."""
    sup = _marked(item)
    outcome = yield
    if sup is not None and not sup and not required(sup.name) and outcome.excinfo \
            and _clean_refusal(outcome.excinfo[1], sup):
        item.stash[_REFUSED_IN_SETUP] = True
        outcome.force_result(None)


_REFUSED_IN_SETUP = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    return True if pyfuncitem.stash.get(_REFUSED_IN_SETUP, False) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    sup = _marked(item)
    outcome = yield
    if sup is None or sup or item.stash.get(_REFUSED_IN_SETUP, False):
        return
    if required(sup.name):
        outcome.force_exception(pytest.fail.Exception(
            f"this kernel lacks {sup.name} ({sup.reason}), which PYLIBBPF_REQUIRE_KINDS "
            "requires"))
        return
    exc = outcome.excinfo[1] if outcome.excinfo else None
    if exc is None:
        outcome.force_exception(AssertionError(
            f"the probe says this kernel lacks {sup.name} ({sup.reason}), yet the test "
            "passed: the probe or the test is wrong"))
    elif _clean_refusal(exc, sup):
        outcome.force_result(None)   # the clean refusal: what this kernel must give
