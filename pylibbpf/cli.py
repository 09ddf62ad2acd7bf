"""The ``pylibbpf`` command line (also ``python -m pylibbpf``)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, List, Optional, Sequence

from . import __version__, libbpf_version
from .errors import BPFError


def _table(rows: List[List[Any]], header: List[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _name(v: Any) -> str:
    return v.name.lower() if hasattr(v, "name") else str(v)


def cmd_version(args: argparse.Namespace) -> int:
    print(f"pylibbpf {__version__}, libbpf {libbpf_version()}")
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

    out = compile(args.source, args.output, cflags=args.cflag or ())
    print(out)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .object import Object

    with Object(args.object) as obj:
        progs = [[p.name, p.section, _name(p.type), p.insn_count] for p in obj.programs.values()]
        maps = [[m.name, _name(m.type), m.key_size, m.value_size, m.max_entries]
                for m in obj.maps.values()]
        if args.json:
            print(json.dumps({"name": obj.name, "programs": progs, "maps": maps}))
            return 0
        print(f"object {obj.name}")
        print("\nprograms:")
        print(_table(progs, ["NAME", "SECTION", "TYPE", "INSNS"]))
        print("\nmaps:")
        print(_table(maps, ["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES"]))
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

    feats = system.features()
    if args.json:
        print(json.dumps(asdict(feats)))
        return 0
    for title, table in (("program types", feats.program_types),
                         ("map types", feats.map_types), ("mechanisms", feats.mechanisms)):
        print(f"{title}:")
        for name, ok in table.items():
            print(f"  {'yes' if ok else 'no ':3}  {name}")
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
    s = sub.add_parser("compile", help="compile a .bpf.c with clang")
    s.add_argument("source")
    s.add_argument("-o", "--output")
    s.add_argument("--cflag", action="append", help="extra clang flag (repeatable)")
    s.set_defaults(func=cmd_compile)
    s = sub.add_parser("inspect", help="programs and maps of a BPF object")
    s.add_argument("object")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_inspect)
    s = sub.add_parser("list", help="BPF programs, maps and links loaded on this system")
    s.add_argument("what", nargs="?", default="all", choices=["all", "programs", "maps", "links"])
    s.set_defaults(func=cmd_list)
    s = sub.add_parser("features", help="what this kernel supports")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_features)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BPFError as e:
        print(f"pylibbpf: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
