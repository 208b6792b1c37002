"""Round trip on the committed face fixture: train a tiny model, convert it, run it in the device
interpreter, and check it agrees with Keras. Also resume, and the conversion parity check."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the round trip needs the train extra (TensorFlow)")

from ferlite.cli import main  # noqa: E402
from ferlite.edge.classification.classifier import ExpressionClassifier, softmax  # noqa: E402
from ferlite.edge.classification.modelinfo import ModelInfo  # noqa: E402

FACES = Path(__file__).parent / "data" / "faces"
#: int8 probabilities may differ from Keras by the output step (1/256) plus activation rounding.
INT8_PROB_TOL = 0.06
FLOAT16_PROB_TOL = 0.01


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "2", "--batch", "32",
                 "--project", str(project)]) == 0
    return project / "exp"


@pytest.fixture(scope="module")
def converted(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    assert main(["convert", str(trained), "--data", str(FACES), "--samples", "100", "--max-drop", "100",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def faces():
    from ferlite.trainer import dataset
    from ferlite.trainer.data import load_split

    df = dataset.load(FACES)
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    return load_split(df, "val", classes, 48, progress=False).x


def test_run_folder_holds_everything(trained):
    for name in ("best.keras", "last.keras", "config.json", "metrics.csv", "state.json", "curves.png",
                 "confusion.png", "confusion.csv", "results.json"):
        assert (trained / name).is_file(), name
    assert json.loads((trained / "state.json").read_text())["epoch"] == 2
    assert json.loads((trained / "config.json").read_text())["classes"][0] == "angry"


def _keras_probs(path: Path, x: np.ndarray) -> np.ndarray:
    from ferlite.trainer.model import import_keras

    return import_keras().models.load_model(path).predict(x.astype(np.float32), verbose=0)


@pytest.mark.parametrize(("precision", "tol"), [("int8", INT8_PROB_TOL), ("float16", FLOAT16_PROB_TOL)])
def test_device_interpreter_agrees_with_keras(trained, converted, faces, precision, tol):
    model = converted / f"ferlite_tiny_{precision}.tflite"
    clf = ExpressionClassifier(model)
    assert clf.backend == "ai_edge_litert"
    assert clf.labels == ModelInfo.for_model(model).labels and len(clf.labels) == 7
    lite = np.stack([clf.probabilities(f[:, :, 0]) for f in faces])
    ref = _keras_probs(trained / "best.keras", faces)
    assert np.abs(lite - ref).max() <= tol, np.abs(lite - ref).max()
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * tol  # where rounding cannot flip the winner
    assert (lite.argmax(1)[clear] == ref.argmax(1)[clear]).all()
    pred = clf.classify(faces[0][:, :, 0])
    assert pred.label == clf.labels[int(lite[0].argmax())] and abs(sum(pred.probs) - 1) < 0.05


def test_int8_model_is_full_integer(converted):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(converted / "ferlite_tiny_int8.tflite"))
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    # It ships its logits (softmax runs in float on the device): int8 softmax differs on arm64 and x86.
    assert ModelInfo.for_model(converted / "ferlite_tiny_int8.tflite").output == "logits"


def test_mirror_builds_flip_averaging_into_the_model(trained, faces, tmp_path):
    assert main(["convert", str(trained), "--data", str(FACES), "--samples", "100", "--max-drop", "100",
                 "--precision", "int8", "--mirror", "--out", str(tmp_path)]) == 0
    model = tmp_path / "ferlite_tiny_int8.tflite"
    assert ModelInfo.for_model(model).views == 2
    clf = ExpressionClassifier(model)
    lite = np.stack([clf.probabilities(f[:, :, 0]) for f in faces])
    # The graph classifies the face and its mirror image: a mirrored face gives the same two rows, swapped.
    mirrored = np.stack([clf.probabilities(f[:, ::-1, 0]) for f in faces])
    assert np.array_equal(lite, mirrored)
    ref = (_keras_probs(trained / "best.keras", faces) + _keras_probs(trained / "best.keras", faces[:, :, ::-1])) / 2
    assert np.abs(lite - ref).max() <= INT8_PROB_TOL, np.abs(lite - ref).max()


def _edge_shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """numpy's reading of a shifted view: moved dy rows and dx columns, the uncovered border repeating the edge."""
    p = np.pad(x, ((0, 0), (abs(dy),) * 2, (abs(dx),) * 2, (0, 0)), mode="edge")
    return p[:, abs(dy) - dy:abs(dy) - dy + x.shape[1], abs(dx) - dx:abs(dx) - dx + x.shape[2]]


