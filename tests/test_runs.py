"""The committed training runs are the ones the bundled models need: every model file a committed run started
from or distilled from is committed too, so each run can be reproduced or resumed from a fresh clone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The bundled models' runs: the default (FER+ labels) and the fer2013 model's second stage (docs/experiments.md).
SHIPPED = ("runs/train/fp-swa3", "runs/train/swa-g4")


def committed() -> set[str]:
    out = subprocess.run(["git", "ls-files", "runs"], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_every_run_a_shipped_run_builds_on_is_committed():
    files, needed, todo = committed(), set(), list(SHIPPED)
    if not files:  # an unpacked source tree without git
        return
    while todo:
        run = todo.pop()
        needed.add(run)
        if f"{run}/config.json" not in files:  # a bare model file (the first teacher predates run folders)
            continue
        config = json.loads((ROOT / run / "config.json").read_text())
        for path in filter(None, [config["init"], *config["teachers"]]):
            assert path in files, f"{run} starts from or distils from {path}, which is not committed"
            if str(Path(path).parent) not in needed:
                todo.append(str(Path(path).parent))
    runs = {"/".join(Path(f).parts[:3]) for f in files}
    assert runs == needed, f"committed runs that no bundled model needs: {sorted(runs - needed)}"
