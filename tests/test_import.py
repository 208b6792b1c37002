"""End-to-end tests of `ferlite import` (trainer/importers.py) through `ferlite.cli.main`.

Every source is synthetic and written into tmp_path, except the test marked ``shared``, which
imports the real FER2013 / FER+ files from $FERLITE_DATA and checks the published counts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from ferlite.cli import main

# FER2013's emotion index order, written out here rather than taken from the code under test.
FER2013_NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


# --------------------------------------------------------------------------------------------- helpers


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run `ferlite ARGS` in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def read_manifest(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PROGRESS = re.compile(r"^[\w+ ]*:\s+\d+%\|")  # a tqdm progress line, e.g. "fer2013:  50%|#####  | 1/2"


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    """A non-zero exit and a single message line on stderr (besides progress bars), no traceback."""
    assert rc != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1, err
    assert lines[0].startswith("ferlite import: error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def write_image(path: Path, seed: int, size: tuple[int, int] = (24, 20)) -> Path:
    """A small noise image (distinct content per seed) written with OpenCV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


def pixel_string(rng: np.random.Generator) -> str:
    return " ".join(map(str, rng.integers(0, 256, 48 * 48)))


# (emotion index, Usage); rows 7 and 8 get the same pixel string (one in Training, one in PublicTest).
FER_ROWS = [
    (3, "Training"),  # 0
    (0, "Training"),  # 1
    (2, "Training"),  # 2
    (6, "Training"),  # 3
    (0, "Training"),  # 4
    (3, "Training"),  # 5
    (6, "Training"),  # 6
    (4, "Training"),  # 7  duplicate pixels ...
    (4, "PublicTest"),  # 8 ... of row 7
    (5, "PublicTest"),  # 9
    (1, "PublicTest"),  # 10
    (1, "PrivateTest"),  # 11
    (3, "PrivateTest"),  # 12
]
DUP_ROWS = (7, 8)


def write_fer2013(path: Path, rows=FER_ROWS, gz: bool = False) -> list[str]:
    """Write a FER2013-layout csv; return the pixel strings row by row."""
    rng = np.random.default_rng(2013)
    pixels = [pixel_string(rng) for _ in rows]
    pixels[DUP_ROWS[1]] = pixels[DUP_ROWS[0]]
    text = "emotion,pixels,Usage\n" + "".join(f"{e},{p},{u}\n" for (e, u), p in zip(rows, pixels))
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return pixels


@pytest.fixture()
def fer_csv(tmp_path) -> tuple[Path, list[str]]:
    path = tmp_path / "fer2013.csv"
    return path, write_fer2013(path)


# --------------------------------------------------------------------------------------------- 1. FER2013


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "csv.gz"])
def test_fer2013_import(tmp_path, capsys, gz):
    src = tmp_path / ("fer2013.csv.gz" if gz else "fer2013.csv")
    pixels = write_fer2013(src, gz=gz)
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", src, "--out", out)

    assert rc == 0
    m = read_manifest(out)
    # Every row kept (duplicates included: FER2013 is kept as published), in order, with its own split.
    assert len(m) == len(FER_ROWS)
    assert m["split"].tolist() == [u for _, u in FER_ROWS]
    assert m["split"].value_counts().to_dict() == {"Training": 8, "PublicTest": 3, "PrivateTest": 2}
    assert m["label"].tolist() == [FER2013_NAMES[e] for e, _ in FER_ROWS]
    assert set(m["source"]) == {"fer2013"}
    assert set(m["width"]) == {"48"} and set(m["height"]) == {"48"}
    for row, pix in zip(m.itertuples(), pixels):
        f = out / row.path
        assert f.suffix == ".png" and f.is_file()
        assert sha256(f) == row.sha256
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        assert img.shape == (48, 48)
        # lossless: the PNG holds exactly the csv's pixels, row-major
        np.testing.assert_array_equal(img.ravel(), np.array(pix.split(), dtype=np.uint8))
    # the duplicate pair has one hash, every other row its own
    assert m["sha256"].nunique() == len(FER_ROWS) - 1
    assert m.loc[DUP_ROWS[0], "sha256"] == m.loc[DUP_ROWS[1], "sha256"]

    # duplicates are reported on stdout and in duplicates_fer2013.csv, and kept
    assert "1 exact duplicates" in stdout
    assert "kept" in stdout
    report = out / "duplicates_fer2013.csv"
    assert report.name in stdout
    dups = pd.read_csv(report, dtype=str)
    assert dups.to_dict("records") == [
        {"path": m.loc[DUP_ROWS[1], "path"], "duplicate_of": m.loc[DUP_ROWS[0], "path"], "split": "PublicTest"}
    ]
    assert f"imported {len(FER_ROWS)} images" in stdout


