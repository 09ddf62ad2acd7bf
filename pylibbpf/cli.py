"""The ``pylibbpf`` command line (also ``python -m pylibbpf``).

    pylibbpf inspect OBJ|SRC.bpf.c   programs, maps with BTF types, global variables
    pylibbpf run OBJ|SRC.bpf.c       load, attach everything, print events and the
                                     programs' BPF stdout/stderr, dump maps
    pylibbpf compile SRC.bpf.c       clang with the right flags (cached by content)
    pylibbpf vmlinux-h               vmlinux.h from the running kernel's BTF
    pylibbpf symbols BINARY [GLOB]   function symbols of an ELF file (uprobe targets)
    pylibbpf features                what this kernel supports
    pylibbpf list                    BPF programs, maps and links loaded on this system
    pylibbpf map dump|lookup|update|delete|pin  a map by id, name or pin path
    pylibbpf trace-pipe              bpf_printk() output
    pylibbpf prog dump xlated|jited id N|name NAME|pinned PATH|OBJ PROG
                                     a program's code, disassembled (prog pin, prog tracelog)
    pylibbpf top [--once] [--json]   CPU use of every loaded program, live
    pylibbpf version
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from . import __version__, libbpf_version
from .errors import BPFError, BPFKeyError
from .notation import format_value, parse, summed, to_json

if TYPE_CHECKING:
    from .map import Map
    from .object import Object


def _table(rows: List[List[Any]], header: List[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _name(v: Any) -> str:
    return v.name.lower() if hasattr(v, "name") else str(v)


def _open(path: str, **kw: Any) -> "Object":
    """An Object from a ``.o`` file, or compiled from a ``.c`` source."""
    from .object import Object

    if path.endswith(".c"):
        return Object.from_source(path, **kw)
    return Object(path, **kw)


# values as text: pylibbpf.notation (also what `map update` and `run --set` read)
_plain = to_json
_show = format_value


def _loaded_libraries(names: Sequence[str]) -> Dict[str, List[str]]:
    """Paths of the shared libraries NAME.so* mapped into this process (from
    /proc/self/maps); a library linked statically, or absent, is not listed."""
    found: Dict[str, List[str]] = {}
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        path = line.split(None, 5)[5] if len(line.split(None, 5)) == 6 else ""
        base = Path(path).name
        for name in names:
            # libelf.so.1, or as a wheel bundles it: libelf-1a2b3c4d.so.1.0
            if (base.startswith(name + ".so") or base.startswith(name + "-") and ".so" in base) \
                    and path not in found.get(name, []):
                found.setdefault(name, []).append(path)
    return found


def cmd_version(args: argparse.Namespace) -> int:
    """Versions, and where libbpf came from: its release, the sha256 its tarball was
    verified against and the tarball's origin; what the extension was built with and
    which libelf/zlib it runs with (a wheel bundles its own)."""
    import importlib

    print(f"pylibbpf {__version__}, libbpf {libbpf_version()}")
    try:
        info: Dict[str, str] = importlib.import_module("pylibbpf._build_info").BUILD_INFO
    except ImportError:
        info = {}
    if info:
        sha = info.get("libbpf_sha256") or "not checksummed"
        print(f"libbpf source: {info.get('libbpf_version')} release, sha256 {sha}, "
              f"from {info.get('libbpf_origin')}")
        print(f"built with: {info.get('linked')}; on {info.get('built_on')}")
    libs = _loaded_libraries(("libelf", "libz"))
    where = []
    for name, paths in libs.items():
        # a wheel's own copy (in <dist>.libs/) is the one the extension uses; the
        # interpreter may have mapped the system's zlib as well
        ours = [p for p in paths if ".libs/" in p]
        where.append(f"{name} {ours[0]} (bundled with the wheel)" if ours else
                     f"{name} {paths[0]}")
    print("runs with: " + ("; ".join(where) if where else "libelf and zlib linked statically"))
    from .compiler import find_clang

    try:
        cc = find_clang()
        how = "from CLANG" if os.environ.get("CLANG") else "the newest clang on PATH"
        print(f"compiles with: {cc} ({how}): {cc.banner}")
    except BPFError as e:
        print(f"compiles with: no clang ({e.strerror})")
    return 0


def cmd_vmlinux_h(args: argparse.Namespace) -> int:
    from .btf import vmlinux_h

    text = vmlinux_h(args.btf)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from .compiler import compile, find_clang

    if args.verbose:
        print(f"compiling {args.source} with {find_clang()}", file=sys.stderr)
    out = compile(args.source, args.output, cflags=args.cflag or (),
                  include_dirs=args.include or (), cache=not args.no_cache)
    print(out)
    return 0


# --- inspect -----------------------------------------------------------------------

def _type_name(m: "Map", which: str) -> str:
    try:
        codec = m.key_type if which == "key" else m.value_type
    except BPFError:
        return "?"
    name = codec.name
    return "-" if name.startswith(f"{which} of map") else name


def _describe(obj: "Object") -> Dict[str, Any]:
    from .types import MapType

    progs = [{"name": p.name, "section": p.section, "type": _name(p.type),
              "insns": p.insn_count} for p in obj.programs.values()]
    maps = []
    sections: Dict[str, Dict[str, Any]] = {}
    for m in obj.maps.values():
        internal = "." in m.name and m.type == MapType.ARRAY and m.max_entries == 1
        if internal:
            # "obj.rodata" -> ".rodata"; object names may hold dots too
            for i in [i for i, ch in enumerate(m.name) if ch == "."]:
                try:
                    sec = obj.section(m.name[i:])
                except (BPFError, KeyError):
                    continue
                sections[m.name[i:]] = {n: {"type": v.codec.name, "value": _plain(sec[n])}
                                        for n, v in sec.variables().items()}
                break
            else:
                internal = False
            if internal:
                continue
        maps.append({"name": m.name, "type": _name(m.type), "key_type": _type_name(m, "key"),
                     "value_type": _type_name(m, "value"), "key_size": m.key_size,
                     "value_size": m.value_size, "max_entries": m.max_entries})
    return {"name": obj.name, "programs": progs, "maps": maps, "globals": sections}


def cmd_inspect(args: argparse.Namespace) -> int:
    with _open(args.object) as obj:
        info = _describe(obj)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"object {info['name']}")
    print("\nprograms:")
    print(_table([[p["name"], p["section"], p["type"], p["insns"]] for p in info["programs"]],
                 ["NAME", "SECTION", "TYPE", "INSNS"]))
    print("\nmaps:")
    print(_table([[m["name"], m["type"], m["key_type"], m["value_type"], m["max_entries"]]
                  for m in info["maps"]], ["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES"]))
    if info["globals"]:
        print("\nglobal variables:")
        rows = [[sec, n, v["type"], json.dumps(v["value"])]
                for sec, vars_ in info["globals"].items() for n, v in vars_.items()]
        print(_table(rows, ["SECTION", "NAME", "TYPE", "INITIAL VALUE"]))
    return 0


# --- run ---------------------------------------------------------------------------

_EVENT_MAPS = ("RINGBUF", "PERF_EVENT_ARRAY")
_NO_DUMP = ("RINGBUF", "PERF_EVENT_ARRAY", "STACK_TRACE", "PROG_ARRAY", "USER_RINGBUF",
            "ARRAY_OF_MAPS", "HASH_OF_MAPS", "SOCKMAP", "SOCKHASH", "DEVMAP", "CPUMAP",
            "XSKMAP", "STRUCT_OPS", "CGROUP_ARRAY", "QUEUE", "STACK", "BLOOM_FILTER",
            "TASK_STORAGE", "INODE_STORAGE", "SK_STORAGE", "CGRP_STORAGE")


def _event_type(obj: "Object", name: Optional[str]) -> Optional[str]:
    """The struct events are decoded as: ``name``, else ``struct event`` if the
    object's BTF has one, else None (events print as hex)."""
    if name:
        return name
    try:
        obj.btf.find("struct event")
        return "struct event"
    except BPFError:
        return None


