"""The settings of a training run (``ferlite train``), checked when made and frozen.

A bad value is a one-line :class:`UsageError` naming its option (``--epochs 0: must be >= 1``), whether it
came from the command line or from a run folder's config.json (``--resume``). Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from ferlite.errors import UsageError
from ferlite.trainer.labels import LABELS
from ferlite.trainer.model import ARCHITECTURES

#: Settings named by an option of another name; those in _NO_OPTION have none and are named as in config.json.
_OPTIONS = {"teachers": "--teacher", "recalibrate": "--no-recalibrate"}
_NO_OPTION = {"data", "input_size", "warmup", "weight_decay", "dropout"}
#: The annotation of each kind of setting -> (accepted Python types, what the value must be).
_TYPES = {"int": ((int,), "an integer"), "float": ((int, float), "a number"), "str": ((str,), "a string"),
          "bool": ((bool,), "true or false"), "tuple[str, ...]": ((tuple,), "a list of strings")}

@dataclass(frozen=True)
class TrainConfig:
    """The settings of a run, checked when made (a bad value is a one-line UsageError naming its option) and
    frozen: the stages that resolve the splits and classes return a new config (``dataclasses.replace``)."""

    data: str
    arch: str = "cnn48-w"
    input_size: int = 48
    epochs: int = 40
    batch: int = 128
    lr: float = 2e-3
    warmup: int = 2
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    soft_labels: float = 0.0
    teachers: tuple[str, ...] = ()
    distill: float = 0.0
    temperature: float = 1.0
    erase: float = 0.5
    aug_strength: float = 1.0
    mixup: float = 0.0
    swa: int = 0
    swa_lr: float = 0.0
    dropout: float = 0.3
    patience: int = 12
    seed: int = 0
    threads: int = 0
    init: str = ""
    recalibrate: bool = True
    deterministic: bool = False
    train_split: str = ""
    val_split: str = ""
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kinds, what = _TYPES[f.type]
            wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
            if wrong or (isinstance(value, tuple) and not all(isinstance(v, str) for v in value)):
                raise UsageError(f"{option_name(f.name)} {value!r}: must be {what}")
        for name, ok, rule in _rules(self):
            if not ok:
                value = getattr(self, name)
                shown = ",".join(value) if isinstance(value, tuple) else value
                raise UsageError(f"{option_name(name)} {shown}: {rule}")

    @classmethod
    def from_json(cls, path: Path) -> TrainConfig:
        """The config.json of a run folder (its lists become tuples again)."""
        try:
            data = json.loads(path.read_text())
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}: not a ferlite run config ({exc})") from None


def option_name(name: str) -> str:
    """How the user names a TrainConfig setting: its command-line option, or its config.json key."""
    return name if name in _NO_OPTION else _OPTIONS.get(name, "--" + name.replace("_", "-"))


def _rules(c: TrainConfig) -> list[tuple[str, bool, str]]:
    """(setting, whether its value is valid, the rule it breaks otherwise)."""
    return [
        ("arch", c.arch in ARCHITECTURES, f"unknown architecture; choose from {', '.join(ARCHITECTURES)}"),
        ("input_size", c.input_size >= 8, "must be >= 8"),
        ("epochs", c.epochs >= 1, "must be >= 1"),
        ("batch", c.batch >= 1, "must be >= 1"),
        ("lr", c.lr > 0, "must be > 0"),
        ("warmup", c.warmup >= 0, "must be >= 0"),
        ("weight_decay", c.weight_decay >= 0, "must be >= 0"),
        ("label_smoothing", 0 <= c.label_smoothing < 1, "must be >= 0 and < 1"),
        ("soft_labels", 0 <= c.soft_labels <= 1, "must be between 0 and 1"),
        ("distill", 0 <= c.distill <= 1, "must be between 0 and 1"),
        ("temperature", c.temperature > 0, "must be > 0"),
        ("erase", 0 <= c.erase <= 1, "must be between 0 and 1"),
        ("aug_strength", c.aug_strength >= 0, "must be >= 0 (0 = off)"),
        ("mixup", 0 <= c.mixup <= 10, "must be between 0 and 10 (0 = off)"),
        ("swa", 0 <= c.swa <= c.epochs, f"must be between 0 and --epochs ({c.epochs})"),
        ("swa_lr", c.swa_lr >= 0, "must be >= 0 (0 = the cosine schedule's own)"),
        ("dropout", 0 <= c.dropout < 1, "must be >= 0 and < 1"),
        ("patience", c.patience >= 1, "must be >= 1"),
        ("seed", 0 <= c.seed < 2**32, "must be between 0 and 2**32 - 1"),
        ("threads", c.threads >= 0, "must be >= 0 (0 = all cores)"),
        ("classes", not c.classes or (len(set(c.classes)) >= 2 and set(c.classes) <= set(LABELS)),
         f"name two or more of {', '.join(LABELS)}"),
    ]


def parse_classes(text: str) -> tuple[str, ...]:
    """--classes a,b,c: the names in the vocabulary's order (unknown ones last, for the check to name)."""
    wanted = [c.strip() for c in text.split(",") if c.strip()]
    return tuple(c for c in LABELS if c in wanted) + tuple(c for c in wanted if c not in LABELS)
