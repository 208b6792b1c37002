"""Guided capture of expression images from a camera, a video file or a stream.

For each expression the subject is asked to pull that face ("show: surprise"), a countdown runs, then
--count frames are saved --interval seconds apart. The countdown and the interval are measured on the
source's frame timestamps: a live camera runs in real time and a recorded video replays as fast as it
decodes. Images go to OUT/images/capture/SUBJECT/LABEL/SUBJECT_LABEL_NNNN.jpg (numbering continues after
existing files; nothing is overwritten) and each one is appended to OUT/manifest.csv as it is written,
so an interrupted session keeps what it saved.

With a display (DISPLAY or WAYLAND_DISPLAY set, and OpenCV built with GUI support) the camera image is
shown with the prompt and countdown on it (q or Esc stops); otherwise the prompt, the countdown and a
progress bar go to the terminal.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ferlite.errors import DatasetError, FerliteError, ImageReadError, SourceError, UsageError
from ferlite.tables import format_table
from ferlite.trainer import dataset
from ferlite.trainer.labels import FER2013_LABELS, parse_label_list
from ferlite.trainer.window import use_window

log = logging.getLogger(__name__)

SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
JPEG_QUALITY = 95
WINDOW_TITLE = "ferlite capture"
SOURCE_NAME = "capture"
#: Slack when comparing frame timestamps, so 32/15 + 1.0 counts as reaching 47/15.
TIME_EPS = 1e-6


class CaptureIncomplete(SourceError):
    """The source ended before every requested frame was saved."""


class CaptureAborted(FerliteError):
    """The user stopped the capture (q or Esc in the window)."""

    exit_code = 130


@dataclass(frozen=True)
class CapturePlan:
    labels: tuple[str, ...]
    count: int
    countdown: float
    interval: float

    def seconds(self) -> float:
        """Seconds of source needed: per expression, the countdown and then ``count`` frames ``interval`` apart."""
        return len(self.labels) * (self.countdown + (self.count - 1) * self.interval)


class ImageWriter:
    """Writes frames as JPEGs under ``images/capture/<subject>/<label>/`` and appends a manifest row for
    each as it is written. A context manager: the manifest is open between enter and exit."""

    def __init__(self, root: Path, subject: str, split: str):
        self.root = Path(root)
        self.subject = subject
        self.split = split
        self.saved: dict[str, int] = {}
        self._next: dict[str, int] = {}
        self._known: set[str] = set()
        self._manifest: dataset.ManifestAppender | None = None

    def __enter__(self) -> ImageWriter:
        self._known = {r["path"] for r in dataset.read_rows(self.root)}
        self._manifest = dataset.ManifestAppender(self.root / dataset.MANIFEST, dataset.COLUMNS).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._manifest is not None:
            self._manifest.__exit__(*exc)
            self._manifest = None

    def _folder(self, label: str) -> str:
        return f"images/{SOURCE_NAME}/{self.subject}/{label}"

    def _first_free_number(self, label: str) -> int:
        pattern = re.compile(rf"^{re.escape(self.subject)}_{re.escape(label)}_(\d+)\.jpg$")
        folder = self._folder(label)
        names = [p.name for p in (self.root / folder).glob("*.jpg")]
        names += [p.rsplit("/", 1)[-1] for p in self._known if p.startswith(folder + "/")]
        numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
        return max(numbers, default=0) + 1

    def save(self, image, label: str) -> dict:
        """Write one frame; ImageReadError (a one-line reason) for a frame JPEG cannot hold (empty, over 65,500
        pixels a side), with OpenCV's complaint caught."""
        import cv2

        from ferlite.edge.imagefiles.decodelog import clean, native_output

        error = ""
        with native_output() as said:
            try:
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            except cv2.error as exc:
                ok, error = False, clean(str(exc).strip().splitlines()[-1])
        if not ok:
            why = error or (said[-1] if said else "")
            raise ImageReadError(f"OpenCV could not encode a {getattr(image, 'shape', '?')} frame as JPEG"
                                 + (f": {why}" if why else ""))
        data = buf.tobytes()
        if label not in self._next:
            self._next[label] = self._first_free_number(label)
        (self.root / self._folder(label)).mkdir(parents=True, exist_ok=True)
        while True:
            number = self._next[label]
            self._next[label] += 1
            rel = f"{self._folder(label)}/{self.subject}_{label}_{number:04d}.jpg"
            try:
                with open(self.root / rel, "xb") as f:  # exclusive: never overwrite
                    f.write(data)
                break
            except FileExistsError:
                continue
        row = {"path": rel, "label": label, "split": self.split, "source": SOURCE_NAME, "subject": self.subject,
               "sha256": dataset.sha256_bytes(data), "width": image.shape[1], "height": image.shape[0]}
        self._manifest.write(row)
        self.saved[label] = self.saved.get(label, 0) + 1
        return row


class TerminalUI:
    """Prompt and countdown numbers on stdout, a tqdm bar per expression."""

    def __init__(self) -> None:
        self._bar = None
        self._shown: int | None = None
        self._label = ""
        self._count = 0

    def begin(self, label: str, count: int) -> None:
        self._label, self._count, self._shown = label, count, None
        print(f"show: {label}", flush=True)

    def countdown(self, frame, remaining: float) -> None:
        n = math.ceil(remaining - TIME_EPS)
        if n != self._shown:
            self._shown = n
            print(f"  {n}", flush=True)

    def recording(self, frame, saved: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self._count, desc=self._label, unit="img")
        self._bar.update(saved - self._bar.n)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.end()


