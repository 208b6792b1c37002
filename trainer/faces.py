"""Detect faces in a data set (or a folder / glob of images), align them by the eyes and save crops.

Writes a new data set: crops under OUT/images/ and OUT/manifest.csv with one row per input image
(one per face with --keep all): status `kept` or `skipped`, and a one-line reason (no face, several
faces of similar size, face too small, unreadable file, ...). Labels, splits and subjects are carried
over from the input manifest. A re-run skips images already in the output manifest, so an interrupted
batch resumes where it stopped.
"""

from __future__ import annotations

import argparse
import glob
import logging
from collections import Counter
from pathlib import Path

from ferlite.edge.config import ClassifierConfig, DetectorConfig
from ferlite.edge.imagefiles.imageio import DEFAULT_MAX_PIXELS
from ferlite.errors import DatasetError, ImageReadError, MissingFileError, UsageError
from ferlite.trainer import dataset

log = logging.getLogger(__name__)

FACE_COLUMNS = ("status", "reason", "src", "face", "score", "box_x", "box_y", "box_w", "box_h", "angle")


def list_inputs(spec: str, ignored: Counter | None = None) -> tuple[Path, list[dict]]:
    """(base folder, input rows) for a data-set folder / manifest, a folder of images, or a glob. Entries of a
    folder or glob not named like images are counted by kind in ``ignored`` (edge.sources.listing)."""
    from ferlite.edge.sources.listing import list_folder, list_paths

    p = Path(spec)
    if (p.is_dir() and (p / dataset.MANIFEST).exists()) or (p.is_file() and p.suffix == ".csv"):
        root, _ = dataset.resolve(p)
        rows = [r for r in dataset.read_rows(p) if dataset.is_kept(r)]
        return root, [dict(r, src=r["path"]) for r in rows]
    listing = list_folder(p, recursive=True) if p.is_dir() else list_paths(sorted(glob.glob(spec, recursive=True)))
    files = listing.files
    root = p if p.is_dir() else Path(glob.escape(spec)).parent if not files else Path(_common_dir(files))
    if not files and not p.exists() and not glob.has_magic(spec):
        raise MissingFileError(f"{spec}: no such file or folder")
    if not files:
        raise UsageError(f"{spec}: no images found (give a data-set folder, a folder of images or a glob)")
    if ignored is not None:
        ignored.update(listing.ignored)
    return root, [dict(src=f.absolute().relative_to(root.absolute()).as_posix(), label="", split="",
                       source=root.name, subject="") for f in files]


def _common_dir(files: list[Path]) -> str:
    import os

    return os.path.commonpath([str(f.parent.absolute()) for f in files])


def pick_faces(faces, keep: str, min_face: int, similar: float):
    """Choose the faces to keep; returns (faces, reason) where reason is '' when some are kept."""
    if not faces:
        return [], "no face"
    if keep == "largest" and len(faces) > 1 and faces[1].area >= similar * faces[0].area:
        return [], f"several faces ({len(faces)}) of similar size"
    chosen = [f for f in (faces if keep == "all" else faces[:1]) if min(f.box[2], f.box[3]) >= min_face]
    if not chosen:
        side = round(min(faces[0].box[2], faces[0].box[3]))
        return [], f"face too small ({side} px < {min_face} px)"
    return chosen, ""