def test_shift_builds_ten_views_into_the_model(trained, faces, tmp_path):
    assert main(["convert", str(trained), "--data", str(FACES), "--samples", "100", "--max-drop", "100",
                 "--precision", "float16", "int8", "--mirror", "--shift", "2", "--out", str(tmp_path)]) == 0
    int8, fp16 = (tmp_path / f"ferlite_tiny_{p}.tflite" for p in ("int8", "float16"))
    assert ModelInfo.for_model(int8).views == 10
    # The ten views: the face and its mirror, each as is and moved 2 px up, down, left and right.
    offsets = [(0, 0), (-2, 0), (2, 0), (0, -2), (0, 2)]
    views = [_edge_shift(f, dy, dx) for f in (faces, faces[:, :, ::-1]) for dy, dx in offsets]
    logp = np.mean([np.log(_keras_probs(trained / "best.keras", v)) for v in views], axis=0)
    ref = np.exp(logp) / np.exp(logp).sum(axis=1, keepdims=True)
    # The parity check's float reference evaluates the same graph in Keras, many faces a batch.
    from ferlite.converters.convert import deploy_graph, graph_scores
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    graph, output, n = deploy_graph(keras, keras.models.load_model(trained / "best.keras"), mirror=True, shift=2)
    assert (output, n) == ("logits", 10) and len(faces) > 32  # more faces than one of Keras's default batches
    assert np.allclose(softmax(graph_scores(graph, n, faces.astype(np.float32))), ref, atol=1e-5)
    lite = np.stack([ExpressionClassifier(fp16).probabilities(f[:, :, 0]) for f in faces])
    assert np.abs(lite - ref).max() <= FLOAT16_PROB_TOL, np.abs(lite - ref).max()
    clf = ExpressionClassifier(int8)
    lite = np.stack([clf.probabilities(f[:, :, 0]) for f in faces])
    assert np.abs(lite - ref).max() <= INT8_PROB_TOL, np.abs(lite - ref).max()
    # The view set is mirror-symmetric, so a mirrored face gives the same ten rows in another order.
    mirrored = np.stack([clf.probabilities(f[:, ::-1, 0]) for f in faces])
    assert np.allclose(lite, mirrored, atol=1e-6)


def test_shift_out_of_range_is_a_usage_error(trained, tmp_path, capsys):
    assert main(["convert", str(trained), "--data", str(FACES), "--shift", "20", "--out", str(tmp_path)]) == 2
    assert "--shift 20" in capsys.readouterr().err


def test_parity_failure_fails_the_conversion(trained, tmp_path, capsys):
    rc = main(["convert", str(trained), "--data", str(FACES), "--samples", "100", "--max-drop", "-1",
               "--precision", "int8", "--out", str(tmp_path)])
    assert rc == 1
    assert "int8 loses" in capsys.readouterr().err


def test_resume_continues_an_interrupted_run(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "epoch": 1}))  # as if killed after epoch 1
    with open(run / "metrics.csv") as f:
        rows = list(csv.reader(f))
    with open(run / "metrics.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows[:2])
    assert main(["train", "--resume", str(run)]) == 0
    with open(run / "metrics.csv") as f:
        epochs = [r["epoch"] for r in csv.DictReader(f)]
    assert epochs == ["1", "2"]
    assert json.loads((run / "state.json").read_text())["epoch"] == 2


def test_evaluate_writes_json_and_confusion(converted, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(converted / "ferlite_tiny_int8.tflite"), "--data", str(FACES),
                 "--split", "val", "--json", str(out / "r.json"), "--out", str(out)]) == 0
    r = json.loads((out / "r.json").read_text())
    assert r["n"] == 36 and 0 <= r["accuracy"] <= 1 and len(r["confusion"]) == 7
    assert (out / "confusion.png").is_file() and (out / "per_class.csv").is_file()


