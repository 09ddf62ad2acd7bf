"""``pylibbpf prog …`` (dump xlated/jited, pin, tracelog) and ``pylibbpf top``:
the verbs for looking at programs that are already loaded."""
from __future__ import annotations

import argparse
import errno as _errno
import json
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, List, Sequence

from .errors import BPFError, BPFNotFoundError

if TYPE_CHECKING:
    from .program import Program

SELECT_HELP = ("which program: 'id N', 'name NAME' (every program of that name), "
               "'pinned PATH', or 'OBJ PROG' (an object file or .bpf.c source and a "
               "program in it, loaded for the dump)")


def _programs_named(name: str) -> List["Program"]:
    from ._ffi import ffi, lib
    from .program import Program

    out: List[Program] = []
    cur = 0
    nxt = ffi.new("__u32 *")
    while lib.bpf_prog_get_next_id(cur, nxt) == 0:
        cur = int(nxt[0])
        try:
            p = Program.from_id(cur)
        except BPFError:
            continue  # gone meanwhile, or a type this libbpf cannot name
        if p.name == name[:15]:
            out.append(p)
        else:
            p.close()
    if not out:
        raise BPFNotFoundError(_errno.ENOENT, f"no loaded program is named {name!r}")
    return out


def select_programs(spec: Sequence[str], stack: ExitStack, *, load: bool = True
                    ) -> List["Program"]:
    """The programs ``spec`` names (see SELECT_HELP); closed with ``stack``."""
    from .program import Program

    if len(spec) != 2:
        raise ValueError(f"expected {SELECT_HELP}; got {' '.join(spec)!r}")
    kind, value = spec
    progs: List[Program]
    if kind == "id":
        try:
            pid = int(value, 0)
        except ValueError:
            raise ValueError(f"program id must be a number, not {value!r}") from None
        progs = [Program.from_id(pid)]
    elif kind == "name":
        progs = _programs_named(value)
    elif kind == "pinned":
        progs = [Program.open_pinned(value)]
    else:
        from .cli import _open

        obj = stack.enter_context(_open(kind))
        if value not in obj.programs:
            raise KeyError(f"no program {value!r} in {kind} (it has: "
                           f"{', '.join(obj.programs) or 'none'})")
        if load:
            for p in obj.programs.values():
                p.autoload = p.name == value
            obj.load()
        return [obj.programs[value]]
    for p in progs:
        stack.callback(p.close)
    return progs


def _header(p: "Program", many: bool) -> str:
    if not many:
        return ""
    try:
        return f"# program {p.info().id} {p.name}\n"
    except BPFError:
        return f"# program {p.name}\n"


