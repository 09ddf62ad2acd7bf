"""Tool helpers: flame graphs (checked in a real browser), syscall names, trace pipe lines."""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import List, Tuple

import pytest

from pylibbpf import syscalls
from pylibbpf.flamegraph import fold, folded_text, parse_folded, render_svg, write_svg
from pylibbpf.trace_pipe import parse_line

STACKS = [(["main", "parse", "lex"], 30), (["main", "eval"], 50), (["main", "parse"], 10),
          (["idle"], 20), (["main", "eval"], 5)]


def test_fold_and_folded_text_round_trip() -> None:
    folded = fold(STACKS + [(["x;y"], 1), ([], 3), (["z"], 0)])
    assert folded == {"idle": 20, "main;eval": 55, "main;parse": 10, "main;parse;lex": 30,
                      "x:y": 1}
    text = folded_text(folded)
    assert text.splitlines()[1] == "main;eval 55"
    assert parse_folded(text) == folded
    with pytest.raises(ValueError, match="not a folded stack line"):
        parse_folded("main;eval fifty\n")


def frames_of(svg: str) -> List[Tuple[str, int, int, int, float, float]]:
    """(name, start, samples, depth, x, width) of each frame in the SVG."""
    out = []
    for m in re.finditer(r'<g class="f" data-name="([^"]*)" data-s="(\d+)" data-n="(\d+)" '
                         r'data-d="(\d+)"><title>[^<]*</title><rect x="([\d.]+)" y="\d+" '
                         r'width="([\d.]+)"', svg):
        out.append((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)),
                    float(m.group(5)), float(m.group(6))))
    return out


def test_svg_layout() -> None:
    svg = render_svg(fold(STACKS), title="t & <test>", width=1020)
    assert "t &amp; &lt;test&gt;" in svg
    frames = {f[0]: f for f in frames_of(svg)}
    assert set(frames) == {"all", "main", "idle", "parse", "eval", "lex"}
    total = 115
    assert frames["all"][2] == total and frames["main"][2] == 95 and frames["parse"][2] == 40
    scale = 1000 / total
    for name, start, n, depth, x, w in frames.values():
        assert abs(x - (10 + start * scale)) < 0.01 and abs(w - (n * scale - 0.5)) < 0.01
    assert frames["lex"][3] == 3 and frames["lex"][1] == frames["parse"][1]
    # frames too narrow to see are left out (their samples stay in the parent)
    tiny = frames_of(render_svg({"a;b": 10000, "a;c": 1}, min_width=1))
    assert [f[0] for f in tiny] == ["all", "a", "b"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser: install Debian's chromium package")


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--no-first-run", *args],
                          capture_output=True, text=True, timeout=120)


