"""Cuboid proposals from a raw LiDAR frame, for the annotator to accept or adjust.

The classic model-free pipeline:

1. voxel down-sampling (open3d ``voxel_down_sample``): one point per occupied ``voxel_size`` cube;
2. ground removal: RANSAC plane fit (Fischler & Bolles, 1981; open3d ``segment_plane``), repeated
   until the plane is near-horizontal; points within ``ground_threshold`` of it or below it go;
3. DBSCAN (Ester et al., 1996; open3d ``cluster_dbscan``) groups the rest into objects;
4. per cluster, a yaw-constrained box: in x-y the L-shape fit of Zhang et al. (2017, "Efficient
   L-Shape Fitting for Vehicle Detection Using Laser Scanners") picks the heading ``theta`` in
   [0, 90 deg) that maximises the closeness criterion ``sum_i 1 / max(d_i, d0)``, where ``d_i`` is
   point ``i``'s distance to the nearer rectangle edge along either axis; the z extent is taken
   separately, from the ground plane under the cluster to its highest point;
5. a class guess from the observed extents (car, pedestrian, pole; anything else is ``unknown``),
   then each side the sensor could not see is completed to the class's default size by growing
   the box *away from the sensor* (the near faces are the ones measured).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid

# class default sizes (l, w, h), about the KITTI training-set means
DEFAULT_SIZES: dict[str, tuple[float, float, float]] = {
    "car": (4.2, 1.8, 1.6),
    "pedestrian": (0.75, 0.6, 1.7),
    "cyclist": (1.76, 0.6, 1.73),
    "pole": (0.25, 0.25, 4.0),
}
THIN = 0.3  # metres: no pedestrian is seen this thin from any side
CAR_MAX_WIDTH = 2.1  # an observed side longer than this is a car's length, not its front or back


@dataclasses.dataclass
class ProposalParams:
    """The pipeline's settings; the pointcloud config's ``[proposals]`` section itself
    (``--set proposals.eps=0.8``), whose ``seed`` the experiment sets from the run's seed."""

    voxel_size: float = 0.15  # 0 keeps every point
    ground_threshold: float = 0.2  # metres from the RANSAC plane that count as ground
    ransac_iterations: int = 100
    eps: float = 0.6  # DBSCAN neighbourhood (m)
    min_points: int = 4  # DBSCAN core-point neighbours
    min_cluster_points: int = 6  # smaller clusters are dropped
    max_range: float = 0.0  # ignore points farther than this in x-y (0: no limit)
    angle_step_deg: float = 1.0  # L-shape search resolution
    closeness_floor: float = 0.01  # d0 of the closeness criterion (m)
    keep_unknown: bool = False  # also return clusters that fit no class (walls, bushes...)
    seed: int = 0  # RANSAC's random samples

    def __post_init__(self):
        for key in ("voxel_size", "max_range"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"proposals.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("ground_threshold", "eps", "angle_step_deg", "closeness_floor"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"proposals.{key} must be positive, got {getattr(self, key)}")
        for key in ("ransac_iterations", "min_points", "min_cluster_points"):
            if getattr(self, key) < 1:
                raise ConfigError(f"proposals.{key} must be at least 1, got {getattr(self, key)}")


def _cloud(points: np.ndarray):
    import open3d as o3d

    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points[:, :3], dtype=np.float64)))


