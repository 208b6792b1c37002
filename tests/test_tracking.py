"""Tests of edge/tracking.py: stable ids, expiry, smoothing, uncertainty and argument checks."""

from __future__ import annotations

import pytest

from ferlite.edge.results import UNCERTAIN, Detection, FaceResult
from ferlite.edge.tracking import Tracker, iou

LABELS = ("happy", "sad", "neutral")
FPS = 5.0
HAPPY = (0.8, 0.1, 0.1)
SAD = (0.1, 0.8, 0.1)


def det(x: int, y: int, probs=HAPPY, size: int = 60, score: float = 0.9) -> Detection:
    return Detection((x, y, size, size), probs, score)


def label_changes(faces: list[FaceResult]) -> int:
    return sum(a.label != b.label for a, b in zip(faces, faces[1:]))


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_two_moving_faces_keep_their_ids_and_input_order():
    tracker = Tracker(LABELS)
    for i in range(30):
        a = det(10 + 4 * i, 50 + i, HAPPY)  # drifts right and down
        b = det(400 - 4 * i, 60, SAD)  # drifts left; the two never overlap
        dets = [a, b] if i % 2 == 0 else [b, a]  # the detector's order changes from frame to frame
        faces = tracker.update(i / FPS, dets)
        assert [f.box for f in faces] == [d.box for d in dets]  # results follow the input order
        ids = {f.box: f.track_id for f in faces}
        assert ids[a.box] == 1 and ids[b.box] == 2, i
        assert {f.raw_label for f in faces} == {"happy", "sad"}
    assert tracker.live_tracks == (1, 2)


def test_greedy_matching_takes_the_highest_iou_first():
    tracker = Tracker(LABELS, iou_threshold=0.1)
    tracker.update(0.0, [det(0, 0), det(40, 0)])  # ids 1 (x=0) and 2 (x=40), overlapping
    # Both new boxes overlap track 1; the one at x=4 overlaps it most, the one at x=38 overlaps track 2 most.
    faces = tracker.update(0.2, [det(38, 0), det(4, 0)])
    assert [f.track_id for f in faces] == [2, 1]


def test_face_gone_longer_than_max_age_gets_a_new_id():
    tracker = Tracker(LABELS, max_age=1.0)
    for i in range(5):
        assert tracker.update(i / FPS, [det(100, 100)])[0].track_id == 1
    assert tracker.update(1.0, []) == ()
    assert tracker.update(2.0, []) == ()  # last seen at 0.8 s: gone 1.2 s > max_age
    assert tracker.live_tracks == ()
    assert tracker.update(2.2, [det(100, 100)])[0].track_id == 2


def test_face_gone_briefly_keeps_its_id():
    tracker = Tracker(LABELS, max_age=1.0)
    for i in range(5):
        tracker.update(i / FPS, [det(100, 100)])  # last seen at 0.8 s
    for t in (1.0, 1.2, 1.4):
        tracker.update(t, [])  # missed for 0.6 s, e.g. the face turned away
    assert tracker.update(1.6, [det(104, 102)])[0].track_id == 1  # last seen 0.8 s ago (<= max_age): kept
    assert tracker.update(1.8, [det(300, 300)])[0].track_id == 2  # a second face elsewhere: new id


def test_ids_are_never_reused_after_reset_or_clock_going_back():
    tracker = Tracker(LABELS)
    tracker.update(5.0, [det(0, 0), det(200, 0)])
    assert [f.track_id for f in tracker.update(0.0, [det(0, 0)])] == [3]  # clock went back: reset
    tracker.reset()
    assert tracker.update(0.2, [det(0, 0)])[0].track_id == 4


def test_smoothing_reduces_label_flicker():
    # A mostly-happy face whose per-frame probabilities flip between happy and sad (noisy classifier).
    noisy = [(0.7, 0.3, 0.0) if i % 3 else (0.35, 0.65, 0.0) for i in range(60)]

    def run(window: int) -> list[FaceResult]:
        tracker = Tracker(LABELS, window=window, threshold=0.0, hold=0.0, margin=0.0)
        return [tracker.update(i / FPS, [det(100, 100, p)])[0] for i, p in enumerate(noisy)]

    raw, smooth = run(1), run(5)
    changes_raw, changes_smooth = label_changes(raw), label_changes(smooth)
    print(f"label changes over {len(noisy)} frames: window=1 -> {changes_raw}, window=5 -> {changes_smooth}")
    assert changes_raw == 39
    assert changes_smooth < changes_raw
    assert changes_smooth == 1  # only the first frame (sad) differs from the settled label
    assert {f.label for f in smooth[1:]} == {"happy"}
    assert [f.raw_label for f in smooth] == [f.label for f in raw]  # raw_label is the frame's own top-1
    assert smooth[-1].probs == pytest.approx(tuple(sum(c) / 5 for c in zip(*noisy[-5:])))
    assert smooth[-1].confidence == pytest.approx(max(smooth[-1].probs))


