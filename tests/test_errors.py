"""Errors: verifier rejections, bad ELF input, use after close."""
from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

import pylibbpf
from _children import same_pylibbpf


def test_verifier_rejection_carries_program_and_whole_log(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["rejected"]) as obj:
        with pytest.raises(pylibbpf.VerifierError) as ei:
            obj.load()
    e = ei.value
    assert isinstance(e, pylibbpf.BPFError) and isinstance(e, OSError)
    assert e.program == "unchecked_read"
    assert e.errno == errno.EACCES
    assert "invalid access to packet" in e.log
    assert e.log.lstrip().startswith("0: R1=ctx(")  # the whole log, from its first line
    assert "unchecked_read" in str(e) and "invalid access to packet" in str(e)


def test_verifier_log_is_not_printed_to_stderr(bpf_objects, capfd) -> None:
    with pylibbpf.Object(bpf_objects["rejected"]) as obj:
        with pytest.raises(pylibbpf.VerifierError):
            obj.load()
    assert "invalid access to packet" not in capfd.readouterr().err


def test_verifier_log_with_custom_log_level(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["rejected"]) as obj:
        obj.programs["unchecked_read"].log_level = 2
        with pytest.raises(pylibbpf.VerifierError) as ei:
            obj.load()
    assert "invalid access to packet" in ei.value.log


def _truncated(path: Path, size: int) -> bytes:
    return path.read_bytes()[:size]


@pytest.mark.parametrize("case", ["empty", "random", "x86_elf", "truncated_header",
                                  "truncated_sections", "text"])
@pytest.mark.parametrize("as_file", [True, False])
def test_bad_elf_input_is_a_clean_error(bpf_objects, tmp_path, case, as_file) -> None:
    good = bpf_objects["core_task"]
    data = {
        "empty": b"",
        "random": bytes(range(256)) * 8,
        "x86_elf": Path(sys.executable).resolve().read_bytes()[:200000],
        "truncated_header": _truncated(good, 40),
        "truncated_sections": _truncated(good, good.stat().st_size // 2),
        "text": b"int main(void) { return 0; }\n",
    }[case]
    if as_file:
        f = tmp_path / f"{case}.o"
        f.write_bytes(data)
        with pytest.raises(pylibbpf.ELFError) as ei:
            pylibbpf.Object(f)
        assert str(f) in str(ei.value)
    else:
        with pytest.raises(pylibbpf.ELFError) as ei:
            pylibbpf.Object(data, name=f"bad-{case}")
        assert f"bad-{case}" in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_non_bpf_elf_says_what_it_is(tmp_path) -> None:
    f = tmp_path / "python.o"
    f.write_bytes(Path(sys.executable).resolve().read_bytes()[:4096])
    with pytest.raises(pylibbpf.ELFError, match="for x86-64, not a BPF object"):
        pylibbpf.Object(f)


def test_corrupt_section_table_is_a_clean_error(bpf_objects) -> None:
    data = bytearray(bpf_objects["core_task"].read_bytes())
    data[40:48] = (len(data) - 10).to_bytes(8, "little")  # e_shoff near the end
    with pytest.raises(pylibbpf.ELFError, match="truncated or corrupt"):
        pylibbpf.Object(bytes(data))


def test_missing_file_and_directory() -> None:
    with pytest.raises(FileNotFoundError, match="/nonexistent/x.bpf.o"):
        pylibbpf.Object("/nonexistent/x.bpf.o")
    with pytest.raises(pylibbpf.ELFError, match="is a directory"):
        pylibbpf.Object("/tmp")


def test_wrong_source_type() -> None:
    with pytest.raises(TypeError, match="source must be a path or bytes"):
        pylibbpf.Object(42)  # type: ignore[arg-type]


def test_use_after_close_raises_closed_error(bpf_objects) -> None:
    obj = pylibbpf.Object(bpf_objects["core_task"])
    obj.load()
    prog = obj.programs["on_getpgid"]
    m = obj.maps["seen"]
    link = prog.attach()
    link.close()
    obj.close()
    calls = [
        lambda: obj.load(), lambda: obj.programs, lambda: obj.maps, lambda: obj.name,
        lambda: obj.attach_all(), lambda: prog.fd, lambda: prog.attach(),
        lambda: prog.test_run(b"\0" * 64), lambda: prog.info(), lambda: prog.section,
        lambda: m.fd, lambda: m[b"\0" * 4], lambda: list(m), lambda: m.info(),
        lambda: m.name, lambda: link.fd, lambda: link.info, lambda: link.pin("/sys/fs/bpf/x"),
        lambda: link.update(prog),
    ]
    for call in calls:
        with pytest.raises(pylibbpf.ClosedError, match="closed"):
            call()


def test_closed_error_is_value_error_with_ebadf() -> None:
    e = pylibbpf.ClosedError("Thing")
    assert isinstance(e, ValueError) and e.errno == errno.EBADF


DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("name, message", [
    # libbpf wraps a truncated 64-bit size into an error pointer outside IS_ERR's range
    ("fuzz-kcfg-extern-size.bpf.o", "invalid error code"),
    # a bitfield on a zero-size base type made CO-RE relocation divide by zero (SIGFPE)
    ("fuzz-bitfield-size0.bpf.o", "corrupt BTF"),
])
def test_fuzz_findings_are_clean_errors(name, message) -> None:
    """Inputs that once crashed libbpf; run in a child so a regression can't kill the run."""
    import subprocess

    code = (f"import pylibbpf\ntry:\n    o = pylibbpf.Object(open({str(DATA / name)!r}, 'rb').read())\n"
            "    o.load()\nexcept pylibbpf.ELFError as e:\n    print('ELFError', e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         **same_pylibbpf())
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-500:]}"
    assert res.stdout.startswith("ELFError") and message in res.stdout


def test_global_data_max_entries_is_refused(bpf_objects) -> None:
    """libbpf would unmap the wrong size later and corrupt memory (found by fuzzing)."""
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        with pytest.raises(ValueError, match="memory-mapped global data"):
            obj.maps[".rodata"].max_entries = 64
        obj.maps["actions"].max_entries = 8  # ordinary maps still resize
        obj.load()
        assert obj.maps["actions"].info().max_entries == 8
