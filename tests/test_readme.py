"""The README's quickstart runs as written and prints what it says."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_block_runs() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```python\n(.*?)```", text, re.S)
    assert block, "no python block under ## Quickstart"
    res = subprocess.run([sys.executable, "-c", block.group(1)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    events_line, totals_line, retval_line = res.stdout.strip().splitlines()
    events = ast.literal_eval(events_line)
    assert [comm for _, comm in events if comm in ("true", "uname")][:3] == \
        ["true", "uname", "true"]
    total, counts = totals_line.split(" ", 1)
    counts_d = ast.literal_eval(counts)
    assert counts_d["true"] >= 2 and counts_d["uname"] >= 1
    assert int(total) == sum(counts_d.values())
    assert retval_line == "1"


# --- every command the docs show runs as written on a machine set up by ./dev.sh setup -----

DOC_PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md",
             *sorted((ROOT / "docs" / "guide").glob("*.md"))]


def shell_commands(text: str) -> List[str]:
    """Commands in ```sh blocks (every line) and ```console blocks (lines after '$ ')."""
    commands = []
    for lang, body in re.findall(r"^```(sh|console)\n(.*?)^```", text, re.S | re.M):
        for line in body.splitlines():
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def dev_sh_commands() -> List[str]:
    text = (ROOT / "dev.sh").read_text()
    case = text[text.index('case "$cmd" in'):]
    return re.findall(r"^    ([a-z][a-z-]*)\)$", case, re.M)


def test_docs_show_commands() -> None:
    found = {str(page.relative_to(ROOT)): shell_commands(page.read_text()) for page in DOC_PAGES}
    assert "./dev.sh python examples/execsnoop.py" in found["README.md"]
    assert ". .venv/bin/activate" in found["README.md"]
    assert "./dev.sh python examples/execsnoop.py" in found["examples/README.md"]
    assert "pylibbpf features" in found["docs/guide/cli.md"]
    assert {"demo", "test", "setup", "python", "run", "wheel", "wheel-check"} <= \
        set(dev_sh_commands())
    assert "./dev.sh wheel" in found["README.md"]


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_commands_use_the_environments_python(page: Path) -> None:
    """pylibbpf lives in .venv: a command may use it through ./dev.sh, by path, or, on a
    page that says to activate the environment, as plain python/pylibbpf. The system's
    python3 (sudo's too) has none of pylibbpf's dependencies."""
    text = page.read_text()
    activated = ". .venv/bin/activate" in text
    subcommands = dev_sh_commands()
    for cmd in shell_commands(text):
        words = cmd.split()
        if words[0] == "sudo":
            words = words[1:]
        while words and re.match(r"^[A-Z_]+=", words[0]):   # VAR=value prefixes
            words = words[1:]
        first = words[0]
        assert first not in ("python3", "pip", "pip3") or words[:3] == ["python3", "-m", "venv"], \
            f"{page.name}: {cmd!r} runs the system's Python; use ./dev.sh python or .venv/bin/python"
        if first == "./dev.sh":
            assert len(words) > 1 and words[1] in subcommands, f"{page.name}: {cmd!r}"
        elif first in ("python", "pylibbpf"):
            assert activated, f"{page.name}: {cmd!r} needs '. .venv/bin/activate' on the page"


def test_dev_sh_usage_names_every_command() -> None:
    res = subprocess.run(["bash", str(ROOT / "dev.sh"), "no-such-command"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    for cmd in ("demo", "test", "setup", "python", "run", "wheel", "wheel-check"):
        assert cmd in res.stderr
