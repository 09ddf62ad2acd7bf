"""Dry runs from the shell: ``python -m pylibbpf.elf COMMAND …``

    explain BINARY [SYMBOL] [--pid N] [--offset N] [--address N]
    list    BINARY [PATTERN] [--regex] [--demangled] [--pid N]
    lib     NAME [--pid N]
    usdt    BINARY [PROVIDER NAME] [--pid N]
"""
from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

from ..errors import BPFError
from . import (explain, explain_usdt, find_library, functions, resolve_binary, usdt_probes)


def _int(text: str) -> int:
    return int(text, 0)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pylibbpf.elf",
                                 description="Resolve uprobe targets without attaching.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("explain", help="which file, symbol, address and offset, and why")
    p.add_argument("binary")
    p.add_argument("symbol", nargs="?")
    p.add_argument("--offset", type=_int, default=0)
    p.add_argument("--address", type=_int)
    p.add_argument("--pid", type=int)
    p = sub.add_parser("list", help="function symbols matching a glob or regex")
    p.add_argument("binary")
    p.add_argument("pattern", nargs="?")
    p.add_argument("--regex", action="store_true")
    p.add_argument("--demangled", action="store_true", default=None)
    p.add_argument("--pid", type=int)
    p = sub.add_parser("lib", help="the file a library name stands for")
    p.add_argument("name")
    p.add_argument("--pid", type=int)
    p = sub.add_parser("usdt", help="USDT probes of a binary (or one probe, explained)")
    p.add_argument("binary")
    p.add_argument("provider", nargs="?")
    p.add_argument("name", nargs="?")
    p.add_argument("--pid", type=int)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "explain":
            print(explain(args.binary, args.symbol, offset=args.offset, address=args.address,
                          pid=args.pid))
        elif args.cmd == "list":
            for s in functions(args.binary, args.pattern, regex=args.regex,
                               demangled=args.demangled, pid=args.pid):
                off = "?" if s.offset is None else f"{s.offset:#x}"
                extra = f"  {s.demangled}" if s.demangled != s.name else ""
                print(f"{off:>12} {s.size:>7} {s.binding:<6} {s.type:<5} "
                      f"{s.versioned_name}{extra}")
        elif args.cmd == "lib":
            print(find_library(args.name, pid=args.pid))
        elif args.cmd == "usdt":
            if args.provider and args.name:
                print(explain_usdt(args.binary, args.provider, args.name, pid=args.pid))
            else:
                path = resolve_binary(args.binary, pid=args.pid).path
                for probe in usdt_probes(path):
                    print(probe)
    except (BPFError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
