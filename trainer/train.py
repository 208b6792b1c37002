"""Train the expression classifier on a ferlite data set (or its face crops).

Each run gets a folder runs/train/exp, exp2, ... holding best.keras and last.keras, the resolved
config.json, metrics.csv (one row per epoch) and state.json. Checkpoints are written every epoch;
--resume RUN_DIR continues an interrupted run where it stopped. At the end, the batch-norm statistics
of the best and last models are re-estimated on the clean training faces (trainer/recalibrate.py) and
the better of the two becomes best.keras if it is at least as good as before; with --swa N, so does the
average of the last N epochs' weights when it scores higher (trainer/swa.py). Fine-tune the bundled model
on a small data set of your own with --init bundled (the default, FER+ labels; --init fer2013 for FER2013's):
lower learning rate, fewer epochs (see --help defaults), the init model's classes kept and a hold-out that
suits one person (trainer/finetune.py). With KERAS_BACKEND=jax (a GPU machine without TensorFlow) it trains
on Keras's JAX backend, the batches coming from trainer/batches.py instead of tf.data.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ferlite.errors import UsageError, require
from ferlite.runs import next_run_dir
from ferlite.trainer.config import TrainConfig, parse_classes
from ferlite.trainer.interrupt import DeferredInterrupt


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Linear warm-up then cosine decay, by epoch (so a resumed run continues the same schedule). With --swa N
    and --swa-lr, the decay ends at --swa-lr N epochs before the end and holds it while weights are averaged."""
    if epoch < cfg.warmup:
        return cfg.lr * (epoch + 1) / cfg.warmup
    floor, end = (cfg.swa_lr, cfg.epochs - cfg.swa) if cfg.swa and cfg.swa_lr else (0.0, cfg.epochs)
    if epoch >= end:
        return floor
    t = (epoch - cfg.warmup) / max(1, end - cfg.warmup)
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * min(1.0, t)))


def _callbacks(keras, run_dir: Path, cfg: TrainConfig, state: dict, steps: int, interrupt):
    """The checkpoint callback; ``interrupt`` (trainer/interrupt.py) raises a held Ctrl-C at the start of an epoch
    or the end of a batch, so an epoch cut short is never saved as a finished one."""
    from tqdm import tqdm

    from ferlite.trainer.model import save_atomic, save_weights_only
    from ferlite.trainer.swa import WeightAverage, averaging

    average = WeightAverage(keras, run_dir, state)

    class Checkpoint(keras.callbacks.Callback):
        """Save last/best every epoch, append metrics.csv, write state.json, stop early."""

        def on_epoch_begin(self, epoch, logs=None):
            interrupt.check()
            self.model.optimizer.learning_rate.assign(lr_at(cfg, epoch))
            self.t0 = time.time()
            self.bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, unit="batch")

        def on_train_batch_end(self, batch, logs=None):
            interrupt.check()
            self.bar.update(1)
            if logs and batch % 20 == 0:
                self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}")

        def on_test_batch_end(self, batch, logs=None):
            interrupt.check()

        def on_epoch_end(self, epoch, logs=None):
            self.bar.close()
            logs = dict(logs or {})
            row = {"epoch": epoch + 1, "lr": lr_at(cfg, epoch), "seconds": round(time.time() - self.t0, 1)}
            row.update({k: round(float(v), 5) for k, v in logs.items() if k != "learning_rate"})
            append_row(run_dir / "metrics.csv", row)
            save_atomic(self.model, run_dir / "last.keras")  # with the optimizer's state, to resume from
            val = logs.get("val_accuracy", -1.0)
            if val > state["best"]:
                state.update(best=val, best_epoch=epoch + 1)
                state.pop("best_from", None)
                save_weights_only(keras, self.model, run_dir / "best.keras")
            state["epoch"] = epoch + 1
            if averaging(cfg, epoch):
                average.add(self.model)
            tmp = run_dir / "state.json.tmp"
            tmp.write_text(json.dumps(state, indent=1))
            tmp.replace(run_dir / "state.json")
            print(f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {logs.get('loss', 0):.4f}"
                  f"  acc {logs.get('accuracy', 0):.4f}"
                  f"  val_acc {val:.4f}  best {state['best']:.4f} (epoch {state['best_epoch']})  {row['seconds']:.0f}s",
                  flush=True)
            if not cfg.swa and epoch + 1 - state["best_epoch"] >= cfg.patience:
                print(f"early stop: no improvement for {cfg.patience} epochs")
                self.model.stop_training = True

    return [Checkpoint()]


