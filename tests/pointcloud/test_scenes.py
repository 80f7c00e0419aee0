"""Synthetic LiDAR scenes: determinism, exact ground truth, rings, occlusion, noise; mesh sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid, points_in_box, to_local
from playground.pointcloud.raycast import cast, hit_cylinder, ring_directions
from playground.pointcloud.scenes import SceneSpec, make_scene, object_mesh, sample_mesh, sample_objects

TINY = SceneSpec(seed=4, target_points=12_000, rings=32, cars=4, pedestrians=4, poles=2, walls=1)


@pytest.fixture(scope="module")
def scene():
    return make_scene(TINY)


def test_same_seed_same_scene_and_another_seed_differs(scene):
    again = make_scene(TINY)
    np.testing.assert_array_equal(scene.points, again.points)
    assert scene.cuboids == again.cuboids
    other = make_scene(TINY, seed=5)
    assert other.cuboids != scene.cuboids


def test_size_rings_and_dtypes(scene):
    assert scene.points.dtype == np.float32 and scene.intensity.dtype == np.float32
    assert 0.85 * 12_000 <= len(scene) <= 1.2 * 12_000
    assert set(np.unique(scene.ring)) <= set(range(32)) and len(np.unique(scene.ring)) >= 28
    assert scene.intensity.min() >= 0 and scene.intensity.max() <= 1
    labels = [c.label for c in scene.cuboids]
    assert labels.count("car") == 4 and labels.count("pedestrian") == 4 and labels.count("wall") == 1


def test_every_object_point_lies_on_its_cuboid(scene):
    for k, box in enumerate(scene.cuboids):
        mine = scene.points[scene.object_index == k]
        assert len(mine) == box.attributes["num_points"]
        assert points_in_box(mine, box, margin=0.1).all(), box  # noise is 2 cm
        if box.label in ("car", "wall") and len(mine) > 20:  # boxes: returns sit on a face (2 cm range noise)
            to_face = np.abs(np.abs(to_local(mine, box)) - np.array(box.size) / 2).min(axis=1)
            assert np.quantile(to_face, 0.99) < 0.08


def test_ground_points_follow_the_tilted_plane(scene):
    ground = scene.points[scene.object_index == -1]
    gx, gy = scene.ground_slope
    residual = ground[:, 2] - (gx * ground[:, 0] + gy * ground[:, 1])
    assert np.abs(residual).max() < 0.15 and abs(np.median(residual)) < 0.01
    assert 0 < math.degrees(math.atan(math.hypot(gx, gy))) <= TINY.max_slope_deg


def test_nearer_objects_hide_farther_ones():
    directions, _ = ring_directions(np.linspace(-15, 2, 16), 720)
    origin = np.array([0.0, 0.0, 1.7])
    front = Cuboid((8, 0, 1.0), (1, 4, 2), 0.0, "wall")
    back = Cuboid((15, 0, 0.8), (4, 1.8, 1.6), math.pi / 2, "car")
    _, alone = cast(origin, directions, (0.0, 0.0), [(back, "box")])
    _, hidden = cast(origin, directions, (0.0, 0.0), [(front, "box"), (back, "box")])
    assert (alone == 0).sum() > 50
    assert (hidden == 1).sum() == 0 and (hidden == 0).sum() > 50


def test_cylinder_hits_lie_on_the_ellipse():
    directions, _ = ring_directions(np.linspace(-20, 0, 10), 360)
    box = Cuboid((6, 1, 0.85), (0.8, 0.5, 1.7), 0.6, "pedestrian")
    origin = np.array([0.0, 0.0, 1.7])
    t = hit_cylinder(origin, directions, box)
    local = to_local(origin + directions[np.isfinite(t)] * t[np.isfinite(t), None], box)
    on_side = np.abs(local[:, 2]) < 0.849
    radius = (local[on_side, 0] / 0.4) ** 2 + (local[on_side, 1] / 0.25) ** 2
    assert on_side.sum() > 10 and np.allclose(radius, 1.0, atol=1e-9)


def test_noise_and_dropout_change_the_cloud():
    quiet = make_scene(TINY, noise=0.0, dropout=0.0)
    noisy = make_scene(TINY, noise=0.05, dropout=0.3)
    # dropped rays are made up for by a finer azimuth step, so both hold about target_points
    assert noisy.spec.azimuths() > 1.3 * quiet.spec.azimuths()
    assert abs(len(noisy) - len(quiet)) < 0.1 * len(quiet)
    for scene, low, high in ((quiet, 0.0, 1e-3), (noisy, 0.045, 0.055)):
        on_ground = scene.object_index == -1
        ground = scene.points[on_ground]
        gx, gy = scene.ground_slope
        residual = ground[:, 2] - gx * ground[:, 0] - gy * ground[:, 1]
        # range noise n along a ray of elevation e moves a ground return's height by about n sin(e)
        sine = np.sin(np.radians(-scene.spec.elevations()[scene.ring[on_ground]]))
        assert low <= np.std(residual / sine) <= high


def test_mesh_sampling_is_uniform_on_the_surface_and_repeatable():
    box = Cuboid((2, 3, 1), (4, 2, 1), 0.3)
    points = sample_mesh(object_mesh(box, "box"), 20_000, seed=1)
    np.testing.assert_array_equal(points, sample_mesh(object_mesh(box, "box"), 20_000, seed=1))
    local = np.abs(to_local(points, box)) / (np.array(box.size) / 2)
    assert np.allclose(local.max(axis=1), 1.0, atol=1e-5)  # on a face
    top = (local[:, 2] > 1 - 1e-5).mean()
    assert top == pytest.approx(16 / 28, abs=0.015)  # top and bottom faces: 2 * 4 * 2 of 2 * (8 + 4 + 2)
    cylinder = sample_mesh(object_mesh(Cuboid((0, 0, 1), (1, 1, 2), 0.0), "cylinder", resolution=64), 2000)
    radial = np.hypot(cylinder[:, 0], cylinder[:, 1])
    side = np.abs(cylinder[:, 2] - 1) < 0.999
    assert np.allclose(radial[side], 0.5, atol=0.01)
    assert sample_objects([box, box.with_(label="pedestrian")], 100).shape == (200, 3)


def test_bad_specs_and_meshes_are_refused():
    with pytest.raises(ConfigError, match="dropout"):
        SceneSpec(dropout=1.0)
    with pytest.raises(ConfigError, match="field of view"):
        SceneSpec(fov_down_deg=5.0)
    with pytest.raises(DataFormatError, match="triangles"):
        sample_mesh((np.zeros((3, 3)), np.array([[0, 1, 5]])), 10)
    with pytest.raises(DataFormatError, match="unknown mesh shape"):
        object_mesh(Cuboid((0, 0, 0), (1, 1, 1)), "cone")
