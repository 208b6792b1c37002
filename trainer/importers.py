"""Import an existing expression data set into the ferlite format (images + manifest.csv).

Formats (--format auto picks one from the path):
  fer2013     the Kaggle csv `emotion,pixels,Usage` (plain or .gz); Usage is kept as the split.
              With --ferplus fer2013new.csv the FER+ majority labels are used (8 classes; rows whose
              top vote is unknown or not-a-face are dropped) and the raw votes are kept as votes_* columns.
  folder      a folder per class, optionally under split folders: train/happy/*.jpg, test/sad/*.jpg.
  labels-csv  a csv with `image,emotion` columns (an optional `subject` column), images beside it
              or in --images.

Exact duplicates (same sha256) are reported and dropped, except in FER2013 where the benchmark's rows
are kept as published unless --duplicates drop is given. Sources with no split get train/val/test splits
stratified by label, and grouped by subject when subjects are known.
Importing into an existing data set adds to it (duplicates of images already there are dropped).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
from collections import Counter
from pathlib import Path

from ferlite.edge.sources.listing import list_folder
from ferlite.errors import DatasetError, ImageReadError, MissingFileError, UsageError, require
from ferlite.tables import crosstab, format_counts, format_table, printable
from ferlite.trainer import dataset
from ferlite.trainer.labels import FER2013_LABELS, LABELS, normalize_label

log = logging.getLogger(__name__)

#: FER+ vote columns in fer2013new.csv, and the ferlite label each one means.
FERPLUS_COLUMNS = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                   "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}
VOTE_COLUMNS = [f"votes_{label}" for label in LABELS] + ["votes_unknown", "votes_nf"]
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}


def ferplus_label(votes: dict[str, int], fer2013_label: str) -> str | None:
    """Plurality label from FER+ votes; None when unknown or not-a-face is among the top votes.
    Ties between emotions go to FER2013's own label when it is tied, else to the first in FER+ order."""
    top = max(votes.values())
    if top <= 0:
        return None
    tied = [k for k, v in votes.items() if v == top]
    if "unknown" in tied or "NF" in tied:
        return None
    labels = [FERPLUS_COLUMNS[k] for k in tied]
    return fer2013_label if fer2013_label in labels else labels[0]


def ferplus_majority(votes: dict[str, int]) -> str | None:
    """FER+'s evaluation label (Barsoum et al. 2016; microsoft/FERPlus ``majority`` mode): single votes are
    dropped as outliers, and the face keeps the emotion holding more than half of the remaining votes; None
    when no emotion does, or when that is unknown or not-a-face (such faces are left out of FER+'s figures)."""
    kept = {k: v for k, v in votes.items() if v > 1}
    total = sum(kept.values())
    if total <= 0:
        return None
    top = max(kept, key=kept.get)
    if 2 * kept[top] <= total or top not in FERPLUS_COLUMNS:
        return None
    return FERPLUS_COLUMNS[top]


def read_ferplus(ferplus: Path, csv_path: Path, df):
    """FER+'s ``fer2013new.csv`` as a DataFrame, checked to line up row by row with FER2013's csv ``df``."""
    import pandas as pd

    try:
        votes = pd.read_csv(ferplus)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{ferplus}: cannot read as csv: {exc}") from None
    need = set(FERPLUS_COLUMNS) | {"unknown", "NF", "Usage", "Image name"}
    if need - set(votes.columns):
        raise DatasetError(f"{ferplus}: not a FER+ csv (missing {', '.join(sorted(need - set(votes.columns)))})")
    if len(votes) != len(df) or not (votes["Usage"].values == df["Usage"].values).all():
        raise DatasetError(f"{ferplus}: rows do not line up with {csv_path} (different length or Usage order)")
    return votes


def vote_counts(row) -> dict[str, int]:
    """One FER+ row's votes by FER+ column name (the emotions, ``unknown`` and ``NF``)."""
    return {k: int(row[k]) for k in list(FERPLUS_COLUMNS) + ["unknown", "NF"]}


