"""The 3D cuboid: an oriented box in the LiDAR frame, its corners, the points inside it, and
3D and bird's-eye-view (BEV) IoU of rotated boxes.

Frame: the LiDAR frame, x forward, y left, z up (metres). A cuboid has a centre
``(x, y, z)`` (the box's geometric centre, not its bottom), a size ``(l, w, h)`` (length along
its heading, width, height) and a yaw: the heading's angle from +x towards +y about +z
(radians). A point ``p`` in the box's own frame is ``R(-yaw) (p - centre)``; it is inside when
``|u| <= l/2, |v| <= w/2, |z'| <= h/2``.

BEV IoU intersects the two footprints exactly: both are convex quadrilaterals, so
Sutherland-Hodgman clipping (Sutherland & Hodgman, 1974) of one by the other's four edges
gives the intersection polygon, whose area comes from the shoelace formula. 3D IoU is
``A_bev_inter * overlap_z / (V_a + V_b - A_bev_inter * overlap_z)``, exact for yaw-only boxes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from playground.errors import DataFormatError

# corner order: bottom face then top face, each counter-clockwise seen from above,
# starting at front-left (+l/2, +w/2): (+,+) (-,+) (-,-) (+,-)
_SIGNS = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)


def wrap_angle(angle: float) -> float:
    """``angle`` in [-pi, pi) (returned unchanged when it already is)."""
    angle = float(angle)
    return angle if -math.pi <= angle < math.pi else float((angle + math.pi) % (2 * math.pi) - math.pi)


@dataclass(frozen=True)
class Cuboid:
    """One 3D box: ``center`` (x, y, z), ``size`` (l, w, h), ``yaw`` (radians), ``label``, and an
    optional ``score`` (a proposal's confidence) and free-form ``attributes``."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0
    label: str = "car"
    score: float | None = None
    attributes: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        center = tuple(float(v) for v in np.asarray(self.center, dtype=np.float64).reshape(-1))
        size = tuple(float(v) for v in np.asarray(self.size, dtype=np.float64).reshape(-1))
        if len(center) != 3 or len(size) != 3:
            raise DataFormatError(
                f"a cuboid needs a centre (x, y, z) and a size (l, w, h), got {self.center!r} "
                f"and {self.size!r}"
            )
        if not all(math.isfinite(v) for v in (*center, *size, float(self.yaw))):
            raise DataFormatError(
                f"a cuboid's centre, size and yaw must be finite, got {center} {size} {self.yaw}"
            )
        if min(size) <= 0:
            raise DataFormatError(f"a cuboid's size (l, w, h) must be positive, got {size}")
        if not str(self.label).strip():
            raise DataFormatError("a cuboid needs a non-empty label")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "yaw", float(self.yaw))
        object.__setattr__(self, "label", str(self.label).strip())
        if self.score is not None:
            object.__setattr__(self, "score", float(self.score))

    @property
    def volume(self) -> float:
        return self.size[0] * self.size[1] * self.size[2]

    @property
    def bottom(self) -> float:
        return self.center[2] - self.size[2] / 2

    def corners(self) -> np.ndarray:
        """The 8 corners (8, 3): bottom face then top face, see ``_SIGNS`` for the order."""
        bev = self.bev_corners()
        z = np.repeat([self.bottom, self.bottom + self.size[2]], 4)[:, None]
        return np.hstack([np.vstack([bev, bev]), z])

    def bev_corners(self) -> np.ndarray:
        """The footprint (4, 2), counter-clockwise."""
        half = _SIGNS * (np.array(self.size[:2]) / 2)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return half @ np.array([[c, s], [-s, c]]) + np.array(self.center[:2])

    def with_(self, **changes) -> Cuboid:
        """A copy with some fields changed (``box.with_(yaw=0.3)``)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        out = {"center": list(self.center), "size": list(self.size), "yaw": self.yaw, "label": self.label}
        if self.score is not None:
            out["score"] = self.score
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Cuboid:
        try:
            return cls(
                center=data["center"],
                size=data["size"],
                yaw=data.get("yaw", 0.0),
                label=data.get("label", "car"),
                score=data.get("score"),
                attributes=dict(data.get("attributes") or {}),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            if isinstance(err, DataFormatError):
                raise
            raise DataFormatError(f"not a cuboid: {repr(data)[:120]} ({str(err)[:120]})") from None


def to_local(points: np.ndarray, box: Cuboid) -> np.ndarray:
    """``points`` (N, 3) in ``box``'s own frame (u along its length, v along its width)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 3:
        raise DataFormatError(f"points must be (N, 3), got shape {points.shape}")
    shifted = points[:, :3] - np.array(box.center)
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    return np.column_stack(
        [c * shifted[:, 0] + s * shifted[:, 1], -s * shifted[:, 0] + c * shifted[:, 1], shifted[:, 2]]
    )