def test_fer2013_duplicates_drop(tmp_path, capsys, fer_csv):
    src, _ = fer_csv
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", src, "--out", out, "--duplicates", "drop")

    assert rc == 0
    m = read_manifest(out)
    assert len(m) == len(FER_ROWS) - 1
    assert m["sha256"].is_unique
    # the first occurrence (Training) stays, the later copy (PublicTest) goes
    assert m["split"].value_counts().to_dict() == {"Training": 8, "PublicTest": 2, "PrivateTest": 2}
    assert "1 exact duplicates" in stdout and "dropped" in stdout
    assert (out / "duplicates_fer2013.csv").is_file()


def test_fer2013_without_duplicates_writes_no_report(tmp_path, capsys):
    src = tmp_path / "fer2013.csv"
    rng = np.random.default_rng(1)
    src.write_text("emotion,pixels,Usage\n" + "".join(f"{i},{pixel_string(rng)},Training\n" for i in range(7)))
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", src, "--out", out)

    assert rc == 0
    assert read_manifest(out)["label"].tolist() == FER2013_NAMES
    assert "duplicates" not in stdout
    assert not list(out.glob("duplicates_*.csv"))


# --------------------------------------------------------------------------------------------- 2. FER+

# One FER+ row per FER_ROWS row (same Usage order). Vote order:
# neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_VOTES = [
    ("fer0.png", [2, 8, 0, 0, 0, 0, 0, 0, 0, 0]),  # 0 happy (plurality)
    ("fer1.png", [6, 0, 0, 0, 4, 0, 0, 0, 0, 0]),  # 1 FER2013 angry -> neutral
    ("fer2.png", [0, 0, 0, 0, 0, 0, 5, 0, 5, 0]),  # 2 fear tied with unknown -> dropped
    ("fer3.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),  # 3 not a face -> dropped
    ("fer4.png", [0, 0, 0, 4, 4, 0, 0, 0, 2, 0]),  # 4 sadness = anger, FER2013 says angry -> angry
    ("fer5.png", [0, 0, 5, 0, 0, 0, 0, 0, 0, 5]),  # 5 surprise tied with NF -> dropped
    ("", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # 6 no FER+ image name -> dropped
    ("fer7.png", [1, 0, 0, 7, 0, 0, 0, 0, 2, 0]),  # 7 sad
    ("fer8.png", [1, 0, 0, 7, 0, 0, 0, 0, 2, 0]),  # 8 sad (duplicate pixels of row 7)
    ("fer9.png", [0, 3, 3, 0, 0, 0, 0, 0, 0, 0]),  # 9 happiness = surprise, FER2013 says surprise -> surprise
    ("fer10.png", [0, 0, 0, 0, 0, 3, 0, 7, 0, 0]),  # 10 contempt (not a FER2013 class)
    ("fer11.png", [4, 0, 4, 0, 0, 0, 0, 0, 2, 0]),  # 11 neutral = surprise, FER2013 disgust not tied -> neutral
    ("fer12.png", [0, 9, 0, 0, 0, 0, 0, 0, 1, 0]),  # 12 happy
]
FERPLUS_EXPECTED = {0: "happy", 1: "neutral", 4: "angry", 7: "sad", 8: "sad", 9: "surprise", 10: "contempt",
                    11: "neutral", 12: "happy"}
#: FER+'s evaluation protocol on the same votes: single votes dropped, more than half of the rest needed (rows 4, 9
#: and 11 are ties without a majority; row 7's lone neutral vote is dropped, so sad holds 7 of 9).
FERPLUS_PROTOCOL = {0: "happy", 1: "neutral", 7: "sad", 8: "sad", 10: "contempt", 12: "happy"}
VOTE_NAMES = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt", "unknown", "nf"]


def write_ferplus(path: Path, rows=FER_ROWS, votes=FERPLUS_VOTES) -> Path:
    lines = [FERPLUS_HEADER] + [f"{u},{name}," + ",".join(map(str, v)) for (_, u), (name, v) in zip(rows, votes)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ferplus_relabelling(tmp_path, capsys, fer_csv):
    src, _ = fer_csv
    ferplus = write_ferplus(tmp_path / "fer2013new.csv")
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", src, "--ferplus", ferplus, "--out", out)

    assert rc == 0
    m = read_manifest(out)
    kept = sorted(FERPLUS_EXPECTED)
    assert len(m) == len(kept)
    assert m["label"].tolist() == [FERPLUS_EXPECTED[i] for i in kept]
    assert m["split"].tolist() == [FER_ROWS[i][1] for i in kept]
    assert m["fer2013_label"].tolist() == [FER2013_NAMES[FER_ROWS[i][0]] for i in kept]
    assert "FER+: 4 rows dropped" in stdout
    for name in VOTE_NAMES:
        assert f"votes_{name}" in m.columns
    for row, i in zip(m.itertuples(), kept):
        assert [int(getattr(row, f"votes_{n}")) for n in VOTE_NAMES] == FERPLUS_VOTES[i][1]
        assert sha256(out / row.path) == row.sha256
    # the PNG file names still point back at the FER2013 row they came from
    assert [int(Path(p).stem) for p in m["path"]] == kept


@pytest.mark.parametrize("usage", ["Training", "PublicTest"])
def test_evaluation_reads_the_labels_the_import_writes(tmp_path, fer_csv, usage):
    """`ferlite evaluate --ferplus` scores a FER2013 csv against the very labels `ferlite import --ferplus` gives
    the same rows (the same faces dropped), and with no --ferplus against FER2013's own."""
    pytest.importorskip("pandas")
    from ferlite.trainer.evaluate import load_fer_csv

    src, pixels = fer_csv
    ferplus = write_ferplus(tmp_path / "fer2013new.csv")
    rows = [i for i in sorted(FERPLUS_EXPECTED) if FER_ROWS[i][1] == usage]

    data = load_fer_csv(src, usage, ferplus, protocol=False)

    assert data.labels == [FERPLUS_EXPECTED[i] for i in rows]
    assert data.name == f"fer2013.csv:{usage} (FER+ plurality labels)"
    expected_x = [np.array(pixels[i].split(), np.uint8).reshape(48, 48, 1) for i in rows]
    assert np.array_equal(data.x, np.stack(expected_x))
    plain = load_fer_csv(src, usage)
    assert plain.labels == [FER2013_NAMES[e] for e, u in FER_ROWS if u == usage]


@pytest.mark.parametrize("usage", ["Training", "PublicTest"])
def test_evaluation_follows_the_ferplus_protocol(tmp_path, fer_csv, usage):
    """By default `--ferplus` labels faces as FER+'s published figures do (Barsoum et al. 2016): the emotion
    holding more than half of the votes once single votes are dropped; ties and unknown / not-a-face left out."""
    pytest.importorskip("pandas")
    from ferlite.trainer.evaluate import load_fer_csv

    src, _ = fer_csv
    data = load_fer_csv(src, usage, write_ferplus(tmp_path / "fer2013new.csv"))
    assert data.labels == [FERPLUS_PROTOCOL[i] for i in sorted(FERPLUS_PROTOCOL) if FER_ROWS[i][1] == usage]
    assert data.name == f"fer2013.csv:{usage} (FER+ majority labels)"


def test_evaluate_ferplus_reports_the_eight_class_figure(tmp_path, capsys, fer_csv):
    """PublicTest's protocol faces here are one sad and one contempt face: the seven-class default is scored
    on the sad face alone, and FER+'s eight-class figure counts the contempt face as wrong."""
    pytest.importorskip("pandas")
    src, _ = fer_csv
    ferplus = write_ferplus(tmp_path / "fer2013new.csv")
    rc, out, _ = run_cli(capsys, "evaluate", "--data", src, "--ferplus", ferplus, "--json", tmp_path / "r.json")
    assert rc == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["n"] == 1 and result["skipped_unknown_label"] == 1
    assert result["ferplus_protocol"] == {"classes": 8, "n": 2, "accuracy": result["accuracy"] / 2}
    right = "100.00%" if result["accuracy"] else "0.00%"
    assert (f"FER+ protocol, 8 classes: {result['accuracy'] / 2:.2%} of 2 faces; 7 classes (1 contempt faces "
            f"left out): {right} of 1") in out


def test_evaluate_ferplus_needs_a_fer2013_csv(tmp_path, capsys):
    pytest.importorskip("pandas")
    write_image(tmp_path / "faces" / "happy" / "a.png", 1)
    rc, _, err = run_cli(capsys, "evaluate", "--data", tmp_path / "faces", "--ferplus", tmp_path / "new.csv")
    assert rc == 2 and "--ferplus apply to a FER2013-layout csv" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "defect",
    ["fewer rows", "other Usage order"],
)
def test_ferplus_rows_not_lined_up(tmp_path, capsys, fer_csv, defect):
    src, _ = fer_csv
    if defect == "fewer rows":
        ferplus = write_ferplus(tmp_path / "fer2013new.csv", FER_ROWS[:-1], FERPLUS_VOTES[:-1])
    else:
        swapped = list(FER_ROWS)
        swapped[0], swapped[-1] = swapped[-1], swapped[0]  # Training <-> PrivateTest
        ferplus = write_ferplus(tmp_path / "fer2013new.csv", swapped)
    out = tmp_path / "data"

    rc, _, err = run_cli(capsys, "import", src, "--ferplus", ferplus, "--out", out)

    assert_one_line_error(rc, err, str(ferplus), "do not line up")
    assert not (out / "manifest.csv").exists()


def test_ferplus_missing_columns(tmp_path, capsys, fer_csv):
    src, _ = fer_csv
    ferplus = tmp_path / "votes.csv"
    ferplus.write_text("Usage,Image name,neutral,happiness\nTraining,a.png,1,9\n")

    rc, _, err = run_cli(capsys, "import", src, "--ferplus", ferplus, "--out", tmp_path / "data")

    assert_one_line_error(rc, err, str(ferplus), "not a FER+ csv", "contempt")


def test_ferplus_only_for_fer2013(tmp_path, capsys):
    write_image(tmp_path / "faces" / "happy" / "a.png", 1)
    ferplus = write_ferplus(tmp_path / "fer2013new.csv")

    rc, _, err = run_cli(capsys, "import", tmp_path / "faces", "--ferplus", ferplus, "--out", tmp_path / "data")

    assert rc == 2
    assert_one_line_error(rc, err, "--ferplus")


# --------------------------------------------------------------------------------------------- 3. folders


def test_folder_with_split_folders(tmp_path, capsys):
    root = tmp_path / "faces"
    files = {
        "train/happy/a.png": 1,
        "train/happy/b.png": 2,
        "train/happiness/c.png": 3,
        "train/Angry/d.png": 4,
        "train/sad/e.png": 5,
        "train/SADNESS/f.jpg": 6,
        "Test/happy/g.png": 7,
        "test/surprised/h.png": 8,
        "validation/neutral/i.png": 9,
    }
    for rel, seed in files.items():
        write_image(root / rel, seed)
    (root / "test/sad").mkdir()
    shutil.copyfile(root / "train/sad/e.png", root / "test/sad/e_copy.png")  # exact duplicate across splits
    (root / "train/happy/empty.png").write_bytes(b"")  # 0-byte file
    (root / "train/sad/notes.jpg").write_text("this is not a picture\n")  # not an image
    (root / "train/happy/readme.txt").write_text("ignored: not an image extension\n")
    write_image(root / "train/bored/x.png", 10)  # not an expression: folder skipped
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", root, "--out", out)

    assert rc == 0
    m = read_manifest(out)
    got = {Path(p).relative_to("images/faces").as_posix(): (label, split) for p, label, split in
           zip(m["path"], m["label"], m["split"])}
    assert got == {
        "train/happy/a.png": ("happy", "train"),
        "train/happy/b.png": ("happy", "train"),
        "train/happiness/c.png": ("happy", "train"),
        "train/Angry/d.png": ("angry", "train"),
        "train/SADNESS/f.jpg": ("sad", "train"),
        "Test/happy/g.png": ("happy", "test"),
        "test/sad/e_copy.png": ("sad", "test"),  # the first of the two identical files is kept
        "test/surprised/h.png": ("surprise", "test"),
        "validation/neutral/i.png": ("neutral", "val"),
    }
    assert set(m["source"]) == {"faces"}
    for row in m.itertuples():
        f = out / row.path
        assert sha256(f) == row.sha256
        assert (int(row.width), int(row.height)) == (20, 24)
    # bad files: skipped and named, with the reason; the rest imported
    assert f"skipped {root / 'train/happy/empty.png'}: 0-byte file" in stdout
    assert f"skipped {root / 'train/sad/notes.jpg'}: not an image" in stdout
    assert "skipped 2 bad files" in stdout
    # duplicate dropped and listed
    assert "1 exact duplicates" in stdout and "dropped" in stdout
    dups = pd.read_csv(out / "duplicates_faces.csv", dtype=str)
    assert dups["path"].tolist() == ["images/faces/train/sad/e.png"]
    assert dups["duplicate_of"].tolist() == ["images/faces/test/sad/e_copy.png"]


def test_folder_flat_layout_gets_stratified_splits(tmp_path, capsys):
    root = tmp_path / "flat"
    seed = 0
    for folder in ("happiness", "sad", "Angry"):
        for k in range(10):
            seed += 1
            write_image(root / folder / f"{k:02d}.png", seed)
    shutil.copyfile(root / "happiness/00.png", root / "sad/zz_copy.png")  # duplicate: dropped
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", root, "--out", out, "--val", "0.1", "--test", "0.1")

    assert rc == 0
    m = read_manifest(out)
    assert len(m) == 30
    assert "images/flat/sad/zz_copy.png" not in set(m["path"])
    assert m["sha256"].is_unique
    assert m["label"].value_counts().to_dict() == {"happy": 10, "sad": 10, "angry": 10}
    # 30 images: 3 test, 3 val, 24 train, and stratified: one of each class in test and in val
    table = pd.crosstab(m["label"], m["split"])
    assert table.to_dict() == {
        "test": {"angry": 1, "happy": 1, "sad": 1},
        "train": {"angry": 8, "happy": 8, "sad": 8},
        "val": {"angry": 1, "happy": 1, "sad": 1},
    }
    assert "1 exact duplicates" in stdout


def test_folder_splits_are_reproducible_and_seeded(tmp_path, capsys):
    root = tmp_path / "flat"
    for k in range(20):
        write_image(root / ("happy" if k % 2 else "sad") / f"{k:02d}.png", 100 + k)

    def splits(name, seed):
        rc, _, _ = run_cli(capsys, "import", root, "--out", tmp_path / name, "--seed", seed)
        assert rc == 0
        return read_manifest(tmp_path / name).set_index("path")["split"].to_dict()

    first, again = splits("a", 0), splits("b", 0)
    assert first == again
    others = [splits(f"s{seed}", seed) for seed in (1, 2, 3)]
    assert any(o != first for o in others)


def test_folder_without_class_folders(tmp_path, capsys):
    root = tmp_path / "nothing"
    write_image(root / "pets" / "cat.png", 1)

    rc, _, err = run_cli(capsys, "import", root, "--out", tmp_path / "data")

    assert_one_line_error(rc, err, str(root), "no class folders")


# --------------------------------------------------------------------------------------------- 4. labels csv

SPELLINGS = {"happiness": "happy", "anger": "angry", "sadness": "sad", "Neutral": "neutral", "SURPRISE": "surprise"}


def write_labels_source(root: Path, n_subjects: int = 12) -> Path:
    """root/labels.csv with images in root/images/: every subject has one image of every label."""
    lines = ["image,emotion"]
    seed = 0
    for s in range(n_subjects):
        for k, spelling in enumerate(SPELLINGS, start=1):
            seed += 1
            name = f"p{s:02d}_{k}.jpg"
            write_image(root / "images" / name, seed)
            lines.append(f"{name},{spelling}")
    lines += ["ghost_1.jpg,happiness", "ghost_2.jpg,anger"]  # listed but absent
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def test_labels_csv_grouped_split(tmp_path, capsys):
    csv_path = write_labels_source(tmp_path / "wild")
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", csv_path, "--out", out, "--subject-pattern", r"^(.+)_\d+\.jpg$")

    assert rc == 0
    m = read_manifest(out)
    assert len(m) == 12 * len(SPELLINGS)
    assert set(m["source"]) == {"labels"}
    # labels mapped from their spellings
    for row in m.itertuples():
        k = int(Path(row.path).stem.split("_")[1])
        assert row.label == list(SPELLINGS.values())[k - 1]
        assert row.subject == Path(row.path).name.split("_")[0]
        assert sha256(out / row.path) == row.sha256
    assert set(m["subject"]) == {f"p{s:02d}" for s in range(12)}
    # grouped: each subject lies in exactly one split; all three splits used; every label everywhere
    assert (m.groupby("subject")["split"].nunique() == 1).all()
    assert set(m["split"]) == {"train", "val", "test"}
    for split, part in m.groupby("split"):
        assert set(part["label"]) == set(SPELLINGS.values()), split
    # the files listed in the csv but absent are reported and skipped
    assert "skipped ghost_1.jpg: file not found" in stdout
    assert "skipped ghost_2.jpg: file not found" in stdout
    assert "skipped 2 bad files" in stdout


def test_labels_csv_names_the_pattern_misses_keep_the_split_grouped(tmp_path, capsys, caplog):
    # The shared wild photos have two such names among 2,500; they used to blank the subject and with it turn
    # the grouping off for every row (174 people on both sides of the split).
    csv_path = write_labels_source(tmp_path / "wild")
    for seed, name in enumerate(("odd-name-1k.jpg", "odd-name-2k.jpg"), start=1000):
        write_image(csv_path.parent / "images" / name, seed)
    csv_path.write_text(csv_path.read_text() + "odd-name-1k.jpg,happiness\nodd-name-2k.jpg,neutral\n")
    out = tmp_path / "data"

    rc, _, _ = run_cli(capsys, "import", csv_path, "--out", out, "--subject-pattern", r"^(.+)_\d+\.jpg$")

    assert rc == 0
    m = read_manifest(out)
    assert len(m) == 12 * len(SPELLINGS) + 2
    assert set(m.loc[m["path"].str.contains("odd-name"), "subject"]) == {"odd-name-1k", "odd-name-2k"}
    assert (m.groupby("subject")["split"].nunique() == 1).all()
    assert "2 image name(s) do not match --subject-pattern (odd-name-1k.jpg, odd-name-2k.jpg)" in caplog.text


def test_labels_csv_images_option_and_unknown_label(tmp_path, capsys):
    images = tmp_path / "pictures"
    write_image(images / "a.png", 1)
    write_image(images / "b.png", 2)
    write_image(images / "c.png", 3)
    csv_path = tmp_path / "meta" / "list.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("Image,Emotion\na.png,joy\nb.png,afraid\nc.png,bored\n")
    out = tmp_path / "data"

    rc, stdout, _ = run_cli(capsys, "import", csv_path, "--out", out, "--images", images, "--source", "mine")

    assert rc == 0
    m = read_manifest(out)
    assert dict(zip(m["path"], m["label"])) == {"images/mine/a.png": "happy", "images/mine/b.png": "fear"}
    assert f"skipped {images / 'c.png'}: unknown label 'bored'" in stdout


# --------------------------------------------------------------------------------------------- 5. append


def test_second_source_appends_and_drops_images_already_present(tmp_path, capsys, fer_csv):
    src, _ = fer_csv
    out = tmp_path / "data"
    rc, _, _ = run_cli(capsys, "import", src, "--out", out)
    assert rc == 0
    before = read_manifest(out)

    root = tmp_path / "extra"
    for k in range(10):
        write_image(root / ("happy" if k % 2 else "sad") / f"{k}.png", 500 + k)
    already = before.loc[3, "path"]  # a FER2013 image, copied into the new source
    (root / "neutral").mkdir()
    shutil.copyfile(out / already, root / "neutral" / "same_as_fer.png")

    rc, stdout, _ = run_cli(capsys, "import", root, "--out", out, "--val", "0.2", "--test", "0.2")

    assert rc == 0
    after = read_manifest(out)
    assert len(after) == len(before) + 10
    # the first source's rows are untouched (the new columns may only be added)
    pd.testing.assert_frame_equal(after.iloc[: len(before)][before.columns], before)
    new = after.iloc[len(before):]
    assert set(new["source"]) == {"extra"}
    assert "images/extra/neutral/same_as_fer.png" not in set(after["path"])
    assert set(new["split"]) <= {"train", "val", "test"} and "" not in set(new["split"])
    for row in after.itertuples():
        assert sha256(out / row.path) == row.sha256
    assert "1 exact duplicates" in stdout and "dropped" in stdout
    dups = pd.read_csv(out / "duplicates_extra.csv", dtype=str, keep_default_na=False)
    assert dups.to_dict("records") == [
        {"path": "images/extra/neutral/same_as_fer.png", "duplicate_of": "(already in the data set)", "split": ""}
    ]
    # a third source, a labels csv, appends as well
    csv_path = write_labels_source(tmp_path / "wild", n_subjects=3)
    rc, _, _ = run_cli(capsys, "import", csv_path, "--out", out, "--val", "0.3", "--test", "0.3",
                       "--subject-pattern", r"^(.+)_\d+\.jpg$")
    assert rc == 0
    final = read_manifest(out)
    assert final["source"].value_counts().to_dict() == {"fer2013": 13, "extra": 10, "labels": 15}
    assert final["path"].is_unique


# --------------------------------------------------------------------------------------------- 6. bad input


def test_nonexistent_path(tmp_path, capsys):
    missing = tmp_path / "no_such.csv"
    out = tmp_path / "data"

    rc, _, err = run_cli(capsys, "import", missing, "--out", out)

    assert rc == 1
    assert_one_line_error(rc, err, str(missing), "no such file")
    assert not out.exists()


def test_csv_that_is_neither_format(tmp_path, capsys):
    bad = tmp_path / "scores.csv"
    bad.write_text("name,score,date\nalice,3,2024-01-01\n")
    out = tmp_path / "data"

    rc, _, err = run_cli(capsys, "import", bad, "--out", out)

    assert_one_line_error(rc, err, str(bad), "image,emotion")
    assert not (out / "manifest.csv").exists()


def test_forced_fer2013_format_on_wrong_csv(tmp_path, capsys):
    bad = tmp_path / "scores.csv"
    bad.write_text("emotion,image\nhappy,a.png\n")

    rc, _, err = run_cli(capsys, "import", bad, "--format", "fer2013", "--out", tmp_path / "data")

    assert_one_line_error(rc, err, str(bad), "not a FER2013 csv", "pixels")


def test_fer2013_row_with_wrong_pixel_count(tmp_path, capsys):
    bad = tmp_path / "short.csv"
    bad.write_text("emotion,pixels,Usage\n3," + " ".join(["7"] * 100) + ",Training\n")

    rc, _, err = run_cli(capsys, "import", bad, "--out", tmp_path / "data")

    assert_one_line_error(rc, err, str(bad), "row 2", "100 pixels")


@pytest.mark.parametrize(("val", "test"), [("0.7", "0.5"), ("-0.1", "0.1"), ("0.1", "1.0")])
def test_bad_split_fractions(tmp_path, capsys, val, test):
    write_image(tmp_path / "faces" / "happy" / "a.png", 1)
    out = tmp_path / "data"

    rc, _, err = run_cli(capsys, "import", tmp_path / "faces", "--out", out, "--val", val, "--test", test)

    assert rc == 2
    assert_one_line_error(rc, err, f"--val {float(val)}", f"--test {float(test)}")
    assert not out.exists()


def test_unknown_extension_needs_format(tmp_path, capsys):
    f = tmp_path / "data.parquet"
    f.write_bytes(b"PAR1")

    rc, _, err = run_cli(capsys, "import", f, "--out", tmp_path / "data")

    assert rc == 2
    assert_one_line_error(rc, err, str(f), "--format")


# --------------------------------------------------------------------------------------------- regressions
# Each of these once gave a traceback or a wrong data set.


def test_ferplus_missing_file(tmp_path, capsys, fer_csv):
    src, _ = fer_csv
    missing = tmp_path / "nope.csv"
    rc, _, err = run_cli(capsys, "import", src, "--ferplus", missing, "--out", tmp_path / "data")
    assert_one_line_error(rc, err, str(missing))


@pytest.mark.parametrize(("emotion", "value"), [("9", "1"), ("1", "300"), ("1", "x")])
def test_fer2013_malformed_row(tmp_path, capsys, emotion, value):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"emotion,pixels,Usage\n{emotion}," + " ".join([value] * 2304) + ",Training\n")
    rc, _, err = run_cli(capsys, "import", bad, "--out", tmp_path / "data")
    assert_one_line_error(rc, err, str(bad), "row 2")