def _fer_row(csv_path: Path, i: int, rec):
    """(FER2013 label, 48x48 uint8 image) of csv row ``i``; DatasetError naming the row if malformed."""
    import numpy as np

    where = f"{csv_path}: row {i + 2}"
    try:
        emotion = int(rec.emotion)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: emotion {rec.emotion!r} is not an integer 0..6") from None
    if not 0 <= emotion < len(FER2013_LABELS):
        raise DatasetError(f"{where}: emotion {emotion} is not in 0..6")
    try:
        pixels = np.array(str(rec.pixels).split(), dtype=np.int64)
    except ValueError:
        raise DatasetError(f"{where}: pixels are not space-separated integers") from None
    if pixels.size != 48 * 48:
        raise DatasetError(f"{where} has {pixels.size} pixels, expected 2304")
    if pixels.min() < 0 or pixels.max() > 255:
        raise DatasetError(f"{where}: pixel values outside 0..255")
    return FER2013_LABELS[emotion], pixels.astype(np.uint8).reshape(48, 48)


def import_fer2013(csv_path: Path, out: Path, ferplus: Path | None, source: str = "fer2013",
                   keep_labels: bool = False) -> list[dict]:
    """FER2013 rows as images; with ``ferplus``, FER+ votes attached and (unless ``keep_labels``)
    FER+ majority labels in place of FER2013's, dropping rows FER+ could not label."""
    import cv2
    import pandas as pd
    from tqdm import tqdm

    try:
        df = pd.read_csv(csv_path)
    except Exception as exc:
        raise DatasetError(f"{csv_path}: cannot read as csv: {exc}") from None
    missing = {"emotion", "pixels", "Usage"} - set(df.columns)
    if missing:
        raise DatasetError(f"{csv_path}: not a FER2013 csv (missing columns {', '.join(sorted(missing))})")
    votes = None if ferplus is None else read_ferplus(ferplus, csv_path, df)
    rows, dropped = [], 0
    for i, rec in enumerate(tqdm(df.itertuples(index=False), total=len(df), desc=source)):
        fer_label, pixels = _fer_row(csv_path, i, rec)
        label, extra = fer_label, {}
        if votes is not None:
            v = votes.iloc[i]
            counts = vote_counts(v)
            if not keep_labels:
                label = ferplus_label(counts, fer_label) if isinstance(v["Image name"], str) else None
            if label is None:
                dropped += 1
                continue
            extra = {f"votes_{FERPLUS_COLUMNS[k]}": counts[k] for k in FERPLUS_COLUMNS}
            extra.update(votes_unknown=counts["unknown"], votes_nf=counts["NF"], fer2013_label=fer_label)
        ok, png = cv2.imencode(".png", pixels)
        data = png.tobytes()
        rel = Path("images") / source / rec.Usage / f"{i:05d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        rows.append(dict(path=rel.as_posix(), label=label, split=rec.Usage, source=source, subject="",
                         sha256=dataset.sha256_bytes(data), width=48, height=48, **extra))
    if votes is not None:
        print(f"FER+: {dropped} rows dropped (no FER+ image, or unknown / not-a-face among the top votes)")
    return rows


def _copy_image(src: Path, out: Path, rel: Path) -> dict:
    """Check an image and copy its bytes into the data set; ImageReadError (a one-line reason) if unusable."""
    from ferlite.edge.imagefiles.imageio import decode_image, read_bytes

    data = read_bytes(src)
    img = decode_image(data)
    sha = dataset.sha256_bytes(data)
    if (out / rel).exists() and dataset.sha256_file(out / rel) != sha:
        # an earlier import (same source name, same relative path) holds another image: keep it
        rel = rel.with_name(f"{rel.stem}_{sha[:8]}{rel.suffix}")
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(data)
    return dict(path=rel.as_posix(), sha256=sha, width=img.width, height=img.height)


def _label_or_none(name: str) -> str | None:
    try:
        return normalize_label(name)
    except DatasetError:
        return None


def _images_of(folder: Path, ignored: Counter) -> list[Path]:
    listing = list_folder(folder, recursive=True)
    ignored.update(listing.ignored)
    return listing.files


def import_folder(root: Path, out: Path, source: str, bad: list, ignored: Counter | None = None) -> list[dict]:
    from tqdm import tqdm

    ignored = Counter() if ignored is None else ignored
    jobs = []  # (file, label, split)
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if _label_or_none(d.name):
            jobs += [(f, _label_or_none(d.name), "") for f in _images_of(d, ignored)]
        elif d.name.lower() in SPLIT_NAMES:
            for c in sorted(p for p in d.iterdir() if p.is_dir()):
                if _label_or_none(c.name) is None:
                    log.warning("skipping folder %s: %r is not an expression label", printable(c), c.name)
                    continue
                jobs += [(f, _label_or_none(c.name), SPLIT_NAMES[d.name.lower()]) for f in _images_of(c, ignored)]
        else:
            log.warning("skipping folder %s: neither an expression label nor a split name", d)
    if not jobs:
        raise DatasetError(f"{root}: no class folders with images (expected e.g. happy/*.jpg or train/happy/*.jpg)")
    rows = []
    for f, label, split in tqdm(jobs, desc=source):
        rel = Path("images") / source / f.relative_to(root)
        try:
            rows.append(dict(_copy_image(f, out, rel), label=label, split=split, source=source, subject=""))
        except ImageReadError as exc:
            bad.append((str(f), str(exc)))
    return rows


