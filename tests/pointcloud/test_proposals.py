"""Cuboid proposals: each stage on hand-made clouds, then recall and speed on fixed-seed 100k-point frames."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid, bev_iou
from playground.pointcloud.evaluation import Matching, greedy_match, match_frame, match_label
from playground.pointcloud.proposals import (
    DEFAULT_SIZES,
    ProposalParams,
    cluster,
    fit_box,
    fit_ground,
    fit_rectangle,
    guess_class,
    propose,
    refine_plane,
    voxel_downsample,
)
from playground.pointcloud.scenes import make_scene

FLAT = np.array([0.0, 0.0, 1.0, 0.0])  # the plane z = 0


def test_voxel_downsample_keeps_one_point_per_voxel():
    grid = np.stack(np.meshgrid(*(np.arange(0, 1, 0.01),) * 2, [0.0]), -1).reshape(-1, 3)  # 10,000 points
    sparse = voxel_downsample(grid, 0.1)
    assert 100 <= len(sparse) <= 121
    assert len(voxel_downsample(grid, 0.0)) == len(grid)


def test_ground_plane_is_found_under_clutter():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-20, 20, (5000, 2))
    ground = np.column_stack([xy, 0.02 * xy[:, 0] + rng.normal(0, 0.02, 5000)])
    wall = np.column_stack([np.full(3000, 5.0), rng.uniform(-10, 10, 3000), rng.uniform(0, 6, 3000)])
    plane, mask = fit_ground(np.vstack([ground, wall]), 0.1)
    assert plane[2] > 0.99 and abs(plane[0] / plane[2] + 0.02) < 0.005
    assert mask[:5000].mean() > 0.95 and mask[5000:].mean() < 0.05
    with pytest.raises(DataFormatError, match="no ground plane"):
        fit_ground(wall, 0.1)


def test_dbscan_separates_objects_farther_apart_than_eps():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.2, (200, 3)), rng.normal(0, 0.2, (200, 3)) + [3, 0, 0]
    labels = cluster(np.vstack([a, b]), eps=0.5, min_points=4)
    assert len(set(labels[:200]) - {-1}) == 1 and len(set(labels[200:]) - {-1}) == 1
    assert set(labels[:200]).isdisjoint(set(labels[200:]) - {-1})


@pytest.mark.parametrize("yaw", [0.0, 0.35, 1.2, -0.8])
def test_l_shape_fit_recovers_the_heading(yaw):
    u = np.linspace(-2, 2, 60)
    v = np.linspace(-0.9, 0.9, 30)
    local = np.vstack(
        [np.column_stack([u, np.full_like(u, -0.9)]), np.column_stack([np.full_like(v, 2.0), v])]
    )
    c, s = math.cos(yaw), math.sin(yaw)
    xy = local @ np.array([[c, s], [-s, c]]) + [10, 5]
    theta, lo, hi = fit_rectangle(xy)
    assert min(abs((theta - yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4), 1) < math.radians(1.01)
    assert sorted(hi - lo) == pytest.approx([1.8, 4.0], abs=0.05)


def test_class_guess_and_completion_away_from_the_sensor():
    assert guess_class((0.55, 0.3), 1.7) == "pedestrian"
    assert guess_class((3.9, 1.7), 1.5) == "car"
    assert guess_class((0.2, 0.2), 2.9) == "pole"
    assert guess_class((0.2, 0.1), 1.5) == "unknown"  # a sliver of something larger
    assert guess_class((14.0, 0.3), 5.0) == "unknown"
    # the rear of a car 10 m ahead, seen head-on: 1.8 m wide, a few cm deep
    rear = np.column_stack([np.full(40, 10.0), np.linspace(-0.9, 0.9, 40), np.tile([0.3, 0.8, 1.2, 1.5], 10)])
    box = fit_box(rear, FLAT)
    assert box.label == "car"
    assert box.size[:2] == pytest.approx(DEFAULT_SIZES["car"][:2], abs=0.05)
    assert box.center[0] == pytest.approx(
        10 + DEFAULT_SIZES["car"][0] / 2, abs=0.05
    )  # grown away from (0, 0)
    assert bev_iou(box, Cuboid((12.1, 0, 0.75), (4.2, 1.8, 1.5), 0.0)) > 0.9


@pytest.fixture(scope="module")
def frames():
    return [make_scene(seed=seed) for seed in range(5)]  # about 104k points each


def test_recall_on_fixed_seed_scenes(frames):
    total = {"car": Matching(), "pedestrian": Matching()}
    for scene in frames:
        for label, found in match_frame(scene.ground_truth(), propose(scene.points), min_points=20).items():
            total[label] = total[label] + found
    both = total["car"] + total["pedestrian"]
    assert both.ground_truth >= 80
    assert both.recall >= 0.9  # measured 0.989 (94 of 95)
    assert total["pedestrian"].recall >= 0.9 and total["car"].recall >= 0.9
    assert both.precision >= 0.75  # measured 0.87
    assert both.mean_iou > 0.7


def test_propose_times_its_stages(frames):
    """The stage timings the experiment reports (the <= 1 s per 100k points target is measured by
    ``recipes/pointcloud_proposals.toml`` into metrics.json, not asserted in a unit test)."""
    stages: dict = {}
    began = time.perf_counter()
    propose(frames[1].points, timings=stages)
    seconds = time.perf_counter() - began
    assert len(frames[1]) > 100_000
    assert set(stages) == {"voxel", "ground", "cluster", "fit"}
    assert all(v > 0 for v in stages.values()) and sum(stages.values()) <= seconds


def test_matching_ignores_hidden_ground_truth():
    seen = Cuboid((10, 0, 0.8), (4, 2, 1.6), 0.0, attributes={"num_points": 300})
    hidden = Cuboid((20, 0, 0.8), (4, 2, 1.6), 0.0, attributes={"num_points": 3})
    stray = Cuboid((30, 0, 0.8), (4, 2, 1.6), 0.0)
    found = match_label([seen, hidden], [seen.with_(center=(10.2, 0, 0.8)), hidden, stray], min_points=20)
    assert (found.ground_truth, found.matched, found.ignored_proposals) == (1, 1, 1)
    assert found.recall == 1.0 and found.precision == 0.5
    assert greedy_match(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.5) == [(0, 0, 0.9)]


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="eps"):
        ProposalParams(eps=0)
    with pytest.raises(DataFormatError, match="NaN"):
        propose(np.array([[0, 0, 0], [np.nan, 1, 1], [1, 1, 1]]))
    with pytest.raises(DataFormatError, match=r"\(N, 3\)"):
        propose(np.zeros((5, 2)))
    assert propose(np.zeros((2, 3))) == []


def test_refine_plane_lands_on_the_same_plane_from_slightly_different_ransac_planes():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-20, 20, size=(5000, 2))
    z = 0.02 * xy[:, 0] - 0.01 * xy[:, 1] - 1.7 + rng.normal(0, 0.03, size=5000)
    points = np.column_stack([xy, z])
    truth = np.array([-0.02, 0.01, 1.0, 1.7]) / np.linalg.norm([-0.02, 0.01, 1.0])
    refits = [
        refine_plane(points, truth + np.array([dx, 0.0, 0.0, dd]), threshold=0.2)
        for dx, dd in [(0.0, 0.0), (0.002, 0.01), (-0.001, -0.02)]
    ]
    for plane in refits:
        assert plane[2] > 0 and np.linalg.norm(plane[:3]) == pytest.approx(1.0)
        assert np.abs(plane - truth).max() < 2e-3
        assert np.array_equal(plane, refits[0])
