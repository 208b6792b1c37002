"""The device configuration: one validated, frozen tree, layered from three places.

    packaged edge/data/default.toml  ->  /etc/ferlite/config.toml (or --config PATH)  ->  --set section.key=value

Each layer may set any subset of the keys. Unknown sections and keys, values of the wrong type and values
out of range are rejected with a :class:`ConfigError` that names the file (and line), the key, the value and
the reason; every problem is reported, not only the first. ``edge/data/default.toml`` documents every key
with its default and allowed values (a test holds it to this schema). This module is the schema, and the one
place every default is written; reading files, --set options and command-line shortcuts into layers and
merging them is :mod:`ferlite.edge.configfile`'s part. Only the standard library is imported here (the detector
and output registries are imported when a name is checked; they import no third-party module at load time).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ferlite.edge.configbase import (
    _TYPE_NAMES,
    ConfigError,
    Invalid,
    InvalidValues,
    _field,
    _not_blank,
    _range,
    _Section,
)

__all__ = ["SECTIONS", "Config", "ConfigError", "Invalid", "InvalidValues", "_TYPE_NAMES"]

#: The file the service reads when --config is not given (skipped when it does not exist).
SYSTEM_CONFIG = Path("/etc/ferlite/config.toml")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the service keeps its files: the first $STATE_DIRECTORY entry (systemd's StateDirectory=), else
    the working directory."""
    state = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path.cwd()


#: The log file name under $STATE_DIRECTORY (or the working directory) when [log] path is empty.
LOG_NAME = "expressions.db"