def _section_map(m: "Map") -> bool:
    """A data section's map (printed as its variables)."""
    from .types import MapType

    return "." in m.name and m.type == MapType.ARRAY and m.max_entries == 1


def _dump_maps(obj: "Object", limit: int, *, all_maps: bool = False, per_cpu: bool = False,
               as_json: bool = False) -> None:
    from .types import MapType

    for m in obj.maps.values():
        if m.type.name in _NO_DUMP or _section_map(m) or \
                (m.name.startswith("__bpf_") and not all_maps):  # libbpf's (USDT specs …)
            continue
        try:
            items = m.items_list()
        except BPFError as e:
            print(f"\nmap {m.name}: cannot read ({e})", file=sys.stderr if as_json else sys.stdout)
            continue
        if not per_cpu:
            items = [(k, summed(v)) for k, v in items]
        if m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            items = [(k, v) for k, v in items if _nonzero(v)]
        if as_json:
            for k, v in items[:limit]:
                print(json.dumps({"map": m.name, "key": to_json(k), "value": to_json(v)}))
            continue
        print(f"\nmap {m.name} ({_name(m.type)}, {len(items)} entries"
              f"{', zeros left out' if m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY) else ''}"
              f"{', summed over CPUs' if m.percpu and not per_cpu else ''}):")
        for k, v in items[:limit]:
            print(f"  {_show(k)}: {_show(v)}")
        if len(items) > limit:
            print(f"  ... {len(items) - limit} more")
    for short in (".data", ".bss"):
        try:
            sec = obj.section(short)
        except BPFError:
            continue
        values = sec.to_dict()
        if values and as_json:
            print(json.dumps({"section": short, "values": to_json(values)}))
        elif values:
            print(f"\n{short}:")
            for n, v in values.items():
                print(f"  {n} = {_show(v)}")


