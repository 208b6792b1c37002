"""File and memory outputs: a csv row per face per frame, the same rows as one json list, or the results kept
in memory (the Python API). Only the standard library is imported here."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferlite.edge.outputs.base import OutputContext, _Sink
from ferlite.edge.results import FrameResult, face_rows

if TYPE_CHECKING:
    from ferlite.edge.config import OutputsConfig


class ListSink(_Sink):
    """Keeps every FrameResult in ``results`` (also readable after close)."""

    def __init__(self) -> None:
        self.results: list[FrameResult] = []

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        self.results.append(result)


class CsvSink(_Sink):
    """One csv row per face per frame, with the columns of :func:`~ferlite.edge.results.face_rows`.

    The header is the keys of the first row (``p_<label>`` columns included) and is written with it,
    so a run that sees no face leaves an empty file (0 bytes; ``pandas.read_csv`` raises
    ``EmptyDataError`` on it). Frames whose rows have other columns (other labels) raise ValueError.
    The file is truncated on open, parent folders are created, and flush()/close() flush it. Paths are written
    as the file system gave them (bytes that are not UTF-8 as themselves), so a reader using ``surrogateescape``
    gets back paths that open the same files."""

    SECTION = "outputs"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="", encoding="utf-8", errors="surrogateescape")
        self._writer: csv.DictWriter | None = None

    @classmethod
    def from_config(cls, outputs: OutputsConfig, context: OutputContext) -> CsvSink:
        return cls(context.file(outputs.csv))

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        rows = face_rows(result)
        if not rows:
            return
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(rows[0]))
            self._writer.writeheader()
        if list(rows[0]) != self._writer.fieldnames:
            raise ValueError(f"{self.path}: frame {result.index} has columns {list(rows[0])}, "
                             f"but the file has {self._writer.fieldnames}")
        self._writer.writerows(rows)

    def _flush(self) -> None:
        self._file.flush()

    def _close(self) -> None:
        self._file.close()


class JsonSink(_Sink):
    """The rows of :class:`CsvSink` as one json list, written when the sink is closed."""

    SECTION = "outputs"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []

    @classmethod
    def from_config(cls, outputs: OutputsConfig, context: OutputContext) -> JsonSink:
        return cls(context.file(outputs.json))

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        self.rows.extend(face_rows(result))

    def _close(self) -> None:
        self.path.write_text(json.dumps(self.rows, indent=1))


def write_skipped(path: str | Path, skipped: list[tuple[str, str]]) -> Path:
    """The files a run could not use, one ``path,reason`` row each (names round-trip as in CsvSink)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        writer.writerows(skipped)
    return path
