"""The 3D cuboid page's Tracks tab on a small folder with a missing frame, under AppTest: the
track table, interpolated proposals offered in the viewer (not committed), KITTI tracking labels
refused when a track id repeats in a frame, and imported otherwise."""

from __future__ import annotations

from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.io import write_cloud
from playground.pointcloud.scenes import SceneSpec, make_scene
from playground.store import Store, default_url
from tests.apps.test_pointcloud_page import commit_value, viewer_args, viewer_says
from tests.apps.test_pointcloud_prelabels_page import folder_page

NAMES = ("000000", "000001", "000002", "000004")  # 000003 never arrived


def car(x: float) -> Cuboid:
    return Cuboid((x, 0.0, 0.8), (4.2, 1.8, 1.6), 0.0, "car")


def sequence_folder(tmp_path, committed: dict[str, float]):
    """Four frames with a gap; a car committed at x on the frames of ``committed``."""
    folder = tmp_path / "drive"
    scene = make_scene(SceneSpec(target_points=5000, cars=1, pedestrians=0))
    for name in NAMES:
        write_cloud(folder / f"{name}.npy", scene.points, scene.intensity)
    annotations = CuboidAnnotations(Store(default_url()))
    for name, x in committed.items():
        annotations.commit("drive", name, [car(x)], "alice", f"r-{name}")
    return folder, annotations


def tracks_table(at):
    tables = [d.value for d in at.dataframe if "track" in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


def test_the_tracks_tab_reports_the_missing_frame_and_tracks_across_it(tmp_path):
    folder, _ = sequence_folder(tmp_path, {"000000": 0.0, "000001": 1.0, "000002": 2.0, "000004": 4.0})
    at = folder_page(folder)
    assert any("frame 3 is missing" in c.value and "gap" in c.value for c in at.caption)
    table = tracks_table(at)
    assert table["frame"].tolist() == list(NAMES) and table["number"].tolist() == [0, 1, 2, 4]
    assert set(table["track"]) == {0} and table["x"].tolist() == [0.0, 1.0, 2.0, 4.0]
    assert not at.download_button(key="cub_kitti_tracking").disabled


def test_interpolated_boxes_are_offered_as_proposals_on_the_frames_between(tmp_path):
    folder, annotations = sequence_folder(tmp_path, {"000000": 0.0, "000001": 1.0, "000004": 4.0})
    at = folder_page(folder, "bob")
    table = tracks_table(at)
    assert table["track"].tolist() == [0, 0, 0]  # the tracker's velocity carries the car across the gap
    at.selectbox(key="cub_from").set_value(1).run()  # 000001, track 0
    assert at.selectbox(key="cub_to").value == 2  # 000004, the same track two or more frames on
    at.button(key="cub_interpolate").click().run()
    assert not at.exception and annotations.head("drive", "000002") is None  # offered, not committed
    at.selectbox(key="cub_frame_pick").set_value(2).run()
    args = viewer_args(at)[0]
    offered = [p for p in args["proposals"] if p.get("source") == "interpolated"]
    assert args["frame"]["key"] == "drive/000002" and len(offered) == 1 and offered[0]["id"] == "i0"
    assert offered[0]["center"] == [2.0, 0.0, 0.8]
    accepted = {k: offered[0][k] for k in ("center", "size", "yaw", "label")}
    viewer_says(at, commit_value(args, [accepted]))  # accepted in the viewer, then committed
    assert [b.center for b in annotations.current("drive", "000002")] == [(2.0, 0.0, 0.8)]
    assert not [p for p in viewer_args(at)[0]["proposals"] if p.get("source") == "interpolated"]


def test_kitti_tracking_with_a_track_id_twice_in_a_frame_is_refused_and_a_good_file_imported(tmp_path):
    folder, annotations = sequence_folder(tmp_path, {})
    at = folder_page(folder, "carol")
    assert at.download_button(key="cub_kitti_tracking").disabled
    line = "1 7 Car 0 0 0 0 0 0 0 1.6 1.8 4.2 0 0 10 0\n"
    at.file_uploader(key="cub_kitti_upload").set_value(
        ("tracks.txt", (line * 2).encode(), "text/plain")
    ).run()
    assert not at.exception
    assert any("tracks.txt line 2: track id 7 is used twice in frame 1" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "cub_kitti_commit"]
    good = line + line.replace("1 7 Car", "9 7 Car")
    at.file_uploader(key="cub_kitti_upload").set_value(("tracks.txt", good.encode(), "text/plain")).run()
    assert not at.error and any(
        "1 boxes on 1 frames; frames 9 are not in this folder" in c.value for c in at.caption
    )
    at.button(key="cub_kitti_commit").click().run()
    assert [b.label for b in annotations.current("drive", "000001")] == ["car"]
    assert tracks_table(at)["frame"].tolist() == ["000001"]


def test_hostile_tracking_files_are_one_error_line_and_many_unknown_frames_a_short_caption(tmp_path):
    folder, annotations = sequence_folder(tmp_path, {})
    at = folder_page(folder, "carol")
    line = "1 7 Car 0 0 0 0 0 0 0 1.6 1.8 4.2 0 0 10 0\n"
    hostile = {
        b"\xff\xfe" + line.encode(): "tracks.txt is not UTF-8 text",
        line.replace(" 10 0", " 10 inf").encode(): "must be numbers (not NaN or infinite)",
        ("9" * 4000 + line[1:]).encode(): "frame and track id must be from 0 to 2147483647",
    }
    for data, message in hostile.items():
        at.file_uploader(key="cub_kitti_upload").set_value(("tracks.txt", data, "text/plain")).run()
        assert not at.exception and any(message in e.value for e in at.error), [e.value for e in at.error]
        assert all(len(e.value) < 300 for e in at.error)
    many = "".join(line.replace("1 7", f"{100 + k} 7") for k in range(15))
    at.file_uploader(key="cub_kitti_upload").set_value(("tracks.txt", many.encode(), "text/plain")).run()
    assert not at.error and any(
        "frames 100, 101, 102, 103, 104, 105, 106, 107, 108, 109 and 5 more are not in this folder" in c.value
        for c in at.caption
    )
    assert annotations.frames("drive") == []
