"""Stochastic weight averaging (``ferlite train --swa N``): the learning-rate schedule it sets, the running
mean it keeps across an interrupted run, and the run folder it leaves (real training on the face fixture)."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the train extra (TensorFlow)")

from ferlite.cli import main  # noqa: E402
from ferlite.trainer.config import TrainConfig  # noqa: E402
from ferlite.trainer.train import lr_at  # noqa: E402

FACES = Path(__file__).parent / "data" / "faces"


def test_swa_lr_ends_the_cosine_early_and_holds_it():
    plain = TrainConfig(data="d", epochs=10, lr=1e-3, warmup=2)
    swa = TrainConfig(data="d", epochs=10, lr=1e-3, warmup=2, swa=4, swa_lr=2e-4)
    assert [lr_at(swa, e) for e in range(2)] == [lr_at(plain, e) for e in range(2)]  # the same warm-up
    decay = [lr_at(swa, e) for e in range(2, 6)]
    assert decay[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(decay, decay[1:]))
    assert min(decay) > 2e-4
    assert [lr_at(swa, e) for e in range(6, 10)] == [2e-4] * 4
    # --swa without --swa-lr averages the tail of the ordinary cosine schedule
    tail = TrainConfig(data="d", epochs=10, lr=1e-3, warmup=2, swa=4)
    assert [lr_at(tail, e) for e in range(10)] == [lr_at(plain, e) for e in range(10)]


def test_the_running_mean_survives_a_restart(tmp_path):
    from ferlite.trainer.model import build_model, import_keras
    from ferlite.trainer.swa import WeightAverage

    keras = import_keras()
    model = build_model(7, 48, "tiny")
    rng = np.random.default_rng(0)
    drawn = []
    state: dict = {}

    def step(average):
        weights = [rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()]
        model.set_weights(weights)
        drawn.append(weights)
        return average.add(model)

    assert [step(WeightAverage(keras, tmp_path, state)) for _ in range(2)] == [1, 2]  # a fresh one each time:
    assert step(WeightAverage(keras, tmp_path, state)) == 3  # ...the mean so far is read back from swa.keras
    assert state["swa_count"] == 3
    np.testing.assert_array_equal(model.get_weights()[0], drawn[-1][0])  # the model keeps its own weights
    saved = keras.models.load_model(tmp_path / "swa.keras").get_weights()
    for k, w in enumerate(saved):
        np.testing.assert_allclose(w, np.mean([d[k] for d in drawn], axis=0), rtol=1e-5, atol=1e-6)


def test_a_run_with_swa_averages_its_last_epochs_and_reports_them(tmp_path, capsys):
    project = tmp_path / "runs"
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "4", "--batch", "32", "--swa", "2",
                 "--swa-lr", "5e-4", "--patience", "1", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    run = project / "exp"
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 4  # --patience 1 does not stop a run that is averaging
    assert state["swa_count"] == 2 and state["swa"]["epochs"] == [3, 4]
    assert f"weight average of epochs 3-4 (2), batch norm recalibrated: {state['swa']['accuracy']:.4f}" in out
    assert (run / "swa.keras").exists()
    lrs = [float(line.split(",")[1]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert lrs[2:] == [5e-4, 5e-4]
    if state["swa"]["kept"]:
        assert state["best"] == state["swa"]["accuracy"] and "from the weight average of epochs 3-4" in out
    else:
        assert state["best"] >= state["swa"]["accuracy"]


def test_a_finished_run_averages_on_when_its_epochs_are_raised(tmp_path, capsys):
    project = tmp_path / "runs"
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "2", "--batch", "32", "--swa", "2",
                 "--swa-lr", "5e-4", "--project", str(project)]) == 0
    run = project / "exp"
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 4, "swa": 4}))
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 4 and state["swa_count"] == 4 and state["swa"]["epochs"] == [1, 4]
    assert "weight average of epochs 1-4 (4)" in out
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 4


def test_a_save_cut_short_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    """A run killed while saving (a deadline's SIGKILL) must not leave half a .keras file where the last good
    one was: swa.keras, last.keras and best.keras are written beside and renamed over."""
    from ferlite.trainer.model import build_model, import_keras, save_atomic

    keras = import_keras()
    model = build_model(7, 48, "tiny")
    path = tmp_path / "swa.keras"
    save_atomic(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["swa.keras"]
    whole = path.read_bytes()

    class Killed(Exception):
        pass

    def cut_short(p, *args, **kwargs):
        Path(p).write_bytes(whole[:1000])  # what a kill during the zip write leaves
        raise Killed

    monkeypatch.setattr(model, "save", cut_short)
    with pytest.raises(Killed):
        save_atomic(model, path)
    assert path.read_bytes() == whole
    keras.models.load_model(path)


def test_recalibration_names_an_earlier_average_as_such(tmp_path, capsys):
    """A run that averages on after a resume may hold a weight average in best.keras: the end-of-run
    recalibration calls it that, not by the epoch state.json last named, and an epoch that replaces it drops
    the name."""
    from ferlite.trainer import dataset
    from ferlite.trainer.data import load_split
    from ferlite.trainer.model import build_model, import_keras, save_weights_only
    from ferlite.trainer.recalibrate import recalibrate_run

    keras = import_keras()
    df = dataset.load(str(FACES))
    classes = sorted(set(df["label"].dropna()))
    train, val = (load_split(df, s, classes, 48, progress=False) for s in ("train", "val"))
    for name, seed in (("best.keras", 0), ("last.keras", 1)):
        keras.utils.set_random_seed(seed)
        save_weights_only(keras, build_model(len(classes), 48, "tiny"), tmp_path / name)
    average = "the weight average of epochs 1-2"
    state = {"epoch": 4, "best_epoch": 2, "best": 0.0, "best_from": average}
    done = recalibrate_run(keras, tmp_path, state, train.x, val.x, val.y)
    out = capsys.readouterr().out
    assert f"{average} {done['candidates'][average]:.4f}, epoch 4 " in out
    assert f"(best before 0.0000 at {average})" in out and "epoch 2" not in out
    if done["epoch"] == 4:  # the last epoch recalibrated scored higher than the average
        assert "best.keras is now epoch 4, recalibrated" in out and "best_from" not in state
    else:
        assert f"best.keras is now {average}, recalibrated" in out and state["best_from"] == average
