"""Errors that used to mislead (issue 17 item 15): pins outside bpffs, opening a
regular file as a pin, a full map or an index past the end, tracefs and paths an
unprivileged user can't reach, /proc of another user's process."""
from __future__ import annotations

import os
import textwrap
from typing import Iterator

import pytest

import pylibbpf
from pylibbpf import elf
from _children import Unprivileged


@pytest.fixture
def loaded(bpf_objects) -> Iterator[pylibbpf.Object]:
    with pylibbpf.Object(bpf_objects["corrupt_base"]) as obj:
        obj.load()
        yield obj


# --- pins --------------------------------------------------------------------------

def test_pin_outside_bpffs_is_refused_without_side_effects(loaded, tmp_path, bpffs_dir) -> None:
    """libbpf created the parent directory and kept the refused path as the map's pin
    path, so the next pin, to a good bpffs path, failed with EINVAL."""
    m = loaded.maps["bigmap"]
    target = tmp_path / "newdir" / "pin"
    with pytest.raises(pylibbpf.BPFError) as ei:
        m.pin(target)
    assert ei.value.errno == 22 and f"pin map 'bigmap' at {str(target)!r}: {str(tmp_path)!r} " \
        "is on a " in str(ei.value) and "file system, not bpffs" in str(ei.value), str(ei.value)
    assert not (tmp_path / "newdir").exists()  # nothing created outside bpffs
    m.pin(bpffs_dir / "bigmap")
    with pylibbpf.Map.open_pinned(bpffs_dir / "bigmap") as again:
        assert again.max_entries == 8


_RET0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit


def test_program_and_link_pins_are_checked_like_map_pins(bpf_objects, tmp_path,
                                                        bpffs_dir) -> None:
    """Program.pin and Link.pin had Map.pin's problem: off bpffs, libbpf created the
    parent directory there (an Object's program, a link), and the raw BPF_OBJ_PIN
    (a raw program, a reopened link) answered EPERM, read as a missing CAP_BPF. Each
    now gets the bpffs check first, and a missing directory is named."""
    with pylibbpf.Object(bpf_objects["attach_tp"]) as obj:
        obj.load()
        prog = obj.programs["tp_getpgid"]
        raw = pylibbpf.Program.load_raw(pylibbpf.ProgramType.SOCKET_FILTER, _RET0,
                                        license="GPL", name="rawp")
        link = prog.attach_tracepoint("syscalls", "sys_enter_getpgid")
        first = obj.programs["tp_getpgid_alt"].attach_tracepoint("syscalls", "sys_enter_getpgid")
        first.pin(bpffs_dir / "link0")
        reopened = pylibbpf.Link.open_pinned(bpffs_dir / "link0")  # no libbpf link
        reopened.unpin()  # pinned again below, by BPF_OBJ_PIN
        cases = [("program 'tp_getpgid'", prog.pin, True), ("program 'rawp'", raw.pin, False),
                 ("tracepoint", link.pin, True), ("pinned perf_event link", reopened.pin, True)]
        try:
            for n, (name, pin, libbpf_pins) in enumerate(cases):
                target = tmp_path / "newdir" / "pin"
                with pytest.raises(pylibbpf.BPFError) as ei:
                    pin(target)
                msg = str(ei.value)
                assert ei.value.errno == 22 and not isinstance(ei.value, PermissionError), msg
                assert f"at {str(target)!r}: {str(tmp_path)!r} is on a " in msg and \
                    "file system, not bpffs" in msg and name in msg, msg
                assert not (tmp_path / "newdir").exists(), name  # nothing made off bpffs

                deep = bpffs_dir / f"d{n}" / "sub" / "pin"
                missing = deep.parent.parent if libbpf_pins else deep.parent
                with pytest.raises(pylibbpf.BPFNotFoundError) as ei:
                    pin(deep)
                assert str(ei.value).endswith(f"at {str(deep)!r}: no directory "
                                              f"{str(missing)!r} in bpffs (create it first) "
                                              "[ENOENT]"), str(ei.value)

                good = bpffs_dir / f"p{n}"
                pin(good)  # the failures left nothing behind
                assert good.exists()
                owner = pin.__self__  # type: ignore[attr-defined]
                if isinstance(owner, pylibbpf.Link):  # one pin per link
                    owner.unpin()
                    (bpffs_dir / "taken").mkdir(exist_ok=True)
                    with pytest.raises(pylibbpf.BPFExistsError) as ei:
                        pin(bpffs_dir / "taken")
                    assert str(bpffs_dir / "taken") in str(ei.value)
                else:
                    with pytest.raises(pylibbpf.BPFExistsError) as ei:
                        pin(good)
                    assert f"at {str(good)!r}" in str(ei.value)
        finally:
            reopened.close()
            link.close()
            first.close()
            raw.close()