def _detector_type(value: str) -> str | None:
    from ferlite.edge.detection.registry import DETECTORS  # names only; imports no detector

    if value in DETECTORS:
        return None
    close = difflib.get_close_matches(value, DETECTORS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown detector{hint}; choose from {', '.join(DETECTORS)}"



# ------------------------------------------------------------------------------------------------ sections


@dataclass(frozen=True)
class SourceConfig(_Section):
    NAME = "source"
    spec: str = _field("picamera", "picamera, a camera index or /dev/videoN, rtsp/http URL, video file, image folder",
                       _not_blank)
    width: int = _field(640, "frame width asked of a camera", _range(16, 4096))
    height: int = _field(480, "frame height asked of a camera", _range(16, 4096))
    fps: float = _field(30.0, "frame rate asked of a camera", _range(0, 240, open_low=True))
    loop: bool = _field(False, "start a video file or image folder again when it ends (demo, soak tests)")
    open_timeout: float = _field(10.0, "seconds an rtsp/http stream may take to open", _range(0.1, 600))
    read_timeout: float = _field(5.0, "seconds a stream may go without a frame before it counts as lost",
                                 _range(0.1, 600))


@dataclass(frozen=True)
class DetectorConfig(_Section):
    NAME = "detector"
    type: str = _field("yunet", "face detector (ferlite.edge.detection.registry.DETECTORS)", _detector_type)
    score: float = _field(0.0, "least detector score of a face; 0 = the detector's own (yunet 0.8, blazeface "
                          "0.5, blazeface-full 0.6); haar ignores it", _range(0, 1))
    min_face: int = _field(24, "smallest face side, in frame pixels, that is classified", _range(1, 4096))
    every: int = _field(5, "search the whole frame every N frames, in between only around the faces found "
                        "(1 = whole frame always)", _range(1, 1000))
    coarse: bool = _field(True, "on video and cameras, search the whole frame at the smallest scale min_face "
                          "allows, then each face found at full resolution (false: the whole frame at full "
                          "resolution, slower)")
    max_faces: int = _field(10, "most faces classified per frame (the largest first)", _range(1, 1000))


@dataclass(frozen=True)
class ClassifierConfig(_Section):
    NAME = "classifier"
    model: str = _field("", "TFLite model file (absolute path), or a bundled one by name (default: FER+ labels; "
                        "fer2013: FER2013 labels); empty = default")
    threads: int = _field(1, "threads for the interpreter and for OpenCV (detectors)", _range(1, 64))
    flip: bool = _field(False, "average each face with its mirror image (2x classify time); skipped for a "
                        "model that holds the mirror view itself (its sidecar says views 2)")
    margin: float = _field(0.05, "crop margin around each face box, per side, as a fraction of the box",
                           _range(0, 1))


@dataclass(frozen=True)
class TrackingConfig(_Section):
    NAME = "tracking"
    window: int = _field(5, "frames of probability smoothing per track (1 = none)", _range(1, 1000))
    threshold: float = _field(0.45, "smoothed top probability under which a face is 'uncertain'", _range(0, 1))
    max_age: float = _field(1.0, "seconds a lost track is kept", _range(0, 3600))
    hold: float = _field(0.3, "seconds a new label must last before a track reports it (0 = at once)",
                         _range(0, 60))
    margin: float = _field(0.05, "a track keeps the label it shows while that label's probability is within "
                           "this of the threshold and of the top one (0 = none)", _range(0, 1))


@dataclass(frozen=True)
class LogConfig(_Section):
    NAME = "log"
    path: str = _field("", "SQLite file; empty = $STATE_DIRECTORY/expressions.db, else ./expressions.db")
    commit_interval: float = _field(10.0, "seconds between commits (a power cut loses at most this much)",
                                    _range(0, 3600))
    log_interval: float = _field(2.0, "a track gets a row on a label change, else at most every this many "
                                 "seconds", _range(0, 86400))
    retention_days: float = _field(30.0, "rows older than this are deleted; 0 = keep everything", _range(0))

    def resolve_path(self, environ: Mapping[str, str] | None = None) -> Path:
        """The log file: ``path`` if absolute, else under the first $STATE_DIRECTORY entry (systemd's
        StateDirectory=), else under the working directory."""
        return state_dir(environ) / Path(self.path or LOG_NAME).expanduser()  # an absolute path stays as it is


def _listen(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return 'must be "HOST:PORT", e.g. "127.0.0.1:8080" or "0.0.0.0:8080"'
    return None


def is_loopback(host: str) -> bool:
    import ipaddress

    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Shortest [http] token accepted off loopback.
MIN_TOKEN = 16


@dataclass(frozen=True)
class HttpConfig(_Section):
    NAME = "http"
    enabled: bool = _field(False, "serve the kiosk page, the MJPEG stream and the JSON/SSE API (same as adding "
                           "\"http\" to [outputs] run)")
    listen: str = _field("127.0.0.1:8080", "HOST:PORT to listen on; any non-loopback host needs a token", _listen)
    token: str = _field("", "bearer token clients must send (Authorization: Bearer ..., or ?token=); required "
                        "off loopback")
    stream: bool = _field(True, "serve the annotated picture; false = labels only (privacy)")
    stream_fps: float = _field(10.0, "most frames per second of /stream.mjpg", _range(0, 60, open_low=True))
    blur_faces: bool = _field(False, "blur the faces in the streamed picture")
    history_minutes: float = _field(10.0, "minutes of expression shares the kiosk page shows", _range(1, 1440))
    max_clients: int = _field(200, "most connections open at once (well under the file-descriptor limit)",
                              _range(1, 100_000))
    header_timeout: float = _field(10.0, "seconds a client has to send its request after connecting or after its "
                                   "last answer", _range(0, 3600, open_low=True))
    kiosk: bool = _field(False, "show the kiosk page full screen on this device's own display (ferlite-kiosk."
                         "service: the ferlite image, or install.sh --kiosk); serves the page as enabled = true does")

    def _cross_check(self) -> Iterable[Invalid]:
        host = self.listen.rpartition(":")[0]
        if is_loopback(host):
            return
        if not self.token:
            yield Invalid(self.NAME, "token", self.token, f"must be set to listen on {self.listen}, which is not "
                          "loopback: anyone on the network could watch the camera", ("listen",))
        elif len(self.token) < MIN_TOKEN or not self.token.isprintable() or any(c.isspace() for c in self.token):
            yield Invalid(self.NAME, "token", self.token, f"must be at least {MIN_TOKEN} characters, without spaces, "
                          f"to listen on {self.listen} (e.g. the output of: openssl rand -hex 16)")


@dataclass(frozen=True)
class MqttConfig(_Section):
    NAME = "mqtt"
    enabled: bool = _field(False, "publish to an MQTT broker (same as adding \"mqtt\" to [outputs] run)")
    host: str = _field("localhost", "broker host", _not_blank)
    port: int = _field(1883, "broker port", _range(1, 65535))
    username: str = _field("", "user name; empty = anonymous")
    password: str = _field("", "password (or password_file)")
    password_file: str = _field("", "file holding the password (e.g. a systemd credential)")
    tls: bool = _field(False, "connect with TLS")
    ca_file: str = _field("", "CA certificate file for TLS; empty = the system's")
    client_id: str = _field("", "MQTT client id; empty = ferlite-<hostname>")
    topic_prefix: str = _field("", "topic prefix; empty = ferlite/<hostname>")
    qos: int = _field(0, "quality of service of every message: 0, 1 or 2", _range(0, 2))
    discovery: bool = _field(True, "publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = _field("homeassistant", "Home Assistant's discovery prefix", _not_blank)
    state_interval: float = _field(5.0, "the state (dominant expression, face count) is published on change, "
                                   "at most every this many seconds", _range(0, 3600))
    faces_hz: float = _field(2.0, "most messages per second on <prefix>/faces", _range(0, 60, open_low=True))
    queue: int = _field(1000, "messages held while the broker is away (the oldest are dropped)",
                        _range(1, 1_000_000))


@dataclass(frozen=True)
class ServiceConfig(_Section):
    NAME = "service"
    watchdog_fraction: float = _field(0.5, "ping systemd's watchdog at most every this fraction of WatchdogSec",
                                      _range(0.05, 0.9))
    status_interval: float = _field(5.0, "seconds between STATUS= updates (frames/s, faces)",
                                    _range(0, 3600, open_low=True))
    reconnect_attempts: int = _field(0, "failed opens/reads of the source in a row before exiting non-zero; "
                                     "0 = wait for the camera for ever", _range(0, 1000))
    start_budget: float = _field(60.0, "seconds after start without a first frame before the service reports "
                                 "ready anyway, waiting for the camera (keep under the unit's TimeoutStartSec)",
                                 _range(1, 3600))
    reconnect_delay: float = _field(1.0, "seconds before the first retry; doubled after each failure",
                                    _range(0, 3600, open_low=True))
    reconnect_max_delay: float = _field(8.0, "longest wait between retries, in seconds",
                                        _range(0, 3600, open_low=True))

    def _cross_check(self) -> Iterable[Invalid]:
        if self.reconnect_max_delay < self.reconnect_delay:
            yield Invalid(self.NAME, "reconnect_max_delay", self.reconnect_max_delay,
                          f"must be >= reconnect_delay ({self.reconnect_delay:g})")

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` (>= 1) failures in a row."""
        return min(self.reconnect_delay * 2.0 ** (failures - 1), self.reconnect_max_delay)


def _outputs(value: tuple[str, ...]) -> str | None:
    from ferlite.edge.outputs.registry import SINKS  # names only; imports no output module

    for name in value:
        if name not in SINKS and ":" not in name:
            close = difflib.get_close_matches(name, SINKS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (f"unknown output {name!r}{hint}; choose from {', '.join(SINKS)}, or give a class of your own "
                    "as 'module:Class'")
    return None


@dataclass(frozen=True)
class OutputsConfig(_Section):
    NAME = "outputs"
    run: tuple[str, ...] = _field(("sqlite",), "where `ferlite run` sends each frame's results", _outputs)
    recognize: tuple[str, ...] = _field(("csv", "annotated", "console"), "where `ferlite recognize` sends them",
                                        _outputs)
    dir: str = _field("", "folder of the file outputs; empty = runs/recognize/exp (numbered) for recognize, "
                      "$STATE_DIRECTORY or the working directory for run")
    csv: str = _field("results.csv", "file name of the csv output (under dir unless absolute)", _not_blank)
    json: str = _field("results.json", "file name of the json output (under dir unless absolute)", _not_blank)


SECTIONS: dict[str, type[_Section]] = {
    cls.NAME: cls for cls in (SourceConfig, DetectorConfig, ClassifierConfig, TrackingConfig, LogConfig,
                              OutputsConfig, HttpConfig, MqttConfig, ServiceConfig)
}


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``origin`` lists the layers it was built from, lowest first."""

    source: SourceConfig = field(default_factory=SourceConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    log: LogConfig = field(default_factory=LogConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    origin: tuple[str, ...] = field(default=(), compare=False)

    def changed(self, other: Config) -> list[str]:
        """Names of the sections that differ from ``other``."""
        return [name for name in SECTIONS if getattr(self, name) != getattr(other, name)]

    def run_outputs(self) -> tuple[str, ...]:
        """The outputs of `ferlite run`: [outputs] run, plus http and mqtt when their sections enable them (http
        also for the kiosk screen)."""
        extra = ("http",) * (self.http.enabled or self.http.kiosk) + ("mqtt",) * self.mqtt.enabled
        return tuple(dict.fromkeys(self.outputs.run + extra))

    def replace(self, **changes: dict[str, Any]) -> Config:
        """A copy with some keys changed, validated: ``config.replace(tracking={"window": 1})``."""
        from dataclasses import replace

        sections = {name: replace(getattr(self, name), **values) for name, values in changes.items()}
        return replace(self, **sections)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: {f.name: getattr(getattr(self, name), f.name) for f in fields(SECTIONS[name])}
                for name in SECTIONS}