def _nonzero(v: Any) -> bool:
    if isinstance(v, (list, tuple)):
        return any(_nonzero(x) for x in v)
    if isinstance(v, (bytes, bytearray)):
        return any(v)
    if hasattr(v, "to_dict"):
        return any(_nonzero(x) for x in v.to_dict().values())
    return bool(v)


ATTACH_HELP = """attach program PROG explicitly (repeatable): PROG=uprobe:BINARY:SYMBOL[:PID],
PROG=uretprobe:BINARY:SYMBOL[:PID], PROG=uprobe.multi:BINARY:PATTERN[:PID] (also
uretprobe.multi, uprobe.session), PROG=usdt:BINARY:PROVIDER:NAME[:PID],
PROG=xdp:IFACE, PROG=tc:IFACE[:ingress|egress], PROG=cgroup:PATH,
PROG=tracepoint:CATEGORY:NAME, PROG=raw_tracepoint:NAME, PROG=perf_event[:FREQUENCY_HZ]"""


def _pid(spec: str, text: str) -> int:
    try:
        pid = int(text)
    except ValueError:
        raise ValueError(f"--attach {spec!r}: the pid must be a number, not {text!r}") from None
    if pid <= 0:
        raise ValueError(f"--attach {spec!r}: the pid must be positive, not {pid}")
    return pid


def _attach_explicit(obj: "Object", spec: str) -> Any:
    """One ``--attach PROG=KIND:ARGS``."""
    prog_name, sep, target = spec.partition("=")
    if not sep or not target:
        raise ValueError(f"--attach {spec!r}: expected PROG=KIND:ARGS")
    prog = obj.programs[prog_name]
    kind, *rest = target.split(":")
    n = len(rest)
    if kind in ("uprobe", "uretprobe") and n in (2, 3):
        return prog.attach_uprobe(rest[0], rest[1], retprobe=kind == "uretprobe",
                                  pid=_pid(spec, rest[2]) if n == 3 else -1)
    if kind in ("uprobe.multi", "uretprobe.multi", "uprobe.session") and n in (2, 3):
        return prog.attach_uprobe_multi(rest[0], rest[1], retprobe=kind == "uretprobe.multi",
                                        session=kind == "uprobe.session",
                                        pid=_pid(spec, rest[2]) if n == 3 else -1)
    if kind == "usdt" and n in (3, 4):
        return prog.attach_usdt(rest[0], rest[1], rest[2],
                                pid=_pid(spec, rest[3]) if n == 4 else -1)
    if kind == "xdp" and n == 1:
        return prog.attach_xdp(rest[0])
    if kind == "tc" and n in (1, 2):
        return prog.attach_tc(rest[0], direction=rest[1] if n == 2 else "ingress")
    if kind == "cgroup" and n == 1:
        return prog.attach_cgroup(rest[0])
    if kind == "tracepoint" and n == 2:
        return prog.attach_tracepoint(rest[0], rest[1])
    if kind == "raw_tracepoint" and n == 1:
        return prog.attach_raw_tracepoint(rest[0])
    if kind == "perf_event" and n <= 1:
        return prog.attach_perf_events("cpu-clock", sample_freq=int(rest[0]) if n else 99)
    raise ValueError(f"--attach {spec!r}: unknown kind or wrong arguments "
                     f"(one of: {ATTACH_HELP.split(':', 1)[1].strip()})")


