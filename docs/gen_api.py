#!/usr/bin/env python3
"""Generate the API reference (docs/api/*.md) from pylibbpf's docstrings.

    PYTHONPATH=. python3 docs/gen_api.py          # write docs/api/
    PYTHONPATH=. python3 docs/gen_api.py --check  # exit 1 if docs/api/ is stale

One page per module: its docstring, then every public name (``__all__``) with
its signature and docstring; classes list their public methods and
properties. The output is deterministic, and committed.
"""
from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, Dict, List

OUT = Path(__file__).resolve().parent / "api"

#: (module, title) in the order of the index
MODULES = [
    ("pylibbpf.object", "Objects: open, configure, load"),
    ("pylibbpf.program", "Programs"),
    ("pylibbpf.stream", "BPF streams: a program's stdout and stderr"),
    ("pylibbpf.token", "BPF tokens: delegated privileges in a user namespace"),
    ("pylibbpf.map", "Maps"),
    ("pylibbpf.link", "Links"),
    ("pylibbpf.ringbuf", "Ring buffers"),
    ("pylibbpf.perfbuf", "Perf buffers"),
    ("pylibbpf.globals", "Global variables"),
    ("pylibbpf.arena", "Arenas: memory shared with programs, without copies"),
    ("pylibbpf.btf", "BTF"),
    ("pylibbpf.typed", "Typed values"),
    ("pylibbpf.notation", "Typed values as text (what the command line reads and prints)"),
    ("pylibbpf.errors", "Errors"),
    ("pylibbpf.types", "Program, map, attach and link types"),
    ("pylibbpf.compiler", "Compiling BPF C"),
    ("pylibbpf.elf", "ELF symbols (uprobe targets)"),
    ("pylibbpf.system", "The system: loaded objects, kernel features"),
    ("pylibbpf.symbolize", "Symbolization"),
    ("pylibbpf.histogram", "Histograms"),
    ("pylibbpf.flamegraph", "Flame graphs"),
    ("pylibbpf.trace_pipe", "The trace pipe (bpf_printk)"),
    ("pylibbpf.disasm", "Disassembling BPF programs"),
    ("pylibbpf.top", "Program run-time statistics (top)"),
    ("pylibbpf.syscalls", "Syscall names"),
    ("pylibbpf.testing", "Testing: namespaces, veth pairs, the pytest plugin"),
]


def _doc(obj: Any) -> str:
    """The object's own docstring (not one inherited from builtins)."""
    own = getattr(obj, "__doc__", None)
    if not isinstance(own, str):
        return ""
    if own in (object.__init__.__doc__, object.__doc__, type.__doc__):
        return ""
    return inspect.cleandoc(own).strip()


def _annotation(a: Any) -> str:
    return a if isinstance(a, str) else inspect.formatannotation(a)


def _signature(name: str, obj: Any) -> str:
    """``name(a: int, *, b: str = 'x') -> T`` with annotations as written in the source."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    parts: List[str] = []
    star_done = False
    for p in sig.parameters.values():
        if p.kind == p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.kind == p.VAR_POSITIONAL:
            star_done = True
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}" if p.annotation is not p.empty else f"={p.default!r}"
        parts.append(text)
        if p.kind == p.POSITIONAL_ONLY:
            pass
    ret = ""
    if sig.return_annotation is not sig.empty:
        ret = f" -> {_annotation(sig.return_annotation).strip(chr(34)).strip(chr(39))}"
    return f"{name}({', '.join(parts)}){ret}"


def _own_members(cls: type) -> List[str]:
    names = []
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != "pylibbpf":
            continue
        for n in vars(klass):
            if (not n.startswith("_") or n in ("__init__",)) and n not in names:
                names.append(n)
    return sorted(names, key=lambda n: (n != "__init__", n))


def _member(cls: type, name: str) -> List[str]:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, property):
        doc = _doc(raw)
        ro = "" if raw.fset is not None else " (read-only)"
        return [f"- **`{name}`**{ro} — {doc.splitlines()[0] if doc else ''}".rstrip(" —")]
    if isinstance(raw, (classmethod, staticmethod)):
        fn = raw.__func__
        kind = "classmethod" if isinstance(raw, classmethod) else "staticmethod"
    elif inspect.isfunction(raw):
        fn, kind = raw, ""
    elif inspect.ismethoddescriptor(raw) and getattr(raw, "__text_signature__", None):
        fn, kind = raw, ""  # a method written in C (pylibbpf._fast.MapBase)
    else:
        return []
    if name == "__init__" and not _doc(fn):
        return []
    sig = _signature(name if name != "__init__" else cls.__name__, fn)
    sig = sig.replace("(self, ", "(").replace("(self)", "()").replace("(cls, ", "(") \
        .replace("(cls)", "()")
    lines = [f"#### `{sig}`" + (f" *{kind}*" if kind else ""), ""]
    doc = _doc(fn)
    if doc:
        lines += [doc, ""]
    return lines


def _enum(cls: type) -> List[str]:
    members = ", ".join(f"`{m.name}`" for m in list(cls)[:60])  # type: ignore[var-annotated]
    more = len(list(cls)) - 60  # type: ignore[arg-type]
    return [f"Members: {members}" + (f" … ({more} more)" if more > 0 else ""), ""]


def module_page(modname: str, title: str) -> str:
    mod = importlib.import_module(modname)
    lines = [f"# `{modname}` — {title}", "",
             "<!-- generated by docs/gen_api.py from the docstrings; do not edit -->", ""]
    doc = _doc(mod)
    if doc:
        lines += [doc, ""]
    names = list(getattr(mod, "__all__", []))
    for name in names:
        obj = getattr(mod, name, None)
        if obj is None or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj):
            bases = [b.__name__ for b in obj.__bases__ if b is not object]
            lines += [f"## class `{name}`" + (f"({', '.join(bases)})" if bases else ""), ""]
            d = _doc(obj)
            if d:
                lines += [d, ""]
            if issubclass(obj, enum.Enum):
                lines += _enum(obj)
                continue
            for member in _own_members(obj):
                lines += _member(obj, member)
            lines.append("")
        elif callable(obj):
            lines += [f"## `{_signature(name, obj)}`", ""]
            d = _doc(obj)
            if d:
                lines += [d, ""]
        else:
            lines += [f"## `{name}` = `{obj!r}`", ""]
    text = "\n".join(lines).rstrip() + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def index_page() -> str:
    import pylibbpf

    lines = ["# API reference", "",
             "<!-- generated by docs/gen_api.py from the docstrings; do not edit -->", "",
             "Everything below is importable from its module; the names most scripts need "
             "are also re-exported by `pylibbpf` itself:", "",
             ", ".join(f"`{n}`" for n in sorted(pylibbpf.__all__)), "", "| module | |",
             "|---|---|"]
    for modname, title in MODULES:
        lines.append(f"| [`{modname}`]({modname.split('.', 1)[1]}.md) | {title} |")
    return "\n".join(lines) + "\n"


def generate() -> Dict[str, str]:
    pages = {"index.md": index_page()}
    for modname, title in MODULES:
        pages[f"{modname.split('.', 1)[1]}.md"] = module_page(modname, title)
    return pages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    pages = generate()
    if args.check:
        stale = [n for n, text in pages.items()
                 if not (args.out / n).exists() or (args.out / n).read_text() != text]
        extra = sorted(p.name for p in args.out.glob("*.md") if p.name not in pages)
        if stale or extra:
            print(f"docs/api is stale: {', '.join(stale + extra)}; run docs/gen_api.py",
                  file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (args.out / name).write_text(text)
    print(f"wrote {len(pages)} pages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
