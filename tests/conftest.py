"""Shared pytest configuration: the ``shared_data`` fixture and the ``slow`` marker.

Tests marked ``slow`` (TensorFlow training, systemd, live services, notebooks, emulation, fresh installs) run
with the rest: ``python -m pytest -ra`` runs everything, ``python -m pytest -m "not slow"`` is the quick run.
Besides the tests that carry the marker themselves, it is given here in one place: to every test of the
modules in SLOW_MODULES, and to every test that uses a fixture in SLOW_FIXTURES (which trains a model, starts
the service or builds a venv), so a new test on such a fixture is slow without saying so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Test modules that are slow throughout: training with TensorFlow, the service under systemd or with live
#: outputs, hostile clients, notebooks, the bad-file corpus through every command.
SLOW_MODULES = {"test_roundtrip", "test_swa", "test_journey", "test_finetune", "test_live", "test_hostile",
                "test_secrets", "test_events", "test_systemd_unit", "test_notebooks", "test_bad_files",
                "test_report_extra"}
#: Fixtures that make a test slow wherever it is: a trained model, a service run, a fresh venv.
SLOW_FIXTURES = {"trained", "converted", "service_log", "journey", "device_venv", "hostile", "http_service"}
#: Single slow tests in otherwise quick modules (module name, test name without parameters).
SLOW_TESTS = {
    ("test_structure", "test_the_wheel_installs_one_top_level_name"),
    ("test_service", "test_by_default_the_service_waits_for_a_camera_however_long_it_is_away"),
    ("test_service", "test_ready_after_first_frame_pings_only_while_frames_flow_reload_and_stop"),
    ("test_service", "test_outside_systemd_a_status_line_goes_to_the_terminal"),
    ("test_logreport", "test_the_live_log_is_read_while_the_service_writes_it"),
    ("test_http_api", "test_report_renders_once_a_minute_in_a_process_of_its_own"),
}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        name = item.name.partition("[")[0]
        if (module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or (module, name) in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


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
