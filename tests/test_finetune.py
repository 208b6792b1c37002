"""Fine-tuning on your own data: the hold-out for one person, the label set kept from the init model, convert's
guard on the bundled models, and the quiet training command, interrupted between batches (real CLI, real data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ferlite.cli import main
from ferlite.edge.assets import bundled_keras_model
from ferlite.errors import UsageError
from ferlite.trainer.config import TrainConfig
from ferlite.trainer.finetune import KEEP_DISTILL, hold_out, init_classes, keep_label_set
from ferlite.trainer.interrupt import DeferredInterrupt

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "data" / "faces"
SEVEN = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def capture_rows(subjects: list[str], per_label: int = 10) -> pd.DataFrame:
    rows = [{"path": f"{s}_{label}_{i:04d}.jpg", "label": label, "split": "train", "subject": s}
            for s in subjects for label in ("happy", "neutral") for i in range(per_label)]
    return pd.DataFrame(rows)


def test_one_person_is_held_out_in_time(capsys):
    df, note = hold_out(capture_rows(["alice"]), "train", "val", seed=0)
    val = df[df["split"] == "val"]
    assert len(val) == 4 and sorted(set(val["label"])) == ["happy", "neutral"]
    assert set(val["path"]) == {f"alice_{label}_{i:04d}.jpg" for label in ("happy", "neutral") for i in (8, 9)}
    assert "one person (alice): the last 20% of each expression's images" in note
    assert note in capsys.readouterr().out


def test_several_people_are_held_out_by_person():
    df, note = hold_out(capture_rows(["alice", "bob", "carol", "dan", "eve"]), "train", "val", seed=0)
    val, train = df[df["split"] == "val"], df[df["split"] == "train"]
    assert len(val) > 0 and not set(val["subject"]) & set(train["subject"])
    assert "grouped by person" in note


def test_too_few_images_to_hold_out_is_a_usage_error():
    with pytest.raises(UsageError, match="too few to hold any out"):
        hold_out(capture_rows(["alice"], per_label=1), "train", "val", seed=0)


def test_init_keeps_the_bundled_label_set(capsys):
    path = bundled_keras_model()
    assert init_classes(path) == SEVEN
    cfg, note = keep_label_set(TrainConfig(data="x", init="bundled"), {"happy", "neutral"}, path)
    assert cfg.classes == SEVEN and cfg.teachers == (str(path),) and cfg.distill == KEEP_DISTILL
    assert "no training images of angry, disgust, fear, sad, surprise" in note
    cfg, note = keep_label_set(TrainConfig(data="x", init="bundled"), set(SEVEN), path)
    assert cfg.classes == SEVEN and cfg.teachers == () and note == ""
    with pytest.raises(UsageError, match="also has contempt"):
        keep_label_set(TrainConfig(data="x", init="bundled"), {"happy", "contempt"}, path)


def test_init_copies_the_output_layer_class_by_class(capsys):
    """--classes may reorder, drop or add classes: each known class keeps its column of the bundled model's
    output layer, a new one (contempt) starts at zero weights and the lowest bias."""
    import numpy as np

    from ferlite.trainer.finetune import load_init_weights
    from ferlite.trainer.model import build_model, import_keras

    keras = import_keras()
    kernel, bias = keras.models.load_model(bundled_keras_model()).get_layer("logits").get_weights()
    model = build_model(3, arch="cnn48-w")
    load_init_weights(keras, model, "bundled", ("neutral", "happy", "contempt"))
    k, b = model.get_layer("logits").get_weights()
    assert np.array_equal(k[:, 0], kernel[:, 6]) and np.array_equal(k[:, 1], kernel[:, 3])
    assert b[0] == bias[6] and b[1] == bias[3]
    assert not k[:, 2].any() and b[2] == bias.min()
    assert "copied the weights of 15 of 15 layers; new class(es) contempt start untrained" in capsys.readouterr().out


def test_init_grows_a_class_named_in_classes(tmp_path, capsys):
    """A data set with a class the init model lacks: refused with the --classes to give, then trained with
    it as an eighth class."""
    import shutil

    data = tmp_path / "ferplus"
    shutil.copytree(FACES, data)
    manifest = pd.read_csv(data / "manifest.csv")
    manifest.loc[manifest.index[manifest["label"] == "angry"][:6], "label"] = "contempt"
    manifest.to_csv(data / "manifest.csv", index=False)
    project = tmp_path / "runs"
    assert main(["train", str(data), "--init", "bundled", "--epochs", "1", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert ("--classes angry,disgust,fear,happy,sad,surprise,neutral to leave it out or --classes "
            "angry,disgust,fear,happy,sad,surprise,neutral,contempt to add (a new class starts untrained)") in err
    assert not project.exists() or not any(project.iterdir())  # no empty run folder left behind
    assert main(["train", str(data), "--init", "bundled", "--epochs", "1", "--project", str(project),
                 "--classes", "angry,disgust,fear,happy,sad,surprise,neutral,contempt"]) == 0
    assert "new class(es) contempt start untrained" in capsys.readouterr().out
    assert TrainConfig.from_json(project / "exp" / "config.json").classes == (*SEVEN, "contempt")


def test_classes_without_training_images_are_said(tmp_path, capsys):
    """--classes naming a class the training split has no images of: trained anyway (its output stays), and
    said, once when the data is read and again in the summary."""
    project = tmp_path / "runs"
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "1", "--batch", "32", "--project", str(project),
                 "--classes", "happy,neutral,contempt"]) == 0
    out = capsys.readouterr().out
    note = "--classes contempt: no 'train' images, so the model cannot learn it"
    assert out.count(note) == 2 and "forgets" not in out
    assert TrainConfig.from_json(project / "exp" / "config.json").classes == ("happy", "neutral", "contempt")


def test_convert_refuses_the_bundled_model_folder(tmp_path, capsys):
    models = Path(str(bundled_keras_model().parent))
    before = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    assert main(["convert", str(bundled_keras_model()), "--data", str(FACES), "--out", str(models)]) == 2
    err = capsys.readouterr().err
    assert "inside the installed package" in err and "--replace-bundled" in err
    assert main(["convert", str(bundled_keras_model()), "--data", str(FACES), "--out", str(models / "mine")]) == 2
    assert not (models / "mine").exists()
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == before


def test_convert_calibrates_on_a_small_capture(tmp_path, capsys):
    assert main(["convert", str(bundled_keras_model()), "--data", str(FACES), "--out", str(tmp_path),
                 "--precision", "int8", "--max-drop", "100"]) == 0
    assert "int8 calibration on 108 faces of 'train' (the default is 300)" in capsys.readouterr().out
    assert main(["convert", str(bundled_keras_model()), "--data", str(FACES), "--out", str(tmp_path),
                 "--samples", "10"]) == 2
    assert "--samples 10: use 20 to 500" in capsys.readouterr().err


def run_ferlite(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlite", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, **kwargs)


def test_tensorflow_logging_is_silent_unless_verbose(tmp_path):
    command = ["evaluate", "--model", str(bundled_keras_model()), "--data", str(FACES), "--split", "val"]
    quiet = run_ferlite(*command)
    assert quiet.returncode == 0, quiet.stderr
    native = [line for line in quiet.stderr.splitlines()
              if "oneDNN" in line or "absl" in line or line[:5] in ("I0000", "W0000", "E0000")]
    assert native == [], quiet.stderr  # no oneDNN notice, no absl logging
    loud = run_ferlite("-v", *command)
    assert loud.returncode == 0 and "oneDNN" in loud.stderr


def test_ctrl_c_in_train_says_how_to_resume(tmp_path):
    project = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "ferlite", "train", str(FACES), "--arch", "tiny", "--epochs", "500",
                             "--project", str(project)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # see below
    try:
        for line in proc.stdout:
            if line.startswith("epoch   2/"):  # last.keras holds a finished epoch
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    # A job started in the background by a shell inherits SIGINT ignored, and so would the command without
    # preexec_fn: it then trained on and exited 0.
    assert proc.returncode == 130, f"exit {proc.returncode}\n{out[-1500:]}\n{err[-1500:]}"
    assert f"resume with  ferlite train --resume {project / 'exp'}" in err
    state = json.loads((project / "exp" / "state.json").read_text())
    rows = (project / "exp" / "metrics.csv").read_text().splitlines()[1:]
    assert state["epoch"] >= 2 and len(rows) == state["epoch"]  # the epoch cut short is neither saved nor logged


def test_ctrl_c_is_held_until_training_asks():
    """The first Ctrl-C waits for the end of a batch (DeferredInterrupt.check); a second one interrupts at once;
    a SIGINT the shell set to be ignored stays ignored; the handler before is put back."""
    before = signal.getsignal(signal.SIGINT)
    with DeferredInterrupt() as interrupt:
        signal.raise_signal(signal.SIGINT)
        assert interrupt.requested  # held, not raised
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        interrupt.check()  # raised once
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with DeferredInterrupt() as interrupt:
            signal.raise_signal(signal.SIGINT)
            interrupt.check()
        assert not interrupt.requested and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_evaluate_takes_a_manifest_csv_of_any_name(tmp_path, capsys):
    import shutil

    data = tmp_path / "faces"
    shutil.copytree(FACES, data)
    (data / "manifest.csv").rename(data / "kiosk.csv")
    assert main(["evaluate", "--data", str(data / "kiosk.csv"), "--split", "val"]) == 0
    assert "faces:val (36 faces)" in capsys.readouterr().out


def test_converts_default_folder_is_ignored_by_git():
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "models/ferlite_cnn48_w_int8.tflite"], cwd=ROOT)
    assert ignored.returncode == 0, "convert's default --out ./models must be ignored by git"
    tracked = subprocess.run(["git", "check-ignore", "-q", "edge/models/ferlite_cnn48_w_ferplus_int8.tflite"], cwd=ROOT)
    assert tracked.returncode == 1  # the bundled models stay tracked


def test_classes_leaves_out_the_rows_of_other_labels(tmp_path, capsys):
    """A FER+ import has contempt, which the bundled models lack: --classes trains the seven others, leaving the
    contempt rows out; an unknown name or a single class is a one-line usage error before any run folder."""
    data = tmp_path / "ferplus"
    import shutil

    shutil.copytree(FACES, data)
    manifest = pd.read_csv(data / "manifest.csv")
    contempt = manifest.index[(manifest["label"] == "angry") & (manifest["split"] == "train")][:5]
    manifest.loc[contempt, "label"] = "contempt"
    manifest.to_csv(data / "manifest.csv", index=False)
    project = tmp_path / "runs"
    assert main(["train", str(data), "--arch", "tiny", "--epochs", "1", "--batch", "32", "--project", str(project),
                 "--classes", "neutral,happy,angry,disgust,fear,sad,surprise"]) == 0
    cfg = TrainConfig.from_json(project / "exp" / "config.json")
    assert cfg.classes == SEVEN  # in the vocabulary's order, whatever order they were named in
    train_rows = int((manifest["split"] == "train").sum())
    assert f"train {train_rows - len(contempt)} (train)" in capsys.readouterr().out
    for value in ("happy,angery", "happy"):
        assert main(["train", str(data), "--classes", value, "--project", str(tmp_path / "refused")]) == 2
        err = capsys.readouterr().err
        assert f"--classes {value}: name two or more of angry, disgust" in err and "Traceback" not in err
    assert not (tmp_path / "refused").exists()
