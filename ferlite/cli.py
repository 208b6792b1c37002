"""The ``ferlite`` command: one entry point, a subcommand per step.

Subcommand modules are imported when the parser is built, so they must import only the standard
library at module level; numpy, OpenCV, pandas and TensorFlow are imported inside ``run``.
Errors are raised as :class:`edge.errors.FerliteError` and turned into exit codes here only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ferlite import __version__
from ferlite.errors import FerliteError, exit_code_table
from ferlite.redact import redact, redact_handlers

#: name -> (module, one-line help). Each module has ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("ferlite.trainer.importers", "import a data set (FER2013 csv, FER+ labels, class folders, labels csv)"),
    "capture": ("ferlite.trainer.capture", "guided capture of expression images from a camera or video file"),
    "faces": ("ferlite.trainer.faces", "detect, align and crop faces from a data set or folder of images"),
    "train": ("ferlite.trainer.train", "train (or fine-tune) the expression classifier"),
    "evaluate": ("ferlite.trainer.evaluate", "accuracy, macro-F1, per-class figures and confusion matrix of a model"),
    "convert": ("ferlite.converters.convert", "convert a Keras model to int8 / float16 TFLite, with a parity check"),
    "recognize": ("ferlite.edge.recognize", "recognize expressions in images, videos, cameras and streams"),
    "bench": ("ferlite.edge.bench", "per-stage latency and frames/s of the pipeline on this machine"),
    "run": ("ferlite.edge.service.run", "run as a service: camera -> expressions -> SQLite log, with systemd notify"),
    "check": ("ferlite.edge.service.check", "check config, camera, model and one frame, as the service would run"),
    "report": ("ferlite.edge.logbook.report", "look back at a device's expression log: tables, csv, plots, html"),
}

EPILOG = """\
steps:
  1. collect    ferlite import fer2013.csv.gz --out data/fer2013
                ferlite capture --source 0 --subject alice --out data/alice
  2. faces      ferlite faces data/alice --out data/alice-faces
  3. train      ferlite train data/fer2013
                ferlite evaluate --model runs/train/exp --data data/fer2013
                ferlite convert runs/train/exp --data data/fer2013
  4. recognize  ferlite recognize photo.jpg | clip.mp4 | 0 | picamera
                ferlite bench
  service       ferlite check --config /etc/ferlite/config.toml
                ferlite run --config /etc/ferlite/config.toml   (systemd/install.sh sets this up)
  look back     ferlite report /var/lib/ferlite/expressions.db --since 7d --bucket day

Run `ferlite COMMAND --help` for the options of each command. Set DEBUG=1 for tracebacks.
"""
EXIT_CODES = "exit codes (every command):\n" + exit_code_table(98)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the docstring's layout; append each option's default unless it is empty."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        empty = action.default in (None, False, "", argparse.SUPPRESS)
        if "%(default)" not in text and not empty and (action.option_strings or action.nargs in ("?", "*")):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferlite",
        description="Facial-expression recognition for small devices.",
        epilog=EPILOG + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ferlite {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sp = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            epilog=EXIT_CODES,
            formatter_class=HelpFormatter,
        )
        module.add_arguments(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    redact_handlers(logging.getLogger())
    try:
        return int(args._module.run(args) or 0)
    except FerliteError as exc:
        if os.environ.get("DEBUG"):
            raise
        message = f"ferlite {args.command}: error: {redact(str(exc))}"  # a file name may hold bytes that are not UTF-8
        print(message.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ferlite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