@pytest.mark.parametrize("init,name", [("bundled", "default"), ("fer2013", "fer2013")])
def test_finetune_starts_from_the_bundled_model(tmp_path, init, name):
    """--init bundled (the default, FER+ labels) or fer2013 copies the bundled weights and architecture, then
    trains gently (low learning rate)."""
    from ferlite.edge.assets import bundled_keras_model
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    data = tmp_path / "kiosk"
    import shutil

    shutil.copytree(FACES, data)
    manifest = data / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",val,", ",train,"))  # captures: train split only
    assert main(["train", str(data), "--init", init, "--epochs", "1", "--project", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "exp"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["lr"] == 3e-4 and cfg["batch"] == 32 and cfg["epochs"] == 1 and cfg["arch"] == "cnn48-w"
    tuned = keras.models.load_model(run / "last.keras").get_layer("conv1_1").get_weights()[0]
    bundled = keras.models.load_model(bundled_keras_model(name)).get_layer("conv1_1").get_weights()[0]
    assert np.corrcoef(tuned.ravel(), bundled.ravel())[0, 1] > 0.95


def test_teacher_targets_average_the_face_and_its_mirror(faces):
    """Distillation targets are the teachers' flip-averaged, temperature-softened probabilities."""
    from ferlite.edge.assets import bundled_keras_model
    from ferlite.trainer.distill import teacher_targets
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    teacher = [str(bundled_keras_model())]
    p = teacher_targets(keras, teacher, faces, classes)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(teacher_targets(keras, teacher, faces[:, :, ::-1], classes), p, atol=1e-5)
    model = keras.models.load_model(teacher[0])
    flip_avg = model.predict(faces.astype(np.float32), verbose=0) + model.predict(
        faces[:, :, ::-1].astype(np.float32), verbose=0)
    assert (p.argmax(1) == flip_avg.argmax(1)).mean() > 0.9
    soft = teacher_targets(keras, teacher, faces, classes, temperature=4.0)
    assert (soft.max(1) < p.max(1)).all()  # a higher temperature softens every target


def test_train_distils_from_a_teacher(trained, tmp_path, capsys):
    project = tmp_path / "runs"
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "1", "--batch", "32", "--teacher", str(trained),
                 "--project", str(project)]) == 0
    assert "distilling 1 teacher(s)" in capsys.readouterr().out
    cfg = json.loads((project / "exp" / "config.json").read_text())
    assert cfg["teachers"] == [str(trained / "best.keras")] and cfg["distill"] == 0.8
    assert main(["train", str(FACES), "--teacher", str(tmp_path / "nope.keras")]) == 1
    assert "nope.keras: no such .keras file" in capsys.readouterr().err


def test_a_runs_teacher_logits_are_saved_and_handed_on(trained, faces, tmp_path, capsys):
    """A run saves its teachers' logits (teachers.npz): read back instead of recomputed, handed to another run as
    one file, and refused for other faces."""
    from ferlite.errors import UsageError
    from ferlite.trainer.distill import teacher_targets
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    teacher = [str(trained / "best.keras")]
    p = teacher_targets(keras, teacher, faces, classes, 2.0, run_dir=tmp_path)
    saved = tmp_path / "teachers.npz"
    assert saved.is_file() and "teacher logits from" not in capsys.readouterr().out
    np.testing.assert_allclose(teacher_targets(keras, teacher, faces, classes, 2.0, run_dir=tmp_path), p, atol=1e-6)
    assert "teacher logits from" in capsys.readouterr().out
    np.testing.assert_allclose(teacher_targets(keras, [str(saved)], faces, classes, 2.0), p, atol=1e-6)
    both = teacher_targets(keras, [str(saved), teacher[0]], faces, classes, 2.0)  # two copies of one teacher
    np.testing.assert_allclose(both, p, atol=1e-5)
    with pytest.raises(UsageError, match="other training faces"):
        teacher_targets(keras, [str(saved)], faces[1:], classes)
    assert len(teacher_targets(keras, teacher, faces[1:], classes, run_dir=tmp_path)) == len(faces) - 1  # redone

    project = tmp_path / "runs"
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "1", "--batch", "32", "--teacher", str(trained),
                 "--project", str(project)]) == 0
    assert (project / "exp" / "teachers.npz").is_file()
    assert main(["train", str(FACES), "--arch", "tiny", "--epochs", "1", "--batch", "32", "--teacher",
                 str(project / "exp" / "teachers.npz"), "--project", str(project), "--name", "handed"]) == 0
    assert "distilling 1 teacher(s)" in capsys.readouterr().out


