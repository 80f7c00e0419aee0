"""Tracks over a sequence: ids kept through noise, a missed detection and a missing frame; key-frame
interpolation; the KITTI tracking format round trip and its refusals."""

import math

import numpy as np
import pytest

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.tracking import (
    Tracker,
    TrackerParams,
    fill_track,
    from_kitti_tracking,
    interpolate,
    to_kitti_tracking,
    track_sequence,
)

# three objects moving at constant speed (m per frame): two cars passing each other, a pedestrian
MOVERS = [
    ("car", (0.0, -4.0), (1.2, 0.0), (4.2, 1.8, 1.6)),
    ("car", (30.0, 4.0), (-1.0, 0.0), (4.5, 1.9, 1.5)),
    ("pedestrian", (10.0, 8.0), (0.0, -0.4), (0.7, 0.6, 1.7)),
]


def scene(frame: int, rng: np.random.Generator, noise: float = 0.1) -> list[Cuboid]:
    boxes = []
    for label, (x, y), (vx, vy), size in MOVERS:
        centre = (x + vx * frame, y + vy * frame, size[2] / 2)
        jitter = rng.normal(0, noise, 3) * (1, 1, 0)
        yaw = math.atan2(vy, vx) + rng.normal(0, 0.05)
        boxes.append(Cuboid(np.add(centre, jitter), size, yaw, label, score=0.9))
    return boxes


def identities(tracked: dict[int, list[Cuboid]]) -> set[tuple[int, ...]]:
    """Per frame, the ids in mover order: one tuple if every frame agrees."""
    return {tuple(b.attributes["track_id"] for b in boxes) for boxes in tracked.values()}


def test_ids_survive_noise_a_missed_detection_and_a_missing_frame():
    rng = np.random.default_rng(0)
    frames = {f: scene(f, rng) for f in range(20) if f not in (7, 8, 9)}  # frames 7-9 never arrived
    frames[12] = frames[12][1:]  # the first car was not detected in frame 12
    tracked = track_sequence(frames)
    assert identities({f: b for f, b in tracked.items() if f != 12}) == {(0, 1, 2)}
    assert [b.attributes["track_id"] for b in tracked[12]] == [1, 2]
    assert tracked[19][0].attributes["track_id"] == 0  # the car came back under its own id


def test_a_track_ends_after_max_age_and_a_new_object_gets_a_new_id():
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerParams(max_age=1))
    for frame in range(3):
        tracker.step(scene(frame, rng))
    gone = [tracker.step(scene(frame, rng)[1:]) for frame in (3, 4)][-1]
    assert [b.attributes["track_id"] for b in gone] == [1, 2]
    back = tracker.step(scene(5, rng))
    assert back[0].attributes["track_id"] == 3  # unseen for 2 frames > max_age: a new track


def test_the_filter_learns_the_velocity_and_smooths_the_noise():
    rng = np.random.default_rng(2)
    tracker = Tracker()
    for frame in range(15):
        tracker.step(scene(frame, rng, noise=0.3))
    car = next(t for t in tracker.tracks if t.track_id == 0)
    assert car.state[7] == pytest.approx(1.2, abs=0.15) and abs(car.state[8]) < 0.15
    assert abs(car.state[0] - 1.2 * 14) < 0.3  # the filtered position, against 0.3 m of noise


def test_a_box_seen_back_to_front_keeps_its_track():
    tracker = Tracker()
    box = Cuboid((5.0, 0.0, 0.8), (4.0, 1.8, 1.6), 0.1, "car")
    tracker.step([box])
    (again,) = tracker.step([box.with_(yaw=0.1 + math.pi)])
    assert again.attributes["track_id"] == 0
    assert abs(math.sin(tracker.tracks[0].state[3] - 0.1)) < 1e-6  # not dragged half a turn


def test_interpolation_between_key_frames():
    first = Cuboid((0.0, 0.0, 0.8), (4.0, 1.8, 1.6), math.radians(170), "car", attributes={"track_id": 4})
    last = Cuboid((10.0, 2.0, 0.8), (4.4, 1.8, 1.6), math.radians(-170), "car")
    middle = interpolate(first, last, 0.5)
    assert middle.center == pytest.approx((5.0, 1.0, 0.8)) and middle.size[0] == pytest.approx(4.2)
    assert abs(math.sin(middle.yaw - math.pi)) < 1e-9  # through 180 degrees, not through 0
    filled = fill_track({2: first, 6: last})
    assert sorted(filled) == [2, 3, 4, 5, 6] and filled[4].center == pytest.approx(middle.center)
    assert filled[3].attributes["track_id"] == 4
    with pytest.raises(DataFormatError, match="cannot interpolate a car into a pedestrian"):
        interpolate(first, last.with_(label="pedestrian"), 0.5)


def test_kitti_tracking_round_trip():
    rng = np.random.default_rng(3)
    tracked = track_sequence({f: scene(f, rng) for f in (0, 1, 2, 4)})
    text = to_kitti_tracking(tracked)
    assert text.splitlines()[0].startswith("0 0 Car ")
    back = from_kitti_tracking(text + "4 -1 DontCare -1 -1 -10 0 0 0 0 -1 -1 -1 -1000 -1000 -1000 -10\n")
    assert sorted(back) == [0, 1, 2, 4]
    for frame, boxes in tracked.items():
        for want, got in zip(boxes, back[frame]):
            assert got.attributes["track_id"] == want.attributes["track_id"] and got.label == want.label
            assert got.center == pytest.approx(want.center) and got.size == pytest.approx(want.size)
            assert math.sin(got.yaw - want.yaw) == pytest.approx(0.0, abs=1e-9)


def test_bad_tracking_files_and_settings_are_refused():
    box = Cuboid((5.0, 0.0, 0.8), (4.0, 1.8, 1.6), 0.0, "car", attributes={"track_id": 3})
    line = to_kitti_tracking({0: [box]})
    with pytest.raises(DataFormatError, match="line 2: track id 3 is used twice in frame 0"):
        from_kitti_tracking(line + line)
    with pytest.raises(DataFormatError, match="line 1: frame and track id must be integers"):
        from_kitti_tracking("zero 3 Car 0 0 0")
    with pytest.raises(DataFormatError, match="has no track_id to export"):
        to_kitti_tracking({0: [box.with_(attributes={})]})
    with pytest.raises(DataFormatError, match="increasing order"):
        Tracker().step([box], elapsed=0)
    with pytest.raises(ConfigError, match="iou_min"):
        TrackerParams(iou_min=0.0)