def test_failed_pin_in_bpffs_leaves_no_pin_path_behind(loaded, bpffs_dir) -> None:
    """A pin libbpf itself refuses (the name is taken) must not stick to the map."""
    m = loaded.maps["bigmap"]
    (bpffs_dir / "taken").mkdir()
    with pytest.raises(pylibbpf.BPFExistsError, match="pin map 'bigmap' at"):
        m.pin(bpffs_dir / "taken")
    m.pin(bpffs_dir / "free")
    assert os.path.exists(bpffs_dir / "free")


def test_open_pinned_regular_file_says_it_is_no_pin(tmp_path) -> None:
    """Was BPFPermissionError blaming CAP_BPF, even as root."""
    f = tmp_path / "regular"
    f.write_text("x")
    with pytest.raises(pylibbpf.BPFError) as ei:
        pylibbpf.Map.open_pinned(f)
    assert not isinstance(ei.value, PermissionError)
    assert str(ei.value).startswith(f"open pinned map {str(f)!r}: it is not a bpffs pin (the "
                                    "file is on a "), str(ei.value)
    assert "CAP_BPF" not in str(ei.value)


# --- E2BIG on update ---------------------------------------------------------------

def test_index_past_the_end_names_max_entries() -> None:
    with pylibbpf.Map.create("array", key_type="I", value_type="Q", max_entries=4,
                             name="arr") as a:
        for set_it in (lambda: a.__setitem__(7, 1), lambda: a.update(7, 1)):
            with pytest.raises(pylibbpf.BPFError) as ei:
                set_it()
            assert str(ei.value) == ("update map 'arr': index 7 is out of range: the map has "
                                     "max_entries 4 (indexes 0 to 3) [E2BIG]")


def test_full_map_says_so() -> None:
    with pylibbpf.Map.create("hash", key_type="I", value_type="Q", max_entries=2,
                             name="h") as h:
        h[1], h[2] = 1, 2
        with pytest.raises(pylibbpf.BPFError) as ei:
            h[3] = 3
        assert str(ei.value) == ("update map 'h': the map is full: it holds its max_entries "
                                 "(2) elements (delete entries or raise max_entries) [E2BIG]")
        with pytest.raises(pylibbpf.BPFError, match="batch update of map 'h' .*: the map is "
                                                    "full"):
            h.update({5: 1, 6: 2})
    with pylibbpf.Map.create("queue", key_size=0, value_type="Q", max_entries=1,
                             name="q") as q:
        q.push(1)
        with pytest.raises(pylibbpf.BPFError) as ei:
            q.push(2)
        assert str(ei.value) == ("push to map 'q': the map is full: it holds its max_entries "
                                 "(1) elements (flags=BPF_EXIST overwrites the oldest) [E2BIG]")


# --- what an unprivileged user can't reach -------------------------------------------

@pytest.fixture(scope="module")
def nobody() -> Iterator[Unprivileged]:
    with Unprivileged() as u:
        yield u


def test_unprivileged_trace_pipe_is_a_permission_error(nobody) -> None:
    """Said "mount tracefs" (tracefs is mounted: the conftest makes sure), and its
    __del__ then raised AttributeError: _fd."""
    res = nobody.run(textwrap.dedent("""
        import pylibbpf
        try:
            pylibbpf.TracePipe()
        except pylibbpf.BPFError as e:
            print(type(e).__name__, isinstance(e, PermissionError), e)
        import gc; gc.collect()
    """))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("BPFPermissionError True "), res.stdout
    assert "mount tracefs" not in res.stdout and "permission denied" in res.stdout
    assert "Exception ignored" not in res.stderr and "AttributeError" not in res.stderr, \
        res.stderr


def test_unprivileged_unreachable_binary_is_not_called_missing(nobody, tmp_path) -> None:
    """A file under a directory this user can't search "does not exist" was wrong."""
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    (hidden / "prog").write_bytes(b"\x7fELF")
    res = nobody.run(textwrap.dedent(f"""
        from pylibbpf import elf
        import pylibbpf
        try:
            elf.functions({str(hidden / "prog")!r})
        except pylibbpf.BPFError as e:
            print(type(e).__name__, isinstance(e, PermissionError), e)
    """))
    assert res.stdout.strip() == (
        f"BPFPermissionError True cannot reach binary {str(hidden / 'prog')!r}: permission "
        "denied (a directory on the way is not searchable by this user) [EACCES]"), \
        res.stdout + res.stderr


def test_unprivileged_resolve_in_another_users_process(nobody) -> None:
    """pid 1 is root's: a raw PermissionError came out of /proc/1/exe."""
    res = nobody.run(textwrap.dedent("""
        from pylibbpf import elf
        import pylibbpf
        try:
            elf.resolve("c", "malloc", pid=1)
        except pylibbpf.BPFError as e:
            print(type(e).__name__, isinstance(e, PermissionError), e)
    """))
    assert res.stdout.startswith("BPFPermissionError True cannot read /proc/1/"), \
        res.stdout + res.stderr
    assert "Permission denied" in res.stdout and "CAP_SYS_PTRACE" in res.stdout