def _set_globals(obj: "Object", assignments: Sequence[str]) -> None:
    """``--set NAME=VALUE``: each global typed from BTF, before load."""
    from .globals import find_variable

    for item in assignments:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE")
        try:
            sec, var = find_variable(obj, name)
        except BPFError as e:
            raise ValueError(f"--set {item}: {e.strerror or e}") from None
        try:
            sec[name] = parse(var.codec, text, f"--set {name} ({var.codec.name})")
        except (TypeError, ValueError, OverflowError) as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith("--set") else
                             f"--set {name}={text}: {msg}") from None
        print(f"set {sec.name}.{name} = {_show(sec[name])}", file=sys.stderr)


def _attach_everything(obj: "Object", explicit: Sequence[str] = ()) -> List[Any]:
    """Attach the ``--attach`` programs as told, every other program by its SEC()
    (and register struct_ops maps), saying which were attached and which need a
    target the section does not give."""
    from .attach.section import attach_by_section
    from .types import MapType, ProgramType

    links: List[Any] = []
    done = set()
    try:
        for spec in explicit:
            links.append(_attach_explicit(obj, spec))
            done.add(spec.partition("=")[0])
            print(f"attached {spec}", file=sys.stderr)
        for m in obj.maps.values():
            if m.type == MapType.STRUCT_OPS:
                links.append(m.attach_struct_ops())
                print(f"registered struct_ops {m.name}", file=sys.stderr)
        for p in obj.programs.values():
            if not p.loaded or p.type == ProgramType.STRUCT_OPS or p.name in done:
                continue
            link = attach_by_section(p, auto=True) if p.autoattach else None
            if link is None:
                print(f"not attached: {p.name} (SEC {p.section!r} names no target; "
                      f"use --attach {p.name}=KIND:…)", file=sys.stderr)
            else:
                links.append(link)
                print(f"attached {p.name} (SEC {p.section!r})", file=sys.stderr)
    except BaseException:
        for link in links:
            link.close()
        raise
    return links


