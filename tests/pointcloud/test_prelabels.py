"""Learned pre-labels and a frame's uncertainty: the formula's terms on hand-made boxes, the
ordering it gives, the detectors a runs root holds, and a tiny detector's boxes tagged as learned."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from playground.errors import DataFormatError, PlaygroundError
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.detector import LAYOUTS, Grid, PillarNet, save_detector
from playground.pointcloud.prelabels import (
    FrameCloud,
    bev_image,
    confidence_term,
    detector_files,
    disagreement,
    frame_uncertainty,
    intensity_note,
    learned_prelabels,
    score_frames,
    unmatched,
)
from playground.pointcloud.scenes import SceneSpec, make_scene

CAR = Cuboid((10.0, 0.0, 0.8), (4.2, 1.8, 1.6), 0.0, "car")
WALKER = Cuboid((6.0, 4.0, 0.9), (0.7, 0.6, 1.7), 0.0, "pedestrian")
TINY = Grid(extent=8.0, pillar=0.5, max_points=4, max_pillars=500)


def eager_detector(layout=LAYOUTS[0]) -> PillarNet:
    """An untrained tiny detector whose heatmap prior is raised, so it fires with confidence ~0.9."""
    torch.manual_seed(0)
    model = PillarNet(TINY, layout, width=4)
    with torch.no_grad():
        model.head.bias[:2] = 2.0
    return model.eval()


def test_the_confidence_term_counts_the_middle_band_most():
    assert confidence_term([CAR.with_(score=0.5)], 0.1) == 1.0
    assert confidence_term([CAR.with_(score=1.0), CAR.with_(score=0.0)], 0.0) == 0.0
    assert confidence_term([CAR.with_(score=0.75), CAR.with_(score=0.05)], 0.1) == pytest.approx(0.5)
    assert confidence_term([], 0.1) == 0.0


def test_boxes_match_within_a_class_at_bev_iou_03():
    shifted = CAR.with_(center=(10.5, 0.2, 0.8))
    assert unmatched([CAR], [shifted]) == 0
    assert unmatched([CAR], [shifted.with_(label="pedestrian")]) == 1  # same place, other class
    assert unmatched([CAR], [CAR.with_(center=(13.5, 0.0, 0.8))]) == 1  # BEV IoU 0.12
    assert unmatched([CAR, WALKER], []) == 2
    assert disagreement([CAR, WALKER], [shifted]) == pytest.approx(1 / 3)
    assert disagreement([], []) == 0.0


def test_a_frame_where_detector_and_geometry_disagree_ranks_above_one_where_they_agree():
    sure = [CAR.with_(score=0.95), WALKER.with_(score=0.95)]
    agree = frame_uncertainty(sure, [CAR, WALKER])
    assert (agree.confidence, agree.disagreement, agree.unmatched) == (pytest.approx(0.1), 0.0, 0)
    assert agree.score == pytest.approx(0.05)
    # the detector misses the walker that geometry found, and sees a car geometry did not
    other = [CAR.with_(score=0.95), CAR.with_(center=(-12.0, 5.0, 0.8), score=0.95)]
    disagree = frame_uncertainty(other, [CAR, WALKER])
    assert (disagree.unmatched, disagree.learned, disagree.geometric) == (2, 2, 2)
    assert disagree.disagreement == pytest.approx(0.5) and disagree.score == pytest.approx(0.3)
    assert disagree.score > agree.score
    assert disagree.by_class == (2, 0) and disagree.ensemble is None


def test_boxes_under_the_prelabel_score_are_not_counted_as_seen_and_poles_are_not_compared():
    faint = frame_uncertainty([CAR.with_(score=0.2)], [CAR, CAR.with_(label="pole")], prelabel_score=0.3)
    assert faint.learned == 0 and faint.geometric == 1 and faint.disagreement == 1.0
    assert faint.confidence == pytest.approx(0.4)  # still counted in c (>= min_score)
    assert faint.score == pytest.approx(0.7)


def test_ensemble_members_that_disagree_raise_the_score():
    mine = [CAR.with_(score=0.9)]
    same = frame_uncertainty(mine, [CAR], members=[[CAR.with_(score=0.8)]])
    split = frame_uncertainty(mine, [CAR], members=[[WALKER.with_(score=0.8)], [CAR.with_(score=0.7)]])
    assert same.ensemble == 0.0 and same.score == pytest.approx((0.2 + 0 + 0) / 3)
    assert split.ensemble == pytest.approx((1.0 + 0.0 + 1.0) / 3)  # pairs (me, A), (me, B), (A, B)
    assert split.score > same.score


def test_the_detectors_of_a_runs_root_newest_first(tmp_path):
    root = tmp_path / "runs"
    for name, when in (("old", 1_000), ("new", 2_000)):
        (root / name).mkdir(parents=True)
        path = save_detector(root / name / "detector.safetensors", eager_detector())
        os.utime(path, (when, when))
    (root / "no-detector").mkdir()
    assert [p.parent.name for p in detector_files(root)] == ["new", "old"]
    assert detector_files(tmp_path / "nowhere") == []


def test_learned_prelabels_are_tagged_and_a_frame_without_intensity_is_flagged():
    scene = make_scene(SceneSpec(target_points=5000, object_range=7.0, cars=2, pedestrians=2))
    model = eager_detector()
    boxes = learned_prelabels(model, scene, 0.5)
    assert boxes and all(b.attributes["source"] == "learned" and b.score >= 0.5 for b in boxes)
    assert {b.label for b in boxes} <= {"car", "pedestrian"}
    assert intensity_note(model, None) and "sees zeros" in intensity_note(model, None)
    assert intensity_note(model, scene.intensity) == ""
    assert intensity_note(eager_detector(LAYOUTS[1]), None) == ""
    assert learned_prelabels(model, FrameCloud(np.full((10, 3), 50.0)), 0.0) == []  # outside the grid


def test_a_folder_is_scored_frame_by_frame_and_an_unreadable_frame_is_skipped():
    scene = make_scene(SceneSpec(target_points=5000, object_range=7.0))

    def broken():
        raise DataFormatError("not a valid .npy file")

    events = []
    scores, skipped = score_frames(
        {"a": scene, "b": broken, "c": lambda: FrameCloud(scene.points, None)},
        [eager_detector(), eager_detector()],
        progress=events.append,
    )
    assert list(scores) == ["a", "c"] and skipped == {"b": "not a valid .npy file"}
    assert scores["a"].ensemble == 0.0  # two copies of one detector agree
    assert scores["a"].bev.shape == (32, 32) and scores["a"].bev.max() == 255
    assert [(e.step, e.total) for e in events] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    with pytest.raises(PlaygroundError, match="at least one detector"):
        score_frames({"a": scene}, [])


def test_the_bev_image_marks_the_cells_with_points():
    image = bev_image(np.array([[-31.9, -31.9, 0.0], [31.9, 31.9, 0.0], [99.0, 0.0, 0.0]]), 4, 32.0)
    assert image.dtype == np.uint8 and image.sum() == 2 * 255
    assert image[3, 0] == 255 and image[0, 3] == 255  # row 0 is +y
