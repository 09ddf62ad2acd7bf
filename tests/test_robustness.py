"""Never crash, never leak: privilege, leak cycles, signals, threads, bad input."""
from __future__ import annotations

import gc
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from typing import Iterator

import pytest

import pylibbpf
from _children import Unprivileged, same_pylibbpf


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def nobody() -> Iterator[Unprivileged]:
    """Runs Python code as uid 65534 with no capabilities (tests/_children.py)."""
    with Unprivileged() as u:
        yield u


def test_unprivileged_gets_permission_error_with_hint(bpf_objects, nobody) -> None:
    obj_path = nobody.new_dir() / "core_task.bpf.o"
    obj_path.write_bytes(bpf_objects["core_task"].read_bytes())
    obj_path.chmod(0o644)
    code = textwrap.dedent(f"""
        import sys, pylibbpf
        try:
            with pylibbpf.Object({str(obj_path)!r}) as obj:
                obj.load()
        except pylibbpf.BPFPermissionError as e:
            assert isinstance(e, PermissionError)
            print("PERM", e.errno, str(e).replace("\\n", " | "))
            sys.exit(0)
        print("LOADED?")
        sys.exit(1)
    """)
    res = nobody.run(code)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("PERM 1 "), res.stdout  # EPERM from the kernel, not a file error
    assert "CAP_BPF" in res.stdout and "CAP_PERFMON" in res.stdout


def test_unreadable_file_is_not_blamed_on_capabilities(nobody) -> None:
    f = nobody.new_dir() / "x.bpf.o"
    f.write_bytes(b"\x7fELF")
    f.chmod(0)
    code = textwrap.dedent(f"""
        import pylibbpf
        try:
            pylibbpf.Object({str(f)!r})
        except PermissionError as e:
            print(e)
    """)
    res = nobody.run(code)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cannot read the file" in res.stdout and "CAP_BPF" not in res.stdout, res.stdout