class _StreamPrinter:
    """``run`` prints what each loaded program writes to its BPF stdout/stderr
    (kernel streams, Linux 6.17+): ``PROG: line`` on stdout, ``PROG (stderr): line``
    on stderr; with --json, ``{"program", "stream", "text"}`` lines on stdout.
    Nothing where the kernel has no streams."""

    def __init__(self, obj: "Object", as_json: bool) -> None:
        from .system import support

        self.as_json = as_json
        self.streams = [(p.name, s) for p in obj.programs.values() if p.loaded
                        for s in (p.stdout, p.stderr)] if support("prog_stream") else []
        self.partial: Dict[Tuple[str, str], str] = {}

    def drain(self, final: bool = False) -> None:
        for prog, stream in self.streams:
            key = (prog, stream.name)
            text = self.partial.pop(key, "") + stream.read_text()
            lines = text.split("\n")
            rest = lines.pop()   # after the last newline
            if rest and final:
                lines.append(rest)
            elif rest:
                self.partial[key] = rest   # an unfinished line waits for its end
            for line in lines:
                self.emit(prog, stream.name, line)

    def emit(self, prog: str, stream: str, line: str) -> None:
        if self.as_json:
            print(json.dumps({"program": prog, "stream": stream, "text": line}), flush=True)
        elif stream == "stdout":
            print(f"{prog}: {line}", flush=True)
        else:
            print(f"{prog} (stderr): {line}", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from .perfbuf import PerfBuffer
    from .ringbuf import RingBuffer

    readers: List[Any] = []
    links: List[Any] = []
    with _open(args.object) as obj:
        _set_globals(obj, args.set or ())
        obj.load()
        try:
            links = _attach_everything(obj, args.attach or ())
            etype = _event_type(obj, args.event_type)

            def printer(map_name: str) -> Any:
                def on_event(rec: Any) -> None:
                    if args.json:
                        print(json.dumps({"map": map_name, "event": _plain(rec)}), flush=True)
                    else:
                        print(f"{map_name}: {_show(rec)}", flush=True)
                return on_event

            for m in obj.maps.values():
                if m.type.name == "RINGBUF":
                    readers.append(RingBuffer(m, printer(m.name), record_type=etype))
                elif m.type.name == "PERF_EVENT_ARRAY":
                    readers.append(PerfBuffer(m, printer(m.name), record_type=etype))
            if etype is not None and readers:
                print(f"events decoded as {etype}", file=sys.stderr)
            streams = _StreamPrinter(obj, args.json)
            deadline = time.monotonic() + args.duration if args.duration else None
            prev = signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(
                KeyboardInterrupt()))
            try:
                while deadline is None or time.monotonic() < deadline:
                    if readers:
                        for r in readers:
                            r.poll(100 // len(readers) or 1)
                    else:
                        time.sleep(0.1)
                    streams.drain()
            except KeyboardInterrupt:
                pass
            finally:
                signal.signal(signal.SIGTERM, prev)
            for r in readers:
                r.consume()
            streams.drain(final=True)
        finally:
            for r in readers:
                r.close()
            for ln in links:
                ln.close()
        if not args.no_dump:
            _dump_maps(obj, args.limit, all_maps=args.all_maps, per_cpu=args.per_cpu,
                       as_json=args.json)
    return 0


# --- symbols, list, features, trace-pipe -------------------------------------------

def cmd_symbols(args: argparse.Namespace) -> int:
    from . import elf

    syms = elf.functions(args.binary, args.pattern, regex=args.regex,
                         demangled=args.demangled, pid=args.pid)
    if args.json:
        print(json.dumps([{"name": s.name, "demangled": s.demangled, "version": s.version,
                           "address": s.address, "offset": s.offset, "size": s.size,
                           "binding": s.binding, "type": s.type} for s in syms]))
        return 0
    for s in syms:
        off = "?" if s.offset is None else f"{s.offset:#x}"
        extra = f"  {s.demangled}" if s.demangled != s.name else ""
        print(f"{off:>12} {s.size:>7} {s.binding:<6} {s.type:<5} {s.versioned_name}{extra}")
    if not syms:
        print(f"no function matches {args.pattern!r} in {args.binary}", file=sys.stderr)
        return 1
    return 0


def _held_by(holders: Sequence[Any]) -> str:
    seen: Dict[int, str] = {}
    for h in holders:
        seen.setdefault(h.pid, f"{h.comm}({h.pid})")
    return ",".join(seen.values()) or "-"


def _size(n: int) -> str:
    return f"{n} bytes" if n else "-"


def _when(ts: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _record(item: Any) -> Dict[str, Any]:
    """A system listing entry as JSON-friendly data."""
    out: Dict[str, Any] = {}
    for f in fields(item):
        v = getattr(item, f.name)
        if f.name == "info":
            v = {k: _name(x) if hasattr(x, "name") else x
                 for k, x in asdict(v).items()} if v is not None else None
        elif f.name == "type":
            v = _name(v)
        elif f.name == "holders":
            v = [asdict(h) for h in v]
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from . import system

    what = args.what
    tables: List[tuple[str, List[Any]]] = []
    if what in ("programs", "all"):
        tables.append(("programs", system.programs()))
    if what in ("maps", "all"):
        tables.append(("maps", system.maps()))
    if what in ("links", "all"):
        tables.append(("links", system.links()))
    if args.json:
        data = {name: [_record(x) for x in items] for name, items in tables}
        print(json.dumps(data if what == "all" else data[what]))
        return 0
    for i, (name, items) in enumerate(tables):
        if i:
            print()
        if name == "programs":
            stats = system.stats_enabled() or any(p.run_cnt for p in items)
            rows = [[p.id, _name(p.type), p.name, p.tag, _when(p.loaded_at), p.uid,
                     p.verified_insns, p.btf_id or "-", ",".join(map(str, p.map_ids)) or "-"]
                    + ([p.run_cnt, p.run_time_ns // p.run_cnt if p.run_cnt else 0] if stats
                       else []) + [_held_by(p.holders)] for p in items]
            print(_table(rows, ["ID", "TYPE", "NAME", "TAG", "LOADED", "UID", "INSNS", "BTF",
                                "MAPS"] + (["RUNS", "NS/RUN"] if stats else []) + ["HELD BY"]))
        elif name == "maps":
            rows = [[m.id, _name(m.type), m.name, m.key_type or _size(m.key_size),
                     m.value_type or _size(m.value_size), m.max_entries, m.memlock,
                     _held_by(m.holders)] for m in items]
            print(_table(rows, ["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX_ENTRIES",
                                "MEMLOCK", "HELD BY"]))
        else:
            rows = [[ln.id, _name(ln.type), ln.program_id, ln.attach_point or "-",
                     _held_by(ln.holders)] for ln in items]
            print(_table(rows, ["ID", "TYPE", "PROG_ID", "ATTACHED TO", "HELD BY"]))
    return 0


# --- map ---------------------------------------------------------------------------

def _open_map(how: str, ref: str) -> "Map":
    from .map import Map

    if how == "id":
        try:
            map_id = int(ref, 0)
        except ValueError:
            raise ValueError(f"map id {ref!r}: not a number") from None
        return Map.from_id(map_id)
    if how == "name":
        return Map.from_name(ref)
    return Map.open_pinned(ref)


def _map_words(words: Sequence[str], wanted: Sequence[str], verb: str) -> Dict[str, str]:
    """``key 1 2 3 4 value 42`` -> {"key": "1 2 3 4", "value": "42"}."""
    out: Dict[str, List[str]] = {}
    cur: Optional[str] = None
    for w in words:
        if w in wanted and w not in out:
            cur = w
            out[w] = []
        elif cur is None:
            raise ValueError(f"map {verb}: expected {' … '.join(wanted)} …, got {w!r}")
        else:
            out[cur].append(w)
    for w in wanted:
        if not out.get(w):
            raise ValueError(f"map {verb}: missing {w} (map {verb} id|name|pinned REF "
                             f"{' '.join(x + ' ' + x.upper() for x in wanted)})")
    return {k: " ".join(v) for k, v in out.items()}


def _entry(k: Any, v: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps({"key": to_json(k), "value": to_json(v)})
    return f"{_show(k)}: {_show(v)}"


_NO_KEYS = {"RINGBUF": "read its records with `pylibbpf run` or RingBuffer",
            "USER_RINGBUF": "user space writes it with UserRingBuffer",
            "QUEUE": "use Map.push()/pop()/peek() from Python",
            "STACK": "use Map.push()/pop()/peek() from Python",
            "BLOOM_FILTER": "use Map.push() and `value in map` from Python"}


def _input_name(which: str, codec: Any, label: str) -> str:
    from .typed import RawCodec

    kind = "" if isinstance(codec, RawCodec) else f" ({codec.name})"
    return f"{which}{kind} of {label}"


def cmd_map(args: argparse.Namespace) -> int:
    verb = args.verb
    wanted = {"dump": (), "lookup": ("key",), "delete": ("key",), "update": ("key", "value"),
              "pin": ()}[verb]
    words = _map_words(args.words, wanted, verb) if wanted else {}
    if verb == "pin" and len(args.words) != 1:
        raise ValueError("map pin: expected one bpffs path (map pin id|name|pinned REF PATH)")
    if verb == "dump" and args.words:
        raise ValueError(f"map dump: unexpected {' '.join(args.words)!r}")
    with _open_map(args.how, args.ref) as m:
        label = f"map {m.name!r} (id {m.id})"
        if m.type.name in _NO_KEYS:
            raise ValueError(f"{label} is a {_name(m.type)} map: it has no keys to "
                             f"{verb} ({_NO_KEYS[m.type.name]})")
        if verb == "dump":
            items = m.items_list()
            if not args.per_cpu:
                items = [(k, summed(v)) for k, v in items]
            if args.json:
                print(json.dumps([{"key": to_json(k), "value": to_json(v)} for k, v in items]))
            else:
                for k, v in items:
                    print(_entry(k, v, False))
                print(f"{len(items)} entries", file=sys.stderr)
            return 0
        if verb == "pin":
            m.pin(args.words[0])
            print(f"pinned {label} at {args.words[0]}", file=sys.stderr)
            return 0
        key = parse(m.key_type, words["key"], _input_name("key", m.key_type, label))
        if verb == "lookup":
            try:
                value = m[key]
            except KeyError:
                raise KeyError(f"{label} has no key {words['key']!r}") from None
            if not args.per_cpu:
                value = summed(value)
            k = m.key_type.decode(m.key_type.encode(key))
            print(_entry(k, value, args.json))
        elif verb == "delete":
            try:
                del m[key]
            except KeyError:
                raise KeyError(f"{label} has no key {words['key']!r}") from None
            print(f"deleted {words['key']} from {label}", file=sys.stderr)
        else:
            value = parse(m.value_type, words["value"], _input_name("value", m.value_type, label))
            m.update({key: value}, flags={"any": 0, "noexist": 1, "exist": 2}[args.flag])
            print(f"updated {label}", file=sys.stderr)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from . import system

    feats = system.features(helpers_for=args.helpers or ())
    if args.json:
        print(json.dumps(asdict(feats)))
        return 0
    tables = [("program types", feats.program_types, ""), ("map types", feats.map_types, ""),
              ("attach kinds", feats.attach_kinds, ""),
              ("iterator targets", feats.iter_targets, "iter/"),
              ("mechanisms", feats.mechanisms, "")]
    tables += [(f"helpers of {t} programs", h, "") for t, h in feats.helpers.items()]
    for title, table, prefix in tables:
        print(f"{title}:")
        width = max(map(len, table), default=0)
        for name, ok in table.items():
            why = feats.reasons.get(prefix + name, "") if title in ("attach kinds",
                                                                    "iterator targets") else ""
            line = f"  {'yes' if ok else 'no ':3}  {name}"
            print(f"{line:{width + 7}}  ({why})" if why else line)
    return 0


def cmd_trace_pipe(args: argparse.Namespace) -> int:
    from .trace_pipe import TracePipe

    deadline = time.monotonic() + args.duration if args.duration else None
    with TracePipe() as tp:
        try:
            while deadline is None or time.monotonic() < deadline:
                for line in tp.read_lines(0.2):
                    print(line, flush=True)
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pylibbpf", description="eBPF from Python, with libbpf "
                                "compiled in")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("version", help="versions of pylibbpf and its libbpf")
    s.set_defaults(func=cmd_version)
    s = sub.add_parser("vmlinux-h", help="write vmlinux.h from the kernel's BTF")
    s.add_argument("-o", "--output", help="file to write (default: stdout)")
    s.add_argument("--btf", help="BTF file instead of /sys/kernel/btf/vmlinux")
    s.set_defaults(func=cmd_vmlinux_h)
    s = sub.add_parser("compile", help="compile a .bpf.c with clang (cached by content)")
    s.add_argument("source")
    s.add_argument("-o", "--output", help="object file (default: in the cache, path printed)")
    s.add_argument("--cflag", action="append", help="extra clang flag (repeatable)")
    s.add_argument("-I", "--include", action="append", help="include directory (repeatable)")
    s.add_argument("--no-cache", action="store_true", help="compile even if cached")
    s.add_argument("-v", "--verbose", action="store_true",
                   help="say which clang compiles it (on stderr)")
    s.set_defaults(func=cmd_compile)
    s = sub.add_parser("inspect", help="programs, maps (BTF types) and globals of an object")
    s.add_argument("object", help="a BPF object (.o) or a BPF C source (.bpf.c)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_inspect)
    s = sub.add_parser("run", help="load, attach every program, print ring/perf buffer "
                       "events and the programs' BPF stdout/stderr, dump maps at the end")
    s.add_argument("object", help="a BPF object (.o) or a BPF C source (.bpf.c)")
    s.add_argument("-d", "--duration", type=float, default=0,
                   help="seconds to run (default: until Ctrl-C)")
    s.add_argument("--event-type", help="BTF type of ring/perf buffer records "
                   "(default: struct event, if the object has one)")
    s.add_argument("--json", action="store_true", help="events and the final map dump as "
                   "JSON lines (one object per line, for jq)")
    s.add_argument("--no-dump", action="store_true", help="don't print maps at the end")
    s.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="set global variable NAME (.rodata, .data, .bss) before load, "
                   "VALUE typed from BTF: 42, 0x2a, an enumerator, text for char[], JSON "
                   "for structs and arrays (repeatable)")
    s.add_argument("--all-maps", action="store_true",
                   help="also dump libbpf's internal maps (__bpf_usdt_* …)")
    s.add_argument("--per-cpu", action="store_true",
                   help="print per-CPU values CPU by CPU (default: summed)")
    s.add_argument("--limit", type=int, default=50, help="entries printed per map")
    s.add_argument("-a", "--attach", action="append", metavar="PROG=KIND:ARGS",
                   help=ATTACH_HELP)
    s.set_defaults(func=cmd_run)
    s = sub.add_parser("symbols", help="function symbols of an ELF binary or library")
    s.add_argument("binary", help="path, library name (c, libssl.so.3) or program on PATH")
    s.add_argument("pattern", nargs="?", help="glob (default: all)")
    s.add_argument("--regex", action="store_true", help="the pattern is a regular expression")
    s.add_argument("--demangled", action="store_true", default=None,
                   help="match demangled C++/Rust names")
    s.add_argument("--pid", type=int, help="the file this process maps")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_symbols)
    s = sub.add_parser("list", help="BPF programs, maps and links loaded on this system, "
                       "with the processes holding them")
    s.add_argument("what", nargs="?", default="all", choices=["all", "programs", "maps", "links"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)
    s = sub.add_parser("map", help="dump, look up, update, delete or pin entries of a map "
                       "named by id, name or pin path", description="Keys and values are "
                       "decoded from the map's BTF (bytes as hex without it) and read in the "
                       "same notation: 42, 0x2a, an enumerator, text for char[], hex bytes "
                       "('0a 0b 0c 0d'), JSON for structs and arrays.")
    s.add_argument("verb", choices=["dump", "lookup", "update", "delete", "pin"])
    s.add_argument("how", choices=["id", "name", "pinned"])
    s.add_argument("ref", help="the map's id, name or bpffs path")
    s.add_argument("words", nargs="*", metavar="key KEY [value VALUE] | PATH",
                   help="lookup/delete: key KEY; update: key KEY value VALUE; pin: PATH")
    s.add_argument("--json", action="store_true", help="entries as JSON")
    s.add_argument("--per-cpu", action="store_true",
                   help="per-CPU values CPU by CPU (default: summed)")
    s.add_argument("--flag", choices=["any", "noexist", "exist"], default="any",
                   help="update: create or replace (any), only create, only replace")
    s.set_defaults(func=cmd_map)
    s = sub.add_parser("features", help="what this kernel supports")
    s.add_argument("--helpers", action="append", metavar="PROG_TYPE",
                   help="also probe the helpers of this program type (repeatable)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_features)
    s = sub.add_parser("trace-pipe", help="print bpf_printk() output (the kernel trace pipe)")
    s.add_argument("-d", "--duration", type=float, default=0)
    s.set_defaults(func=cmd_trace_pipe)
    from ._cli_prog import add_prog_parser, add_top_parser

    add_prog_parser(sub)
    add_top_parser(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BPFKeyError as e:  # a program or map name that isn't there: a usage error
        print(f"pylibbpf: error: {e.strerror}", file=sys.stderr)
        return 2
    except BPFError as e:
        print(f"pylibbpf: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as e:
        print(f"pylibbpf: error: {e}", file=sys.stderr)
        return 2
    except KeyError as e:
        print(f"pylibbpf: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
