"""The 3D cuboid page with a learned detector and a folder of frames, under AppTest: learned
pre-labels beside the geometric proposals, a broken detector reported in one line, uncertain frames
first (scored into the store's queue, leased one annotator at a time, closed by a commit)."""

from __future__ import annotations

import pytest

from playground.pointcloud.detector import LAYOUTS, save_detector
from playground.pointcloud.frame_queue import enqueue_frames, queue_name, queued_frames
from playground.pointcloud.io import write_cloud
from playground.pointcloud.scenes import SceneSpec, make_scene
from playground.store import Store, default_url
from tests.apps.conftest import open_page_at
from tests.apps.test_pointcloud_page import PAGE, SMALL, commit_value, viewer_args, viewer_says
from tests.pointcloud.test_frame_queue import found
from tests.pointcloud.test_prelabels import eager_detector


def detector_run(home, name: str = "pointcloud_detector-1", layout=LAYOUTS[0]):
    return save_detector(home / name / "detector.safetensors", eager_detector(layout))


def frames_folder(tmp_path, count: int = 3, intensity: bool = True):
    folder = tmp_path / "drive"
    for k in range(count):
        scene = make_scene(SceneSpec(seed=k, target_points=5000, object_range=7.0, cars=2, pedestrians=2))
        write_cloud(folder / f"{k:06d}.npy", scene.points, scene.intensity if intensity else None)
    return folder


def folder_page(folder, name: str = ""):
    at = open_page_at(PAGE)
    if name:
        at.text_input(key="annotator").input(name).run()
    at.radio(key="cub_source").set_value("Folder of frames").run()
    at.text_input(key="cub_folder").input(str(folder)).run()
    assert not at.exception, at.exception
    return at


def test_learned_prelabels_join_the_geometric_proposals_above_the_chosen_confidence(playground_home):
    detector_run(playground_home, "pointcloud_detector-old")
    newest = detector_run(playground_home, "pointcloud_detector-new")
    at = open_page_at(PAGE)
    at.selectbox(key="cub_points").select(SMALL).run()
    assert at.selectbox(key="cub_detector").value == str(newest)  # the newest run's detector by default
    proposals = viewer_args(at)[0]["proposals"]
    learned = [p for p in proposals if p.get("source") == "learned"]
    geometric = [p for p in proposals if p.get("source") == "geometric"]
    assert learned and geometric and all(p["id"].startswith("l") and p["score"] >= 0.3 for p in learned)
    table = at.dataframe[0].value  # nothing committed: the one table is the open proposals
    assert set(table["from"]) >= {"geometric"} and any(f.startswith("learned 0.") for f in table["from"])
    at.slider(key="cub_min_confidence").set_value(0.95).run()
    strict = [p for p in viewer_args(at)[0]["proposals"] if p.get("source") == "learned"]
    assert len(strict) < len(learned) and all(p["score"] >= 0.95 for p in strict)
    assert {p["id"] for p in strict} <= {p["id"] for p in learned}  # ids survive the slider
    at.selectbox(key="cub_detector").set_value("none").run()
    assert all(p.get("source") == "geometric" for p in viewer_args(at)[0]["proposals"])


def test_a_corrupt_detector_is_one_error_naming_the_file_and_the_page_still_works(playground_home):
    broken = playground_home / "pointcloud_detector-2" / "detector.safetensors"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a safetensors file")
    at = open_page_at(PAGE)
    at.selectbox(key="cub_points").select(SMALL).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and str(broken) in errors[0] and "corrupt" in errors[0], errors
    assert viewer_args(at)[0]["proposals"]  # the geometric ones are still offered


def test_a_frame_without_intensity_is_flagged_for_a_detector_that_reads_it(playground_home, tmp_path):
    detector_run(playground_home)
    at = folder_page(frames_folder(tmp_path, 1, intensity=False))
    assert any("no intensity" in c.value and "sees zeros" in c.value for c in at.caption)
    detector_run(playground_home, "pointcloud_xyz", LAYOUTS[1])  # newer, and reads no intensity
    at = folder_page(frames_folder(tmp_path, 1, intensity=False))
    assert not any("no intensity" in c.value for c in at.caption) and not at.error


def test_the_folder_is_scored_into_the_queue_and_taken_most_uncertain_first(playground_home, tmp_path):
    other = detector_run(playground_home, "pointcloud_detector-0")
    detector_run(playground_home)
    folder = frames_folder(tmp_path)
    at = folder_page(folder, "alice")
    at.multiselect(key="cub_ensemble").select(other).run()
    at.button(key="cub_score").click().run()
    assert not at.exception and any("Scored 3 frames: 3 new" in s.value for s in at.success)
    with Store(default_url()) as store:
        ranked = [q.frame for q in queued_frames(store, "drive")]
        first = store.item(store.queue_items(queue_name("drive"))[0]["escalation_id"])
        assert first.meta["ensemble"] == 0.0  # two copies of one detector: no disagreement between them
        assert first.uncertainty == pytest.approx((first.meta["confidence"] + first.meta["disagreement"]) / 3)
        enqueue_frames(store, "drive", {"000000": found(0.9), "000001": found(0.1), "000002": found(0.5)})
    assert sorted(ranked) == ["000000", "000001", "000002"]
    at.toggle(key="cub_uncertain_first").set_value(True).run()
    options = at.selectbox(key="cub_frame_pick").options
    assert [o.split(" · ")[0] for o in options] == ["000000.npy", "000002.npy", "000001.npy"]
    assert options[0] == "000000.npy · U 0.90"
    at.button(key="cub_next_uncertain").click().run()
    args = viewer_args(at)[0]
    assert args["frame"]["key"] == "drive/000000"
    box = {"center": [3.0, 2.0, 0.8], "size": [4.2, 1.8, 1.6], "yaw": 0.0, "label": "car"}
    viewer_says(at, commit_value(args, [box]))
    assert viewer_args(at)[0]["commit_result"]["ok"]
    with Store(default_url()) as store:
        states = {q.frame: q.status for q in queued_frames(store, "drive")}
        labels = store.labels(queue_name("drive"))
    assert states == {"000000": "done", "000002": "open", "000001": "open"}
    assert [(r["external_id"], r["class_name"], r["annotator"]) for r in labels] == [
        ("000000", "car", "alice")
    ]
    at.button(key="cub_next_uncertain").click().run()
    assert viewer_args(at)[0]["frame"]["key"] == "drive/000002"  # the committed frame is not handed out again
    assert "done" in at.selectbox(key="cub_frame_pick").options[0]


def test_a_frame_held_by_someone_else_is_not_handed_out(playground_home, tmp_path):
    folder = frames_folder(tmp_path, 2)
    with Store(default_url()) as store:
        enqueue_frames(store, "drive", {"000000": found(0.9), "000001": found(0.4)})
        assert store.lease_next(queue_name("drive"), "bob").external_id == "000000"
    at = folder_page(folder, "alice")
    at.button(key="cub_next_uncertain").click().run()
    assert viewer_args(at)[0]["frame"]["key"] == "drive/000001"
    assert at.selectbox(key="cub_frame_pick").options[0] == "000000.npy · U 0.90 · with bob"
    with Store(default_url()) as store:
        held = {q.frame: q.leased_by for q in queued_frames(store, "drive")}
    assert held == {"000000": "bob", "000001": "alice"}
