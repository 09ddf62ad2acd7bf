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
    """Attach kind ``kind`` (``system.KINDS``, or ``iter/TARGET``) on this kernel."""
    return system.support(kind)


def iter_target(target: str) -> system.Support:
    """Iterator target ``target`` (``"task"``, ``"bpf_map_elem"`` …) on this kernel."""
    return system.iter_target_support(target)


def map_type(map_type: Union[pylibbpf.MapType, str]) -> system.Support:
    return system.map_type_support(map_type)


def required(kind: str) -> bool:
    if "all" in REQUIRED_KINDS or kind in REQUIRED_KINDS:
        return True
    return any(kind in kinds for group, kinds in _GROUPS.items() if group in REQUIRED_KINDS)


def expect_unsupported(kind: str) -> None:
    """Called where the kernel lacks ``kind``: fine, unless the environment requires it."""
    if required(kind):
        pytest.fail(f"this kernel lacks {kind}, which PYLIBBPF_REQUIRE_KINDS requires")


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
    why = reason if reason is not None else re.escape(support(kind).reason)
    assert re.search(why, text), f"{text!r} does not give the reason {why!r}"
    for name in (kind, *names):
        assert name.lower() in text.lower(), f"{text!r} does not name {name!r}"
