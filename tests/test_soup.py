"""bench/soup.py: the weight mean of fine-tunes from one start, scored and saved as a run folder that
ferlite convert takes (real training on the face fixture)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the train extra (TensorFlow)")

from ferlite.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACES = Path(__file__).parent / "data" / "faces"


@pytest.fixture(scope="module")
def two_fine_tunes(tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    common = [str(FACES), "--arch", "tiny", "--batch", "32", "--project", str(project), "--no-recalibrate"]
    assert main(["train", *common, "--epochs", "1", "--seed", "0", "--name", "start"]) == 0
    for seed in (1, 2):
        assert main(["train", *common, "--epochs", "1", "--seed", str(seed), "--lr", "3e-3",
                     "--init", str(project / "start" / "best.keras"), "--name", f"ft{seed}"]) == 0
    return project


def soup(*args):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "soup.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_the_uniform_soup_is_the_mean_of_the_weights(two_fine_tunes, tmp_path):
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    runs = [two_fine_tunes / "ft1", two_fine_tunes / "ft2"]
    out = tmp_path / "soup"
    r = soup(*runs, "--data", FACES, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| uniform soup of all | 2 |" in r.stdout
    assert (out / "soup.md").read_text().splitlines()[-1].startswith(f"saved: {out / 'best.keras'} (2 ingredients")
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "tiny" and config["soup"] == [str(p / "best.keras") for p in runs]
    souped = keras.models.load_model(out / "best.keras")
    parts = [keras.models.load_model(p / "best.keras") for p in runs]
    for layer in souped.layers:  # batch norm's statistics are re-estimated; every trained weight is the mean
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            for k, w in enumerate(layer.get_weights()):
                mean = np.mean([m.get_layer(layer.name).get_weights()[k] for m in parts], axis=0)
                np.testing.assert_allclose(w, mean, rtol=1e-5, atol=1e-6)


def test_the_greedy_soup_scores_each_ingredient_and_keeps_only_what_helps(two_fine_tunes, tmp_path):
    runs = [two_fine_tunes / "ft1", two_fine_tunes / "ft2", two_fine_tunes / "start"]
    r = soup(*runs, "--data", FACES, "--greedy", "--out", tmp_path / "g")
    assert r.returncode == 0, r.stderr[-2000:]
    steps = [line for line in r.stdout.splitlines() if line.startswith("greedy: + ")]
    assert len(steps) == 2 and all(s.endswith(("(kept)", "(left out)")) for s in steps)
    kept = 1 + sum(s.endswith("(kept)") for s in steps)
    assert f"({kept} ingredients:" in (tmp_path / "g" / "soup.md").read_text()


def test_a_missing_ingredient_is_one_line(tmp_path):
    r = soup(tmp_path / "nothing.keras", "--data", FACES)
    assert r.returncode == 1
    assert r.stderr.strip() == f"soup: {tmp_path / 'nothing.keras'}: no such model file"