def test_finetune_takes_the_init_models_architecture(trained, tmp_path, capsys):
    project = tmp_path / "runs"
    assert main(["train", str(FACES), "--init", str(trained / "best.keras"), "--epochs", "1",
                 "--project", str(project)]) == 0
    assert json.loads((project / "exp" / "config.json").read_text())["arch"] == "tiny"
    assert "copied the weights of 5 of 5 layers" in capsys.readouterr().out
    assert main(["train", str(FACES), "--init", str(tmp_path / "nope.keras")]) == 1
    assert "nope.keras: no such .keras file" in capsys.readouterr().err
    assert main(["train", str(FACES), "--init", str(trained / "best.keras"), "--arch", "cnn48-s", "--epochs", "1",
                 "--project", str(project)]) == 2
    assert "none of its layers fits the ferlite_cnn48_s architecture" in capsys.readouterr().err


def test_recalibration_sets_batchnorm_statistics_to_clean_face_averages(trained, faces):
    from ferlite.trainer.model import import_keras
    from ferlite.trainer.recalibrate import batchnorm_layers, recalibrate_bn

    keras = import_keras()
    model = keras.models.load_model(trained / "last.keras")
    bn = batchnorm_layers(keras, model)[0]
    momentum = bn.momentum
    assert recalibrate_bn(keras, model, faces, batch=2 * len(faces)) == len(batchnorm_layers(keras, model))
    both = np.concatenate([faces, faces[:, :, ::-1]]).astype(np.float32)
    inputs = keras.Model(model.inputs, bn.input).predict(both, verbose=0).reshape(-1, bn.input.shape[-1])
    np.testing.assert_allclose(bn.moving_mean.numpy(), inputs.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bn.moving_variance.numpy(), inputs.var(0), rtol=1e-3, atol=1e-3)
    assert bn.momentum == momentum


def test_training_ends_by_recalibrating_and_a_finished_run_resumes_to_that_step(trained, tmp_path, capsys):
    import shutil

    state = json.loads((trained / "state.json").read_text())
    done = state["recalibrated"]
    assert set(done["candidates"]) <= {"1", "2"}
    assert done["after"] == pytest.approx(max(done["candidates"].values()), abs=1e-5)
    assert done["kept"] == (done["after"] >= done["before"])
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "state.json").write_text(json.dumps({k: v for k, v in state.items() if k != "recalibrated"}))
    metrics = (run / "metrics.csv").read_text()
    assert main(["train", "--resume", str(run)]) == 0
    assert (run / "metrics.csv").read_text() == metrics  # no epoch trained
    printed = capsys.readouterr()
    assert "training finished after epoch 2" in printed.out
    assert "recalibrate batch norm, best.keras" in printed.err  # its progress bar
    assert "recalibrated" in json.loads((run / "state.json").read_text())