def import_labels_csv(csv_path: Path, out: Path, source: str, images: Path | None, subject_re: str | None,
                      bad: list) -> list[dict]:
    import pandas as pd
    from tqdm import tqdm

    try:  # names that are not UTF-8 come back as the bytes the file system has (surrogate escapes)
        df = pd.read_csv(csv_path, dtype=str, encoding_errors="surrogateescape")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{csv_path}: cannot read as csv: {exc}") from None
    cols = {str(c).lower(): c for c in df.columns}
    img_col = cols.get("image") or cols.get("path") or cols.get("file")
    lab_col = cols.get("emotion") or cols.get("label") or cols.get("expression")
    if img_col is None or lab_col is None:
        found = printable(", ".join(map(str, df.columns)))
        raise DatasetError(f"{csv_path}: expected columns image,emotion (found {found})")
    bases = [images] if images else [csv_path.parent, csv_path.parent / "images"]
    pattern = re.compile(subject_re) if subject_re else None
    rows, unmatched = [], []
    for rec in tqdm(df.to_dict("records"), desc=source):
        name = str(rec[img_col]).strip()
        src = next((b / name for b in bases if os.path.lexists(b / name)), None)
        label = _label_or_none(str(rec[lab_col]))
        if src is None:
            bad.append((name, "file not found"))
            continue
        if label is None:
            bad.append((str(src), f"unknown label {rec[lab_col]!r}"))
            continue
        raw = rec.get(cols["subject"]) if "subject" in cols else None
        subject = "" if raw is None or pd.isna(raw) else str(raw).strip()
        if pattern and not subject:
            m = pattern.search(Path(name).name)
            # A name the pattern misses is a person of its own: a blank subject would turn the grouped split off.
            subject = m.group(1) if m else Path(name).stem
            if not m:
                unmatched.append(Path(name).name)
        try:  # the copy's path keeps the row's name, less any root or '..' that would lead out of --out
            rel = Path("images") / source / dataset.safe_relative(name)
            rows.append(dict(_copy_image(src, out, rel), label=label, split="", source=source, subject=subject))
        except (ImageReadError, DatasetError) as exc:
            bad.append((str(src), str(exc)))
    if unmatched:
        log.warning("%d image name(s) do not match --subject-pattern (%s%s): each is taken as a person of its own",
                    len(unmatched), ", ".join(unmatched[:3]), ", ..." if len(unmatched) > 3 else "")
    return rows


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if path.suffix.lower() == ".gz" or path.suffix.lower() == ".csv":
        import gzip

        opener = gzip.open if path.suffix.lower() == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
                header = f.readline().lower()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read: {exc}") from None
        return "fer2013" if "pixels" in header else "labels-csv"
    raise UsageError(f"{path}: cannot tell the format; pass --format")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="FER2013 csv(.gz), a folder of class folders, or a labels csv")
    p.add_argument("--out", "-o", type=Path, required=True, help="data-set folder to create or add to")
    p.add_argument("--format", choices=["auto", "fer2013", "folder", "labels-csv"], default="auto",
                   help="input format")
    p.add_argument("--ferplus", type=Path, help="FER+ fer2013new.csv to relabel a FER2013 import")
    p.add_argument("--keep-fer2013-labels", action="store_true",
                   help="with --ferplus: keep FER2013's labels and every row, and only attach the FER+ votes "
                        "(to train on soft labels while evaluating on FER2013's)")
    p.add_argument("--images", type=Path, help="labels-csv: folder holding the images")
    p.add_argument("--source", help="source name stored in the manifest (default: from the path)")
    p.add_argument("--subject-pattern", metavar="REGEX",
                   help=r"labels-csv: regex whose group 1 is the person id, e.g. '^(.+)_\d+\.jpg$'")
    p.add_argument("--duplicates", choices=["auto", "drop", "keep"], default="auto",
                   help="exact duplicates: auto keeps FER2013's published rows and drops elsewhere")
    p.add_argument("--val", type=float, default=0.1, help="validation fraction for sources with no split")
    p.add_argument("--test", type=float, default=0.1, help="test fraction for sources with no split")
    p.add_argument("--seed", type=int, default=0, help="seed for the splits")


