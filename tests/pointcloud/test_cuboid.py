"""The cuboid model: corners, points in a box, exact rotated BEV and 3D IoU against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playground.errors import DataFormatError
from playground.pointcloud.cuboid import (
    Cuboid,
    bev_iou,
    clip_polygon,
    iou_3d,
    iou_matrix,
    points_in_box,
    polygon_area,
    wrap_angle,
)


def test_corners_axis_aligned_and_rotated():
    box = Cuboid((1, 2, 3), (4, 2, 1), 0.0)
    corners = box.corners()
    assert corners.shape == (8, 3)
    np.testing.assert_allclose(corners[0], [3, 3, 2.5])
    np.testing.assert_allclose(corners[2], [-1, 1, 2.5])
    np.testing.assert_allclose(corners[4], [3, 3, 3.5])
    np.testing.assert_allclose(corners.mean(axis=0), box.center)
    turned = box.with_(yaw=math.pi / 2).corners()
    np.testing.assert_allclose(turned[0], [1 - 1, 2 + 2, 2.5], atol=1e-12)  # front-left (+2, +1) -> (-1, +2)
    assert polygon_area(box.with_(yaw=0.7).bev_corners()) == pytest.approx(8.0)  # counter-clockwise, l * w


def test_points_in_box_rotated():
    box = Cuboid((0, 0, 0), (4, 2, 1), math.pi / 2)
    points = np.array([[0, 1.9, 0], [1.9, 0, 0], [0, 0, 0.6], [0.9, -1.9, -0.4], [0, 2.1, 0]])
    np.testing.assert_array_equal(points_in_box(points, box), [True, False, False, True, False])
    assert points_in_box(points[[4]], box, margin=0.2)[0]


@pytest.mark.parametrize("yaw", [0.0, 0.4, -2.0, math.pi])
def test_identical_boxes_have_iou_one(yaw):
    box = Cuboid((5, -3, 0.8), (4.2, 1.8, 1.6), yaw)
    assert bev_iou(box, box) == pytest.approx(1.0)
    assert iou_3d(box, box) == pytest.approx(1.0)
    assert bev_iou(box, box.with_(yaw=yaw + math.pi)) == pytest.approx(1.0)  # heading flips keep the box


def test_known_iou_values():
    unit = Cuboid((0, 0, 0.5), (1, 1, 1), 0.0)
    assert bev_iou(unit, unit.with_(center=(0.5, 0, 0.5))) == pytest.approx(1 / 3)
    assert bev_iou(unit, unit.with_(yaw=math.pi / 4)) == pytest.approx(math.sqrt(2) / 2)  # octagon / union
    long = Cuboid((0, 0, 0.5), (4, 2, 1), 0.0)
    assert bev_iou(long, long.with_(yaw=math.pi / 2)) == pytest.approx(4 / 12)
    assert iou_3d(unit, unit.with_(center=(0, 0, 1.0))) == pytest.approx(1 / 3)  # half the height overlaps
    assert iou_3d(unit, unit.with_(center=(0, 0, 2.0))) == 0.0
    assert bev_iou(unit, unit.with_(center=(3, 0, 0.5))) == 0.0
    assert iou_3d(long, long.with_(yaw=math.pi / 2, center=(0, 0, 1.0))) == pytest.approx(2 / 14)


def test_iou_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(3)
    samples = rng.uniform(-4, 4, (200_000, 3)) * np.array([1, 1, 0.5])
    for _ in range(5):
        a = Cuboid(rng.uniform(-1, 1, 3) * [1, 1, 0.2], rng.uniform(1, 3, 3), rng.uniform(-np.pi, np.pi))
        b = Cuboid(rng.uniform(-1, 1, 3) * [1, 1, 0.2], rng.uniform(1, 3, 3), rng.uniform(-np.pi, np.pi))
        in_a, in_b = points_in_box(samples, a), points_in_box(samples, b)
        estimate = (in_a & in_b).sum() / (in_a | in_b).sum()
        assert iou_3d(a, b) == pytest.approx(estimate, abs=0.02)


def test_clip_polygon_and_matrix():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    assert polygon_area(clip_polygon(square, square + 1)) == pytest.approx(1.0)
    assert len(clip_polygon(square, square + 5)) == 0
    boxes = [Cuboid((0, 0, 0.5), (1, 1, 1)), Cuboid((10, 0, 0.5), (1, 1, 1))]
    np.testing.assert_allclose(iou_matrix(boxes, boxes), np.eye(2))
    with pytest.raises(DataFormatError, match="kind"):
        iou_matrix(boxes, boxes, kind="2d")


def test_validation_dict_round_trip_and_angles():
    box = Cuboid([1, 2, 3], np.array([4.0, 2, 1]), 7.0, " car ", 0.5, {"num_points": 3})
    assert box.label == "car" and isinstance(box.center, tuple)
    assert Cuboid.from_dict(box.to_dict()) == box
    assert wrap_angle(7.0) == pytest.approx(7.0 - 2 * math.pi)
    assert wrap_angle(0.3) == 0.3
    for bad in [dict(size=(0, 1, 1)), dict(size=(1, 1)), dict(center=(np.nan, 0, 0)), dict(label=" ")]:
        with pytest.raises(DataFormatError):
            Cuboid(**{"center": (0, 0, 0), "size": (1, 1, 1), **bad})
    with pytest.raises(DataFormatError, match="not a cuboid"):
        Cuboid.from_dict({"size": [1, 1, 1]})