def _one_line_error(err: str, command: str) -> str:
    """The single message line of a usage error on stderr (no traceback)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"ferlite {command}: error: "), err
    return lines[0]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--epochs", "0", "--epochs 0: must be >= 1"),  # it used to train the default 40 epochs
    ("--batch", "0", "--batch 0: must be >= 1"),
    ("--lr", "0", "--lr 0.0: must be > 0"),
    ("--label-smoothing", "1", "--label-smoothing 1.0: must be >= 0 and < 1"),
    ("--erase", "1.5", "--erase 1.5: must be between 0 and 1"),
    ("--mixup", "-0.2", "--mixup -0.2: must be between 0 and 10 (0 = off)"),
    ("--temperature", "0", "--temperature 0.0: must be > 0"),
    ("--patience", "0", "--patience 0: must be >= 1"),
    ("--swa", "41", "--swa 41: must be between 0 and --epochs (40)"),
    ("--seed", "-1", "--seed -1: must be between 0 and 2**32 - 1"),
])
def test_bad_training_option_is_a_one_line_error(tmp_path, capsys, option, value, message):
    project = tmp_path / "runs"
    assert main(["train", str(FACES), option, value, "--project", str(project)]) == 2
    assert _one_line_error(capsys.readouterr().err, "train").endswith(message)
    assert not project.exists()  # refused before a run folder is made


def test_unknown_arch_lists_the_known_architectures(tmp_path, capsys):
    from ferlite.trainer.model import ARCHITECTURES

    assert main(["train", str(FACES), "--arch", "nope", "--project", str(tmp_path / "runs")]) == 2
    line = _one_line_error(capsys.readouterr().err, "train")
    assert "--arch nope: unknown architecture; choose from " + ", ".join(ARCHITECTURES) in line


def test_run_config_is_frozen_and_reads_back_from_config_json(trained, tmp_path, capsys):
    import dataclasses
    import shutil

    from ferlite.errors import UsageError
    from ferlite.trainer.config import TrainConfig

    cfg = TrainConfig.from_json(trained / "config.json")
    assert cfg.classes[0] == "angry" and isinstance(cfg.classes, tuple) and isinstance(cfg.teachers, tuple)
    assert (cfg.arch, cfg.epochs, cfg.train_split, cfg.val_split) == ("tiny", 2, "train", "val")
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    assert TrainConfig.from_json(tmp_path / "config.json") == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3
    with pytest.raises(UsageError, match=r"^dropout 1.0: must be >= 0 and < 1$"):
        dataclasses.replace(cfg, dropout=1.0)
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "config.json").write_text(json.dumps({**json.loads((run / "config.json").read_text()), "epochs": 0}))
    assert main(["train", "--resume", str(run)]) == 2
    assert _one_line_error(capsys.readouterr().err, "train").endswith("--epochs 0: must be >= 1")


def test_random_erasing_honours_its_seed():
    import tensorflow as tf

    from ferlite.trainer.data import random_erasing

    grey = tf.fill([16, 48, 48, 1], 128.0)
    first, again, other = (random_erasing(grey, seed, p=1.0).numpy() for seed in (7, 7, 8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert (first != 128).any(axis=(1, 2, 3)).all()  # p=1: every image has its rectangle
    pair = random_erasing(grey, tf.constant([7, 1], tf.int64), p=1.0).numpy()  # (seed, batch draw) in a pipeline
    assert not np.array_equal(pair, first)
    assert np.array_equal(random_erasing(grey, [7, 1], p=1.0).numpy(), pair)


def test_erasing_in_the_pipeline_is_seeded_and_new_each_epoch(monkeypatch):
    """The training pipeline without the Keras augmentation layers: shuffling and erasing only."""
    from ferlite.trainer import data

    monkeypatch.setattr(data, "augmenter", lambda seed, strength: lambda x, training: x)
    x = np.full((40, 48, 48, 1), 128, np.uint8)
    split = data.Split(x, np.zeros(40, np.int64), None)
    targets = np.zeros((40, 7), np.float32)

    def two_epochs(seed):
        ds = data.make_dataset(split, targets, 16, True, seed, erase=1.0)
        return [np.concatenate([images.numpy() for images, _ in ds]) for _ in range(2)]

    first, again, other = two_epochs(3), two_epochs(3), two_epochs(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])  # new rectangles each epoch
    assert not np.array_equal(first[0], other[0])


def test_mixup_blends_each_face_and_its_target_with_one_weight():
    """Mixup, in tf.data and in the numpy batches of other backends: face k and its target are blended with the
    batch's mirrored position by the same weight, a Beta draw per face."""
    from ferlite.trainer import data
    from ferlite.trainer.batches import mix

    n = 16
    x = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 48, 48, 1), np.float32)
    y = np.arange(n) % 7
    t = np.eye(7, dtype=np.float32)[y]
    for images, targets in (mix(x, t, np.random.default_rng(0), 0.4),
                            [a.numpy() for a in data.mix_batch(x, t, np.array([3, 1]), 0.4)]):
        np.testing.assert_allclose(targets.sum(1), 1, atol=1e-5)
        mirrored = y[::-1]
        lam = targets[np.arange(n), y]
        differ = y != mirrored
        np.testing.assert_allclose(images[:, 0, 0, 0][differ],
                                   (lam * x[:, 0, 0, 0] + (1 - lam) * x[::-1, 0, 0, 0])[differ], atol=1e-3)
        assert (lam >= 0).all() and (lam <= 1).all() and np.ptp(lam[differ]) > 0.1
    split = data.Split(np.repeat(x.astype(np.uint8), 2, 0), np.tile(y, 2), None)
    batches = [b for b in data.make_dataset(split, np.tile(t, (2, 1)), 8, True, 1, 0.0, 0.0, mixup=0.4)]
    assert sum(len(b[0]) for b in batches) == 2 * n
    assert any((b[1].numpy().max(1) < 0.99).any() for b in batches)  # blended targets