def run(args: argparse.Namespace) -> int:
    require("pandas", "train", "import")
    require("sklearn", "train", "import")
    from ferlite.trainer.splits import ALREADY_PRESENT, assign_splits, find_duplicates

    if not args.path.exists():
        raise MissingFileError(f"{args.path}: no such file or folder")
    if not (0 <= args.val < 1 and 0 <= args.test < 1 and args.val + args.test < 1):
        raise UsageError(f"--val {args.val} and --test {args.test} must be fractions that sum to less than 1")
    fmt = detect_format(args.path) if args.format == "auto" else args.format
    source = args.source or ("fer2013" if fmt == "fer2013" else re.sub(r"\W+", "_", args.path.stem.lower()))
    existing = dataset.read_rows(args.out)
    bad: list[tuple[str, str]] = []
    ignored: Counter = Counter()
    if fmt == "fer2013":
        rows = import_fer2013(args.path, args.out, args.ferplus, source, args.keep_fer2013_labels)
    elif args.ferplus:
        raise UsageError("--ferplus applies to a FER2013 csv only")
    elif fmt == "folder":
        rows = import_folder(args.path, args.out, source, bad, ignored)
    else:
        rows = import_labels_csv(args.path, args.out, source, args.images, args.subject_pattern, bad)

    drop = args.duplicates == "drop" or (args.duplicates == "auto" and fmt != "fer2013")
    unique, dups = find_duplicates(rows, {r["sha256"] for r in existing})
    # images already in the data set are never added twice, unless --duplicates keep
    present = {id(r) for r, orig in dups if orig == ALREADY_PRESENT} if args.duplicates != "keep" else set()
    if dups:
        report = args.out / f"duplicates_{source}.csv"
        dataset.write_rows(args.out, [], ())  # ensure folder exists
        with open(report, "w", newline="", **dataset.ENCODING) as f:
            writer = csv.writer(f)
            writer.writerow(["path", "duplicate_of", "split"])
            writer.writerows([r["path"], orig, r["split"]] for r, orig in dups)
        cross = sum(1 for r, orig in dups if not orig.startswith(f"images/{source}/{r['split']}/"))
        print(f"{len(dups)} exact duplicates ({cross} across splits or data sets), listed in {report}; "
              + ("dropped" if drop else "kept (use --duplicates drop to drop them)"
                 + (f", except {len(present)} already in the data set, dropped" if present else "")))
    if drop:
        rows = unique
    elif present:
        rows = [r for r in rows if id(r) not in present]
    assign_splits(rows, args.val, args.test, args.seed)
    extra = [c for c in VOTE_COLUMNS + ["fer2013_label"] if rows and c in rows[0]]
    manifest = dataset.write_rows(args.out, existing + rows, extra)
    for path, reason in bad:
        print(f"skipped {printable(path)}: {reason}")
    headers, table = crosstab([(r["label"], r["split"]) for r in rows], LABELS,
                              ["Training", "PublicTest", "PrivateTest", "train", "val", "test"])
    print(format_table(headers, table))
    print(f"imported {len(rows)} images from {printable(args.path)} ({fmt}) into {manifest}"
          + _skipped_part(args.out, source, bad, ignored))
    return 0


def _skipped_part(out: Path, source: str, bad: list[tuple[str, str]], ignored: Counter) -> str:
    """``; skipped 3 bad files (0-byte file 2, ...; listed in OUT/skipped_SOURCE.csv); ignored 2 entries
    (...)``, and the skipped files written to that csv (path, reason)."""
    from ferlite.edge.imagefiles.imageio import reason_kind

    text = ""
    if bad:
        report = out / f"skipped_{source}.csv"
        with open(report, "w", newline="", **dataset.ENCODING) as f:
            csv.writer(f).writerows([("path", "reason"), *bad])
        kinds = format_counts(Counter(reason_kind(r) for _, r in bad))
        text += f"; skipped {len(bad)} bad files ({kinds}; listed in {printable(report)})"
    if ignored:
        text += f"; ignored {sum(ignored.values())} entries ({format_counts(ignored)})"
    return text
