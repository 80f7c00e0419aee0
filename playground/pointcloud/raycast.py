"""Analytic ray casting for the synthetic LiDAR: rays from one origin against a tilted ground plane,
oriented boxes and vertical elliptic cylinders; the nearest hit wins, so occlusion is exact.

A ray is ``o + t d`` with a unit direction ``d``, so ``t`` is the range in metres.

- plane ``z = g_x x + g_y y``: ``t = (g_x o_x + g_y o_y - o_z) / (d_z - g_x d_x - g_y d_y)``;
- box: the slab method (Kay & Kajiya, 1986) in the box's own frame:
  ``t_near = max_k min(t1_k, t2_k)``, ``t_far = min_k max(t1_k, t2_k)``, a hit when
  ``t_far >= t_near > 0``, with ``t{1,2}_k = (-+half_k - o_k) / d_k``;
- elliptic cylinder with semi-axes ``(a, b)`` and ``z`` in ``[z0, z1]``: scaling x by ``1/a`` and
  y by ``1/b`` makes it the unit circle, ``|o' + t d'|^2 = 1``, plus the top cap ``z = z1``.
"""

from __future__ import annotations

import math

import numpy as np

from playground.pointcloud.cuboid import Cuboid

MISS = np.inf


def ring_directions(elevations_deg: np.ndarray, azimuths: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (rings * azimuths, 3) of a spinning LiDAR, and the ring of each ray.

    Every ring is offset by a fraction of an azimuth step, as the lasers of a real sensor are.
    """
    elevation = np.radians(np.asarray(elevations_deg, dtype=np.float64))
    rings = len(elevation)
    step = 2 * math.pi / azimuths
    azimuth = np.arange(azimuths)[None, :] * step + (np.arange(rings)[:, None] / rings) * step
    cos_e = np.cos(elevation)[:, None]
    directions = np.stack(
        [
            cos_e * np.cos(azimuth),
            cos_e * np.sin(azimuth),
            np.broadcast_to(np.sin(elevation)[:, None], azimuth.shape),
        ],
        axis=-1,
    )
    ring = np.repeat(np.arange(rings, dtype=np.int16), azimuths)
    return directions.reshape(-1, 3), ring


def _local(origin: np.ndarray, directions: np.ndarray, box: Cuboid) -> tuple[np.ndarray, np.ndarray]:
    """The ray origin (3,) and directions (R, 3) in the box's own frame."""
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    return rot @ (origin - np.array(box.center)), directions @ rot.T


def hit_plane(origin: np.ndarray, directions: np.ndarray, slope: tuple[float, float]) -> np.ndarray:
    """Range to the ground ``z = slope_x x + slope_y y`` per ray; ``inf`` where it is not hit ahead."""
    gx, gy = slope
    denominator = directions[:, 2] - gx * directions[:, 0] - gy * directions[:, 1]
    numerator = gx * origin[0] + gy * origin[1] - origin[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = numerator / denominator
    return np.where((denominator < 0) & (t > 0), t, MISS)


def hit_box(origin: np.ndarray, directions: np.ndarray, box: Cuboid) -> np.ndarray:
    """Range to the box per ray (slab method); ``inf`` on a miss or from inside the box."""
    o, d = _local(origin, directions, box)
    half = np.array(box.size) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    near = np.nanmax(np.minimum(t1, t2), axis=1)
    far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((far >= near) & (near > 0), near, MISS)


def hit_cylinder(origin: np.ndarray, directions: np.ndarray, box: Cuboid) -> np.ndarray:
    """Range to the vertical elliptic cylinder inscribed in ``box`` (semi-axes l/2, w/2), top cap included."""
    o, d = _local(origin, directions, box)
    a, b, half_h = box.size[0] / 2, box.size[1] / 2, box.size[2] / 2
    ox, oy, dx, dy = o[0] / a, o[1] / b, d[:, 0] / a, d[:, 1] / b
    qa, qb, qc = dx * dx + dy * dy, 2 * (ox * dx + oy * dy), ox * ox + oy * oy - 1
    disc = qb * qb - 4 * qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        side = (-qb - np.sqrt(np.maximum(disc, 0))) / (2 * qa)
        side_z = o[2] + side * d[:, 2]
        side = np.where((disc >= 0) & (side > 0) & (np.abs(side_z) <= half_h), side, MISS)
        cap = (half_h - o[2]) / d[:, 2]
        cap_x, cap_y = ox + cap * dx, oy + cap * dy
        cap = np.where((cap > 0) & (cap_x * cap_x + cap_y * cap_y <= 1), cap, MISS)
    return np.minimum(side, cap)


def cast(
    origin: np.ndarray, directions: np.ndarray, slope: tuple[float, float], objects: list[tuple[Cuboid, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest range per ray and what it hit: -1 the ground, ``k`` the ``k``-th object, -2 nothing.

    ``objects`` pairs each cuboid with its shape, ``"box"`` or ``"cylinder"``.
    """
    best = hit_plane(origin, directions, slope)
    which = np.where(np.isfinite(best), -1, -2).astype(np.int32)
    azimuth = np.arctan2(directions[:, 1], directions[:, 0])
    for k, (box, shape) in enumerate(objects):
        rays = _facing(origin, azimuth, box)
        t = (hit_box if shape == "box" else hit_cylinder)(origin, directions[rays], box)
        closer = t < best[rays]
        best[rays[closer]] = t[closer]
        which[rays[closer]] = k
    return best, which


def _facing(origin: np.ndarray, azimuth: np.ndarray, box: Cuboid) -> np.ndarray:
    """Indices of the rays whose azimuth can reach ``box`` (all of them when the origin is close)."""
    dx, dy = box.center[0] - origin[0], box.center[1] - origin[1]
    distance, reach = math.hypot(dx, dy), math.hypot(box.size[0], box.size[1]) / 2
    if distance <= reach * 1.05:
        return np.arange(len(azimuth))
    spread = math.asin(min(1.0, reach / distance)) + 1e-3
    offset = np.abs((azimuth - math.atan2(dy, dx) + math.pi) % (2 * math.pi) - math.pi)
    return np.flatnonzero(offset <= spread)
