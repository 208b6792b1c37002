"""README, CI and --help tell the same story."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
