"""Recognize expressions in images, folders, globs, videos, cameras and streams.

SOURCE is an image, a folder or quoted glob of images, a video file, a camera (0, /dev/video0, picamera)
or an rtsp/http URL; with none, the bundled sample photo. The pipeline is the service's, built from the same
config (packaged defaults < /etc/ferlite/config.toml or --config < --set < the options below). Results go to
the outputs of [outputs] recognize: by default a results csv (one row per face), annotated copies of photos or
an annotated video, and a line per photo or live frame (a progress bar for a video file). Faces are tracked
across frames and their probabilities smoothed over --window frames; a face whose smoothed top probability is
under --threshold is labelled `uncertain`. Cameras show a live window when a display exists (Ctrl-C or q ends).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ferlite.errors import SourceError, UsageError

#: Options of this command that set a config key (argparse dest -> "section.key").
OPTIONS = {"source": "source.spec", "model": "classifier.model", "threads": "classifier.threads",
           "flip": "classifier.flip", "margin": "classifier.margin", "detector": "detector.type",
           "detect_every": "detector.every", "window": "tracking.window", "threshold": "tracking.threshold",
           "max_age": "tracking.max_age", "out": "outputs.dir", "csv": "outputs.csv", "json": "outputs.json"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ferlite.edge.configfile import add_config_arguments, key_help
    from ferlite.edge.detection.registry import DETECTORS

    p.add_argument("source", nargs="*", default=None, help="image, folder, quoted glob, video, camera or URL "
                   "(default: the bundled sample photo)")
    p.add_argument("--model", help=key_help("classifier.model"))
    p.add_argument("--detector", help=key_help("detector.type", ", ".join(DETECTORS)))
    p.add_argument("--detect-every", type=int, metavar="N",
                   help=key_help("detector.every", "on video and cameras (photos always get the whole frame)"))
    p.add_argument("--threads", type=int, help=key_help("classifier.threads"))
    p.add_argument("--flip", action="store_true", default=None, help=key_help("classifier.flip"))
    p.add_argument("--window", type=int, help=key_help("tracking.window"))
    p.add_argument("--threshold", type=float, help=key_help("tracking.threshold"))
    p.add_argument("--max-age", type=float, help=key_help("tracking.max_age"))
    p.add_argument("--margin", type=float, help=key_help("classifier.margin"))
    p.add_argument("--out", type=Path, help="output folder (default: runs/recognize/exp, numbered)")
    p.add_argument("--csv", type=Path, help="results csv (default: OUT/results.csv)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--save-crops", action="store_true", help="also save each face crop under OUT/crops")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images or video")
    p.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                   help="show a live window (default: for cameras and streams, when a display exists)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--serve", action="store_true", help="also serve the kiosk page, stream and API on [http] listen "
                   "(a live demo: a video file plays at its own speed; after the source ends the page stays up "
                   "until Ctrl-C)")
    add_config_arguments(p, source=False)


def output_names(config, args: argparse.Namespace, kind: str) -> list[str]:
    """[outputs] recognize, edited by --no-save, --save-crops, --json and --show."""
    from ferlite.edge.display import has_display
    from ferlite.edge.outputs.base import LIVE_KINDS

    names = [n for n in config.outputs.recognize if not (args.no_save and n == "annotated")]
    names += ["crops"] * args.save_crops + ["json"] * (args.json is not None) + ["http"] * args.serve
    show = args.show if args.show is not None else (kind in LIVE_KINDS and has_display())
    names = [n for n in names if n != "window"] + ["window"] * bool(show)
    return list(dict.fromkeys(names))


class Tally:
    """The run's summary: frames, faces and labels seen (not an output; recognize's own count)."""

    def __init__(self) -> None:
        self.frames = self.faces = 0
        self.counts: Counter = Counter()

    def write(self, result, frame: Any = None) -> None:
        self.frames += 1
        self.faces += len(result.faces)
        self.counts.update(f.label for f in result.faces)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def setup(args: argparse.Namespace):
    """The config this run uses and the pipeline built from it: (config, parts, kind)."""
    from ferlite.edge.build import PipelineParts
    from ferlite.edge.configfile import load_from_args
    from ferlite.edge.sources.registry import source_kind

    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames {args.max_frames} must be >= 1")
    sources = [args.source] if isinstance(args.source, str) else list(args.source or [])
    if len(sources) > 1:
        raise UsageError(f"{len(sources)} sources given ({' '.join(sources[:3])}{' ...' if len(sources) > 3 else ''})"
                         ": give one. An unquoted glob is expanded by the shell: quote it ('photos/*.jpg'), or give "
                         "the folder")
    args.source = sources[0] if sources else str(Path(__file__).parent / "data" / "sample.jpg")
    for name in ("out", "csv", "json"):  # paths as typed are relative to the working directory
        value = getattr(args, name)
        setattr(args, name, None if value is None else str(value if name == "out" else value.absolute()))
    config = load_from_args(args, OPTIONS)
    kind = source_kind(config.source.spec)  # a source that is not there is an error before any model loads
    return config, PipelineParts(config, kind), kind


def run(args: argparse.Namespace) -> int:
    from ferlite.edge.build import make_source
    from ferlite.edge.outputs.base import MultiSink, OutputContext
    from ferlite.edge.outputs.registry import open_outputs
    from ferlite.edge.pipeline import run as run_pipeline
    from ferlite.runs import next_run_dir

    config, parts, kind = setup(args)
    out = Path(config.outputs.dir) if config.outputs.dir else next_run_dir(Path("runs/recognize"))
    out.mkdir(parents=True, exist_ok=True)
    source, _ = make_source(config)
    names = output_names(config, args, kind)
    tally, n, t0 = Tally(), 0, time.perf_counter()
    with source, sigterm_stops() as stop:
        parts.pipeline.source_name = source.name
        context = OutputContext(dir=out, source=source.name, kind=kind, fps=getattr(source, "fps", None),
                                frame_count=getattr(source, "frame_count", None))
        with open_outputs(names, config, context) as outputs:
            frames = at_own_speed(source) if args.serve and kind == "video" else source
            try:
                n = run_pipeline(frames, parts.pipeline, MultiSink([outputs, tally]), stop=stop,
                                 max_frames=args.max_frames)
                if stop.is_set():
                    print("stopped", file=sys.stderr)
                elif args.serve:
                    _serve_until_interrupted(config, outputs, stop)
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (systemd, timeout): the outputs still close whole
                print("stopped", file=sys.stderr)
            except SourceError as exc:
                if tally.frames == 0:
                    raise
                print(f"source ended: {exc}", file=sys.stderr)  # a stream or camera that ends mid-run
    files = _files_part(source, context, tally.frames) if kind == "images" else ""
    _summary(tally, n or tally.frames, time.perf_counter() - t0, context, names, config, files)
    return 0


def _files_part(source, context, processed: int) -> str:
    """For photos: how many were processed, skipped (by reason, listed in OUT/skipped.csv) and ignored."""
    from ferlite.edge.imagefiles.imageio import reason_kind
    from ferlite.edge.outputs.files import write_skipped
    from ferlite.tables import format_counts

    skipped, ignored = source.skipped, source.ignored
    if not skipped and not ignored:
        return ""
    text = f"; files: {processed} processed, {len(skipped)} skipped"
    if skipped:
        listed = write_skipped(context.dir / "skipped.csv", skipped)
        text += f" ({format_counts(Counter(reason_kind(r) for _, r in skipped))}; listed in {_shown(listed)})"
    if ignored:
        text += f", {sum(ignored.values())} ignored ({format_counts(ignored)})"
    return text


def at_own_speed(source):
    """The frames of a video file, each released at its timestamp (for --serve: a demo plays in real time)."""
    start = time.monotonic()
    for frame in source:
        delay = frame.timestamp - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)
        yield frame


def _serve_until_interrupted(config, outputs, stop: threading.Event) -> None:
    for sink in getattr(outputs, "sinks", ()):
        getattr(sink, "source_ended", lambda: None)()  # the page shows the last frame and no faces
    print(f"the source ended; still serving http://{config.http.listen}/ (Ctrl-C to stop)", flush=True)
    while not stop.wait(3600):
        pass
    print("stopped", file=sys.stderr)


@contextlib.contextmanager
def sigterm_stops():
    """An Event that SIGTERM (systemd, `timeout`) sets: the frame loop ends after the frame in hand, every output
    closes (the csv flushed, the video finalised) and the summary is printed, as after Ctrl-C."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summary(tally: Tally, n: int, elapsed: float, context, names: list[str], config, files: str = "") -> None:
    from ferlite.edge.outputs.base import LIVE_KINDS

    labels = ", ".join(f"{k} {v}" for k, v in tally.counts.most_common())
    where = [f"results: {_shown(context.file(config.outputs.csv))}"] if "csv" in names else []
    if "annotated" in names and context.kind not in LIVE_KINDS:
        where.append(f"annotated output in {_shown(context.dir)}")
    print(f"{n} frame(s), {tally.faces} face(s) [{labels or 'none'}] in {elapsed:.1f} s "
          f"({n / max(elapsed, 1e-9):.1f} frames/s){files}" + "".join(f"; {w}" for w in where))


def _shown(path: Path) -> Path:
    """A path relative to the working directory when it is under it (as the user typed it)."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path