def test_window_one_is_no_smoothing():
    tracker = Tracker(LABELS, window=1, hold=0.0, margin=0.0)
    tracker.update(0.0, [det(0, 0, HAPPY)])
    face = tracker.update(0.2, [det(0, 0, SAD, score=0.7)])[0]
    assert face.probs == pytest.approx(SAD)
    assert (face.label, face.raw_label, face.det_score) == ("sad", "sad", pytest.approx(0.7))


def test_uncertain_below_threshold():
    tracker = Tracker(LABELS, threshold=0.45, window=1, hold=0.0, margin=0.0)
    face = tracker.update(0.0, [det(0, 0, (0.40, 0.35, 0.25))])[0]
    assert face.label == UNCERTAIN
    assert face.raw_label == "happy"
    assert face.confidence == pytest.approx(0.40)
    assert tracker.update(0.2, [det(0, 0, (0.45, 0.30, 0.25))])[0].label == "happy"  # at the threshold


def test_smoothing_can_make_a_track_uncertain():
    tracker = Tracker(LABELS, threshold=0.45, window=2, hold=0.0, margin=0.0)
    assert tracker.update(0.0, [det(0, 0, HAPPY)])[0].label == "happy"
    face = tracker.update(0.2, [det(0, 0, (0.0, 0.6, 0.4))])[0]  # confident frames, but the mean's top is 0.4
    assert (face.label, face.raw_label) == (UNCERTAIN, "sad")
    assert face.probs == pytest.approx((0.4, 0.35, 0.25))
    face = tracker.update(0.4, [det(0, 0, (0.0, 0.6, 0.4))])[0]
    assert face.label == "sad"


def near_threshold(i: int) -> tuple[float, float, float]:
    """A sad face whose top probability hovers around 0.45: 0.47, 0.44, 0.46, 0.43, ... (the sample clip's
    camera man does this)."""
    p = (0.47, 0.44, 0.46, 0.43)[i % 4]
    return ((1 - p) / 2, p, (1 - p) / 2)


def test_hysteresis_stops_flicker_at_the_threshold():
    frames = [(i / 30, near_threshold(i)) for i in range(90)]  # 3 s at 30 frames/s

    def labels(**kwargs) -> list[str]:
        tracker = Tracker(LABELS, window=1, threshold=0.45, **kwargs)
        return [tracker.update(t, [det(0, 0, p)])[0].label for t, p in frames]

    plain = labels(hold=0.0, margin=0.0)
    assert plain[:4] == ["sad", UNCERTAIN, "sad", UNCERTAIN]
    assert sum(a != b for a, b in zip(plain, plain[1:])) == 89
    assert set(labels(hold=0.0, margin=0.05)) == {"sad"}  # 0.43 is within the margin of the threshold
    held = labels(hold=0.3, margin=0.0)  # no candidate lasts 0.3 s: the label it settled on stays
    assert len(set(held[9:])) == 1 and len(set(held[:9])) == 2  # it follows the candidate while settling


def test_a_new_track_settles_for_hold_seconds_before_it_counts():
    """A cold window is one frame's guess: for its first ``hold`` seconds a track shows its candidate at once
    and says ``settled=False``; then the label it settled on is held like any other."""
    tracker = Tracker(LABELS, window=5, threshold=0.45, hold=0.3, margin=0.05)
    first = [(0.30, 0.43, 0.27)] + [(0.25, 0.48, 0.27)] * 4 + [(0.28, 0.44, 0.28)] * 10  # the camera man
    faces = [tracker.update(i / 15, [det(0, 0, p)])[0] for i, p in enumerate(first)]
    assert faces[0].label == UNCERTAIN and faces[1].label == "sad"  # no hold while settling
    assert [f.settled for f in faces[:5]] == [False] * 5 and all(f.settled for f in faces[5:])  # 5/15 s >= 0.3
    assert {f.label for f in faces[1:]} == {"sad"}  # settled on sad, kept within the margin
    photo = Tracker(LABELS, window=1, max_age=0.0, hold=0.0, margin=0.0)  # photos: settled at once
    assert photo.update(0.0, [det(0, 0, (0.3, 0.4, 0.3))])[0].settled


def test_a_real_change_appears_after_the_hold():
    tracker = Tracker(LABELS, window=1, hold=0.3, margin=0.05)
    seen = [(i / 30, tracker.update(i / 30, [det(0, 0, HAPPY if i < 30 else SAD)])[0]) for i in range(60)]
    first_sad = next(t for t, f in seen if f.label == "sad")
    assert first_sad == pytest.approx(1.0 + 0.3)  # sad from 1.0 s, reported once it lasted 0.3 s
    held = [f for t, f in seen if 1.0 <= t < first_sad]
    assert held and all(f.label == "happy" and f.raw_label == "sad" for f in held)
    assert all(f.confidence == pytest.approx(0.1) for f in held)  # the confidence of the label shown


