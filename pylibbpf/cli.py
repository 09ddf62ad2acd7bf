"""The ``pylibbpf`` command line (also ``python -m pylibbpf``).

    pylibbpf inspect OBJ|SRC.bpf.c   programs, maps with BTF types, global variables
    pylibbpf run OBJ|SRC.bpf.c       load, attach everything, print events, dump maps
    pylibbpf compile SRC.bpf.c       clang with the right flags (cached by content)
    pylibbpf vmlinux-h               vmlinux.h from the running kernel's BTF
    pylibbpf symbols BINARY [GLOB]   function symbols of an ELF file (uprobe targets)
    pylibbpf features                what this kernel supports
    pylibbpf list                    BPF programs, maps and links loaded on this system
    pylibbpf trace-pipe              bpf_printk() output
    pylibbpf version
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from . import __version__, libbpf_version
from .errors import BPFError

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


def _plain(value: Any) -> Any:
    """A decoded value as JSON-friendly data."""
    if hasattr(value, "to_dict"):
        return {k: _plain(v) for k, v in value.to_dict().items()}
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value)
        return str(value) if hasattr(value, "text") else text.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def _show(value: Any) -> str:
    if hasattr(value, "to_dict") or isinstance(value, (list, tuple)):
        return json.dumps(_plain(value))
    if isinstance(value, (bytes, bytearray)) and not hasattr(value, "text"):
        return bytes(value).hex()
    return str(value)


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
    from .compiler import compile

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


def _dump_maps(obj: "Object", limit: int) -> None:
    from .types import MapType

    for m in obj.maps.values():
        if m.type.name in _NO_DUMP or ("." in m.name and m.type == MapType.ARRAY
                                       and m.max_entries == 1):
            continue
        try:
            items = m.items_list()
        except BPFError as e:
            print(f"\nmap {m.name}: cannot read ({e})")
            continue
        if m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            items = [(k, v) for k, v in items if _nonzero(v)]
        print(f"\nmap {m.name} ({_name(m.type)}, {len(items)} entries"
              f"{', zeros left out' if m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY) else ''}):")
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
        if values:
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


ATTACH_HELP = """attach program PROG explicitly (repeatable): PROG=uprobe:BINARY:SYMBOL,
PROG=uretprobe:BINARY:SYMBOL, PROG=usdt:BINARY:PROVIDER:NAME, PROG=xdp:IFACE,
PROG=tc:IFACE[:ingress|egress], PROG=cgroup:PATH, PROG=tracepoint:CATEGORY:NAME,
PROG=raw_tracepoint:NAME, PROG=perf_event[:FREQUENCY_HZ]"""


def _attach_explicit(obj: "Object", spec: str) -> Any:
    """One ``--attach PROG=KIND:ARGS``."""
    prog_name, sep, target = spec.partition("=")
    if not sep or not target:
        raise ValueError(f"--attach {spec!r}: expected PROG=KIND:ARGS")
    prog = obj.programs[prog_name]
    kind, *rest = target.split(":")
    n = len(rest)
    if kind in ("uprobe", "uretprobe") and n == 2:
        return prog.attach_uprobe(rest[0], rest[1], retprobe=kind == "uretprobe")
    if kind == "usdt" and n == 3:
        return prog.attach_usdt(rest[0], rest[1], rest[2])
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


def cmd_run(args: argparse.Namespace) -> int:
    from .perfbuf import PerfBuffer
    from .ringbuf import RingBuffer

    readers: List[Any] = []
    links: List[Any] = []
    with _open(args.object) as obj:
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
            except KeyboardInterrupt:
                pass
            finally:
                signal.signal(signal.SIGTERM, prev)
            for r in readers:
                r.consume()
        finally:
            for r in readers:
                r.close()
            for ln in links:
                ln.close()
        if not args.no_dump:
            _dump_maps(obj, args.limit)
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


def cmd_list(args: argparse.Namespace) -> int:
    from . import system

    what = args.what
    if what in ("programs", "all"):
        rows = [[p.id, _name(p.type), p.name, p.tag, ",".join(map(str, p.map_ids))]
                for p in system.programs()]
        print(_table(rows, ["ID", "TYPE", "NAME", "TAG", "MAPS"]))
    if what in ("maps", "all"):
        if what == "all":
            print()
        rows = [[m.id, _name(m.type), m.name, m.key_size, m.value_size, m.max_entries]
                for m in system.maps()]
        print(_table(rows, ["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX_ENTRIES"]))
    if what in ("links", "all"):
        if what == "all":
            print()
        rows = [[link.id, _name(link.type), link.program_id] for link in system.links()]
        print(_table(rows, ["ID", "TYPE", "PROG_ID"]))
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
    s.set_defaults(func=cmd_compile)
    s = sub.add_parser("inspect", help="programs, maps (BTF types) and globals of an object")
    s.add_argument("object", help="a BPF object (.o) or a BPF C source (.bpf.c)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_inspect)
    s = sub.add_parser("run", help="load, attach every program, print ring/perf buffer "
                       "events, dump maps at the end")
    s.add_argument("object", help="a BPF object (.o) or a BPF C source (.bpf.c)")
    s.add_argument("-d", "--duration", type=float, default=0,
                   help="seconds to run (default: until Ctrl-C)")
    s.add_argument("--event-type", help="BTF type of ring/perf buffer records "
                   "(default: struct event, if the object has one)")
    s.add_argument("--json", action="store_true", help="events as JSON lines")
    s.add_argument("--no-dump", action="store_true", help="don't print maps at the end")
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
    s = sub.add_parser("list", help="BPF programs, maps and links loaded on this system")
    s.add_argument("what", nargs="?", default="all", choices=["all", "programs", "maps", "links"])
    s.set_defaults(func=cmd_list)
    s = sub.add_parser("features", help="what this kernel supports")
    s.add_argument("--helpers", action="append", metavar="PROG_TYPE",
                   help="also probe the helpers of this program type (repeatable)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_features)
    s = sub.add_parser("trace-pipe", help="print bpf_printk() output (the kernel trace pipe)")
    s.add_argument("-d", "--duration", type=float, default=0)
    s.set_defaults(func=cmd_trace_pipe)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
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
