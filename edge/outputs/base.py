"""The output protocol, the shared sink base class, what a sink is told about its run, and the fan-out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ferlite.edge.results import FrameResult
from ferlite.redact import redact

LIVE_KINDS = frozenset({"usb", "picamera", "stream"})


@runtime_checkable
class ResultSink(Protocol):
    """Receives every frame's complete result (all timings measured before it sees them) and the frame."""

    def write(self, result: FrameResult, frame: Any = None) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> ResultSink: ...

    def __exit__(self, *exc) -> None: ...


@dataclass(frozen=True)
class OutputContext:
    """What a sink built from the config is told about its run: the folder for files, the source and its kind
    (edge.sources.registry.source_kind), frame rate and length when known, and what the live outputs report
    beside their own section (the detector, the model, the log this run writes), filled in one place by
    registry.open_outputs."""

    dir: Path
    source: str = ""
    kind: str = "video"
    fps: float | None = None
    frame_count: int | None = None
    outputs: tuple[str, ...] = ()  # the names of every output of this run (filled by registry.open_outputs)
    detector: str = ""  # [detector] type
    model: str = "default"  # [classifier] model, or "default"
    log: Path | None = None  # the SQLite log ([log] path) when this run writes one ("sqlite" among its outputs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", redact(self.source))  # no output learns a password

    def file(self, name: str) -> Path:
        """``name`` under the output folder, unless it is absolute."""
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.dir / path


class _Sink:
    """Shared context-manager and closed-state handling; subclasses implement write/_flush/_close."""

    closed = False
    #: The config section the sink is built from (``from_config`` receives it), or None for none.
    SECTION: str | None = None

    @classmethod
    def from_config(cls, section: Any, context: OutputContext) -> _Sink:
        return cls()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def flush(self) -> None:
        self._check_open()
        self._flush()

    def close(self) -> None:
        """Flush and release the sink; closing twice is harmless."""
        if not self.closed:
            try:
                self._flush()
            finally:
                self.closed = True
                self._close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{type(self).__name__} is closed")

    def _flush(self) -> None:
        pass

    def _close(self) -> None:
        pass


class MultiSink(_Sink):
    """Fans each result out to several sinks, in order; closing closes them all (each even if one fails)."""

    def __init__(self, sinks: Sequence[ResultSink]):
        self.sinks = tuple(sinks)

    def write(self, result: FrameResult, frame: Any = None) -> None:
        self._check_open()
        for sink in self.sinks:
            sink.write(result, frame)

    def drops(self) -> dict[str, int]:
        """What each output dropped rather than hold the frame loop up (``drops()`` of those that queue work)."""
        out: dict[str, int] = {}
        for sink in self.sinks:
            out.update(getattr(sink, "drops", dict)())
        return out

    def find(self, cls: type) -> Any:
        """The first sink of this class, or None."""
        return next((s for s in self.sinks if isinstance(s, cls)), None)

    def _flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def _close(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close the others, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]
