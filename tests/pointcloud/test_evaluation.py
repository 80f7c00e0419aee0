"""The annotators' edits from pre-labels to the ground truth: accepted, adjusted, added, deleted."""

from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.evaluation import annotator_edits


def box(x, label="car", points=100, length=4.0):
    size = (length, 1.8, 1.6) if label == "car" else (0.7, 0.6, 1.7)
    return Cuboid((x, 0.0, size[2] / 2), size, 0.0, label, attributes={"num_points": points})


def test_each_kind_of_edit_is_counted():
    truth = [box(0), box(10), box(20), box(30, "pedestrian"), box(40, points=2)]
    start = [
        box(0),  # exact: accepted
        box(11.0),  # a car 1 m off: 3D IoU 0.6 < 0.7, adjusted
        box(30.1, "pedestrian"),  # 10 cm off: 3D IoU 0.75 >= 0.5, accepted
        box(60),  # nothing there: deleted
        box(20, "pedestrian"),  # a pedestrian on a car: wrong label, deleted (and the car added)
    ]
    counts = annotator_edits(truth, start, min_points=20)
    assert counts == {"accepted": 2, "adjusted": 1, "added": 1, "deleted": 2}  # the 2-point car: not asked


def test_from_nothing_every_visible_box_is_added_and_perfect_pre_labels_need_no_edit():
    truth = [box(0), box(10, "pedestrian"), box(20, points=0)]
    assert annotator_edits(truth, [], min_points=1) == {
        "accepted": 0,
        "adjusted": 0,
        "added": 2,
        "deleted": 0,
    }
    assert annotator_edits(truth, truth[:2], min_points=1)["accepted"] == 2