def _check(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise DataFormatError(f"points must be (N, 3), got shape {points.shape}")
    if not np.isfinite(points[:, :3]).all():
        raise DataFormatError(
            "points contain NaN or inf; read them with drop_invalid=True to remove those rows"
        )
    return points[:, :3]


def voxel_downsample(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """One point (the mean) per occupied voxel; ``voxel_size`` 0 returns the points unchanged."""
    points = _check(points)
    if voxel_size <= 0 or not len(points):
        return np.asarray(points, dtype=np.float64)
    return np.asarray(_cloud(points).voxel_down_sample(voxel_size).points)


def fit_ground(
    points: np.ndarray,
    threshold: float = 0.2,
    iterations: int = 100,
    seed: int = 0,
    max_tilt_deg: float = 25.0,
    tries: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """The ground plane ``(a, b, c, d)`` (``a x + b y + c z + d = 0``, ``c > 0``) and a ground mask.

    A plane tilted more than ``max_tilt_deg`` (a wall) is set aside and RANSAC runs again.
    """
    import open3d as o3d

    points = _check(points)
    remaining = np.arange(len(points))
    for _ in range(tries):
        if len(remaining) < 3:
            break
        o3d.utility.random.seed(seed)
        plane, inliers = _cloud(points[remaining]).segment_plane(threshold, 3, iterations)
        plane = np.asarray(plane) * (1 if plane[2] >= 0 else -1) / np.linalg.norm(plane[:3])
        if plane[2] >= math.cos(math.radians(max_tilt_deg)):
            plane = refine_plane(points, plane, threshold)
            return plane, points @ plane[:3] + plane[3] < threshold
        remaining = np.delete(remaining, inliers)
    raise DataFormatError(
        "found no ground plane (no near-horizontal plane among the points); is z up in this point cloud?"
    )


def refine_plane(points: np.ndarray, plane: np.ndarray, threshold: float, rounds: int = 2) -> np.ndarray:
    """A least-squares refit of ``plane`` to the points within ``threshold`` of it, ``rounds`` times.

    open3d runs RANSAC on several threads, so the same seed can give slightly different planes from
    run to run; the refit lands on the same plane whenever the inlier sets agree (they differ only
    in points on the threshold's edge), so the same frame gets the same proposals.
    """
    for _ in range(rounds):
        near = points[np.abs(points @ plane[:3] + plane[3]) < threshold]
        if len(near) < 3:
            break
        centroid = near.mean(axis=0)
        normal = np.linalg.svd(near - centroid, full_matrices=False)[2][-1]
        normal = normal * (1 if normal[2] >= 0 else -1)
        plane = np.append(normal, -normal @ centroid)
    return plane


def ground_plane(points: np.ndarray, params: ProposalParams | None = None) -> np.ndarray:
    """The frame's ground plane ``(a, b, c, d)`` as :func:`propose` finds it (voxel grid, then RANSAC).

    Where RANSAC finds no near-horizontal plane, the horizontal plane at the 2nd percentile of z,
    so that a viewer can still stand new boxes on something.
    """
    params = params or ProposalParams()
    sparse = voxel_downsample(points, params.voxel_size)
    if len(sparse) >= 3:
        try:
            return fit_ground(sparse, params.ground_threshold, params.ransac_iterations, params.seed)[0]
        except DataFormatError:
            pass  # no near-horizontal plane: the floor below
    return np.array([0.0, 0.0, 1.0, -float(np.percentile(_check(points)[:, 2], 2))])


def cluster(points: np.ndarray, eps: float = 0.6, min_points: int = 4) -> np.ndarray:
    """DBSCAN labels (N,): cluster index, or -1 for noise."""
    points = _check(points)
    if not len(points):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(_cloud(points).cluster_dbscan(eps, min_points, print_progress=False), dtype=np.int64)


def fit_rectangle(
    xy: np.ndarray, step_deg: float = 1.0, floor: float = 0.01, max_points: int = 400
) -> tuple[float, np.ndarray, np.ndarray]:
    """L-shape fit: the heading ``theta`` in [0, pi/2) and the extents ``lo``, ``hi`` (2,) along
    ``e1 = (cos, sin)`` and ``e2 = (-sin, cos)`` that enclose ``xy`` (N, 2)."""
    xy = np.asarray(xy, dtype=np.float64)
    sample = xy if len(xy) <= max_points else xy[np.linspace(0, len(xy) - 1, max_points).astype(int)]
    theta = np.radians(np.arange(0.0, 90.0, step_deg))
    c1 = np.cos(theta)[:, None] * sample[:, 0] + np.sin(theta)[:, None] * sample[:, 1]
    c2 = -np.sin(theta)[:, None] * sample[:, 0] + np.cos(theta)[:, None] * sample[:, 1]
    d1 = np.minimum(c1.max(1, keepdims=True) - c1, c1 - c1.min(1, keepdims=True))
    d2 = np.minimum(c2.max(1, keepdims=True) - c2, c2 - c2.min(1, keepdims=True))
    score = (1.0 / np.maximum(np.minimum(d1, d2), floor)).sum(axis=1)
    best = float(theta[int(np.argmax(score))])
    e1, e2 = np.array([math.cos(best), math.sin(best)]), np.array([-math.sin(best), math.cos(best)])
    coords = np.column_stack([xy @ e1, xy @ e2])
    return best, coords.min(axis=0), coords.max(axis=0)


def guess_class(extent: tuple[float, float], height: float) -> str:
    """car / pedestrian / pole / unknown from the observed footprint extents and height (m).

    Thinner than ``THIN`` is a pole when tall enough (the sensor's field of view often cuts a
    near pole at about 2 m), else a sliver of something larger seen through a gap: unknown.
    """
    long_side = max(extent)
    if height < 1.0 or long_side > 6.5:
        return "unknown"
    if long_side < THIN:
        return "pole" if height >= 1.8 else "unknown"
    if height > 2.3:
        return "unknown"
    return "pedestrian" if long_side <= 1.1 else "car"


def _complete(lo: float, hi: float, want: float, sensor: float) -> tuple[float, float]:
    """Grow ``[lo, hi]`` to length ``want`` away from ``sensor`` (all along one axis)."""
    if hi - lo >= want:
        return lo, hi
    if sensor <= lo:
        return lo, lo + want
    if sensor >= hi:
        return hi - want, hi
    middle = (lo + hi) / 2
    return middle - want / 2, middle + want / 2


def fit_box(
    points: np.ndarray, plane: np.ndarray, sensor_xy=(0.0, 0.0), step_deg: float = 1.0, floor: float = 0.01
) -> Cuboid:
    """The box around one cluster: L-shape footprint, ground-to-top height, class guess, and the
    unseen sides completed to the class's default size away from the sensor."""
    theta, lo, hi = fit_rectangle(points[:, :2], step_deg, floor)
    axes = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    middle = axes.T @ ((lo + hi) / 2)
    ground = -(plane[0] * middle[0] + plane[1] * middle[1] + plane[3]) / plane[2]
    height = float(points[:, 2].max() - ground)
    extent = hi - lo
    label = guess_class((float(extent[0]), float(extent[1])), height)
    along = _length_axis(label, extent)
    if along == 1:  # make e1 the length axis
        axes, lo, hi, theta = (
            axes[::-1] * np.array([[1], [-1]]),
            np.array([lo[1], -hi[0]]),
            np.array([hi[1], -lo[0]]),
            theta + math.pi / 2,
        )
    default = DEFAULT_SIZES.get(label)
    if default is not None:
        sensor = axes @ np.asarray(sensor_xy, dtype=np.float64)
        lo, hi = (
            np.array(pair) for pair in zip(*(_complete(lo[k], hi[k], default[k], sensor[k]) for k in (0, 1)))
        )
    centre_xy = axes.T @ ((lo + hi) / 2)
    ground = -(plane[0] * centre_xy[0] + plane[1] * centre_xy[1] + plane[3]) / plane[2]
    size = (max(hi[0] - lo[0], 0.05), max(hi[1] - lo[1], 0.05), max(height, 0.05))
    return Cuboid(
        (centre_xy[0], centre_xy[1], ground + size[2] / 2),
        size,
        _wrap(theta),
        label,
        attributes={
            "num_points": int(len(points)),
            "observed_size": [round(float(e), 3) for e in (*sorted(extent)[::-1], height)],
        },
    )


def _length_axis(label: str, extent: np.ndarray) -> int:
    """Which fitted axis (0 or 1) runs along the object's length."""
    longer = int(extent[1] > extent[0])
    if label == "car" and extent[longer] <= CAR_MAX_WIDTH:
        return (
            1 - longer
        )  # no side longer than a car is wide: the front or back; the length runs away from it
    return longer


def _wrap(angle: float) -> float:
    return float((angle + math.pi) % (2 * math.pi) - math.pi)


def _score(count: int) -> float:
    return float(1.0 - math.exp(-count / 30.0))


def propose(
    points: np.ndarray,
    params: ProposalParams | None = None,
    sensor_xy=(0.0, 0.0),
    timings: dict | None = None,
) -> list[Cuboid]:
    """Cuboid proposals for one frame of ``points`` (N, >=3) in the LiDAR frame (z up).

    ``timings``, when given, receives the seconds each stage took (voxel, ground, cluster, fit).
    """
    params = params or ProposalParams()
    clock = _Stopwatch(timings)
    points = _check(points)
    if params.max_range > 0:
        points = points[
            np.hypot(points[:, 0] - sensor_xy[0], points[:, 1] - sensor_xy[1]) <= params.max_range
        ]
    sparse = clock("voxel", voxel_downsample, points, params.voxel_size)
    if len(sparse) < 3:
        return []
    plane, ground = clock(
        "ground", fit_ground, sparse, params.ground_threshold, params.ransac_iterations, params.seed
    )
    objects = sparse[~ground & (sparse @ plane[:3] + plane[3] > 0)]
    labels = clock("cluster", cluster, objects, params.eps, params.min_points)
    return clock("fit", _fit_clusters, objects, labels, plane, params, sensor_xy)


def _fit_clusters(
    objects: np.ndarray, labels: np.ndarray, plane: np.ndarray, params: ProposalParams, sensor_xy
) -> list[Cuboid]:
    boxes = []
    for k in range(int(labels.max(initial=-1)) + 1):
        members = objects[labels == k]
        if len(members) < params.min_cluster_points:
            continue
        box = fit_box(members, plane, sensor_xy, params.angle_step_deg, params.closeness_floor)
        if box.label != "unknown" or params.keep_unknown:
            boxes.append(box.with_(score=_score(len(members))))
    return boxes


class _Stopwatch:
    """Calls a function and adds its wall time to ``timings[stage]`` (when there is a dict to fill)."""

    def __init__(self, timings: dict | None):
        self.timings = timings

    def __call__(self, stage: str, fn, *args):
        began = time.perf_counter()
        out = fn(*args)
        if self.timings is not None:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - began
        return out
