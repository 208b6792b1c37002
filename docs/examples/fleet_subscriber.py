"""Collect the events of every ferlite device on one MQTT broker into one SQLite table.

    python docs/examples/fleet_subscriber.py --host broker.local --db fleet.db

Each device publishes on ``<topic_prefix>/events`` (default ``ferlite/<hostname>/events``): one JSON message per
face that appears, changes its expression, or goes. This subscribes to ``ferlite/+/events`` and appends a row
per event, with the device's name taken from the topic, until Ctrl-C (or --seconds). Needs paho-mqtt.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading

SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL, time REAL NOT NULL, type TEXT NOT NULL, track_id INTEGER NOT NULL,
    label TEXT NOT NULL, previous TEXT, confidence REAL, source TEXT)"""


def main() -> None:
    import paho.mqtt.client as mqtt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--topic", default="ferlite/+/events", help="topic filter (default: %(default)s)")
    p.add_argument("--db", default="fleet.db", help="SQLite file (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    args = p.parse_args()
    db = sqlite3.connect(args.db, check_same_thread=False)
    db.execute(SCHEMA)
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        e = json.loads(msg.payload)
        device = msg.topic.split("/")[-2]
        with lock, db:
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (device, e["time"], e["type"], e["track_id"], e["label"], e.get("previous"),
                        e.get("confidence"), e.get("source")))

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, u, f, rc, props: c.subscribe(args.topic, qos=1)
    client.on_message = on_message
    client.connect(args.host, args.port)
    client.loop_start()
    try:
        threading.Event().wait(args.seconds)
    except KeyboardInterrupt:
        pass
    client.loop_stop()
    with lock:
        for device, n in db.execute("SELECT device, COUNT(*) FROM events GROUP BY device ORDER BY device"):
            print(f"{device}: {n} events")
    db.close()


if __name__ == "__main__":
    main()
