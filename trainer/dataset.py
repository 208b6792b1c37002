"""The ferlite data-set format: a folder of images plus ``manifest.csv``, one row per image.

Columns: path (relative to the folder), label, split, source, subject, sha256, width, height, then any
extra columns a source carries (FER+ vote counts ``votes_<label>``, the original ``fer2013_label``, ...).
pandas reads the manifest directly; this module itself needs only the standard library so that
``ferlite capture`` and ``ferlite faces`` run on a device install.

Manifests are UTF-8, except that a path whose name is not UTF-8 on disk (a Latin-1 name from an old camera) is
written as its own bytes, so it round-trips: every reader here decodes with ``surrogateescape`` (pandas:
``encoding_errors="surrogateescape"``) and gets back a path that opens the same file. Paths written into a
data set come from :func:`safe_relative`, so none leads outside its folder.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ferlite.errors import DatasetError

MANIFEST = "manifest.csv"
COLUMNS = ("path", "label", "split", "source", "subject", "sha256", "width", "height")
#: How manifests are read and written (see the module docstring).
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(path: str | Path) -> tuple[Path, Path]:
    """Return (data-set folder, manifest path) for a folder or a manifest file."""
    p = Path(path)
    if p.is_dir():
        return p, p / MANIFEST
    if p.name.endswith(".csv") and p.exists():
        return p.parent, p
    raise DatasetError(f"{path}: not a data-set folder or manifest csv")


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """Rows of a manifest as dicts of strings; an absent manifest is an empty list."""
    _, manifest = resolve(path) if Path(path).exists() else (None, Path(path) / MANIFEST)
    if not manifest.exists():
        return []
    try:
        with open(manifest, newline="", **ENCODING) as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("path", "label") if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{manifest}: not a ferlite manifest (missing columns {', '.join(missing)})")
            return [{k: v if isinstance(v, str) else "" for k, v in row.items() if isinstance(k, str)}
                    for row in reader]
    except (csv.Error, OSError) as exc:
        raise DatasetError(f"{manifest}: cannot read the manifest: {getattr(exc, 'strerror', None) or exc}") from None


def is_kept(row: dict) -> bool:
    """Whether a manifest row names an image to use: not one ``ferlite faces`` skipped (status ``skipped``,
    empty path). Rows of manifests without a status column are all kept."""
    return bool(row.get("path")) and row.get("status", "kept") == "kept"


def load(path: str | Path):
    """The manifest's kept rows (see :func:`is_kept`) as a pandas DataFrame with an absolute ``file`` column
    added."""
    import pandas as pd

    root, manifest = resolve(path)
    if not manifest.exists():
        raise DatasetError(f"{root}: no {MANIFEST} in this folder")
    df = pd.read_csv(manifest, dtype={"path": "string", "subject": "string", "label": "string", "split": "string"},
                     encoding_errors="surrogateescape")
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise DatasetError(f"{manifest}: not a ferlite manifest (missing columns {', '.join(missing)})")
    kept = df["path"].fillna("").str.strip() != ""
    if "status" in df.columns:
        kept &= df["status"] == "kept"
    df = df[kept].reset_index(drop=True)
    df["file"] = [str(root / p) for p in df["path"]]
    return df


def describe(path: str | Path, split: str) -> str:
    """A split of a data set named the same on every machine: the data-set folder's name and the split
    (``fer2013:PublicTest``), never the path it has here. Used in sidecars and metrics files."""
    root, _ = resolve(path)
    return f"{root.resolve().name}:{split}"


def write_rows(root: str | Path, rows: Iterable[dict], extra: Iterable[str] = ()) -> Path:
    """Write (replace) the manifest of ``root`` atomically."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    fields = list(COLUMNS)
    for name in list(extra) + [k for r in rows for k in r]:
        if name not in fields:
            fields.append(name)
    tmp = root / (MANIFEST + ".tmp")
    with open(tmp, "w", newline="", **ENCODING) as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(root / MANIFEST)
    return root / MANIFEST


class ManifestAppender:
    """Append rows to a manifest as they are produced, flushing each one, so an interrupted
    batch keeps everything already done. Existing rows are kept; the header is fixed by the
    first writer (new columns must be named in ``fields``)."""

    def __init__(self, path: str | Path, fields: Iterable[str]):
        self.path = Path(path)
        self.fields = list(fields)
        self._file = None
        self._writer = None

    def __enter__(self) -> ManifestAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            with open(self.path, newline="", **ENCODING) as f:
                header = next(csv.reader(f), [])
            missing = [c for c in self.fields if c not in header]
            if missing:
                raise DatasetError(f"{self.path}: existing manifest lacks columns {', '.join(missing)}")
            self.fields = header
        self._file = open(self.path, "a", newline="", **ENCODING)
        self._writer = csv.DictWriter(self._file, fieldnames=self.fields, extrasaction="ignore")
        if not exists:
            self._writer.writeheader()
        return self

    def write(self, row: dict) -> None:
        self._writer.writerow(row)
        self._file.flush()

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()



def safe_relative(name: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside any folder it is joined to: without a root and without
    ``..`` or ``.`` parts (``../photos/a.jpg`` -> ``photos/a.jpg``, ``/data/a.jpg`` -> ``data/a.jpg``);
    DatasetError when nothing is left (``..``)."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("/", "//", ".", "..")]
    if not parts:
        raise DatasetError(f"no file name (the path is {name!r})")
    return PurePosixPath(*parts)
