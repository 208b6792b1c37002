"""The README's console examples that need no shared data, run as written in a fresh folder; their output must
be the README's (timings masked; tests/readme_blocks.py, FERLITE_UPDATE_DOCS=1 rewrites them). The own-data
journey's block is checked by tests/test_journey.py."""

from __future__ import annotations

import pytest
import readme_blocks

EXAMPLES = {
    "quick-start": ["ferlite recognize"],
    "capture": ["ferlite capture --source edge/data/kiosk.mp4 --subject alice --expressions happy,surprise,neutral "
                "--out data/kiosk"],
    "recognize-clip": ["ferlite recognize edge/data/sample.mp4 --out runs/demo"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_readme_example_output_is_real(name, tmp_path, monkeypatch):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(variable, raising=False)
    readme_blocks.check(name, readme_blocks.run_commands(EXAMPLES[name], tmp_path))
