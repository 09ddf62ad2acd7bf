"""BPF tokens: a process in a user namespace, without any capability in the
initial one, loads and runs programs through a token made from a bpffs that
root mounted with delegate_* options for that namespace (pylibbpf.testing's
run_in_userns). Each runs in a child process."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

import pytest

import pylibbpf
from pylibbpf import BPFPermissionError, NotSupportedError, system
from pylibbpf.testing import run_in_userns

from _kernel import expect_unsupported

#: r0 = 7; exit
RET7 = bytes.fromhex("b700000007000000" "9500000000000000")
PACKET = bytes(64)


def _outcome(call: Any) -> str:
    """What a call raised, as the child reports it: "Type: message" ("" when it worked)."""
    try:
        call()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return ""


def _whoami() -> Dict[str, Any]:
    with open("/proc/self/uid_map") as f:
        uid_map = f.read().split()
    return {"uid_map": uid_map, "euid": os.geteuid()}


@pytest.mark.kind("bpf_token")
def test_object_loads_and_runs_through_token_in_userns(bpf_objects: Dict[str, Path]) -> None:
    data = bpf_objects["token_counter"].read_bytes()

    def child(bpffs: str) -> Dict[str, Any]:
        out = _whoami()

        def without() -> None:
            with pylibbpf.Object(data, name="counter", token_path="") as obj:
                obj.load()

        out["without"] = _outcome(without)
        with pylibbpf.Object(data, name="counter", token_path=bpffs) as obj:
            obj.load()
            out["token_fd"] = obj.token_fd
            out["retval"] = obj.programs["count_runs"].test_run(PACKET).retval
            out["runs"] = obj.bss.runs
        return out

    out = run_in_userns(child)
    # root in its namespace, nobody (65534) outside it: no CAP_BPF in the initial one
    assert out["uid_map"] == ["0", "65534", "1"] and out["euid"] == 0
    assert out["without"].startswith("BPFPermissionError: load BPF object 'counter'")
    assert "token_path=" in out["without"] and "LIBBPF_BPF_TOKEN_PATH" in out["without"]
    assert out["token_fd"] >= 0
    assert out["retval"] == 7 and out["runs"] == 1


@pytest.mark.kind("bpf_token")
def test_libbpf_token_path_variable_is_honoured(bpf_objects: Dict[str, Path]) -> None:
    data = bpf_objects["token_counter"].read_bytes()

    def child(bpffs: str) -> Dict[str, Any]:
        os.environ["LIBBPF_BPF_TOKEN_PATH"] = bpffs
        with pylibbpf.Object(data, name="counter") as obj:
            obj.load()
            obj.programs["count_runs"].test_run(PACKET)
            obj.programs["count_runs"].test_run(PACKET)
            return {"runs": obj.bss.runs, "token_fd": obj.token_fd}

    out = run_in_userns(child)
    assert out["runs"] == 2 and out["token_fd"] >= 0


@pytest.mark.kind("bpf_token")
def test_token_for_raw_program_and_map() -> None:
    def child(bpffs: str) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        out["without"] = _outcome(lambda: pylibbpf.Program.load_raw(
            "socket_filter", RET7, name="ret7").close())
        with pylibbpf.Token(bpffs) as token:
            with pylibbpf.Program.load_raw("socket_filter", RET7, name="ret7",
                                           token=token) as prog:
                out["retval"] = prog.test_run(PACKET).retval
            with pylibbpf.Map.create("array", 4, 8, 2, name="tok", token=token) as m:
                m[(1).to_bytes(4, "little")] = (41).to_bytes(8, "little")
                out["value"] = int.from_bytes(m[(1).to_bytes(4, "little")], "little")
            out["closed"] = token.closed
        out["closed_after"] = token.closed
        return out

    out = run_in_userns(child)
    assert out["without"].startswith("BPFPermissionError: load socket_filter program 'ret7'")
    assert "token_path=" in out["without"]
    assert out["retval"] == 7 and out["value"] == 41
    assert out["closed"] is False and out["closed_after"] is True


def test_bpffs_delegating_nothing_makes_no_token() -> None:
    def child(bpffs: str) -> None:
        pylibbpf.Token(bpffs)

    sup = system.support("bpf_token")
    if not sup:
        expect_unsupported("bpf_token")
    with pytest.raises(NotSupportedError) as info:
        run_in_userns(child, delegate={})   # a bpffs of the namespace, delegating nothing
    text = str(info.value)
    if sup:
        assert text.startswith("create BPF token from '/proc/self/fd/")
        assert "the bpffs delegates nothing" in text
    else:
        assert "bpf_token" in text and sup.reason in text


def test_token_outside_a_user_namespace_is_refused() -> None:
    """Root in the initial namespace makes no token, from the host's bpffs either."""
    with pytest.raises(NotSupportedError) as info:
        pylibbpf.Token("/sys/fs/bpf")
    sup = system.support("bpf_token")
    assert "create BPF token from '/sys/fs/bpf'" in str(info.value)
    assert ("user namespace" in str(info.value)) if sup else (sup.reason in str(info.value))


def test_token_path_errors_name_the_path(bpf_objects: Dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pylibbpf.Object(bpf_objects["token_counter"], token_path=missing) as obj:
        with pytest.raises(pylibbpf.BPFNotFoundError) as info:
            obj.load()
    assert f"open the bpffs of token_path {str(missing)!r}" in str(info.value)
    with pylibbpf.Object(bpf_objects["token_counter"], token_path=tmp_path) as obj:
        with pytest.raises(pylibbpf.BPFError) as err:
            obj.load()
    assert f"from token_path {str(tmp_path)!r}" in str(err.value)


def test_token_argument_types() -> None:
    with pytest.raises(TypeError, match="token must be a pylibbpf.Token"):
        pylibbpf.Program.load_raw("socket_filter", RET7, token="/sys/fs/bpf")  # type: ignore
    with pytest.raises(TypeError, match="bpffs must be a path"):
        pylibbpf.Token(True)  # type: ignore[arg-type]


def test_permission_hint_outside_userns_stays_the_capability_one() -> None:
    exc = pylibbpf.errors.error_from_errno(1, "load x")
    assert isinstance(exc, BPFPermissionError)
    assert "needs root or CAP_BPF" in str(exc) and "token_path" not in str(exc)