@pytest.fixture(scope="module")
def faces_output(tmp_path_factory):
    """The face fixture as `ferlite faces` writes a data set: status and reason columns, and skipped rows (an
    empty path, which pandas reads as NaN) in both splits."""
    import shutil

    from ferlite.trainer import dataset
    from ferlite.trainer.faces import FACE_COLUMNS

    out = tmp_path_factory.mktemp("faces-out")
    shutil.copytree(FACES / "images", out / "images")
    rows = [dict(r, status="kept", reason="ok", src=r["path"]) for r in dataset.read_rows(FACES)]
    skipped = dict(path="", label="happy", source="wild", subject="nobody", status="skipped", reason="no face")
    rows[5:5] = [dict(skipped, split="train", src="group.jpg"), dict(skipped, split="val", src="blurred.jpg")]
    dataset.write_rows(out, rows, FACE_COLUMNS)
    return out


def test_train_and_evaluate_ignore_skipped_rows(faces_output, trained, tmp_path):
    from ferlite.trainer import dataset

    assert len(dataset.load(faces_output)) == 144  # the two skipped rows are not read
    project = tmp_path / "runs"
    assert main(["train", str(faces_output), "--arch", "tiny", "--epochs", "1", "--batch", "32",
                 "--project", str(project)]) == 0
    assert json.loads((project / "exp" / "results.json").read_text())["n"] == 36
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(trained), "--data", str(faces_output), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n"] == 36


def test_too_small_calibration_set_is_a_one_line_error(trained, faces_output, tmp_path, capsys):
    # The training split holds 108 faces (and a skipped row, which is no face).
    assert main(["convert", str(trained), "--data", str(faces_output), "--samples", "200",
                 "--out", str(tmp_path)]) == 2
    line = _one_line_error(capsys.readouterr().err, "convert")
    assert "--samples 200: the 'train' split has only 108 faces" in line
    assert main(["convert", str(trained), "--data", str(FACES), "--calib-split", "test", "--out", str(tmp_path)]) == 2
    line = _one_line_error(capsys.readouterr().err, "convert")
    assert "--calib-split test: the data set has no faces in this split (splits: train, val)" in line
    assert not list(tmp_path.glob("*.tflite"))


