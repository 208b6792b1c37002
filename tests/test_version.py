"""One version: `ferlite --version`, the installed package, /api/status, the model sidecars and the CHANGELOG
all say ferlite.__version__."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from importlib.metadata import version
from pathlib import Path

from live import free_port

from ferlite import __version__
from ferlite.edge.classification.modelinfo import ModelInfo
from ferlite.edge.config import Config
from ferlite.edge.outputs.base import OutputContext
from ferlite.edge.outputs.http import HttpSink

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_and_the_package_report_the_version():
    r = subprocess.run([sys.executable, "-m", "ferlite", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"ferlite {__version__}"
    assert version("ferlite") == __version__, "pip install -e . again after changing ferlite.__version__"
    assert re.search(r'^dynamic = \["version"\]$', (ROOT / "pyproject.toml").read_text(), re.M)


def test_api_status_reports_the_version(tmp_path):
    port = free_port()
    config = Config().replace(http={"listen": f"127.0.0.1:{port}"})
    sink = HttpSink.from_config(config.http, OutputContext(tmp_path))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10) as r:
            assert json.loads(r.read())["version"] == __version__
    finally:
        sink.close()


def test_bundled_sidecars_carry_the_version_and_written_ones_are_stamped(tmp_path):
    sidecars = sorted((ROOT / "edge" / "models").glob("ferlite_*.json"))
    assert sidecars and {json.loads(p.read_text()).get("ferlite") for p in sidecars} == {__version__}
    assert {ModelInfo.for_model(p).ferlite for p in sidecars} == {__version__}
    ModelInfo(labels=("a", "b")).write(tmp_path / "m.tflite")
    assert json.loads((tmp_path / "m.json").read_text())["ferlite"] == __version__


def test_the_changelog_and_the_install_docs_name_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{__version__}] - " in changelog
    wheels = {m for path in [*(ROOT / "docs").glob("*.md"), ROOT / "systemd" / "README.md"]
              for m in re.findall(r"ferlite-(\d[\w.]*)-py3-none-any\.whl", path.read_text())}
    assert wheels == {__version__}

