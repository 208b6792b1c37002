"""The console examples of the README and the docs pages, held to the real output of the commands they show.

A console block is the fenced ``console`` block that follows a marker comment ``<!-- console: NAME -->`` in
README.md or a page of docs/ (each NAME once in all of them). A test runs the block's commands, builds the
block from their real output (``$ command`` lines, each followed by what it printed) and compares it with the
documented one, timings masked: durations, rates and the model's latency vary from run to run; every other
figure must match. ``FERLITE_UPDATE_DOCS=1`` makes the
test rewrite the block from the run instead (then review the diff and commit it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def pages() -> list[Path]:
    """README.md and the docs pages: the files whose console blocks are checked."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def page_of(name: str) -> Path:
    """The one page that holds the console block NAME."""
    marker = f"<!-- console: {name} -->"
    found = [page for page in pages() if marker in page.read_text()]
    assert len(found) == 1, f"console block {name!r} is in {len(found)} pages, not one: {found}"
    return found[0]

#: Figures that change from run to run: durations and rates. Masked on both sides before comparing.
TIMINGS = re.compile(r"\d+(\.\d+)?\s?(ms|s|min|frames/s|img/s)\b")


def mask(text: str) -> str:
    return TIMINGS.sub("<t>", text)


def block_span(text: str, name: str) -> tuple[int, int]:
    """Start and end offsets of the body of the console block after ``<!-- console: NAME -->``."""
    marker = f"<!-- console: {name} -->"
    at = text.index(marker)
    start = text.index("```console\n", at) + len("```console\n")
    end = text.index("```", start)
    return start, end


def render(runs: list[tuple[str, str]]) -> str:
    """``$ command`` and its output, for each (command, output)."""
    return "".join(f"$ {command}\n{output.rstrip()}\n" + ("\n" if i < len(runs) - 1 else "")
                   for i, (command, output) in enumerate(runs))


def run_commands(commands: list[str], home: Path) -> list[tuple[str, str]]:
    """Run ``ferlite ...`` command lines in-process in ``home`` (with the repository's edge/ linked beside them,
    as in a clone); returns (command, what it printed on stdout) for each. Each must exit 0."""
    import contextlib
    import io
    import shlex

    from ferlite.cli import main

    if not (home / "edge").exists():
        (home / "edge").symlink_to(ROOT / "edge")
    old = Path.cwd()
    os.chdir(home)
    runs = []
    try:
        for command in commands:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = main(shlex.split(command)[1:])
            assert rc == 0, (command, out.getvalue())
            runs.append((command, out.getvalue()))
    finally:
        os.chdir(old)
    return runs


def check(name: str, runs: list[tuple[str, str]]) -> None:
    """Assert that the documented block NAME is what ``runs`` printed (timings masked), or rewrite it when
    FERLITE_UPDATE_DOCS=1."""
    page = page_of(name)
    text = page.read_text()
    start, end = block_span(text, name)
    actual = render(runs)
    if os.environ.get("FERLITE_UPDATE_DOCS") == "1":
        page.write_text(text[:start] + actual + text[end:])
        return
    documented = text[start:end]
    assert mask(documented) == mask(actual), (
        f"{page.relative_to(ROOT)}'s console block {name!r} no longer matches what its commands print; rerun this "
        f"test with FERLITE_UPDATE_DOCS=1 to rewrite it, and review the diff.\n--- documented\n{documented}\n"
        f"--- actual\n{actual}")