class WindowUI:
    """The live image with the prompt and countdown drawn on a copy; q or Esc aborts."""

    def __init__(self) -> None:
        import cv2

        self._cv2 = cv2
        self._label = ""
        self._count = 0

    def begin(self, label: str, count: int) -> None:
        self._label, self._count = label, count

    def countdown(self, frame, remaining: float) -> None:
        self._show(frame.image, str(math.ceil(remaining - TIME_EPS)), (0, 200, 255))

    def recording(self, frame, saved: int) -> None:
        self._show(frame.image, f"{saved}/{self._count}", (0, 0, 255))

    def _show(self, image, big: str, colour: tuple[int, int, int]) -> None:
        cv2 = self._cv2
        canvas = image.copy()
        h, w = canvas.shape[:2]
        scale = max(h, w) / 640
        cv2.putText(canvas, f"show: {self._label}", (int(10 * scale), int(40 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    1.0 * scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
        cv2.putText(canvas, big, (int(10 * scale), h - int(20 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    2.0 * scale, colour, max(2, int(4 * scale)), cv2.LINE_AA)
        cv2.imshow(WINDOW_TITLE, canvas)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise CaptureAborted("stopped with q/Esc")

    def end(self) -> None:
        pass

    def close(self) -> None:
        self._cv2.destroyAllWindows()
        self._cv2.waitKey(1)


def capture_label(frames: Iterator, label: str, plan: CapturePlan, ui, writer: ImageWriter) -> int:
    """Prompt for one expression, count down, then save ``plan.count`` frames ``plan.interval`` apart,
    all on the frames' own timestamps. Returns the number saved (fewer only if the source ended)."""
    ui.begin(label, plan.count)
    start = last = None
    saved = 0
    try:
        for frame in frames:
            if start is None:
                start = frame.timestamp
            elapsed = frame.timestamp - start
            if elapsed < plan.countdown - TIME_EPS:
                ui.countdown(frame, plan.countdown - elapsed)
                continue
            if last is None or frame.timestamp - last >= plan.interval - TIME_EPS:
                try:
                    writer.save(frame.image, label)
                except ImageReadError as exc:  # one unusable frame never ends the capture
                    log.warning("frame %d not saved: %s", frame.index, exc)
                    continue
                saved += 1
                last = frame.timestamp
            ui.recording(frame, saved)
            if saved >= plan.count:
                break
    finally:
        ui.end()
    return saved


def run_capture(source, plan: CapturePlan, ui, writer: ImageWriter) -> dict[str, int]:
    """Capture every expression of ``plan`` from one open source; raises CaptureIncomplete if it ends."""
    frames = iter(source)
    for i, label in enumerate(plan.labels):
        saved = capture_label(frames, label, plan, ui, writer)
        if saved < plan.count:
            rest = list(plan.labels[i + 1 :])
            raise CaptureIncomplete(
                f"source {source.name} ended after {saved} of {plan.count} frames of '{label}' were saved"
                + (f" ({', '.join(rest)} not captured)" if rest else "")
                + f"; the images saved so far are in the manifest. These options need about {plan.seconds():.1f} s "
                "of video (per expression: --countdown, then --count frames --interval apart): give a longer "
                "recording, or a shorter --countdown, --interval or --count"
            )
    return dict(writer.saved)


def summary(plan: CapturePlan, saved: dict[str, int]) -> str:
    rows = [[label, saved.get(label, 0), plan.count] for label in plan.labels]
    rows.append(["total", sum(saved.values()), plan.count * len(plan.labels)])
    return format_table(["expression", "saved", "requested"], rows)


def make_plan(args: argparse.Namespace) -> CapturePlan:
    try:
        labels = tuple(parse_label_list(args.expressions))
    except DatasetError as exc:
        raise UsageError(f"--expressions {args.expressions!r}: {exc}") from None
    if args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.countdown < 0 or args.interval < 0:
        raise UsageError("--countdown and --interval must not be negative")
    if not SUBJECT_RE.match(args.subject):
        raise UsageError(f"--subject {args.subject!r}: use letters, digits, '.', '_' or '-' (it names folders)")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: not a folder")
    return CapturePlan(labels, args.count, args.countdown, args.interval)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", required=True, help="id of the person captured (stored as `subject`)")
    p.add_argument("--out", "-o", type=Path, required=True, help="data-set folder to create or add to")
    p.add_argument("--source", default="0",
                   help="camera index or /dev/videoN, 'picamera', a video file, an rtsp/http URL, or images")
    p.add_argument("--expressions", default="all",
                   help=f"comma-separated expressions, or 'all' ({','.join(FER2013_LABELS)})")
    p.add_argument("--count", type=int, default=20, help="frames to save per expression")
    p.add_argument("--countdown", type=float, default=3.0, metavar="SECONDS",
                   help="seconds between the prompt and the first saved frame")
    p.add_argument("--interval", type=float, default=0.3, metavar="SECONDS", help="seconds between saved frames")
    p.add_argument("--split", choices=["train", "val", "test"], default="train", help="split stored in the manifest")
    p.add_argument("--window", action=argparse.BooleanOptionalAction, default="auto",
                   help="show the image with the prompt; auto = when a display is available")


def run(args: argparse.Namespace) -> int:
    plan = make_plan(args)
    window = use_window(args.window)
    from ferlite.edge.sources.registry import open_source

    source = open_source(args.source)
    ui = WindowUI() if window else TerminalUI()
    writer = ImageWriter(args.out, args.subject, args.split)
    opened = False
    try:
        with source, writer:
            opened = True
            run_capture(source, plan, ui, writer)
    finally:
        ui.close()
        if opened:
            print(summary(plan, writer.saved))
    print(f"saved {sum(writer.saved.values())} images of {args.subject} from {source.name} "
          f"into {args.out / dataset.MANIFEST}")
    return 0
