"""Issue 14, bad files: a generated corpus (tests/corpus.py: 1,000+ malformed and unusual files, 50 good photos)
through `ferlite recognize`, `ferlite faces` and `ferlite import`, each in its own process as a user runs it.

Every batch completes (exit 0), every good photo is processed, every bad file has its reason in the output
(recognize: OUT/skipped.csv; faces: the manifest; import: OUT/skipped_SOURCE.csv), ignored entries are counted
in the summary line, nothing but ferlite's own one-line warnings reaches stderr (no libpng, libjpeg or OpenCV
chatter), and each command's peak RSS, measured by wait4 on its process, stays under 600 MB.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from corpus import Corpus, make_corpus

MAX_RSS_MB = 600
#: What a ferlite command may write to stderr here: its own log lines (a skipped photo's warning).
OWN_LINE = re.compile(r"^(WARNING|INFO) ferlite\.[\w.]+: ")
LABELS = ("happy", "sad", "angry", "neutral", "surprise", "fear", "disgust")


@dataclass
class Run:
    rc: int
    out: str
    err: str
    rss_mb: float
    seconds: float


#: Starts the command from a small process and reports its peak RSS (wait4): Linux counts the memory of the
#: process that forked it into a child's ru_maxrss, and pytest's own process is large by then.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def ferlite(*args, cwd: Path, prefix: list[str] | None = None, env: dict | None = None) -> Run:
    """``python -m ferlite ARGS`` in its own process, started by a small one; its peak RSS from wait4."""
    env = dict(os.environ if env is None else env, TQDM_DISABLE="1", PYTHONIOENCODING="utf-8")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "maxrss"
        os.chmod(tmp, 0o777)  # the launcher may run as another user (prefix)
        t0 = time.perf_counter()
        ferlite_command = [sys.executable, "-m", "ferlite", *map(str, args)]
        # As another user (prefix), the launcher's own exec of the venv's python is refused: no RSS figure then.
        command = [*prefix, *ferlite_command] if prefix else [sys.executable, "-c", LAUNCHER, str(rss_file),
                                                                *ferlite_command]
        proc = subprocess.run(command, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        rss_kb = int(rss_file.read_text()) if rss_file.exists() else 0
        return Run(proc.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                   rss_kb / 1024, seconds)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def check_run(run: Run, what: str, record_property) -> None:
    record_property(f"{what}_peak_rss_mb", round(run.rss_mb, 1))
    record_property(f"{what}_seconds", round(run.seconds, 1))
    assert run.rc == 0, run.err[-3000:]
    assert "Traceback" not in run.err
    foreign = [line for line in run.err.splitlines() if line.strip() and not OWN_LINE.match(line)]
    assert not foreign, f"{len(foreign)} lines on stderr that are not ferlite's own: {foreign[:10]}"
    assert run.rss_mb < MAX_RSS_MB, f"{what}: peak RSS {run.rss_mb:.0f} MB"
    assert run.rss_mb > 0 or what.startswith("nonroot"), f"{what}: no peak RSS measured"  # none as another user


def check_reasons(corpus: Corpus, skipped: dict[str, str], processed: set[str], what: str) -> None:
    """Each entry as the corpus expects: good photos processed, bad files skipped with their reason, 'any'
    entries one or the other, ignored entries in neither."""
    for e in corpus.entries:
        where = f"{what}: {e.name!r}"
        if e.expect == "ignored":
            assert e.name not in skipped and e.name not in processed, where
            continue
        assert (e.name in skipped) != (e.name in processed), f"{where} must be processed or skipped, once"
        if e.expect == "processed":
            assert e.name in processed, f"{where} skipped: {skipped.get(e.name)}"
        elif e.expect == "skipped":
            assert e.name in skipped, f"{where} was processed"
            assert skipped[e.name].startswith(e.reason), f"{where}: {skipped[e.name]!r}, not {e.reason!r}..."
        if e.name in skipped:
            assert skipped[e.name].strip() and "\n" not in skipped[e.name], where


def summary_counts(line: str) -> tuple[int, int, int]:
    m = re.search(r"files: (\d+) processed, (\d+) skipped.*?(?:(\d+) ignored|$)", line)
    assert m, line
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("bad_files")
    corpus = make_corpus(root / "corpus")
    bad = [e for e in corpus.entries if not e.good]
    assert len(bad) >= 1000 and len(corpus.good) == 50
    yield corpus
    (corpus.folder / "unreadable.jpg").chmod(0o644)


def test_recognize_every_file_gets_its_reason(corpus, tmp_path, record_property):
    run = ferlite("recognize", corpus.folder, "--out", tmp_path / "out", cwd=tmp_path)
    check_run(run, "recognize", record_property)
    skipped = {Path(r["path"]).name: r["reason"] for r in read_csv(tmp_path / "out" / "skipped.csv")}
    assert all(Path(r["path"]).parent == corpus.folder for r in read_csv(tmp_path / "out" / "skipped.csv"))
    copies = {p.name for p in (tmp_path / "out").iterdir()} - {"results.csv", "skipped.csv"}
    processed = {e.name for e in corpus.entries if e.name in copies or f"{e.name}.png" in copies}
    check_reasons(corpus, skipped, processed, "recognize")
    line = run.out.strip().splitlines()[-1]
    assert summary_counts(line) == (len(processed), len(skipped), len(corpus.named("ignored")))
    for r in read_csv(tmp_path / "out" / "results.csv"):  # names that are not UTF-8 come back as they are
        assert Path(r["path"]).is_file(), r["path"]


def test_faces_every_file_gets_its_reason_and_resumes(corpus, tmp_path, record_property):
    out = tmp_path / "faces"
    run = ferlite("faces", corpus.folder, "--out", out, cwd=tmp_path)
    check_run(run, "faces", record_property)
    rows = read_csv(out / "manifest.csv")
    skipped = {r["src"]: r["reason"][len("unreadable: "):] for r in rows if r["reason"].startswith("unreadable: ")}
    processed = {r["src"] for r in rows} - set(skipped)
    check_reasons(corpus, skipped, processed, "faces")
    for r in rows:
        if r["status"] == "kept":
            assert cv2.imread(str(out / r["path"]), cv2.IMREAD_UNCHANGED).shape == (48, 48)
    folders = {e.name for e in corpus.named("ignored").values() if (corpus.folder / e.name).is_dir()}
    ignored = len(corpus.named("ignored")) - len(folders)  # faces looks into folders instead of ignoring them
    assert summary_counts(run.out.strip().splitlines()[-1]) == (len(processed), len(skipped), ignored)
    again = ferlite("faces", corpus.folder, "--out", out, cwd=tmp_path)
    check_run(again, "faces_resume", record_property)
    assert f"{len(rows)} of {len(rows)} images already processed" in again.out
    assert len(read_csv(out / "manifest.csv")) == len(rows)


def write_labels(corpus: Corpus, root: Path) -> tuple[Path, list[str]]:
    """A labels csv beside the corpus naming every entry, plus rows that lead out of it: two photos outside
    (one by ../, one by absolute path), a system file, a missing file and '..'."""
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    photo = cv2.imread(str(corpus.folder / corpus.good[0].name))
    cv2.imwrite(str(outside / "escaped_up.png"), photo)
    cv2.imwrite(str(outside / "escaped_abs.bmp"), photo)
    extra = ["../outside/escaped_up.png", str(outside / "escaped_abs.bmp"), "../../../../../../../etc/hostname",
             "missing.jpg", ".."]
    labels = corpus.folder / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "emotion"])
        for i, name in enumerate([e.name for e in corpus.entries] + extra):
            writer.writerow([name, LABELS[i % len(LABELS)]])
    return labels, extra


def files_under(folder: Path, skip: set[Path]) -> set[Path]:
    return {p for p in folder.rglob("*") if not any(s == p or s in p.parents for s in skip)}


def test_import_every_file_gets_its_reason_and_nothing_escapes(corpus, tmp_path, record_property):
    root = corpus.folder.parent
    labels, extra = write_labels(corpus, root)
    out = tmp_path / "data"
    before = files_under(root, {corpus.folder}) | files_under(tmp_path, set())
    run = ferlite("import", labels, "--out", out, cwd=tmp_path)
    check_run(run, "import", record_property)
    assert files_under(root, {corpus.folder}) | files_under(tmp_path, {out}) == before  # nothing written outside
    manifest = read_csv(out / "manifest.csv")
    dups = read_csv(out / "duplicates_labels.csv") if (out / "duplicates_labels.csv").exists() else []
    rows = read_csv(out / "skipped_labels.csv")
    base = f"{corpus.folder}/"  # a row names a file found beside the csv by its path, one not found as written
    skipped = {r["path"].removeprefix(base): r["reason"] for r in rows}
    prefix = "images/labels/"
    imported = {r["path"][len(prefix):] for r in manifest + dups}
    for r in manifest:  # every copy is inside --out, under its own name
        assert r["path"].startswith(prefix) and ".." not in Path(r["path"]).parts, r["path"]
        assert (out / r["path"]).is_file() and not (out / r["path"]).is_symlink()
    # names that lead out are read where they point and copied inside, without the '..' and the root
    assert {"outside/escaped_up.png", f"{root / 'outside' / 'escaped_abs.bmp'}"[1:]} <= imported
    assert skipped["../../../../../../../etc/hostname"].startswith("not an image")
    assert skipped["missing.jpg"] == "file not found" and skipped[".."].startswith("no file name")
    entries = Corpus(corpus.folder, [e for e in corpus.entries if e.expect != "ignored"])
    check_reasons(entries, skipped, {n for n in imported if "/" not in n}, "import")
    for e in corpus.named("ignored").values():  # named in the csv, so read, and refused with a reason
        assert skipped[e.name]
    assert f"skipped {len(rows)} bad files (" in run.out.strip().splitlines()[-1]


@pytest.fixture
def shared_tmp():
    """A folder another user may use (pytest's own tmp folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="ferlite-nonroot-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def non_root_prefix() -> list[str]:
    """How to run a command as a user who cannot read a mode-000 file: as is when not root, else via setpriv as
    nobody (skipped, saying why, when that user cannot run this checkout's Python)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: an unreadable file cannot be tested")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import ferlite.cli"], capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"user nobody cannot run this checkout's Python: {probe.stderr.strip()[-300:]}")
    return prefix


def test_an_unreadable_file_is_a_reason_for_a_user_who_cannot_read_it(shared_tmp, record_property):
    prefix = non_root_prefix()
    photos = shared_tmp / "photos"
    photos.mkdir()
    photo = cv2.imread(str(Path(__file__).parent / "data" / "photos" / "skimage_astronaut.png"))
    cv2.imwrite(str(photos / "good.jpg"), photo)
    cv2.imwrite(str(photos / "locked.jpg"), photo)
    (photos / "locked.jpg").chmod(0)
    (photos / "labels.csv").write_text("image,emotion\ngood.jpg,happy\nlocked.jpg,sad\n")
    for p in (shared_tmp, photos):
        p.chmod(0o777)
    env = dict(os.environ, HOME=str(shared_tmp))
    runs = {"import": ferlite("import", photos / "labels.csv", "--out", shared_tmp / "data", cwd=shared_tmp,
                              prefix=prefix, env=env),
            "faces": ferlite("faces", photos, "--out", shared_tmp / "faces", cwd=shared_tmp, prefix=prefix, env=env),
            "recognize": ferlite("recognize", photos, "--out", shared_tmp / "rec", cwd=shared_tmp, prefix=prefix,
                                 env=env)}
    for what, run in runs.items():
        check_run(run, f"nonroot_{what}", record_property)
    denied = "cannot read file: Permission denied"
    assert f"skipped {photos / 'locked.jpg'}: {denied}" in runs["import"].out
    assert [r["path"] for r in read_csv(shared_tmp / "data" / "manifest.csv")] == ["images/labels/good.jpg"]
    faces = {r["src"]: r["reason"] for r in read_csv(shared_tmp / "faces" / "manifest.csv")}
    assert faces == {"good.jpg": "ok", "locked.jpg": f"unreadable: {denied}"}
    assert read_csv(shared_tmp / "rec" / "skipped.csv") == [{"path": str(photos / "locked.jpg"), "reason": denied}]
