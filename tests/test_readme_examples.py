"""The console examples of the README and docs/ that need no shared data, run as written in a fresh folder; their
output must be the documented one (timings masked; tests/readme_blocks.py, FERLITE_UPDATE_DOCS=1 rewrites them).
The own-data journey's block is checked by tests/test_journey.py; the FER2013 import (docs/collect.md), which
reads the shared data set at the docs' ../shared path, only when FERLITE_DATA names it (FER2013 and FER+, about
30-80 s each)."""

from __future__ import annotations

from pathlib import Path

import pytest
import readme_blocks

EXAMPLES = {
    "quick-start": ["ferlite recognize"],
    "capture": ["ferlite capture --source edge/data/kiosk.mp4 --subject alice --expressions happy,surprise,neutral "
                "--out data/alice"],
    "recognize-clip": ["ferlite recognize edge/data/sample.mp4 --out runs/demo"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_readme_example_output_is_real(name, tmp_path, monkeypatch):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(variable, raising=False)
    readme_blocks.check(name, readme_blocks.run_commands(EXAMPLES[name], tmp_path))


SHARED_EXAMPLES = {
    "import-fer2013": "ferlite import ../shared/data/fer2013/fer2013.csv.gz --out data/fer2013",
    "import-ferplus": "ferlite import ../shared/data/fer2013/fer2013.csv.gz --ferplus "
                      "../shared/data/fer2013/fer2013new.csv --out data/ferplus",
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(SHARED_EXAMPLES))
def test_readme_import_output_is_real(name, shared_data: Path, tmp_path):
    for needed in ("fer2013.csv.gz", "fer2013new.csv"):
        if not (shared_data / "fer2013" / needed).is_file():
            pytest.skip(f"no fer2013/{needed} under FERLITE_DATA={shared_data}")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data.resolve())  # the docs' ../shared/data
    (tmp_path / "clone").mkdir()
    readme_blocks.check(name, readme_blocks.run_commands([SHARED_EXAMPLES[name]], tmp_path / "clone"))