def read_png(path: Path) -> Tuple[int, int, List[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: List[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) \
                    & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def pixel(rows: List[bytes], bpp: int, x: int, y: int) -> Tuple[int, int, int]:
    r, g, b = rows[y][x * bpp:x * bpp + 3]
    return r, g, b


def test_flame_graph_renders_in_chromium(tmp_path: Path) -> None:
    """The SVG opens in a real browser: its script runs (frames fitted with labels)
    and the screenshot shows the frames where the layout put them."""
    svg_path = tmp_path / "fg.svg"
    write_svg(str(svg_path), fold(STACKS), title="pylibbpf test", width=800)
    svg = svg_path.read_text()
    dom = run_chromium("--dump-dom", svg_path.as_uri())
    assert 'data-ready="6"' in dom.stdout, dom.stderr[-2000:]
    # the script filled in the labels that fit: "main" is wide, "lex" too
    labels = re.findall(r"<text x=\"[\d.]+\" y=\"\d+\">([^<]+)</text></g>", dom.stdout)
    assert "main" in labels and "lex" in labels and "all" in labels
    png = tmp_path / "fg.png"
    height = int(re.search(r'height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    shot = run_chromium(f"--screenshot={png}", f"--window-size=800,{height}",
                        "--hide-scrollbars", svg_path.as_uri())
    assert png.exists(), shot.stderr[-2000:]
    width, bpp, rows = read_png(png)
    assert width == 800
    for name, start, n, depth, x, w in frames_of(svg):
        y = int(re.search(rf'data-name="{name}"[^>]*><title>[^<]*</title><rect x="[\d.]+" '
                          r'y="(\d+)"', svg).group(1)) + 12  # type: ignore[union-attr]
        fill = re.search(rf'data-name="{name}"[^>]*>.*?fill="rgb\((\d+),(\d+),(\d+)\)"',
                         svg).groups()  # type: ignore[union-attr]
        # a pixel inside the frame, right of any label text, has the frame's color
        px = pixel(rows, bpp, int(x + w - 4), y)
        assert all(abs(a - int(b)) <= 3 for a, b in zip(px, fill)), (name, px, fill)
    # the background above the frames is not a frame color
    assert pixel(rows, bpp, 400, 50) == (0xF8, 0xF8, 0xF0)


def test_flame_graph_click_zooms_in_chromium(tmp_path: Path) -> None:
    """Clicking a frame zooms: it spans the whole width, its ancestors too, others hide."""
    svg = render_svg(fold(STACKS), width=800)
    page = tmp_path / "zoom.html"
    page.write_text(
        "<!DOCTYPE html><html><body>" + svg.split("?>", 1)[1] + """
<script>
window.addEventListener("load", function () {
  var g = document.querySelector('g.f[data-name="parse"]');
  g.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  var out = {};
  document.querySelectorAll("g.f").forEach(function (f) {
    out[f.getAttribute("data-name")] = [f.style.display,
      +f.querySelector("rect").getAttribute("x"), +f.querySelector("rect").getAttribute("width")];
  });
  var pre = document.createElement("pre"); pre.id = "result";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script></body></html>""")
    dom = run_chromium("--dump-dom", page.as_uri())
    m = re.search(r'<pre id="result">([^<]*)</pre>', dom.stdout)
    assert m, dom.stderr[-2000:]
    state = json.loads(m.group(1).replace("&quot;", '"'))
    assert state["parse"] == ["", 10, 780 - 0.5] and state["main"][1:] == [10, 780]
    assert state["lex"][0] == "" and abs(state["lex"][2] - (780 * 30 / 40 - 0.5)) < 0.01
    assert state["eval"][0] == "none" and state["idle"][0] == "none"


def test_syscall_names() -> None:
    table = syscalls.syscall_table()
    assert len(table) > 300
    nr = syscalls.syscall_number("getpgid")
    assert nr is not None and syscalls.syscall_name(nr) == "getpgid"
    assert syscalls.syscall_number("sys_openat") == syscalls.syscall_number("openat")
    assert syscalls.syscall_number("no_such_syscall") is None
    assert syscalls.syscall_name(99999) == "[unknown: 99999]"
    # the numbers are the kernel's: calling them through syscall(2) does what the name says
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(syscalls.syscall_number("getpid")) == os.getpid()
    assert libc.syscall(syscalls.syscall_number("getppid")) == os.getppid()
    assert libc.syscall(syscalls.syscall_number("getpgid"), 0) == os.getpgid(0)


def test_trace_pipe_line_parsing() -> None:
    ev = parse_line("           <...>-12345   [001] d..31  4242.123456: bpf_trace_printk: "
                    "hello: exec /usr/bin/true\n")
    assert ev is not None and (ev.comm, ev.pid, ev.cpu, ev.timestamp) == \
        ("<...>", 12345, 1, 4242.123456)
    assert ev.bpf and ev.message == "hello: exec /usr/bin/true"
    ev2 = parse_line(" kworker/u8:2-worker-77 (   77) [000] ....  1.5: sched_switch: x")
    assert ev2 is not None and ev2.comm == "kworker/u8:2-worker" and ev2.pid == 77
    assert not ev2.bpf
    assert parse_line("garbage") is None
