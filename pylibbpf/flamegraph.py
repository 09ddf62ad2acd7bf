"""Flame graphs: folded stacks in, an interactive SVG out.

Folded stacks are the format of Brendan Gregg's FlameGraph tools: one line per
distinct stack, frames from the root to the leaf separated by ``;``, then a
space and the sample count::

    python;main;work;compute 42

:func:`fold` builds them from ``(frames, count)`` pairs, :func:`render_svg`
draws them: hover a frame for its name and share of samples, click it to
zoom in (click the bottom frame or "Reset zoom" to zoom out), "Search"
highlights frames matching a regular expression. The SVG has no external
dependencies; open it in any browser.

>>> from pylibbpf.flamegraph import fold, render_svg
>>> folded = fold([(["main", "parse"], 3), (["main", "eval"], 5), (["main", "parse"], 1)])
>>> folded
{'main;eval': 5, 'main;parse': 4}
>>> svg = render_svg(folded, title="demo")
>>> svg.startswith("<?xml") and 'data-frames="4"' in svg   # all, main, eval, parse
True
"""
from __future__ import annotations

import html
import zlib
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["fold", "folded_text", "parse_folded", "render_svg", "write_svg"]

Folded = Mapping[str, int]


def _clean(frame: str) -> str:
    return frame.replace(";", ":").replace("\n", " ").strip() or "[unknown]"


def fold(stacks: Iterable[Tuple[Sequence[str], int]]) -> Dict[str, int]:
    """``{"root;…;leaf": count}`` from ``(frames root-first, count)`` pairs, sorted."""
    out: Dict[str, int] = {}
    for frames, count in stacks:
        if not frames or count <= 0:
            continue
        key = ";".join(_clean(f) for f in frames)
        out[key] = out.get(key, 0) + int(count)
    return dict(sorted(out.items()))


def folded_text(folded: Folded) -> str:
    """The folded-stacks file format (one ``stack count`` per line)."""
    return "".join(f"{stack} {count}\n" for stack, count in folded.items())