def test_a_brief_change_is_not_reported_and_uncertain_keeps_the_best_guess():
    tracker = Tracker(LABELS, window=1, hold=0.3, margin=0.05)
    probs = [HAPPY] * 10 + [(0.3, 0.4, 0.3)] * 5 + [HAPPY] * 5 + [(0.3, 0.4, 0.3)] * 15
    faces = [tracker.update(i / 30, [det(0, 0, p)])[0] for i, p in enumerate(probs)]
    assert [f.label for f in faces[:20]] == ["happy"] * 20  # 5 frames (0.17 s) of doubt: not reported
    assert faces[-1].label == UNCERTAIN  # 15 frames (0.5 s) of doubt: reported after 0.3 s
    assert faces[-1].confidence == pytest.approx(0.4) and faces[-1].raw_label == "sad"
    assert max(zip(faces[-1].probs, LABELS))[1] == "sad"  # the best guess is kept beside "uncertain"


def test_tracks_hold_their_own_labels():
    tracker = Tracker(LABELS, window=1, hold=0.3)
    for i in range(20):
        a, b = tracker.update(i / 30, [det(0, 0, HAPPY if i < 10 else SAD), det(300, 0, SAD)])
        assert b.label == "sad"  # a new track shows its first label at once and keeps it
    assert a.label == "sad" and a.track_id != b.track_id


def test_detection_converts_sequences():
    d = Detection([1.0, 2.0, 3.0, 4.0], [0.5, 0.5], 1)
    assert d.box == (1, 2, 3, 4) and d.probs == (0.5, 0.5) and d.det_score == 1.0
    with pytest.raises(ValueError, match="box"):
        Detection((1, 2, 3), (1.0,))


def test_probs_length_must_match_labels():
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        Tracker(LABELS).update(0.0, [det(0, 0, (0.5, 0.5))])


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"iou_threshold": 0}, "iou_threshold"),
    ({"iou_threshold": 1.5}, "iou_threshold"),
    ({"iou_threshold": float("nan")}, "iou_threshold"),
    ({"max_age": -1}, "max_age"),
    ({"max_age": float("inf")}, "max_age"),
    ({"window": 0}, "window"),
    ({"window": 2.5}, "window"),
    ({"window": True}, "window"),
    ({"threshold": -0.1}, "threshold"),
    ({"threshold": 1.01}, "threshold"),
    ({"threshold": "0.5"}, "threshold"),
    ({"hold": -0.1}, "hold"),
    ({"hold": float("inf")}, "hold"),
    ({"margin": 1.5}, "margin"),
])
def test_argument_validation(kwargs, name):
    with pytest.raises(ValueError, match=name) as info:
        Tracker(LABELS, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)  # the message shows the bad value


@pytest.mark.parametrize("labels", [(), ("a", "a"), ("a", ""), ("a", 3)])
def test_labels_validation(labels):
    with pytest.raises(ValueError, match="labels"):
        Tracker(labels)


# ------------------------------------------------------------------------------------------------ events


def kinds(events) -> list[tuple[str, int, str, str]]:
    return [(e.kind, e.track_id, e.label, e.previous) for e in events]


def test_events_appeared_once_settled_then_label_then_gone_on_the_source_clock():
    tracker = Tracker(LABELS, window=1, hold=0.4, margin=0, max_age=1.0)
    seen = []
    for i in range(5):  # settling: the first 0.4 s (two frames at 5/s) give no event
        faces, events = tracker.step(i / FPS, [det(100, 100, SAD if i == 0 else HAPPY)])
        seen.append((i, faces[0].settled, kinds(events)))
    assert seen[:2] == [(0, False, []), (1, False, [])]
    assert seen[2] == (2, True, [("appeared", 1, "happy", "")])  # its settled label, not the first guess
    assert seen[3][2] == seen[4][2] == []
    assert tracker.step(1.0, [det(100, 100, SAD)])[1] == ()  # a new candidate waits out hold ...
    faces, events = tracker.step(1.6, [det(100, 100, SAD)])
    assert kinds(events) == [("label", 1, "sad", "happy")] and events[0].timestamp == 1.6
    assert faces[0].since == 1.6
    assert tracker.step(2.6, [])[1] == ()  # last seen at 1.6: 1.0 s is not more than max_age
    gone = tracker.step(2.8, [])[1]
    assert kinds(gone) == [("gone", 1, "sad", "sad")] and gone[0].timestamp == 2.8


def test_a_track_that_goes_before_settling_has_no_event_and_a_restart_ends_the_others():
    tracker = Tracker(LABELS, window=1, hold=0.4, margin=0, max_age=0.5)
    assert tracker.step(0.0, [det(0, 0)])[1] == ()
    assert tracker.step(1.0, [det(300, 300)])[1] == ()  # track 1 expired unsettled: no "gone" either
    tracker.step(1.5, [det(300, 300)])  # settled: it appeared
    _, events = tracker.step(0.0, [det(300, 300)])  # the source restarted (a looping file)
    assert kinds(events) == [("gone", 2, "happy", "happy")]
