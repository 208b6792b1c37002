"""Shared pytest configuration: the ``--runslow`` option and the ``shared_data`` fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


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