@pytest.mark.parametrize("content", [b"", b"\xd9\x00\xff\xfe" * 64], ids=["empty", "binary"])
def test_unreadable_csv(tmp_path, capsys, content):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    rc, _, err = run_cli(capsys, "import", bad, "--out", tmp_path / "data")
    assert_one_line_error(rc, err, str(bad))


def test_reimporting_fer2013_adds_nothing(tmp_path, capsys, fer_csv):
    src, _ = fer_csv
    out = tmp_path / "data"
    assert run_cli(capsys, "import", src, "--out", out)[0] == 0
    assert run_cli(capsys, "import", src, "--out", out)[0] == 0
    m = read_manifest(out)
    assert len(m) == len(FER_ROWS)
    assert m["path"].is_unique


def test_same_source_name_does_not_overwrite(tmp_path, capsys):
    for parent, seed in (("a", 1), ("b", 50)):
        for k in range(4):
            write_image(tmp_path / parent / "faces" / "happy" / f"{k}.png", seed + k)
    out = tmp_path / "data"
    assert run_cli(capsys, "import", tmp_path / "a" / "faces", "--out", out)[0] == 0
    assert run_cli(capsys, "import", tmp_path / "b" / "faces", "--out", out)[0] == 0
    m = read_manifest(out)
    assert len(m) == 8
    assert m["path"].is_unique
    for row in m.itertuples():
        assert sha256(out / row.path) == row.sha256


