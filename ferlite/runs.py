"""Numbered output folders (runs/train/exp, exp2, ...) shared by the commands that write runs."""

from __future__ import annotations

from pathlib import Path

from ferlite.errors import UsageError


def next_run_dir(project: Path, name: str = "exp") -> Path:
    """Create and return the first free folder among project/name, name2, name3, ..."""
    project.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10_000):
        d = project / (name if i == 1 else f"{name}{i}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise UsageError(f"{project}: too many runs named {name}")
