"""Recognize expressions in images, folders, globs, videos, cameras and streams.

SOURCE is an image, a folder or quoted glob of images, a video file, a camera (0, /dev/video0, picamera)
or an rtsp/http URL; with none, the bundled sample photo. Images give annotated copies and a results csv
(one row per face); a video gives an annotated video and per-frame results; a camera shows a live window
when a display exists and prints a line per frame otherwise (Ctrl-C ends cleanly). Faces are tracked
across frames and their probabilities smoothed over --window frames; a face whose smoothed top
probability is under --threshold is labelled `uncertain`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from ferlite.edge.detection.align import DEFAULT_MARGIN
from ferlite.edge.display import has_display

from ferlite.errors import SourceError, UsageError

log = logging.getLogger(__name__)
COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 250),
           "sad": (200, 120, 40), "surprise": (230, 200, 40), "neutral": (200, 200, 200),
           "contempt": (120, 120, 40), "uncertain": (128, 128, 128)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None, help="image, folder, glob, video, camera or URL "
                   "(default: the bundled sample photo)")
    p.add_argument("--model", help="TFLite model file, or a bundled one by name: default (most accurate), "
                   "fast (4x less compute)")
    from ferlite.edge.detection.detectors import DETECTORS

    p.add_argument("--detector", default="yunet", help=f"face detector: {', '.join(DETECTORS)}")
    p.add_argument("--detect-every", type=int, default=5, metavar="N",
                   help="video and cameras: search the whole frame every N frames, in between only around the "
                   "faces found (1 = whole frame always; photos always get the whole frame)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads")
    p.add_argument("--flip", action="store_true", help="average each face with its mirror image (2x classify time)")
    p.add_argument("--window", type=int, default=5, help="frames of probability smoothing per track (1 = none)")
    p.add_argument("--threshold", type=float, default=0.45, help="smoothed top probability below which a face is "
                   "'uncertain'")
    p.add_argument("--max-age", type=float, default=1.0, help="seconds a lost track is kept")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/recognize/exp, numbered)")
    p.add_argument("--csv", type=Path, help="results csv (default: OUT/results.csv)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--save-crops", action="store_true", help="also save each face crop under OUT/crops")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images or video")
    p.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                   help="show a live window (default: for cameras and streams, when a display exists)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="crop margin around each face box, per side")


def annotate(image, result):
    import cv2

    out = image.copy()
    for f in result.faces:
        x, y, w, h = f.box
        colour = COLOURS.get(f.label, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        text = f"#{f.track_id} {f.label} {f.confidence:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(out, (x, max(0, y - th - 6)), (x + tw + 4, y), colour, -1)
        cv2.putText(out, text, (x + 2, max(th, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


class Outputs:
    """What recognize writes per frame: annotated images or video, crops, a live window or printed lines."""

    def __init__(self, args, kind: str, out: Path, fps: float | None):
        self.args, self.kind, self.out, self.fps = args, kind, out, fps or 30.0
        self.live = kind in ("usb", "picamera", "stream")
        self.show = args.show if args.show is not None else (self.live and has_display())
        self.writer = None
        self.counts: Counter = Counter()
        self.faces = 0
        self.frames = 0
        self.written: set[str] = set()

    def __call__(self, frame, result) -> None:
        import cv2

        self.frames += 1
        self.faces += len(result.faces)
        self.counts.update(f.label for f in result.faces)
        drawn = annotate(frame.image, result) if (self.show or not self.args.no_save) else None
        if not self.args.no_save and not self.live:
            if self.kind == "images":
                cv2.imwrite(str(self.out / self._image_name(result)), drawn)
            else:
                self._video(drawn)
        if self.args.save_crops:
            self._crops(frame, result)
        if self.show:
            cv2.imshow("ferlite", drawn)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                raise KeyboardInterrupt
        elif self.live or self.kind == "images":
            faces = "  ".join(f"#{f.track_id} {f.label} {f.confidence:.2f}" for f in result.faces) or "no face"
            where = Path(result.path).name if result.path else f"frame {result.index}"
            print(f"{where}: {faces}  ({result.timings_ms.get('total', 0):.1f} ms)", flush=True)

    def _image_name(self, result) -> str:
        """The photo's own name; ``name_<index>.ext`` when an earlier photo (e.g. from another folder of
        the same glob) already took it, so no annotated copy overwrites another."""
        path = Path(result.path or f"{result.index}.jpg")
        name = path.name
        if name in self.written:
            name = f"{path.stem}_{result.index}{path.suffix}"
        self.written.add(name)
        return name

    def _video(self, drawn) -> None:
        import cv2

        if self.writer is None:
            name = Path(self.args.source).stem + ".mp4"
            h, w = drawn.shape[:2]
            self.writer = cv2.VideoWriter(str(self.out / name), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self.writer.write(drawn)

    def _crops(self, frame, result) -> None:
        import cv2

        (self.out / "crops").mkdir(exist_ok=True)
        for f in result.faces:
            x, y, w, h = f.box
            crop = frame.image[max(0, y): y + h, max(0, x): x + w]
            if crop.size:
                cv2.imwrite(str(self.out / "crops" / f"{result.index:06d}_t{f.track_id}_{f.label}.jpg"), crop)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.show:
            import cv2

            cv2.destroyAllWindows()


def run(args: argparse.Namespace) -> int:
    from ferlite.edge.classification.classifier import ExpressionClassifier
    from ferlite.edge.detection.detectors import create_detector
    from ferlite.edge.detection.regions import for_stream
    from ferlite.edge.outputs import CsvSink, ListSink
    from ferlite.edge.pipeline import Pipeline, PipelineOptions
    from ferlite.edge.pipeline import run as run_pipeline
    from ferlite.edge.sources.registry import open_source, source_kind
    from ferlite.edge.tracking import Tracker

    from ferlite.runs import next_run_dir

    spec = args.source or str(Path(__file__).parent / "data" / "sample.jpg")
    args.source = spec
    kind = source_kind(spec)
    _check_options(args)
    classifier = ExpressionClassifier(args.model, num_threads=args.threads, flip=args.flip)
    detector = for_stream(create_detector(args.detector), args.detect_every, kind)
    single = kind == "images"  # independent photos: no tracking or smoothing across them
    tracker = Tracker(classifier.labels, window=1 if single else args.window, threshold=args.threshold,
                      max_age=0.0 if single else args.max_age)
    out = args.out or next_run_dir(Path("runs/recognize"))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = args.csv or out / "results.csv"
    collected = ListSink() if args.json else None
    source = open_source(spec)
    outputs = None
    n = 0
    t0 = time.perf_counter()
    with CsvSink(csv_path) as sink, source:
        outputs = Outputs(args, kind, out, getattr(source, "fps", None))
        sinks = _Tee(sink, collected)
        try:
            pipeline = Pipeline(detector, classifier, tracker, PipelineOptions(margin=args.margin), source.name)
            n = run_pipeline(source, pipeline, sinks, max_frames=args.max_frames, on_frame=outputs)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
        except SourceError as exc:
            if outputs.frames == 0:
                raise
            print(f"source ended: {exc}", file=sys.stderr)  # a stream or camera that ends mid-run
        finally:
            outputs.close()
        n = n or outputs.frames
    elapsed = time.perf_counter() - t0
    if collected is not None:
        from ferlite.edge.results import face_rows

        args.json.write_text(json.dumps([row for r in collected.results for row in face_rows(r)], indent=1))
    labels = ", ".join(f"{k} {v}" for k, v in outputs.counts.most_common())
    print(f"{n} frame(s), {outputs.faces} face(s) [{labels or 'none'}] in {elapsed:.1f} s "
          f"({n / max(elapsed, 1e-9):.1f} frames/s); results: {csv_path}"
          + ("" if args.no_save or outputs.live else f"; annotated output in {out}"))
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Bad numbers are a one-line UsageError here, not a traceback or a misleading error later."""
    if args.window < 1 or not 0 <= args.threshold <= 1:
        raise UsageError(f"--window {args.window} must be >= 1 and --threshold {args.threshold} in 0..1")
    if not 0 <= args.max_age < float("inf"):
        raise UsageError(f"--max-age {args.max_age} must be a number of seconds >= 0")
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads} must be >= 1")
    if args.detect_every < 1:
        raise UsageError(f"--detect-every {args.detect_every} must be >= 1")
    if not 0 <= args.margin <= 1:
        raise UsageError(f"--margin {args.margin} must be between 0 and 1")
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames {args.max_frames} must be >= 1")


class _Tee:
    """Write each result to a sink and, optionally, a second one."""

    def __init__(self, first, second=None):
        self.first, self.second = first, second

    def write(self, result) -> None:
        self.first.write(result)
        if self.second is not None:
            self.second.write(result)
