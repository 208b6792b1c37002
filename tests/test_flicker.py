"""Label hysteresis on real clips, through the real pipeline with the default config: the sample clip's camera
man, at a threshold he hovers around, no longer flickers between neutral and uncertain, the astronaut stays
happy, and the kiosk clip's real changes of expression (at 10 s and 20 s, kiosk.truth.csv) still show within
a second."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

EDGE_DATA = Path(__file__).resolve().parents[1] / "edge" / "data"


def tracks(clip: Path, *overrides: str) -> dict[int, list[tuple[float, str]]]:
    """(timestamp, label) per frame of each track, the clip through the pipeline built from the config."""
    from ferlite.edge.build import replay

    seen: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for r in replay(clip, overrides):
        for f in r.faces:
            seen[f.track_id].append((r.timestamp, f.label))
    return seen


def changes(points: list[tuple[float, str]]) -> int:
    return sum(a[1] != b[1] for a, b in zip(points, points[1:]))


#: The bundled classifier reads the sample clip's camera man as neutral at about 0.7-0.8 (calibrated, smoothed): at
#: the default threshold (0.45) nothing flickers; at this one he hovers around it (python bench/flicker.py
#: --threshold 0.75: 111 label changes a minute without hysteresis, 10 with the defaults).
NEAR = "tracking.threshold=0.75"


@pytest.fixture(scope="module")
def sample():
    clip = EDGE_DATA / "sample.mp4"
    return tracks(clip, NEAR), tracks(clip, NEAR, "tracking.hold=0", "tracking.margin=0")


def test_the_sample_clip_no_longer_flickers(sample, record_property):
    held, plain = sample
    assert len(held) == len(plain) == 2
    before = sum(changes(p) for p in plain.values())
    after = sum(changes(p) for p in held.values())
    record_property("label_changes", {"without hysteresis": before, "default": after})
    print(f"\nsample clip label changes: {before} without hysteresis, {after} with the defaults")
    assert before >= 5 and after <= 1
    astronaut = min(held.values(), key=lambda points: changes(points))
    assert {label for _, label in astronaut} == {"happy"}


def test_real_changes_on_the_kiosk_clip_show_within_a_second():
    with open(EDGE_DATA / "kiosk.truth.csv", newline="") as f:
        truth = [r for r in csv.DictReader(f) if r["label"]]
    at = [float(b["time"]) for a, b in zip(truth, truth[1:]) if a["label"] != b["label"]]
    assert at == pytest.approx([10.0, 20.0])
    points = max(tracks(EDGE_DATA / "kiosk.mp4").values(), key=len)
    for when in at:
        before = [label for t, label in points if t < when][-1]
        seen = next(t for t, label in points if t >= when and label != before)
        assert seen - when <= 1.0, (when, seen, before)