def parse_folded(text: str) -> Dict[str, int]:
    """Read the folded-stacks format (what :func:`folded_text` writes)."""
    out: Dict[str, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            raise ValueError(f"not a folded stack line: {line!r}")
        out[stack] = out.get(stack, 0) + int(count)
    return out


class _Node:
    __slots__ = ("name", "count", "children")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.children: Dict[str, "_Node"] = {}


def _color(name: str) -> str:
    """A warm color, stable per function name; kernel frames (``…_[k]``, as
    ``examples/profile.py`` marks them) in a separate orange range."""
    h = zlib.crc32(name.encode())
    if name.endswith("_[k]"):
        return f"rgb({230 + h % 25},{120 + (h >> 8) % 60},{20 + (h >> 16) % 30})"
    r = 205 + (h & 0x3F) % 50
    g = 60 + ((h >> 8) & 0xFF) % 150
    b = 40 + ((h >> 16) & 0x3F) % 40
    return f"rgb({r},{g},{b})"


_SCRIPT = r"""
var svg = document.documentElement.getAttribute("data-total") !== null ?
    document.documentElement : document.querySelector("svg[data-total]");
var W = +svg.getAttribute("data-width"),
    PAD = +svg.getAttribute("data-pad"), TOTAL = +svg.getAttribute("data-total");
var frames = Array.prototype.slice.call(svg.querySelectorAll("g.f"));
var details = document.getElementById("details"), matched = document.getElementById("matched");
function fit(g) {
  var r = g.querySelector("rect"), t = g.querySelector("text"), w = +r.getAttribute("width");
  var name = g.getAttribute("data-name"), chars = Math.floor((w - 6) / 7);
  t.setAttribute("x", +r.getAttribute("x") + 3);
  t.textContent = chars < 3 ? "" : (name.length <= chars ? name : name.slice(0, chars - 2) + "..");
}
function zoom(z) {
  var s0 = +z.getAttribute("data-s"), n0 = +z.getAttribute("data-n"),
      d0 = +z.getAttribute("data-d"), k = (W - 2 * PAD) / n0;
  frames.forEach(function (g) {
    var s = +g.getAttribute("data-s"), n = +g.getAttribute("data-n"), d = +g.getAttribute("data-d");
    var r = g.querySelector("rect"), inside = s >= s0 && s + n <= s0 + n0 && d >= d0,
        above = d < d0 && s <= s0 && s + n >= s0 + n0;
    g.style.display = inside || above ? "" : "none";
    g.style.opacity = above ? 0.5 : 1;
    if (inside) { r.setAttribute("x", PAD + (s - s0) * k); r.setAttribute("width", Math.max(n * k - 0.5, 0)); }
    if (above) { r.setAttribute("x", PAD); r.setAttribute("width", W - 2 * PAD); }
    if (inside || above) fit(g);
  });
  svg.setAttribute("data-zoomed", d0 > 0 || n0 < TOTAL ? "1" : "0");
}
function reset() { zoom(frames[0]); }
function search() {
  var re = prompt("Search for (regular expression):");
  if (re === null) return;
  var rx = new RegExp(re), hits = 0;
  frames.forEach(function (g) {
    var m = re !== "" && rx.test(g.getAttribute("data-name"));
    g.querySelector("rect").style.fill = m ? "rgb(230,0,230)" : "";
    if (m) hits += +g.getAttribute("data-n");
  });
  matched.textContent = re === "" ? "" : "Matched: " + (100 * hits / TOTAL).toFixed(1) + "%";
}
frames.forEach(function (g) {
  g.addEventListener("click", function () { zoom(g); });
  g.addEventListener("mouseover", function () { details.textContent = g.querySelector("title").textContent; });
  g.addEventListener("mouseout", function () { details.textContent = " "; });
  fit(g);
});
document.getElementById("reset").addEventListener("click", reset);
document.getElementById("search").addEventListener("click", search);
svg.setAttribute("data-ready", String(frames.length));
"""


def render_svg(folded: Union[Folded, str], *, title: str = "Flame Graph", width: int = 1200,
               frame_height: int = 16, min_width: float = 0.3,
               subtitle: Optional[str] = None) -> str:
    """Draw folded stacks (a mapping, or folded-stacks text) as an interactive SVG.

    Frames narrower than ``min_width`` pixels are left out (their samples
    still count in their parents).
    """
    if isinstance(folded, str):
        folded = parse_folded(folded)
    root = _Node("all")
    for stack, count in folded.items():
        if count <= 0:
            continue
        root.count += count
        node = root
        for name in stack.split(";"):
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name)
            child.count += count
            node = child
    total = max(root.count, 1)
    pad = 10
    scale = (width - 2 * pad) / total
    # lay out: (name, start sample, samples, depth)
    boxes: List[Tuple[str, int, int, int]] = []

    def walk(node: _Node, start: int, depth: int) -> int:
        if node.count * scale < min_width and depth > 0:
            return depth
        boxes.append((node.name, start, node.count, depth))
        deepest = depth
        pos = start
        for name in sorted(node.children):
            child = node.children[name]
            deepest = max(deepest, walk(child, pos, depth + 1))
            pos += child.count
        return deepest

    max_depth = walk(root, 0, 0)
    top = 60 if subtitle else 44
    height = top + (max_depth + 1) * frame_height + 34
    esc = html.escape
    out = [
        '<?xml version="1.0" standalone="no"?>',
        f'<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" data-width="{width}" data-pad="{pad}" '
        f'data-total="{total}" data-frames="{len(boxes)}" data-ready="0" data-zoomed="0">',
        "<style>text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; } "
        "g.f:hover rect { stroke: #000; stroke-width: 0.5; cursor: pointer; } "
        "#title { font-size: 17px; } .btn { cursor: pointer; fill: #333; }</style>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f0"/>',
        f'<text id="title" x="{width // 2}" y="24" text-anchor="middle">{esc(title)}</text>',
    ]
    if subtitle:
        out.append(f'<text x="{width // 2}" y="42" text-anchor="middle" fill="#666">'
                   f'{esc(subtitle)}</text>')
    out += [
        f'<text id="reset" class="btn" x="{pad}" y="24">Reset zoom</text>',
        f'<text id="search" class="btn" x="{width - pad - 60}" y="24">Search</text>',
        f'<text id="matched" x="{width - pad - 160}" y="{height - 12}"> </text>',
        f'<text id="details" x="{pad}" y="{height - 12}"> </text>',
    ]
    base = top + max_depth * frame_height
    for name, start, n, depth in boxes:
        x = pad + start * scale
        y = base - depth * frame_height
        w = max(n * scale - 0.5, 0)
        pct = 100.0 * n / total
        label = f"{name} ({n} samples, {pct:.2f}%)"
        fill = "rgb(200,200,200)" if depth == 0 else _color(name)
        out.append(
            f'<g class="f" data-name="{esc(name)}" data-s="{start}" data-n="{n}" '
            f'data-d="{depth}"><title>{esc(label)}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{frame_height - 1}" '
            f'fill="{fill}" rx="2" ry="2"/>'
            f'<text x="{x + 3:.2f}" y="{y + frame_height - 4}"></text></g>')
    out.append(f"<script><![CDATA[{_SCRIPT}]]></script>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(path: str, folded: Union[Folded, str], **kw: object) -> None:
    """:func:`render_svg` into the file ``path``."""
    with open(path, "w") as f:
        f.write(render_svg(folded, **kw))  # type: ignore[arg-type]