def points_in_box(points: np.ndarray, box: Cuboid, margin: float = 0.0) -> np.ndarray:
    """Boolean mask (N,): which of ``points`` lie inside ``box`` grown by ``margin`` on every side."""
    local = np.abs(to_local(points, box))
    half = np.array(box.size) / 2 + margin
    return (local[:, 0] <= half[0]) & (local[:, 1] <= half[1]) & (local[:, 2] <= half[2])


def polygon_area(polygon: np.ndarray) -> float:
    """Shoelace area of a simple polygon (K, 2); positive when counter-clockwise."""
    if len(polygon) < 3:
        return 0.0
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of polygon ``subject`` inside the convex, counter-clockwise ``clip``."""
    output = [tuple(p) for p in subject]
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        edge = b - a
        inputs, output = output, []
        if not inputs:
            break
        side = [edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]) for p in inputs]  # >= 0: inside
        for j, p in enumerate(inputs):
            q, sp, sq = inputs[j - 1], side[j], side[j - 1]
            if sp >= 0:
                if sq < 0:
                    output.append(_crossing(q, p, sq, sp))
                output.append(p)
            elif sq >= 0:
                output.append(_crossing(q, p, sq, sp))
    return np.array(output, dtype=np.float64).reshape(-1, 2)


def _crossing(q, p, sq: float, sp: float) -> tuple[float, float]:
    t = sq / (sq - sp)
    return (q[0] + t * (p[0] - q[0]), q[1] + t * (p[1] - q[1]))


def bev_intersection(a: Cuboid, b: Cuboid) -> float:
    """Area of the overlap of the two footprints (m^2)."""
    ca, cb = np.array(a.center[:2]), np.array(b.center[:2])
    reach = math.hypot(*a.size[:2]) / 2 + math.hypot(*b.size[:2]) / 2
    if np.linalg.norm(ca - cb) >= reach:
        return 0.0
    return max(0.0, polygon_area(clip_polygon(a.bev_corners(), b.bev_corners())))


def bev_iou(a: Cuboid, b: Cuboid) -> float:
    """Bird's-eye-view IoU of the two rotated footprints."""
    inter = bev_intersection(a, b)
    union = a.size[0] * a.size[1] + b.size[0] * b.size[1] - inter
    return inter / union if union > 0 else 0.0


def iou_3d(a: Cuboid, b: Cuboid) -> float:
    """3D IoU of two yaw-only boxes: BEV overlap times z overlap over the union of volumes."""
    z_overlap = min(a.bottom + a.size[2], b.bottom + b.size[2]) - max(a.bottom, b.bottom)
    if z_overlap <= 0:
        return 0.0
    inter = bev_intersection(a, b) * z_overlap
    union = a.volume + b.volume - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(boxes_a: Iterable[Cuboid], boxes_b: Iterable[Cuboid], kind: str = "bev") -> np.ndarray:
    """IoU of every pair (len(a), len(b)); ``kind`` is ``"bev"`` or ``"3d"``."""
    if kind not in ("bev", "3d"):
        raise DataFormatError(f"kind must be 'bev' or '3d', got {kind!r}")
    fn = bev_iou if kind == "bev" else iou_3d
    boxes_a, boxes_b = list(boxes_a), list(boxes_b)
    out = np.zeros((len(boxes_a), len(boxes_b)))
    for i, a in enumerate(boxes_a):
        for j, b in enumerate(boxes_b):
            out[i, j] = fn(a, b)
    return out
