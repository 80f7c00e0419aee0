"""Synthetic LiDAR scenes with exact ground-truth cuboids, made deterministically from a seed;
and meshes sampled to point clouds.

A scene is a street-like patch around a spinning LiDAR at ``sensor_height`` (1.73 m, as on
the KITTI car): a ground plane with a slight random tilt, cars (boxes), pedestrians (vertical
elliptic cylinders), poles (thin cylinders) and walls (long thin boxes). Rays leave the sensor
in ``rings`` rings spread over the vertical field of view (HDL-64E: +2 deg to -24.8 deg) and
``azimuths`` steps around; each ray returns the nearest surface it meets
(:mod:`playground.pointcloud.raycast`), so objects hide what lies behind them. Ranges get
Gaussian noise ``N(0, noise^2)`` and a fraction ``dropout`` of rays return nothing. The number
of azimuth steps is chosen so that a frame holds about ``target_points`` points.

Every object's ground-truth cuboid is exact (the cylinder's is its bounding box, yaw = its
heading) and carries ``attributes["num_points"]``: how many returns it produced.

Mesh sampling (:func:`sample_mesh`) draws points uniformly over a triangle mesh's surface, as
open3d's ``TriangleMesh.sample_points_uniformly`` does (triangle chosen with probability
proportional to its area, then uniform barycentric coordinates ``(1 - sqrt(r1), sqrt(r1)(1 - r2),
sqrt(r1) r2)``), but from a seeded NumPy generator so the result is repeatable.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid, to_local
from playground.pointcloud.raycast import cast, ring_directions

SHAPES = {"car": "box", "pedestrian": "cylinder", "pole": "cylinder", "wall": "box"}
REFLECTANCE = {"ground": 0.15, "car": 0.6, "pedestrian": 0.3, "pole": 0.5, "wall": 0.35}
CLEARANCE = 0.8  # metres kept free between the footprints of two objects


@dataclasses.dataclass
class SceneSpec:
    """What a synthetic scene holds and how the sensor sees it; the pointcloud config's ``[scene]``
    section itself (``--set scene.cars=20``), whose ``seed`` each frame gets from the run's seed."""

    seed: int = 0
    target_points: int = 100_000
    rings: int = 64
    fov_up_deg: float = 2.0
    fov_down_deg: float = -24.8
    sensor_height: float = 1.73
    max_range: float = 80.0
    cars: int = 12
    pedestrians: int = 10
    poles: int = 6
    walls: int = 2
    min_distance: float = 4.0  # objects stand between min_distance and object_range from the sensor
    object_range: float = 30.0
    noise: float = 0.02  # range noise std (m)
    dropout: float = 0.05  # fraction of rays with no return
    max_slope_deg: float = 1.0  # the ground's tilt, drawn in [0, max_slope_deg]
    size_jitter: float = 0.0  # car and pedestrian sizes scaled by U(1 - j, 1 + j) (domain randomisation)

    def __post_init__(self):
        for key in ("target_points", "rings"):
            if getattr(self, key) < 1:
                raise ConfigError(f"scene.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("cars", "pedestrians", "poles", "walls", "noise", "max_slope_deg"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"scene.{key} must be >= 0, got {getattr(self, key)}")
        if not 0 <= self.size_jitter < 1:
            raise ConfigError(f"scene.size_jitter must be in [0, 1), got {self.size_jitter}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"scene.dropout must be in [0, 1), got {self.dropout}")
        if not self.fov_down_deg < self.fov_up_deg or not -90 < self.fov_down_deg < 0:
            raise ConfigError(
                "the field of view must have -90 < scene.fov_down_deg < 0 and scene.fov_down_deg < "
                f"scene.fov_up_deg, got {self.fov_down_deg}..{self.fov_up_deg}"
            )
        if not 0 < self.min_distance < self.object_range < self.max_range or self.sensor_height <= 0:
            raise ConfigError(
                "need 0 < scene.min_distance < scene.object_range < scene.max_range and "
                f"scene.sensor_height > 0, got {self.min_distance}, {self.object_range}, {self.max_range}, "
                f"{self.sensor_height}"
            )

    def elevations(self) -> np.ndarray:
        return np.linspace(self.fov_down_deg, self.fov_up_deg, self.rings)

    def azimuths(self) -> int:
        """Azimuth steps that give about ``target_points`` returns from the ground alone."""
        down = np.radians(-self.elevations())
        reach = self.sensor_height / np.tan(np.where(down > 0, down, np.nan))
        seen = max(1, int(np.sum((down > 0) & (reach <= self.max_range))))
        return max(8, math.ceil(self.target_points / (seen * (1 - self.dropout))))


@dataclasses.dataclass
class Scene:
    """One synthetic frame: points (N, 3) float32 in the LiDAR frame, intensity (N,) in [0, 1],
    the cuboid of every object, which object each point came from (-1: ground) and its ring."""

    points: np.ndarray
    intensity: np.ndarray
    cuboids: list[Cuboid]
    object_index: np.ndarray
    ring: np.ndarray
    ground_slope: tuple[float, float]
    spec: SceneSpec

    def __len__(self) -> int:
        return len(self.points)

    def ground_truth(
        self, labels: tuple[str, ...] = ("car", "pedestrian"), min_points: int = 0
    ) -> list[Cuboid]:
        """The cuboids with one of ``labels`` that produced at least ``min_points`` returns."""
        return [c for c in self.cuboids if c.label in labels and c.attributes["num_points"] >= min_points]


def _sizes(rng: np.random.Generator, label: str) -> tuple[float, float, float]:
    if label == "car":
        return rng.uniform(3.6, 4.8), rng.uniform(1.6, 2.0), rng.uniform(1.4, 1.8)
    if label == "pedestrian":
        return rng.uniform(0.6, 0.9), rng.uniform(0.5, 0.7), rng.uniform(1.5, 1.9)
    if label == "pole":
        diameter = rng.uniform(0.15, 0.3)
        return diameter, diameter, rng.uniform(3.0, 7.0)
    return rng.uniform(10.0, 25.0), 0.3, rng.uniform(3.0, 8.0)


def _gap(a: Cuboid, b: Cuboid) -> float:
    """A lower bound on the distance between two footprints (b's bounding circle against a's rectangle)."""
    u, v = to_local(np.array([b.center]), a)[0, :2]
    outside = math.hypot(max(abs(u) - a.size[0] / 2, 0), max(abs(v) - a.size[1] / 2, 0))
    return outside - math.hypot(*b.size[:2]) / 2


def _place(
    rng: np.random.Generator, spec: SceneSpec, label: str, placed: list[Cuboid], slope
) -> Cuboid | None:
    """A cuboid of ``label`` at a free spot, or None after 200 tries."""
    for _ in range(200):
        length, w, h = _sizes(rng, label)
        if spec.size_jitter and label in ("car", "pedestrian"):
            scale = rng.uniform(1 - spec.size_jitter, 1 + spec.size_jitter)
            length, w, h = length * scale, w * scale, h * scale
        if label == "wall":
            distance = rng.uniform(spec.object_range * 0.8, spec.object_range * 1.2)
            azimuth = rng.uniform(-np.pi, np.pi)
            yaw = azimuth + np.pi / 2 + rng.uniform(-0.2, 0.2)
        else:
            distance = rng.uniform(spec.min_distance, spec.object_range)
            azimuth, yaw = rng.uniform(-np.pi, np.pi), rng.uniform(-np.pi, np.pi)
        x, y = distance * math.cos(azimuth), distance * math.sin(azimuth)
        box = Cuboid((x, y, slope[0] * x + slope[1] * y + h / 2), (length, w, h), yaw, label)
        if all(min(_gap(box, other), _gap(other, box)) > CLEARANCE for other in placed):
            return box
    return None


def place_objects(spec: SceneSpec, rng: np.random.Generator, slope) -> list[Cuboid]:
    """Walls first (they are long), then cars, pedestrians and poles, none overlapping."""
    placed: list[Cuboid] = []
    for label, count in (
        ("wall", spec.walls),
        ("car", spec.cars),
        ("pedestrian", spec.pedestrians),
        ("pole", spec.poles),
    ):
        for _ in range(count):
            box = _place(rng, spec, label, placed, slope)
            if box is not None:
                placed.append(box)
    return placed


def make_scene(spec: SceneSpec | None = None, **overrides) -> Scene:
    """The scene ``spec`` (or ``SceneSpec(**overrides)``) describes; the same seed gives the same scene."""
    spec = dataclasses.replace(spec or SceneSpec(), **overrides) if overrides else (spec or SceneSpec())
    rng = np.random.default_rng(spec.seed)
    tilt, direction = math.radians(rng.uniform(0, spec.max_slope_deg)), rng.uniform(-np.pi, np.pi)
    slope = (math.tan(tilt) * math.cos(direction), math.tan(tilt) * math.sin(direction))
    boxes = place_objects(spec, rng, slope)
    origin = np.array([0.0, 0.0, spec.sensor_height])
    directions, ring = ring_directions(spec.elevations(), spec.azimuths())
    ranges, which = cast(origin, directions, slope, [(b, SHAPES[b.label]) for b in boxes])
    keep = (which > -2) & (ranges <= spec.max_range) & (rng.random(len(ranges)) >= spec.dropout)
    ranges = ranges[keep] + rng.normal(0.0, spec.noise, int(keep.sum()))
    points = (origin + directions[keep] * ranges[:, None]).astype(np.float32)
    which = which[keep]
    counts = np.bincount(which + 1, minlength=len(boxes) + 1)[1:]
    cuboids = [
        b.with_(attributes={"num_points": int(n), "shape": SHAPES[b.label]}) for b, n in zip(boxes, counts)
    ]
    return Scene(points, _intensity(rng, which, boxes), cuboids, which, ring[keep], slope, spec)


def _intensity(rng: np.random.Generator, which: np.ndarray, boxes: list[Cuboid]) -> np.ndarray:
    base = np.array([REFLECTANCE["ground"]] + [REFLECTANCE[b.label] for b in boxes])
    value = base[which + 1] * rng.uniform(0.7, 1.3, len(which))
    return np.clip(value, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------- meshes


def object_mesh(box: Cuboid, shape: str = "box", resolution: int = 24):
    """An open3d ``TriangleMesh`` of ``box`` (``"box"``) or of the vertical elliptic cylinder inside it."""
    import open3d as o3d

    length, w, h = box.size
    if shape == "box":
        mesh = o3d.geometry.TriangleMesh.create_box(length, w, h)
        mesh.translate((-length / 2, -w / 2, -h / 2))
    elif shape == "cylinder":
        mesh = o3d.geometry.TriangleMesh.create_cylinder(radius=0.5, height=h, resolution=resolution)
        vertices = np.asarray(mesh.vertices) * np.array([length, w, 1.0])
        mesh.vertices = o3d.utility.Vector3dVector(vertices)
    else:
        raise DataFormatError(f"unknown mesh shape {shape!r}; choose 'box' or 'cylinder'")
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    mesh.rotate(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]), center=(0, 0, 0))
    mesh.translate(box.center)
    return mesh


def _mesh_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, tuple):
        vertices, triangles = mesh
    else:
        vertices, triangles = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
    vertices, triangles = np.asarray(vertices, dtype=np.float64), np.asarray(triangles, dtype=np.int64)
    if (
        vertices.ndim != 2
        or vertices.shape[1] != 3
        or triangles.ndim != 2
        or triangles.shape[1] != 3
        or not len(triangles)
        or triangles.min() < 0
        or triangles.max() >= len(vertices)
    ):
        raise DataFormatError(
            f"a mesh needs vertices (V, 3) and triangles (T, 3) indexing them, got shapes "
            f"{vertices.shape} and {triangles.shape}"
        )
    return vertices, triangles


def sample_mesh(mesh, count: int, seed: int = 0) -> np.ndarray:
    """``count`` points (float32, (count, 3)) uniform over the surface of ``mesh`` (an open3d
    ``TriangleMesh`` or a ``(vertices, triangles)`` pair)."""
    vertices, triangles = _mesh_arrays(mesh)
    corners = vertices[triangles]
    areas = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    if count < 1 or areas.sum() <= 0:
        raise DataFormatError(
            f"need count >= 1 and a mesh with a positive area, got {count} and {areas.sum():g}"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(areas), size=count, p=areas / areas.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    a, b, c = corners[chosen, 0], corners[chosen, 1], corners[chosen, 2]
    points = (1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * c
    return points.astype(np.float32)


def sample_objects(boxes: list[Cuboid], points_per_object: int = 500, seed: int = 0) -> np.ndarray:
    """Every object's mesh (shape from its label, see ``SHAPES``) sampled to ``points_per_object`` points."""
    clouds = [
        sample_mesh(object_mesh(b, SHAPES.get(b.label, "box")), points_per_object, seed + k)
        for k, b in enumerate(boxes)
    ]
    return np.concatenate(clouds) if clouds else np.zeros((0, 3), np.float32)
