"""Face events are decided once, by the tracker on the source's clock, and every output reports the same ones:
the sample clip replayed into the SQLite log, the HTTP output (its server-sent events, read by a real client on
loopback) and the MQTT output (through Debian's mosquitto) at once."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.request

from live import SAMPLE_CLIP, Broker, Subscriber, free_port

from ferlite.edge.build import replay
from ferlite.edge.configfile import load
from ferlite.edge.outputs.base import MultiSink, OutputContext
from ferlite.edge.outputs.http import HttpSink
from ferlite.edge.outputs.mqtt import MqttSink
from ferlite.edge.outputs.sqlite import SqliteSink

#: No smoothing or hysteresis, and a threshold the sample clip's camera man hovers around: labels change often.
FLICKER = ["tracking.window=1", "tracking.hold=0", "tracking.margin=0", "tracking.threshold=0.63"]


class SseReader(threading.Thread):
    """A server-sent-events client that keeps every event's (name, data)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.events, self.stop = url, [], threading.Event()

    def run(self) -> None:
        name = "message"
        with urllib.request.urlopen(self.url, timeout=30) as r:
            while not self.stop.is_set():
                line = r.readline().decode().rstrip("\r\n")
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.append((name, json.loads(line.split(":", 1)[1])))


def wait(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_log_sse_and_mqtt_report_the_same_events_on_a_replayed_clip(tmp_path):
    broker = Broker().start()
    sub = Subscriber(broker.port, "ferlite/events-test/#")
    port = free_port()
    config = load(overrides=[f"http.listen=127.0.0.1:{port}", f"mqtt.port={broker.port}", "mqtt.host=127.0.0.1",
                             "mqtt.topic_prefix=ferlite/events-test", "mqtt.discovery=false"],
                  system_path="/nonexistent")
    db = tmp_path / "log.db"
    context = OutputContext(tmp_path, str(SAMPLE_CLIP), "video")
    try:
        log_sink = SqliteSink(db, log_interval=86400)  # a row only when the tracker reports a face
        http, mqtt = HttpSink(config.http, context), MqttSink(config.mqtt, context)
        with MultiSink([log_sink, http, mqtt]) as outputs:
            sse = SseReader(f"http://127.0.0.1:{port}/api/events")
            sse.start()
            wait(lambda: sse.events)  # its "status" event: subscribed
            sub.wait_for("ferlite/events-test/availability", lambda p: p == "online")
            results = replay(SAMPLE_CLIP, FLICKER, sink=outputs)
            told = [(e.kind, e.track_id, e.label, r.index) for r in results for e in r.events]
            wait(lambda: len(sse.events) - 1 == len(told))
            wait(lambda: len(sub.payloads("ferlite/events-test/events")) == len(told))
            sse.stop.set()
    finally:
        sub.close()
        broker.stop()
    over_sse = [(d["type"], d["track_id"], d["label"], d["frame"]) for name, d in sse.events[1:]]
    over_mqtt = [(d["type"], d["track_id"], d["label"], d["frame"])
                 for d in map(json.loads, sub.payloads("ferlite/events-test/events"))]
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT track_id, label, frame FROM expressions ORDER BY id").fetchall()
    print(f"\n{len(results)} frames: {len(told)} events: {told}")
    assert {kind for kind, *_ in told} >= {"appeared", "label"}  # the sample clip has both
    assert over_sse == over_mqtt == told
    assert logged == [(track, label, frame) for kind, track, label, frame in told if kind != "gone"]
    assert all(name == d["type"] for name, d in sse.events[1:])
