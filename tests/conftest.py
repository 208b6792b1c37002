"""Shared pytest configuration: the ``shared_data`` fixture.

Tests marked ``slow`` (TensorFlow training, systemd, live services, notebooks, emulation, fresh installs) run
with the rest: ``python -m pytest -ra`` runs everything, ``python -m pytest -m "not slow"`` is the quick run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder named by the environment variable FERLITE_DATA (e.g. ../shared/data).

    Tests that use it skip, saying why, when the variable is unset or the folder does not exist:
    the default test suite must pass on a fresh clone without the shared data."""
    value = os.environ.get("FERLITE_DATA", "").strip()
    if not value:
        pytest.skip("FERLITE_DATA is not set (set it to the shared data folder, e.g. FERLITE_DATA=../shared/data)")
    path = Path(value).expanduser()
    if not path.is_dir():
        pytest.skip(f"FERLITE_DATA={value}: no such folder")
    return path