def test_labels_csv_empty_subject_cell(tmp_path, capsys):
    root = tmp_path / "src"
    lines = ["image,emotion,subject"]
    for k in range(20):
        write_image(root / f"{k}.png", k)
        lines.append(f"{k}.png,{'happy' if k % 2 else 'sad'},{f'p{k}' if k < 10 else ''}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "data"
    assert run_cli(capsys, "import", root / "labels.csv", "--out", out)[0] == 0
    assert "nan" not in set(read_manifest(out)["subject"])


def test_small_grouped_source(tmp_path, capsys):
    root = tmp_path / "src"
    lines = ["image,emotion,subject"]
    for k, (label, subject) in enumerate([("happy", "p1"), ("sad", "p2"), ("angry", "p3"), ("happy", "p4"),
                                          ("sad", "p5"), ("angry", "p6")]):
        write_image(root / f"{k}.png", k)
        lines.append(f"{k}.png,{label},{subject}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    rc, _, err = run_cli(capsys, "import", root / "labels.csv", "--out", tmp_path / "data")
    assert rc == 0 or "Traceback" not in err


def test_small_flat_source(tmp_path, capsys):
    for k in range(6):
        write_image(tmp_path / "faces" / ("happy" if k % 2 else "sad") / f"{k}.png", k)
    rc, _, err = run_cli(capsys, "import", tmp_path / "faces", "--out", tmp_path / "data")
    assert rc == 0 or "Traceback" not in err


# --------------------------------------------------------------------------------------------- 7. shared data

FER2013_TRAINING = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830, "surprise": 3171,
                    "neutral": 4965}
FER2013_PUBLICTEST = {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "sad": 653, "surprise": 415,
                      "neutral": 607}
FERPLUS_TOTALS = {"neutral": 11024, "happy": 8402, "surprise": 3964, "sad": 4119, "angry": 2887, "fear": 843,
                  "disgust": 252, "contempt": 186}


@pytest.mark.shared
def test_shared_fer2013_counts(shared_data, tmp_path, capsys):
    src = shared_data / "fer2013" / "fer2013.csv.gz"
    out = tmp_path / "fer2013"

    rc, _, err = run_cli(capsys, "import", src, "--out", out)

    assert rc == 0, err
    m = read_manifest(out)
    assert m["split"].value_counts().to_dict() == {"Training": 28709, "PublicTest": 3589}
    assert m[m["split"] == "Training"]["label"].value_counts().to_dict() == FER2013_TRAINING
    assert m[m["split"] == "PublicTest"]["label"].value_counts().to_dict() == FER2013_PUBLICTEST
    first = m.iloc[0]
    assert sha256(out / first["path"]) == first["sha256"]


@pytest.mark.shared
def test_shared_ferplus_counts(shared_data, tmp_path, capsys):
    src = shared_data / "fer2013" / "fer2013.csv.gz"
    ferplus = shared_data / "fer2013" / "fer2013new.csv"
    out = tmp_path / "ferplus"

    rc, _, err = run_cli(capsys, "import", src, "--ferplus", ferplus, "--out", out)

    assert rc == 0, err
    m = read_manifest(out)
    assert len(m) == 31677
    assert m["split"].value_counts().to_dict() == {"Training": 28153, "PublicTest": 3524}
    assert m["label"].value_counts().to_dict() == FERPLUS_TOTALS
    assert {f"votes_{n}" for n in VOTE_NAMES} | {"fer2013_label"} <= set(m.columns)
