"""KITTI-style AP|R40 of scored boxes: hand-computed cases, score-ordered claiming, ignored boxes."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.pointcloud.average_precision import average_precision, class_ap, frame_outcomes
from playground.pointcloud.cuboid import Cuboid


def car(x, score=None, points=100, y=0.0):
    return Cuboid((x, y, 0.8), (4.0, 1.8, 1.6), label="car", score=score, attributes={"num_points": points})


def test_perfect_boxes_give_ap_one_and_nothing_found_gives_zero():
    frames = [([car(0), car(10)], [car(0, 0.9), car(10, 0.8)]), ([car(5)], [car(5, 0.7)])]
    assert class_ap(frames, "car", 0.7) == pytest.approx(1.0)
    assert class_ap([([car(0)], [])], "car", 0.5) == 0.0
    assert math.isnan(class_ap([([], [car(0, 0.9)])], "car", 0.5))  # no ground truth: undefined


def test_ap_by_hand_a_false_positive_between_two_hits():
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: 20 recall points at 1, 20 at 2/3
    truth, boxes = [car(0), car(10)], [car(0, 0.9), car(30, 0.8), car(10, 0.7)]
    outcomes, total = frame_outcomes(truth, boxes, 0.5)
    assert outcomes == [(0.9, 1), (0.8, 0), (0.7, 1)] and total == 2
    assert average_precision(outcomes, total) == pytest.approx((20 + 20 * 2 / 3) / 40)
    assert average_precision([(0.95, 0), (0.9, 1)], 1) == pytest.approx(0.5)  # the best box is wrong
    assert average_precision([(0.9, 1)], 2) == pytest.approx(0.5)  # half the cars never found


def test_the_higher_score_claims_the_ground_truth_even_at_lower_iou():
    truth = [car(0)]
    loose, tight = car(1.0, score=0.9), car(0.1, score=0.5)  # bird's-eye IoU 0.6 and 0.95
    assert frame_outcomes(truth, [tight, loose], 0.5)[0] == [(0.9, 1), (0.5, 0)]
    assert frame_outcomes(truth, [tight, loose], 0.7)[0] == [(0.9, 0), (0.5, 1)]  # too loose at 0.7


def test_boxes_on_ignored_ground_truth_count_neither_way():
    truth = [car(0), car(10, points=3)]  # the second has 3 returns: DontCare at min_points 20
    outcomes, total = frame_outcomes(truth, [car(0, 0.9), car(10, 0.95)], 0.5, min_points=20)
    assert outcomes == [(0.9, 1)] and total == 1
    assert average_precision(outcomes, total) == pytest.approx(1.0)


def test_3d_iou_is_stricter_than_birds_eye():
    lifted = Cuboid((0.0, 0.0, 1.6), (4.0, 1.8, 1.6), label="car", score=0.9)  # half its height off
    assert class_ap([([car(0)], [lifted])], "car", 0.7, kind="bev") == pytest.approx(1.0)
    assert class_ap([([car(0)], [lifted])], "car", 0.7, kind="3d") == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1)), max_size=30), st.integers(1, 20))
def test_ap_lies_in_unit_interval_and_a_top_ranked_hit_never_lowers_it(outcomes, extra):
    hits = sum(o for _, o in outcomes)
    total = hits + extra
    ap = average_precision(outcomes, total)
    assert 0.0 <= ap <= 1.0
    assert average_precision([(2.0, 1), *outcomes], total) >= ap - 1e-12