def test_sidecars_and_metrics_name_the_data_set_not_a_path(trained, converted, tmp_path):
    """Sidecars ship to devices: they name the data set's folder and split, never the build machine's path."""
    for model in ("ferlite_tiny_int8.tflite", "ferlite_tiny_float16.tflite", "ferlite_tiny.keras"):
        assert ModelInfo.for_model(converted / model).metrics["data"] == "faces:val"
    # 12 validation faces are too few to fit a temperature: it stays 1 (converters/calibrate.py MIN_FACES).
    assert ModelInfo.for_model(converted / "ferlite_tiny_int8.tflite").temperature == 1.0
    assert json.loads((converted / "ferlite_tiny_conversion.json").read_text())["data"] == "faces:val"
    assert json.loads((trained / "results.json").read_text())["data"] == "faces:val"
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(converted / "ferlite_tiny_int8.tflite"), "--data",
                 str(FACES / "manifest.csv"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["data"] == "faces:val"


def test_best_keras_is_saved_without_the_optimizer(trained):
    """last.keras carries the optimizer's state to resume from; best.keras (evaluated, converted, fine-tuned
    from, committed for a long run) does not, and is a third of the size."""
    import io
    import zipfile

    import h5py

    def groups(path):
        return set(h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5"))))

    assert "optimizer" in groups(trained / "last.keras") and "optimizer" not in groups(trained / "best.keras")
    assert main(["evaluate", "--model", str(trained / "best.keras"), "--data", str(FACES)]) == 0


def test_numpy_batches_are_the_pipeline_without_tensorflow_data():
    """The batches a non-TensorFlow backend (JAX on a GPU machine) trains on: every face once per epoch in a
    new seeded order, float pixels in 0..255, augmented and erased only when training."""
    from ferlite.trainer.batches import NumpyBatches, erase_random_boxes

    x = np.arange(40, dtype=np.uint8)[:, None, None, None] * np.ones((1, 48, 48, 1), np.uint8)
    targets = np.eye(40, dtype=np.float32)
    plain = NumpyBatches(x, targets, 16, False, 0)
    assert len(plain) == 3
    images, t = plain[2]
    assert images.dtype == np.float32 and images.shape == (8, 48, 48, 1) and np.array_equal(t, targets[32:])

    def epoch(batches):
        return np.concatenate([batches[i][1].argmax(1) for i in range(len(batches))])

    train = NumpyBatches(x, targets, 16, True, 3, erase=1.0)
    first = epoch(train)
    train.on_epoch_end()
    second = epoch(train)
    assert sorted(first) == sorted(second) == list(range(40)) and not np.array_equal(first, second)
    assert np.array_equal(first, epoch(NumpyBatches(x, targets, 16, True, 3)))  # the same seed, the same order
    images, _ = train[0]
    assert images.min() >= 0 and images.max() <= 255
    grey = np.full((16, 48, 48, 1), 128.0, np.float32)
    erased = erase_random_boxes(grey.copy(), np.random.default_rng(7), p=1.0)
    assert (erased != 128).any(axis=(1, 2, 3)).all()
    assert np.array_equal(erased, erase_random_boxes(grey.copy(), np.random.default_rng(7), p=1.0))


def test_a_run_started_on_tensorflow_resumes_on_jax(trained, tmp_path):
    """KERAS_BACKEND=jax (Keras 3 on JAX, as on a GPU machine without TensorFlow) continues a run that
    TensorFlow started, from its committed checkpoint. Needs jax (here or in FERLITE_JAX_PYTHON's environment);
    skipped without it."""
    import importlib.util
    import os
    import shutil
    import subprocess
    import sys

    python = os.environ.get("FERLITE_JAX_PYTHON", sys.executable)  # an interpreter with jax, keras and ferlite
    if python == sys.executable and importlib.util.find_spec("jax") is None:
        pytest.skip("no jax here: pip install jax, or set FERLITE_JAX_PYTHON to a Python that has it")
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "epoch": 1, "best_epoch": 1}))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "data": str(FACES)}))
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    r = subprocess.run([python, "-m", "ferlite", "train", "--resume", str(run)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "epoch   2/2" in r.stdout
    assert json.loads((run / "state.json").read_text())["epoch"] == 2