def append_row(path: Path, row: dict) -> None:
    """One row of a CSV file, its header first when the file is new."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


@dataclass(frozen=True)
class TrainData:
    """The loaded splits and their tf.data pipelines (training: shuffled, augmented, with its targets)."""

    train: object  # data.Split
    val: object  # data.Split
    train_ds: object
    val_ds: object


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False) -> tuple[TrainConfig, dict]:
    """Train into ``run_dir``; returns the config with its splits and classes resolved, and the final state
    (best val accuracy and its epoch)."""
    from ferlite.trainer.model import import_keras

    keras = import_keras()
    state = start(keras, cfg, run_dir, resume)
    cfg, data = prepare_data(keras, cfg, state, run_dir)
    model = build_or_resume_model(keras, cfg, run_dir, state, resume)
    fit(keras, model, cfg, data, run_dir, state)
    finish(keras, cfg, data, run_dir, state)
    return cfg, state


def start(keras, cfg: TrainConfig, run_dir: Path, resume: bool) -> dict:
    """Threads, the run's state (read back when resuming) and the random seed; returns the state."""
    if keras.backend.backend() == "tensorflow":  # another backend (JAX on a GPU machine) has its own defaults
        import tensorflow as tf

        if cfg.deterministic:  # the same run gives the same model, bit for bit (parallel input pipeline included)
            tf.config.experimental.enable_op_determinism()
        if cfg.threads:
            tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
            tf.config.threading.set_inter_op_parallelism_threads(cfg.threads)
    state = {"epoch": 0, "best": -1.0, "best_epoch": 0}
    if resume:
        state = json.loads((run_dir / "state.json").read_text())
    # A resumed run draws fresh shuffles and augmentations instead of replaying those of epoch 1 on.
    keras.utils.set_random_seed(cfg.seed + state["epoch"])
    return state


def prepare_data(keras, cfg: TrainConfig, state: dict, run_dir: Path) -> tuple[TrainConfig, TrainData]:
    """Load the data set and build the pipelines. Returns the config with the splits and classes resolved
    (a validation split is held out of the training one when the data set has none)."""
    import numpy as np

    from ferlite.trainer import dataset as ds_mod
    from ferlite.trainer.data import class_names, default_split_names, load_split, make_dataset
    from ferlite.trainer.finetune import hold_out, init_path, keep_label_set, unlearnt_classes

    df = ds_mod.load(cfg.data)
    auto_train, auto_val = default_split_names(set(df["split"].dropna()))
    cfg = replace(cfg, train_split=cfg.train_split or auto_train, val_split=cfg.val_split or auto_val)
    if cfg.val_split not in set(df["split"].dropna()):
        df, state["hold_out"] = hold_out(df, cfg.train_split, cfg.val_split, cfg.seed)
    train_labels = set(df.loc[df["split"] == cfg.train_split, "label"].dropna())
    if cfg.init and not cfg.classes:
        cfg, state["kept_classes"] = keep_label_set(cfg, train_labels, init_path(cfg.init))
    elif cfg.classes:
        state["unlearnt_classes"] = unlearnt_classes(cfg, train_labels)
    cfg = replace(cfg, classes=cfg.classes or tuple(class_names(df)))
    train_s = load_split(df, cfg.train_split, list(cfg.classes), cfg.input_size)
    val_s = load_split(df, cfg.val_split, list(cfg.classes), cfg.input_size)
    onehot = np.eye(len(cfg.classes), dtype=np.float32)
    t_train = training_targets(keras, cfg, state, train_s, onehot[train_s.y], run_dir)
    seed = cfg.seed + state["epoch"]
    train_ds = make_dataset(train_s, t_train, cfg.batch, True, seed, cfg.erase, cfg.aug_strength, cfg.mixup)
    val_ds = make_dataset(val_s, onehot[val_s.y], cfg.batch, False, seed)
    return cfg, TrainData(train_s, val_s, train_ds, val_ds)