def cmd_prog_dump(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        progs = select_programs(args.program, stack, load=not args.before_load)
        many = len(progs) > 1
        out: List[Any] = []
        for i, p in enumerate(progs):
            if args.what == "xlated":
                d = p.disassemble()
                if args.json:
                    out.append({"name": d.name or p.name, "instructions": [
                        {"index": x.index, "code": x.code, "raw": x.raw.hex(), "text": x.text,
                         "target": x.target, "symbol": x.symbol,
                         "function": d.functions.get(x.index),
                         "line": ({"file": d.lines[x.index].file, "line": d.lines[x.index].line,
                                   "column": d.lines[x.index].column,
                                   "text": d.lines[x.index].text}
                                  if x.index in d.lines else None)} for x in d]})
                    continue
                print(("\n" if i else "") + _header(p, many)
                      + d.format(source=not args.no_source, linum=args.linum,
                                 opcodes=args.opcodes))
            else:
                j = p.jited()
                if args.json:
                    out.append({"name": j.name or p.name, "code": j.code.hex(),
                                "missing": j.missing or None, "functions": [
                                    {"name": f.name, "address": f.address, "code": f.code.hex(),
                                     "instructions": [{"address": x.address, "raw": x.raw.hex(),
                                                       "text": x.text}
                                                      for x in f.instructions]}
                                    for f in j.functions]})
                    continue
                if j.missing:
                    print(f"pylibbpf: {j.missing}", file=sys.stderr)
                    j.missing = ""
                print(("\n" if i else "") + _header(p, many)
                      + j.format(source=not args.no_source, opcodes=not args.no_opcodes))
        if args.json:
            print(json.dumps(out if many else out[0]))
    return 0


def cmd_prog_pin(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        progs = select_programs(args.program, stack)
        if len(progs) > 1:
            raise ValueError(f"{len(progs)} programs are named {args.program[1]!r}: "
                             "pin one by id")
        progs[0].pin(args.path)
        print(f"pinned program {progs[0].name!r} at {args.path}")
    return 0


def add_prog_parser(sub: Any) -> None:
    from .cli import cmd_trace_pipe

    s = sub.add_parser("prog", help="look at loaded programs: dump their code, pin them")
    ps = s.add_subparsers(dest="prog_command", required=True)
    d = ps.add_parser("dump", help="a program's code: xlated (BPF instructions, "
                      "disassembled, with source lines) or jited (machine code)")
    d.add_argument("what", choices=["xlated", "jited"])
    d.add_argument("program", nargs="+", metavar="SELECTOR", help=SELECT_HELP)
    d.add_argument("--linum", action="store_true",
                   help="xlated: give the file, line and column of each source line")
    d.add_argument("--opcodes", action="store_true", help="xlated: show each "
                   "instruction's bytes")
    d.add_argument("--no-opcodes", action="store_true", help="jited: leave the bytes out")
    d.add_argument("--no-source", action="store_true", help="leave source lines out")
    d.add_argument("--before-load", action="store_true", help="OBJ PROG: the instructions "
                   "as in the object file, without loading it (map references unresolved)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_prog_dump)
    p = ps.add_parser("pin", help="pin a loaded program in bpffs")
    p.add_argument("program", nargs=2, metavar="SELECTOR", help="'id N' or 'name NAME'")
    p.add_argument("path", help="where in bpffs, e.g. /sys/fs/bpf/myprog")
    p.set_defaults(func=cmd_prog_pin)
    t = ps.add_parser("tracelog", help="bpf_printk() output (same as trace-pipe)")
    t.add_argument("-d", "--duration", type=float, default=0)
    t.set_defaults(func=cmd_trace_pipe)


# --- top ------------------------------------------------------------------------------

def cmd_top(args: argparse.Namespace) -> int:
    import os
    import select
    import shutil
    import signal
    import time

    from . import top

    if args.interval <= 0:
        raise ValueError(f"--interval must be > 0, not {args.interval}")
    live = sys.stdout.isatty() and not args.json and not args.once
    keys = sys.stdin.isatty() and live
    old_term = None
    prev = signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with top.run_time_stats():
            if keys:
                import termios
                import tty

                old_term = termios.tcgetattr(sys.stdin.fileno())
                tty.setcbreak(sys.stdin.fileno())
            if live:
                sys.stdout.write("\x1b[?1049h\x1b[?25l")  # alternate screen, no cursor
            before = top.snapshot()
            if not live:
                print(f"pylibbpf top: run-time statistics on, sampling every "
                      f"{args.interval:g}s", file=sys.stderr, flush=True)
            n = 0
            while True:
                deadline = time.monotonic() + args.interval
                quit_ = False
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if keys:
                        ready, _, _ = select.select([sys.stdin], [], [], left)
                        if ready and os.read(sys.stdin.fileno(), 1) in (b"q", b"Q"):
                            quit_ = True
                            break
                    else:
                        time.sleep(left)
                if quit_:
                    break
                after = top.snapshot()
                rows = top.rates(before, after, sort=args.sort)
                if not args.all:
                    rows = [r for r in rows if r.runs]
                n += 1
                if args.json:
                    seconds = max((a.at - before[i].at for i, a in after.items() if i in before),
                                  default=args.interval)
                    print(json.dumps({"interval": args.interval, "seconds": round(seconds, 6),
                                      "programs": [r.to_dict() for r in rows]}), flush=True)
                elif live:
                    size = shutil.get_terminal_size()
                    lines = [f"pylibbpf top: {len(after)} programs loaded, {len(rows)} shown, "
                             f"every {args.interval:g}s (run-time stats on while this runs; "
                             "q or Ctrl-C quits)", ""]
                    lines += top.table(rows, limit=max(size.lines - 4, 1))
                    sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(
                        ln[:size.columns] for ln in lines) + "\n")
                    sys.stdout.flush()
                else:
                    print("\n".join(top.table(rows)) + ("\n" if not args.once else ""),
                          flush=True)
                before = after
                if args.once or (args.count and n >= args.count):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, prev)
        if live:
            sys.stdout.write("\x1b[?25h\x1b[?1049l")
            sys.stdout.flush()
        if old_term is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, old_term)
    return 0


def add_top_parser(sub: Any) -> None:
    from .top import SORT_KEYS

    s = sub.add_parser("top", help="live CPU use of every loaded BPF program (turns the "
                       "kernel's run-time statistics on while it runs)")
    s.add_argument("-i", "--interval", type=float, default=1.0, help="seconds per refresh "
                   "(default 1)")
    s.add_argument("--once", action="store_true", help="sample one interval, print, exit")
    s.add_argument("-n", "--count", type=int, default=0, help="stop after N intervals")
    s.add_argument("--json", action="store_true", help="one JSON object per interval")
    s.add_argument("--sort", choices=SORT_KEYS, default="cpu", help="order (default: cpu)")
    s.add_argument("-a", "--all", action="store_true", help="also programs that did not run")
    s.set_defaults(func=cmd_top)
