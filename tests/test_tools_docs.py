"""The documentation stays true: guide snippets run (doctest), module examples
run, links resolve, and the generated API reference matches the docstrings."""
from __future__ import annotations

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE = sorted((DOCS / "guide").glob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("page", GUIDE, ids=[p.stem for p in GUIDE])
def test_guide_snippets_run(page: Path) -> None:
    result = doctest.testfile(str(page), module_relative=False, optionflags=FLAGS,
                              verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"


@pytest.mark.parametrize("module", ["histogram", "flamegraph", "syscalls", "symbolize",
                                    "trace_pipe", "compiler"])
def test_module_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"pylibbpf.{module}")
    result = doctest.testmod(mod, optionflags=FLAGS, verbose=False)
    assert result.failed == 0


def test_guide_has_doctested_examples() -> None:
    for page in ("objects", "attaching", "tools", "cli", "testing"):
        text = (DOCS / "guide" / f"{page}.md").read_text()
        assert text.count(">>> ") >= 3, page


def test_links_resolve() -> None:
    pages = [*sorted(DOCS.glob("*.md")), *GUIDE, *sorted((DOCS / "api").glob("*.md")),
             ROOT / "examples" / "README.md"]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).resolve().exists(), f"{page}: broken link {target}"


def test_api_reference_is_up_to_date(tmp_path: Path) -> None:
    """Regenerate into a temporary directory: the tool modules' pages must match
    exactly; every other page must exist and still name each public name (so a
    docstring edit elsewhere only needs a regeneration, not a failing suite)."""
    subprocess.run([sys.executable, str(DOCS / "gen_api.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, text=True)
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.md")}
    committed = {p.name: p.read_text() for p in (DOCS / "api").glob("*.md")}
    assert set(fresh) == set(committed), "run docs/gen_api.py"
    exact = ["symbolize.md", "histogram.md", "flamegraph.md", "trace_pipe.md",
             "syscalls.md", "compiler.md", "system.md"]
    for name in exact:
        assert committed[name] == fresh[name], f"docs/api/{name} is stale: run docs/gen_api.py"
    for name, text in committed.items():
        mod = importlib.import_module(f"pylibbpf.{name[:-3]}") if name != "index.md" else None
        for public in getattr(mod, "__all__", []):
            if not isinstance(getattr(mod, public, None), type(sys)):
                assert f"`{public}" in text, f"docs/api/{name} lacks {public}: run docs/gen_api.py"
    assert "[`pylibbpf.symbolize`](symbolize.md)" in committed["index.md"]
    assert "#### `from_source(source: Optional[PathLike] = None, *, text: Optional[str] = " \
        "None, cflags: Sequence[str] = ()" in \
        committed["object.md"]