def test_compile_with_an_unwritable_home(nobody) -> None:
    """A user whose HOME can't be written (nobody's is /nonexistent) got a raw
    PermissionError from compile(), even with output= given, which needs no cache:
    vmlinux.h then goes to a temporary directory. Without output=, the error is a
    BPFError naming the cache directory and how to choose another."""
    d = nobody.new_dir()
    os.chown(d, nobody.uid, nobody.gid)
    src = d / "t.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                   'int answer = 42;\nchar LICENSE[] SEC("license") = "GPL";\n')
    src.chmod(0o644)
    code = textwrap.dedent(f"""
        import pylibbpf
        out = pylibbpf.compile({str(src)!r}, {str(d / "t.bpf.o")!r})
        with pylibbpf.Object(out) as obj:
            print("compiled", out, obj.data.answer)
        try:
            pylibbpf.compile({str(src)!r})
        except pylibbpf.BPFError as e:
            print(isinstance(e, pylibbpf.BPFPermissionError), str(e).replace("\\n", " | "))
    """)
    res = nobody.run(code, env={"HOME": "/nonexistent", "PYLIBBPF_CACHE": ""}, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"compiled {d / 't.bpf.o'} 42", lines
    assert lines[1].startswith("True write pylibbpf's cache directory "
                               "'/nonexistent/.cache/pylibbpf': Permission denied"), lines
    assert "set PYLIBBPF_CACHE" in lines[1] and "CAP_BPF" not in lines[1], lines


def test_open_load_attach_trigger_close_cycles_do_not_leak(bpf_objects) -> None:
    path = bpf_objects["core_task"]
    key = struct.pack("I", os.getpid())

    def cycle() -> None:
        with pylibbpf.Object(path) as obj:
            obj.load()
            with obj.programs["on_getpgid"].attach():
                os.getpgid(0)
            assert key in obj.maps["seen"]  # it ran

    for _ in range(100):  # warm up allocator and caches
        cycle()
    gc.collect()
    fds, rss = fd_count(), rss_kib()
    for _ in range(1000):
        cycle()
    gc.collect()
    growth = rss_kib() - rss
    print(f"RSS growth over 1000 cycles: {growth} KiB")
    assert fd_count() == fds
    assert growth < 2 * 1024, f"RSS grew {growth} KiB over 1000 cycles"


def test_used_objects_are_garbage_collected(bpf_objects) -> None:
    """Typed maps, globals and BTF refer back to their Object: nothing may pin it forever."""
    import weakref

    refs = []
    for _ in range(3):
        obj = pylibbpf.Object(bpf_objects["xdp_rewrite"])
        obj.rodata.min_len = 20
        obj.load()
        obj.programs["xdp_rewrite"].test_run(b"\x01" * 64)
        assert obj.maps["actions"][2] == 1  # XDP_PASS counted; typed keys and values (BTF)
        refs.append(weakref.ref(obj))
        obj.close()
        del obj
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_raw_program_and_map_cycles_do_not_leak() -> None:
    code = struct.pack("<BBhi", 0xB7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    fds = fd_count()
    for _ in range(300):
        with pylibbpf.Program.load_raw("socket_filter", code) as prog:
            prog.test_run(b"\0" * 64)
        with pylibbpf.Map.create("hash", 4, 4, 8) as m:
            m[b"abcd"] = b"efgh"
        # forgetting close() is also fine: the finalizer closes
        pylibbpf.Map.create("array", 4, 4, 1)
        pylibbpf.Program.load_raw("socket_filter", code)
    gc.collect()
    assert fd_count() == fds


def test_gc_in_any_order_is_safe(bpf_objects) -> None:
    for order in range(6):
        obj = pylibbpf.Object(bpf_objects["events"])
        obj.load()
        prog = obj.programs["on_getpgid"]
        link = prog.attach()
        rb = pylibbpf.RingBuffer(obj.maps["events"], lambda d: None)
        m = obj.maps["events"]
        items = [obj, prog, link, rb, m]
        # drop references in a different order each round; closing the Object
        # first while everything else is alive must also be safe
        if order % 2:
            obj.close()
        for i in sorted(range(len(items)), key=lambda i: (i * (order + 1)) % 5):
            items[i] = None
        del obj, prog, link, rb, m, items
        gc.collect()


def test_ctrl_c_interrupts_poll_promptly(bpf_objects) -> None:
    with pylibbpf.Object(bpf_objects["events"]) as obj:
        obj.load()
        with pylibbpf.RingBuffer(obj.maps["events"], lambda d: None) as rb:
            t0 = time.monotonic()
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                rb.poll(10_000)
            waited = time.monotonic() - t0
            timer.join()
    print(f"poll interrupted after {waited * 1000:.0f} ms (signal at 200 ms)")
    assert waited < 0.2 + 0.1, f"SIGINT took {waited - 0.2:.3f} s to interrupt poll"


def test_threads_map_ops_while_polling(bpf_objects) -> None:
    """Map updates from several threads while another thread polls a ring buffer."""
    with pylibbpf.Object(bpf_objects["events"]) as obj:
        obj.load()
        got: list[bytes] = []
        errors: list[BaseException] = []
        stop = threading.Event()
        with obj.programs["on_getpgid"].attach(), \
                pylibbpf.RingBuffer(obj.maps["events"], got.append) as rb, \
                pylibbpf.Map.create("hash", 4, 8, 4096) as m:

            def poller() -> None:
                try:
                    while not stop.is_set():
                        rb.poll(20)
                except BaseException as e:  # pragma: no cover - reported below
                    errors.append(e)

            def writer(base: int) -> None:
                try:
                    for i in range(500):
                        m[struct.pack("I", base + i)] = struct.pack("Q", i)
                        os.getpgid(0)  # an event per write
                except BaseException as e:  # pragma: no cover
                    errors.append(e)

            threads = [threading.Thread(target=writer, args=(t * 1000,)) for t in range(3)]
            p = threading.Thread(target=poller)
            p.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            time.sleep(0.1)
            stop.set()
            p.join()
            rb.consume()
            assert not errors, errors
            assert len(m) == 1500
            pid = os.getpid()
            mine = [e for e in got if struct.unpack_from("I", e)[0] == pid]
            assert len(mine) == 1500


@pytest.mark.parametrize("call, exc, name", [
    (lambda: pylibbpf.Object(b"\x7fELF", name=5), TypeError, "name"),
    (lambda: pylibbpf.Object(b"", kconfig=3), TypeError, "kconfig"),
    (lambda: pylibbpf.Object(b"", kernel_log_level=-1), ValueError, "kernel_log_level"),
    (lambda: pylibbpf.Object(b"", kernel_log_level=2**32), ValueError, "kernel_log_level"),
    (lambda: pylibbpf.Map.create("hash", "4", 4, 1), TypeError, "key_size"),
    (lambda: pylibbpf.Map.create("hash", 4, 4, 1, name=3), TypeError, "name"),
    (lambda: pylibbpf.Map.create(object(), 4, 4, 1), TypeError, "map type"),
    (lambda: pylibbpf.Program.load_raw("xdp", b"\0" * 8, license=None), TypeError, "license"),
    (lambda: pylibbpf.Program.load_raw("xdp", b"\0" * 8, log_size=-5), ValueError, "log_size"),
    (lambda: pylibbpf.Map.from_fd("3"), TypeError, "fd"),
    (lambda: pylibbpf.Map.create("hash", 4, 4, 1).pin(object()), TypeError, "path"),
    (lambda: pylibbpf.Program.open_pinned(3.5), TypeError, "path"),
    (lambda: pylibbpf.Link.open_pinned(None), TypeError, "path"),
])
def test_bad_arguments_name_the_parameter(call, exc, name) -> None:
    with pytest.raises(exc, match=name):
        call()


KILLED_CHILD = """
import os, sys, time, pylibbpf
obj = pylibbpf.Object(sys.argv[1])
obj.load()
links = [
    obj.programs["on_entry"].attach_uprobe("c", "getpid", pid=os.getpid()),
    obj.programs["on_return"].attach_uprobe("c", "getpid", retprobe=True, pid=os.getpid()),
    obj.programs["on_getpgid"].attach_tracepoint("syscalls", "sys_enter_getpgid"),
]
os.getpgid(0)
ids = [p.id for p in obj.programs.values()] + [l.info.id for l in links]
print(" ".join(map(str, ids)), flush=True)
time.sleep(60)
"""


def _tracefs_probe_lines() -> list[str]:
    lines = []
    for name in ("uprobe_events", "kprobe_events"):
        try:
            with open(f"/sys/kernel/tracing/{name}") as f:
                lines += [ln.strip() for ln in f if ln.strip()]
        except OSError:
            pass
    return lines


def test_sigkill_leaves_no_probes_pins_or_objects(bpf_objects) -> None:
    from pylibbpf import system

    probes_before = _tracefs_probe_lines()
    pins_before = sorted(os.listdir("/sys/fs/bpf"))
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD,
                              str(bpf_objects["robust_probes"])],
                             stdout=subprocess.PIPE, text=True, **same_pylibbpf())
    assert child.stdout is not None
    ids = [int(x) for x in child.stdout.readline().split()]
    assert len(ids) == 6, "the child did not attach"
    prog_ids = set(ids[:3])
    assert prog_ids <= {p.id for p in system.programs()}
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and prog_ids & {p.id for p in system.programs()}:
        time.sleep(0.05)  # the kernel frees programs once their last reference is gone
    assert not prog_ids & {p.id for p in system.programs()}
    assert not set(ids[3:]) & {link.id for link in system.links()}
    assert _tracefs_probe_lines() == probes_before
    assert sorted(os.listdir("/sys/fs/bpf")) == pins_before


def test_keyless_operations_refuse_keyed_maps(bpf_objects) -> None:
    with pylibbpf.Map.create("hash", 4, 4, 1, name="keyed") as m:
        with pytest.raises(pylibbpf.BPFError, match="peek on map 'keyed': it is a hash map"):
            m.peek()
        with pytest.raises(pylibbpf.BPFError, match="push on map 'keyed': it is a hash map"):
            m.push(b"abcd")
    with pylibbpf.Object(bpf_objects["xdp_rewrite"]) as obj:
        with pytest.raises(TypeError, match="name must be a str"):
            obj.section(5)  # type: ignore[arg-type]
