"""Duplicate removal and train/val/test splits for imported data sets."""

from __future__ import annotations

import logging
import warnings

log = logging.getLogger(__name__)

#: ``duplicate_of`` of a row whose image is already in the data set being added to.
ALREADY_PRESENT = "(already in the data set)"


def find_duplicates(rows: list[dict], seen: set[str] | None = None) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Split rows into (first occurrences, duplicates with the path they duplicate)."""
    first: dict[str, str] = {h: ALREADY_PRESENT for h in (seen or set())}
    unique, dups = [], []
    for r in rows:
        h = r["sha256"]
        if h in first:
            dups.append((r, first[h]))
        else:
            first[h] = r["path"]
            unique.append(r)
    return unique, dups


def assign_splits(rows: list[dict], val: float, test: float, seed: int) -> None:
    """Fill empty ``split`` values with train/val/test, stratified by label and, when subjects are
    known, grouped by subject so that no person is on two sides. Rows with a split keep it."""
    import numpy as np

    todo = [r for r in rows if not r.get("split")]
    if not todo:
        return
    labels = np.array([r["label"] for r in todo])
    subjects = [r.get("subject") or "" for r in todo]
    grouped = all(subjects)
    idx = np.arange(len(todo))
    test_idx = _take(idx, labels, subjects, test, seed, grouped)
    rest = np.setdiff1d(idx, test_idx)
    val_idx = _take(rest, labels, subjects, val / max(1e-9, 1 - test), seed + 1, grouped)
    split = np.full(len(todo), "train", dtype=object)
    split[test_idx] = "test"
    split[val_idx] = "val"
    for r, s in zip(todo, split):
        r["split"] = s


def _take(idx, labels, subjects, frac: float, seed: int, grouped: bool):
    """A stratified (and grouped) fraction of ``idx``."""
    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    if frac <= 0 or len(idx) < 2:
        return np.array([], dtype=int)
    y = labels[idx]
    if grouped:
        groups = np.array(subjects)[idx]
        if len(set(groups)) < 2:
            return np.array([], dtype=int)
        n_splits = max(2, min(int(round(1 / frac)), len(set(groups))))
        rare = sorted(c for c in set(y) if (y == c).sum() < n_splits)
        if rare:  # said once here, in place of scikit-learn's UserWarning
            log.warning("fewer than %d images of %s: they may all fall on one side of the split", n_splits,
                        ", ".join(map(str, rare)))
        try:
            sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                _, held = next(sgkf.split(idx, y, groups))
        except ValueError:  # fewer images per class than folds
            log.warning("too few images per class for a stratified grouped split: split by subject only")
            _, held = next(GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed).split(idx, y, groups))
        return idx[held]
    counts = {c: (y == c).sum() for c in set(y)}
    stratify = y if min(counts.values()) >= 2 else None
    if stratify is None:
        log.warning("some class has a single image: split is not stratified")
    n = min(max(1, int(round(frac * len(idx)))), len(idx) - 1)
    if stratify is not None and not len(counts) <= n <= len(idx) - len(counts):
        stratify = None  # too few images to hold one of each class on both sides
    _, held = train_test_split(idx, test_size=n, stratify=stratify, random_state=seed)
    return np.sort(held)