def process(root: Path, row: dict, out: Path, detector, opts: argparse.Namespace) -> list[dict]:
    """Detect, align and save the faces of one input row; returns its output manifest rows."""
    import cv2

    from ferlite.edge.detection.align import align_crop, eye_angle
    from ferlite.edge.imagefiles.imageio import read_image

    base = {k: row.get(k, "") for k in ("label", "split", "source", "subject")}
    base["src"] = row["src"]
    try:
        loaded = read_image(root / row["src"], opts.max_pixels)
        stem = dataset.safe_relative(row["src"]).with_suffix("")  # crops stay inside --out, whatever src says
    except (ImageReadError, DatasetError) as exc:
        return [dict(base, status="skipped", reason=f"unreadable: {exc}")]
    try:
        found = detector.detect(loaded.image)
    except cv2.error as exc:  # never one image's detector failure for the whole batch
        return [dict(base, status="skipped", reason=f"detector failed: {str(exc).strip().splitlines()[-1]}")]
    faces, reason = pick_faces(found, opts.keep, opts.min_face, opts.similar)
    if not faces:
        return [dict(base, status="skipped", reason=reason + (f" ({loaded.note})" if loaded.note else ""))]
    rows = []
    for i, face in enumerate(faces):
        crop = align_crop(loaded.image, face, opts.size, opts.margin, grey=not opts.colour, align=not opts.no_align)
        rel = Path("images") / (f"{stem}.png" if opts.keep != "all" else f"{stem}_f{i + 1}.png")
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", crop)
        data = png.tobytes()
        (out / rel).write_bytes(data)
        x, y, w, h = (round(v, 1) for v in face.box)
        rows.append(dict(base, path=rel.as_posix(), sha256=dataset.sha256_bytes(data), width=opts.size,
                         height=opts.size, status="kept", reason=loaded.note or "ok", face=i + 1,
                         score=round(face.score, 3), box_x=x, box_y=y, box_w=w, box_h=h,
                         angle=round(0.0 if opts.no_align else eye_angle(face), 1)))
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="data-set folder or manifest.csv, a folder of images, or a quoted glob")
    p.add_argument("--out", "-o", type=Path, required=True, help="output data-set folder for the crops")
    from ferlite.edge.detection.registry import DETECTORS

    p.add_argument("--detector", default=DetectorConfig.type, help=f"face detector: {', '.join(DETECTORS)}")
    p.add_argument("--score", type=float, default=None,
                   help="detector score threshold (defaults: yunet 0.8, blazeface 0.5, blazeface-full 0.6)")
    p.add_argument("--keep", choices=["largest", "all"], default="largest",
                   help="largest: one face per image (skipped when another face is of similar size); all: every face")
    p.add_argument("--similar", type=float, default=0.6,
                   help="with --keep largest, skip an image when a second face has at least this fraction of the area")
    p.add_argument("--min-face", type=int, default=DetectorConfig.min_face,
                   help="smallest face side to keep, in source pixels")
    p.add_argument("--size", type=int, default=48, help="crop size in pixels (the classifier's input)")
    p.add_argument("--margin", type=float, default=ClassifierConfig.margin,
                   help="margin around the face box, per side (the device crops with the same)")
    p.add_argument("--colour", action="store_true", help="save BGR crops instead of grey")
    p.add_argument("--no-align", action="store_true", help="do not rotate faces to level the eyes")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse images larger than this")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ferlite.edge.detection.registry import create_detector
    from ferlite.tables import format_table

    options = {} if args.score is None else {"score_threshold": args.score}
    detector = create_detector(args.detector, **options)
    ignored: Counter = Counter()
    root, inputs = list_inputs(args.input, ignored)
    if args.out.resolve() == root.resolve():
        raise UsageError("--out must be a new folder, not the input data set")
    done = {r.get("src") for r in dataset.read_rows(args.out)} if (args.out / dataset.MANIFEST).exists() else set()
    todo = [r for r in inputs if r["src"] not in done]
    if done:
        print(f"{len(inputs) - len(todo)} of {len(inputs)} images already processed in {args.out}; skipping them")
    counts: Counter = Counter()  # manifest rows (one per image, or per face with --keep all) by status, reason
    read = 0  # images that could be read (kept or not)
    fields = list(dataset.COLUMNS) + list(FACE_COLUMNS)
    with dataset.ManifestAppender(args.out / dataset.MANIFEST, fields) as manifest:
        for row in tqdm(todo, desc=f"faces ({detector.name})", unit="img"):
            out_rows = list(process(root, row, args.out, detector, args))
            read += not any(r["reason"].startswith("unreadable: ") for r in out_rows)
            for out_row in out_rows:
                manifest.write(out_row)
                counts[(out_row["status"], _reason_kind(out_row["reason"]))] += 1
    table = [[s, r, n] for (s, r), n in sorted(counts.items(), key=lambda kv: (kv[0][0] != "kept", -kv[1]))]
    print(format_table(["status", "reason", "faces" if args.keep == "all" else "images"], table))
    kept = sum(n for (s, _), n in counts.items() if s == "kept")
    total = sum(counts.values())
    if total:
        print(f"kept {kept} of {total} ({100 * kept / total:.1f}%) with {detector.name}; manifest: "
              f"{args.out / dataset.MANIFEST}" + _files_part(counts, read, ignored))
    return 0


def _files_part(counts: Counter, read: int, ignored: Counter) -> str:
    """``; files: 50 processed, 12 skipped (truncated JPEG 7, ...), 3 ignored (...)``, when any were skipped
    (unreadable) or ignored; processed files are those whose image was read (kept or not)."""
    from ferlite.tables import format_counts

    unreadable = Counter({r[len("unreadable: "):]: n for (s, r), n in counts.items() if r.startswith("unreadable: ")})
    if not unreadable and not ignored:
        return ""
    text = f"; files: {read} processed, {sum(unreadable.values())} skipped"
    text += f" ({format_counts(unreadable)})" if unreadable else ""
    return text + (f", {sum(ignored.values())} ignored ({format_counts(ignored)})" if ignored else "")


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary (drop the per-image numbers)."""
    if reason.startswith("unreadable: "):
        return reason.split(" (")[0].split(":")[0] + ": " + reason[12:].split(" (")[0].split(":")[0]
    return reason.split(" (")[0]
