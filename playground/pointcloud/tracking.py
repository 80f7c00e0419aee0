"""Boxes that keep their identity over a sequence: a Kalman tracker with Hungarian matching,
key-frame interpolation, and the KITTI tracking label format.

**Tracking** follows AB3DMOT (Weng et al., "3D Multi-Object Tracking: A Baseline and New Evaluation
Metrics", IROS 2020). Each track is a constant-velocity Kalman filter over
``s = (x, y, z, yaw, l, w, h, vx, vy, vz)``. Every frame:

- each track predicts ``s' = F s`` and ``P' = F P F^T + Q``, where ``F`` adds ``dt * v`` to the
  centre and ``dt`` is the number of frames since the last one (a missing frame is a gap, not an error);
- the detections are matched to the predictions by the Hungarian algorithm on the cost
  ``1 - IoU_BEV``, within a label; pairs under ``iou_min`` stay unmatched;
- a matched track is corrected: ``K = P' H^T (H P' H^T + R)^-1`` and ``s = s' + K (z - H s')``;
- an unmatched detection starts a new track id, and a track unseen for more than ``max_age``
  frames ends.

A detection whose yaw is more than 90 degrees from its track's is turned by pi first, because a box's
front and back are ambiguous.

**Interpolation** follows CVAT's track mode: a box set on two key frames is placed on every frame
between them, with the centre and size linear in time and the yaw along the shorter arc.

**KITTI tracking labels** use one line per box: ``frame track_id`` followed by a ``label_2`` line
(:mod:`~playground.pointcloud.export`). Reading refuses a track id used twice in one frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid, iou_matrix, wrap_angle
from playground.pointcloud.export import Calibration, kitti_line, parse_kitti_line

MEASURED = 7  # x, y, z, yaw, l, w, h
MAX_NUMBER = 2**31 - 1  # the largest frame number or track id a tracking file may give


@dataclass(frozen=True)
class TrackerParams:
    max_age: int = 2  # frames a track survives unseen
    iou_min: float = 0.1  # the least bird's-eye IoU of a match
    position_noise: float = 0.1  # process noise of the velocity (m per frame)
    measurement_noise: float = 0.2  # of a detected box's centre, size and yaw

    def __post_init__(self):
        if self.max_age < 0 or not 0 < self.iou_min <= 1:
            raise ConfigError(
                f"tracker: max_age >= 0 and 0 < iou_min <= 1, got {self.max_age}, {self.iou_min}"
            )
        if min(self.position_noise, self.measurement_noise) <= 0:
            raise ConfigError("tracker: noise levels must be positive")


@dataclass
class Track:
    track_id: int
    label: str
    state: np.ndarray  # (10,)
    covariance: np.ndarray  # (10, 10)
    unseen: int = 0
    score: float | None = None

    def box(self) -> Cuboid:
        x, y, z, yaw, length, width, height = self.state[:MEASURED]
        size = (max(length, 1e-3), max(width, 1e-3), max(height, 1e-3))
        return Cuboid((x, y, z), size, wrap_angle(yaw), self.label, self.score, {"track_id": self.track_id})


def _measurement(box: Cuboid) -> np.ndarray:
    return np.array([*box.center, box.yaw, *box.size])


@dataclass
class Tracker:
    """Feed it each frame's boxes in order with :meth:`step`; it returns them with ``track_id``."""

    params: TrackerParams = field(default_factory=TrackerParams)
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 0

    def _predict(self, elapsed: int) -> None:
        motion = np.eye(10)
        motion[0:3, 7:10] = elapsed * np.eye(3)
        noise = np.diag([0.0] * 7 + [self.params.position_noise**2 * elapsed] * 3)
        for track in self.tracks:
            track.state = motion @ track.state
            track.covariance = motion @ track.covariance @ motion.T + noise

    def _correct(self, track: Track, box: Cuboid) -> None:
        observed = _measurement(box)
        turn = wrap_angle(observed[3] - track.state[3])
        if abs(turn) > math.pi / 2:  # the same box seen front to back
            turn = wrap_angle(turn - math.pi)
        residual = observed - track.state[:MEASURED]
        residual[3] = turn
        projection = np.eye(MEASURED, 10)
        innovation = projection @ track.covariance @ projection.T
        innovation += self.params.measurement_noise**2 * np.eye(MEASURED)
        gain = track.covariance @ projection.T @ np.linalg.inv(innovation)
        track.state = track.state + gain @ residual
        track.covariance = (np.eye(10) - gain @ projection) @ track.covariance
        track.unseen, track.score = 0, box.score

    def _start(self, box: Cuboid) -> Track:
        covariance = np.diag([self.params.measurement_noise**2] * MEASURED + [10.0] * 3)  # speed unknown
        state = np.concatenate([_measurement(box), np.zeros(3)])
        track = Track(self.next_id, box.label, state, covariance, score=box.score)
        self.next_id += 1
        self.tracks.append(track)
        return track

    def _match(self, boxes: list[Cuboid]) -> list[tuple[int, int]]:
        if not boxes or not self.tracks:
            return []
        iou = iou_matrix([t.box() for t in self.tracks], boxes, "bev")
        same = np.array([[t.label == b.label for b in boxes] for t in self.tracks])
        cost = np.where(same, 1.0 - iou, 2.0)
        rows, cols = linear_sum_assignment(cost)
        return [(r, c) for r, c in zip(rows, cols) if same[r, c] and iou[r, c] >= self.params.iou_min]

    def step(self, boxes: list[Cuboid], elapsed: int = 1) -> list[Cuboid]:
        """This frame's ``boxes`` (same order) with ``attributes["track_id"]``; ``elapsed`` frames
        since the last call (more than 1 when frames are missing)."""
        if elapsed < 1:
            raise DataFormatError(f"frames must come in increasing order, got a step of {elapsed}")
        self._predict(elapsed)
        ids: list[int | None] = [None] * len(boxes)
        for row, col in self._match(boxes):
            self._correct(self.tracks[row], boxes[col])
            ids[col] = self.tracks[row].track_id
        matched = {track_id for track_id in ids if track_id is not None}
        for track in self.tracks:
            if track.track_id not in matched:
                track.unseen += elapsed
        self.tracks = [t for t in self.tracks if t.unseen <= self.params.max_age]
        for col, box in enumerate(boxes):
            if ids[col] is None:
                ids[col] = self._start(box).track_id
        return [b.with_(attributes={**b.attributes, "track_id": i}) for b, i in zip(boxes, ids)]


