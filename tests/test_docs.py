"""README, the docs pages, CI and --help tell the same story."""

import re
import shlex
from pathlib import Path

import pytest
import readme_blocks

ROOT = Path(__file__).resolve().parents[1]
PAGES = readme_blocks.pages()


def _command_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip().startswith("python3 -m venv")}


def test_ci_runs_the_readme_test_command():
    readme = _command_lines((ROOT / "README.md").read_text())
    ci = _command_lines((ROOT / ".ci" / "run").read_text())
    assert ci, ".ci/run has no install-and-test command"
    assert ci <= readme, f"README lacks the command .ci/run runs: {ci - readme}"


def test_readme_mentions_every_command():
    from ferlite.cli import COMMANDS

    readme = (ROOT / "README.md").read_text()
    for name in COMMANDS:
        assert f"ferlite {name}" in readme, name


def test_readme_is_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README does not link docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links {target}, which does not exist"


def test_every_console_block_is_checked():
    """Each ``<!-- console: NAME -->`` block is run by a test (tests/readme_blocks.py), so none goes stale."""
    import test_journey
    import test_readme_examples

    checked = {*test_readme_examples.EXAMPLES, *test_readme_examples.SHARED_EXAMPLES, test_journey.BLOCK}
    documented = [name for page in PAGES for name in re.findall(r"<!-- console: ([\w-]+) -->", page.read_text())]
    assert len(documented) == len(set(documented)), "a console block name is used twice"
    assert set(documented) == checked


def _ferlite_commands(text: str):
    """The ``ferlite ...`` commands of the fenced bash blocks and of the ``$`` lines of the console blocks,
    continuation lines joined."""
    for kind, block in re.findall(r"```(bash|console)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if kind == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token not in ("&&", "||", ";", "|", "&"):
                    words.append(token)
                    continue
                while words and re.match(r"^[A-Z_]+=", words[0]):
                    words = words[1:]  # KERAS_BACKEND=jax ferlite ...
                if words and words[0] == "ferlite":
                    yield words[1:]
                words = []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_parses(page):
    """Every ``ferlite`` command in a code block is one that the command line accepts (options and all)."""
    from ferlite.cli import build_parser

    parser = build_parser()
    for argv in _ferlite_commands(page.read_text()):
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{page.relative_to(ROOT)}: `ferlite {shlex.join(argv)}` does not parse")


def test_each_capture_folder_holds_one_person():
    """Following README and the docs top to bottom never captures two people into one folder (step 1's alice
    and the fine-tuning journey's alvaro), nor does `ferlite --help`."""
    from ferlite.cli import EPILOG, build_parser

    parser = build_parser()
    commands = [argv for page in PAGES for argv in _ferlite_commands(page.read_text())]
    commands += [shlex.split(line)[1:] for line in re.findall(r"ferlite capture [^\n]*", EPILOG)]
    subjects: dict[str, set[str]] = {}
    for argv in commands:
        if argv and argv[0] == "capture":
            args = parser.parse_args(argv)
            subjects.setdefault(str(args.out), set()).add(args.subject)
    assert subjects and all(len(people) == 1 for people in subjects.values()), subjects


def test_what_the_examples_write_is_ignored_by_git():
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("expressions.db", "expressions.db-wal", "expressions.db-shm", "data/alice/manifest.csv"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, path