def training_targets(keras, cfg: TrainConfig, state: dict, train_s, onehot, run_dir: Path):
    """The training targets: the one-hot labels, blended with the FER+ vote distribution (--soft-labels) and
    the teachers' probabilities (--teacher, --distill; not computed for a finished run, and read back from the
    run's teachers.npz when resuming)."""
    targets = onehot
    if cfg.soft_labels > 0 and train_s.soft is not None:
        targets = (1 - cfg.soft_labels) * targets + cfg.soft_labels * train_s.soft
    if cfg.teachers and cfg.distill > 0 and not finished(cfg, state):
        from ferlite.trainer.distill import teacher_targets

        teach = teacher_targets(keras, list(cfg.teachers), train_s.x, list(cfg.classes), cfg.temperature, run_dir)
        agree = float((teach.argmax(1) == train_s.y).mean())
        print(f"distilling {len(cfg.teachers)} teacher(s): they agree with {agree:.1%} of the training labels")
        targets = (1 - cfg.distill) * targets + cfg.distill * teach
    return targets


def build_or_resume_model(keras, cfg: TrainConfig, run_dir: Path, state: dict, resume: bool):
    """The run's last.keras when resuming; else a new compiled model (from --init's weights when given), after
    writing the resolved config.json."""
    from ferlite.trainer.finetune import load_init_weights
    from ferlite.trainer.model import build_model

    if resume:
        model = keras.models.load_model(run_dir / "last.keras")
        print(f"resuming {run_dir} after epoch {state['epoch']} (best {state['best']:.4f})")
        return model
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    model = build_model(len(cfg.classes), cfg.input_size, cfg.arch, cfg.dropout)
    if cfg.init:
        load_init_weights(keras, model, cfg.init, cfg.classes)
    model.compile(
        optimizer=keras.optimizers.AdamW(cfg.lr, weight_decay=cfg.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def fit(keras, model, cfg: TrainConfig, data: TrainData, run_dir: Path, state: dict) -> None:
    """Train the epochs still to do (none for a finished run), checkpointing each into ``run_dir``."""
    print(f"{model.name}: {model.count_params():,} parameters; train {len(data.train.y)} ({cfg.train_split}), "
          f"val {len(data.val.y)} ({cfg.val_split}); classes {', '.join(cfg.classes)}; run folder {run_dir}")
    if finished(cfg, state):
        print(f"training finished after epoch {state['epoch']}")
        return
    steps = math.ceil(len(data.train.y) / cfg.batch)
    state.pop("recalibrated", None)
    state.pop("swa", None)
    with DeferredInterrupt() as interrupt:  # Ctrl-C between batches, not inside TensorFlow's ops
        model.fit(data.train_ds, validation_data=data.val_ds, epochs=cfg.epochs, initial_epoch=state["epoch"],
                  shuffle=False, callbacks=_callbacks(keras, run_dir, cfg, state, steps, interrupt),
                  verbose=0)  # tf.data shuffles


def finish(keras, cfg: TrainConfig, data: TrainData, run_dir: Path, state: dict) -> None:
    """After training: re-estimate the batch-norm statistics (once per run; kept when not worse), then the
    curves and the best model's figures and confusion matrix on the validation split."""
    if cfg.recalibrate and "recalibrated" not in state:
        from ferlite.trainer.recalibrate import recalibrate_run

        state["recalibrated"] = recalibrate_run(keras, run_dir, state, data.train.x, data.val.x, data.val.y,
                                                cfg.seed)
        if state["recalibrated"]["kept"]:
            state.update(best=state["recalibrated"]["after"], best_epoch=state["recalibrated"]["epoch"])
        (run_dir / "state.json").write_text(json.dumps(state, indent=1))
    if cfg.swa and "swa" not in state:
        from ferlite.trainer.swa import finish_swa

        finish_swa(keras, run_dir, state, data.train.x, data.val.x, data.val.y, cfg.seed)
    _final_report(keras, run_dir, cfg, data.val)


def finished(cfg: TrainConfig, state: dict) -> bool:
    """All epochs done, or stopped early (no improvement for ``patience`` epochs; never with --swa)."""
    stalled = not cfg.swa and state["epoch"] > 0 and state["epoch"] - state["best_epoch"] >= cfg.patience
    return state["epoch"] >= cfg.epochs or stalled


def _final_report(keras, run_dir: Path, cfg: TrainConfig, val_s) -> None:
    """Curves, and the best model's figures and confusion matrix on the validation split."""
    from ferlite.trainer.dataset import describe
    from ferlite.trainer.evaluate import metrics
    from ferlite.trainer.report import summary_table, write_confusion, write_curves

    write_curves(run_dir / "metrics.csv", run_dir / "curves.png")
    best = keras.models.load_model(run_dir / "best.keras")
    probs = best.predict(val_s.x.astype("float32"), batch_size=256, verbose=0)
    result = metrics([cfg.classes[i] for i in val_s.y], probs, tuple(cfg.classes))
    result.update(model=str(run_dir / "best.keras"), data=describe(cfg.data, cfg.val_split))
    (run_dir / "results.json").write_text(json.dumps(result, indent=1))
    write_confusion(result, run_dir, f"best.keras on {cfg.val_split}")
    print(summary_table(result))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ferlite.trainer.model import ARCHITECTURES

    d = TrainConfig(data="")
    p.add_argument("data", nargs="?", help="data-set folder or manifest.csv (face crops or 48x48 images)")
    p.add_argument("--arch", default=None,
                   help=f"architecture: {', '.join(ARCHITECTURES)} (default {d.arch}; with --init, the init model's)")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs (default {d.epochs}; 15 with --init)")
    p.add_argument("--batch", type=int, default=None, help=f"batch size (default {d.batch}; 32 with --init)")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr}; 3e-4 with --init)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="label smoothing")
    p.add_argument("--soft-labels", type=float, default=d.soft_labels,
                   help="weight of the FER+ vote distribution in the target (0 = hard labels)")
    p.add_argument("--teacher", action="append", default=argparse.SUPPRESS, metavar="MODEL",
                   help="distil from this trained model (.keras or run folder) or a run's saved teachers.npz; "
                        "repeat for an ensemble")
    p.add_argument("--distill", type=float, default=0.8,
                   help="with --teacher: weight of the teachers' probabilities in the target")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help="with --teacher: softening temperature of the teachers' logits")
    p.add_argument("--erase", type=float, default=d.erase, help="random-erasing probability")
    p.add_argument("--aug-strength", type=float, default=d.aug_strength, help="augmentation strength (0 = off)")
    p.add_argument("--mixup", type=float, default=d.mixup, metavar="ALPHA",
                   help="mixup: blend each training face and its target with another's, the weight drawn from "
                        "Beta(ALPHA, ALPHA) (0 = off; 0.2-0.4 is usual)")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience in epochs")
    p.add_argument("--swa", type=int, default=d.swa, metavar="N",
                   help="average the weights of the last N epochs (stochastic weight averaging); the average, "
                        "batch norm recalibrated, replaces best.keras when it scores higher (0 = off)")
    p.add_argument("--swa-lr", type=float, default=d.swa_lr, metavar="LR",
                   help="with --swa: the constant learning rate of the averaged epochs (0 = the cosine's own)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for TensorFlow (0 = all cores)")
    p.add_argument("--init", default="", metavar="bundled|fer2013|PATH",
                   help="fine-tune: start from a bundled model (bundled or default: FER+ labels; fer2013: "
                        "FER2013 labels) or a .keras file")
    p.add_argument("--no-recalibrate", dest="recalibrate", action="store_false",
                   help="keep the batch-norm statistics of training (by default they are re-estimated on the "
                        "clean training faces at the end)")
    p.add_argument("--deterministic", action="store_true",
                   help="make the run reproducible bit for bit (TensorFlow's op determinism; may be slower)")
    p.add_argument("--classes", default="", metavar="A,B,...",
                   help="train these classes only, leaving out rows with other labels (e.g. FER+'s contempt); "
                        "default: every label of the data set (with --init, the init model's; a class it lacks, "
                        "named here, is added and starts untrained)")
    p.add_argument("--train-split", default="", help="split to train on (default Training, else train)")
    p.add_argument("--val-split", default="", help="split to select on (default PublicTest, else val)")
    p.add_argument("--project", type=Path, default=Path("runs/train"), help="folder holding the run folders")
    p.add_argument("--name", default="exp", help="run folder name (numbered when taken)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run (a finished one: only the steps after training)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of a new run; fine-tuning (--init) changes the defaults of --epochs, --batch and --lr.
    A value given is used as given (``--epochs 0`` is an error, not the default)."""
    from ferlite.trainer.distill import teacher_path
    from ferlite.trainer.finetune import init_path
    from ferlite.trainer.model import saved_arch

    if not args.data:
        raise UsageError("give a data set to train on (or --resume RUN_DIR)")
    finetune = bool(args.init)
    teachers = getattr(args, "teacher", [])
    arch = args.arch or (saved_arch(init_path(args.init)) if finetune else None) or TrainConfig.arch

    def given(value, finetune_default, default):
        return value if value is not None else (finetune_default if finetune else default)

    return TrainConfig(
        data=args.data, arch=arch, batch=given(args.batch, 32, TrainConfig.batch),
        epochs=given(args.epochs, 15, TrainConfig.epochs), lr=given(args.lr, 3e-4, TrainConfig.lr),
        warmup=0 if finetune else TrainConfig.warmup,
        label_smoothing=args.label_smoothing, soft_labels=args.soft_labels,
        teachers=tuple(str(teacher_path(t)) for t in teachers), distill=args.distill if teachers else 0.0,
        temperature=args.temperature, erase=args.erase,
        aug_strength=args.aug_strength, mixup=args.mixup, swa=args.swa, swa_lr=args.swa_lr,
        patience=args.patience, seed=args.seed, threads=args.threads,
        init=args.init, recalibrate=args.recalibrate, deterministic=args.deterministic,
        train_split=args.train_split, val_split=args.val_split, classes=parse_classes(args.classes),
    )


def run(args: argparse.Namespace) -> int:
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":  # KERAS_BACKEND=jax trains without it
        require("tensorflow", "train", "train")
    require("pandas", "train", "train")
    if args.resume:
        cfg_path = args.resume / "config.json"
        if not (cfg_path.exists() and (args.resume / "last.keras").exists()):
            raise UsageError(f"{args.resume}: not a resumable run (needs config.json and last.keras)")
        cfg = TrainConfig.from_json(cfg_path)
        run_dir = args.resume
    else:
        cfg = config_from_args(args)
        run_dir = next_run_dir(args.project, args.name)
    t0 = time.time()
    try:
        cfg, state = train(cfg, run_dir, resume=bool(args.resume))
    except KeyboardInterrupt:
        if (run_dir / "last.keras").exists():
            print(f"\ninterrupted; the last finished epoch is saved: resume with  ferlite train --resume {run_dir}",
                  file=sys.stderr)
        raise
    finally:
        if not args.resume and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # refused before anything was written (e.g. the data set's classes)
    notes = "".join(f"; {state[k]}" for k in ("hold_out", "kept_classes", "unlearnt_classes") if state.get(k))
    where = f"from {state['best_from']}" if state.get("best_from") else f"at epoch {state['best_epoch']}"
    print(f"done in {(time.time() - t0) / 60:.1f} min: best {cfg.val_split} accuracy {state['best']:.4f} "
          f"{where}; models in {run_dir}{notes}")
    return 0