def track_sequence(
    frames: dict[int, list[Cuboid]], params: TrackerParams | None = None
) -> dict[int, list[Cuboid]]:
    """Track ``frames`` (frame index -> boxes; indices may skip missing frames)."""
    tracker, out, previous = Tracker(params or TrackerParams()), {}, None
    for index in sorted(frames):
        out[index] = tracker.step(frames[index], 1 if previous is None else index - previous)
        previous = index
    return out


def interpolate(first: Cuboid, last: Cuboid, t: float) -> Cuboid:
    """The box a fraction ``t`` of the way from ``first`` to ``last`` (yaw along the shorter arc)."""
    if first.label != last.label:
        raise DataFormatError(f"cannot interpolate a {first.label} into a {last.label}")
    centre = (1 - t) * np.array(first.center) + t * np.array(last.center)
    size = (1 - t) * np.array(first.size) + t * np.array(last.size)
    yaw = first.yaw + t * wrap_angle(last.yaw - first.yaw)
    return Cuboid(centre, size, wrap_angle(yaw), first.label, None, dict(first.attributes))


def fill_track(keys: dict[int, Cuboid]) -> dict[int, Cuboid]:
    """One track's key frames (frame -> box) filled in on every frame between them."""
    frames = sorted(keys)
    out = {frames[0]: keys[frames[0]]} if frames else {}
    for start, end in zip(frames, frames[1:]):
        for frame in range(start + 1, end + 1):
            out[frame] = (
                keys[end]
                if frame == end
                else interpolate(keys[start], keys[end], (frame - start) / (end - start))
            )
    return out


def to_kitti_tracking(
    frames: dict[int, list[Cuboid]], calib: Calibration | None = None, decimals: int | None = None
) -> str:
    """KITTI tracking labels: ``frame track_id`` and a ``label_2`` line per box (each with a ``track_id``)."""
    lines = []
    for frame in sorted(frames):
        for box in frames[frame]:
            if "track_id" not in box.attributes:
                raise DataFormatError(f"frame {frame}: a {box.label} has no track_id to export")
            lines.append(f"{frame} {int(box.attributes['track_id'])} {kitti_line(box, calib, decimals)}\n")
    return "".join(lines)


def from_kitti_tracking(
    text: str, calib: Calibration | None = None, where: str = "tracking labels"
) -> dict[int, list[Cuboid]]:
    """Frame -> boxes with ``track_id``; ``DontCare`` lines are skipped."""
    frames: dict[int, list[Cuboid]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3:
            raise DataFormatError(
                f"{where} line {number}: expected 'frame track_id type ...', got {line[:80]!r}"
            )
        try:
            frame, track_id = int(fields[0]), int(fields[1])
        except ValueError:
            raise DataFormatError(
                f"{where} line {number}: frame and track id must be integers: {line[:80]!r}"
            ) from None
        if fields[2] == "DontCare":
            continue
        if not (0 <= frame <= MAX_NUMBER and 0 <= track_id <= MAX_NUMBER):
            raise DataFormatError(
                f"{where} line {number}: frame and track id must be from 0 to {MAX_NUMBER}: {line[:80]!r}"
            )
        box = parse_kitti_line(" ".join(fields[2:]), calib, f"{where} line {number}")
        seen = frames.setdefault(frame, [])
        if any(b.attributes["track_id"] == track_id for b in seen):
            raise DataFormatError(
                f"{where} line {number}: track id {track_id} is used twice in frame {frame}"
            )
        seen.append(box.with_(attributes={"track_id": track_id}))
    return frames
