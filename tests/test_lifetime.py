"""Every public method and property of every owner, used after close(), raises ClosedError.

The members are found by introspection, so a new method is covered the day it is
added; arguments come from its signature, or from ARGS where a placeholder would be
refused by argument validation (which may come first).
"""
from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

import pylibbpf

#: informational members that stay readable after close, by design
STILL_READABLE = {"closed", "loaded", "prepared", "name", "object", "lost"}  # lost: a final count

ARGS: Dict[str, Tuple[Any, ...]] = {
    "attach_kprobe": ("do_sys_openat2",),
    "attach_kprobe_multi": ("do_sys_*",),
    "attach_ksyscall": ("openat",),
    "attach_raw_tracepoint": ("sched_switch",),
    "attach_tracepoint": ("sched", "sched_switch"),
    "attach_uprobe_multi": ("/bin/true", "main*"),
    "attach_uprobe": ("/bin/true", "main"),
    "attach_usdt": ("/bin/true", "prov", "name"),
    "set_attach_target": (0, "func"),
    "attach_raw": (0, "cgroup_inet_ingress"),
    "attach_cgroup": ("/sys/fs/cgroup/unified",),
    "attach_netns": ("/proc/self/ns/net",),
    "attach_socket": (socket.socket(),),
    "detach_socket": (socket.socket(),),
    "attach_reuseport": (socket.socket(),),
    "detach_reuseport": (socket.socket(),),
    "update": (b"\0" * 4, b"\0" * 4),
    "update_batch": ([b"\0" * 4], [b"\0" * 4]),
    "delete_batch": ([b"\0" * 4],),
    "lookup_batch": ([b"\0" * 4],),
    "add": (None, None),
    "Link.update": (None,),
    "Link.unpin": (),
    "pin": ("/sys/fs/bpf/pylibbpf-closed-test",),
    "unpin": ("/sys/fs/bpf/pylibbpf-closed-test",),
}


def placeholder_args(owner: str, name: str, fn: Callable[..., Any]) -> Tuple[Any, ...]:
    for key in (f"{owner}.{name}", name):
        if key in ARGS:
            return ARGS[key]
    args: List[Any] = []
    for pname, p in inspect.signature(fn).parameters.items():
        if pname == "self" or p.default is not p.empty or p.kind in (
                p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY):
            continue
        ann = str(p.annotation)
        args.append(b"\0" * 4 if ("bytes" in ann or "Buffer" in ann) else
                    1 if "int" in ann else "/sys/fs/bpf/x" if ("str" in ann or "Path" in ann)
                    else None)
    return tuple(args)


def members(obj: Any) -> Iterator[Tuple[str, Any]]:
    cls = type(obj)
    for name, attr in inspect.getmembers(cls):
        if name.startswith("_") or name == "close" or name in STILL_READABLE:
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (staticmethod, classmethod)):
            continue  # constructors, not methods of this object
        if isinstance(attr, property) or callable(attr):
            yield name, attr


def use(obj: Any, name: str, attr: Any) -> None:
    if isinstance(attr, property):
        getattr(obj, name)
        return
    result = getattr(obj, name)(*placeholder_args(type(obj).__name__, name, attr))
    if inspect.iscoroutine(result):
        asyncio.run(result)
    elif inspect.isgenerator(result) or inspect.isasyncgen(result):
        next(iter(result))  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def closed_owners(bpf_objects) -> Dict[str, Any]:
    obj = pylibbpf.Object(bpf_objects["events"])
    obj.load()
    prog = obj.programs["on_getpgid"]
    ring = obj.maps["events"]
    link = prog.attach()
    rb = pylibbpf.RingBuffer(ring, lambda rec: None)
    raw = pylibbpf.Program.load_raw("socket_filter",
                                    bytes.fromhex("b700000001000000" "9500000000000000"))
    standalone = pylibbpf.Map.create("hash", 4, 4, 4)
    obj2 = pylibbpf.Object(bpf_objects["events_all"])
    obj2.load()
    pb = pylibbpf.PerfBuffer(obj2.maps["perf_events"], lambda rec: None)
    for o in (link, rb, raw, standalone, obj, pb, obj2):
        o.close()
    return {"Object": obj, "Program": prog, "Map": ring, "Link": link, "RingBuffer": rb,
            "raw Program": raw, "standalone Map": standalone, "PerfBuffer": pb}


CASES = [(owner, name) for owner, cls in (
    ("Object", pylibbpf.Object), ("Program", pylibbpf.Program), ("Map", pylibbpf.Map),
    ("Link", pylibbpf.Link), ("RingBuffer", pylibbpf.RingBuffer),
    ("raw Program", pylibbpf.Program), ("standalone Map", pylibbpf.Map),
    ("PerfBuffer", pylibbpf.PerfBuffer))
    for name in sorted({n for n, a in inspect.getmembers(cls)
                        if not n.startswith("_") and n != "close" and n not in STILL_READABLE
                        and not isinstance(inspect.getattr_static(cls, n),
                                           (staticmethod, classmethod))
                        and (isinstance(a, property) or callable(a))})]


@pytest.mark.parametrize("owner, name", CASES, ids=[f"{o}.{n}" for o, n in CASES])
def test_use_after_close_raises_closed_error(closed_owners, owner, name) -> None:
    obj = closed_owners[owner]
    attr = inspect.getattr_static(type(obj), name)
    attr = getattr(type(obj), name) if not isinstance(attr, property) else attr
    with pytest.raises(pylibbpf.ClosedError):
        use(obj, name, attr)


def test_every_owner_has_cases() -> None:
    counts = {o: sum(1 for owner, _ in CASES if owner == o) for o, _ in CASES}
    assert all(n >= 5 for n in counts.values()), counts
    print(f"{len(CASES)} members checked: {counts}")


def test_close_is_idempotent(closed_owners) -> None:
    for obj in closed_owners.values():
        obj.close()
        obj.close()
        assert obj.closed
