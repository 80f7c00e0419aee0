"""What the 3D viewer and the library exchange: the points buffer, box records, open proposals,
commits from the viewer (idempotent, checked), frame names and folders, the ground plane, downloads."""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest

from playground.errors import DataFormatError, DataNotFoundError
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.export import export_file, from_datumaro, from_kitti, from_nuscenes, to_kitti
from playground.pointcloud.io import read_cloud_bytes
from playground.pointcloud.proposals import ground_plane
from playground.pointcloud.scenes import SceneSpec, make_scene
from playground.pointcloud.viewer import (
    FrameRef,
    box_records,
    commit_from_viewer,
    frame_name,
    list_frames,
    parse_commit,
    pending_proposals,
    points_buffer,
    proposal_records,
    read_points_buffer,
    synthetic_frame_name,
    viewer_labels,
    with_source,
)

CAR = Cuboid((10.0, 2.0, 0.8), (4.2, 1.8, 1.6), 0.3, "car")
WALKER = Cuboid((6.0, -3.0, 0.85), (0.75, 0.6, 1.7), -1.2, "pedestrian", 0.8)
FRAME = FrameRef("synthetic", "seed0")


@pytest.fixture
def db(tmp_path):
    annotations = CuboidAnnotations(url=f"sqlite:///{tmp_path / 'store.db'}")
    yield annotations
    annotations.close()


def commit_message(boxes, request_id="r1", frame_key=FRAME.key, base=0) -> dict:
    return {
        "type": "commit",
        "request_id": request_id,
        "frame_key": frame_key,
        "base_revision": base,
        "boxes": [
            {"center": list(b.center), "size": list(b.size), "yaw": b.yaw, "label": b.label} for b in boxes
        ],
    }


# --------------------------------------------------------------------- points and boxes


def test_points_buffer_is_16_little_endian_bytes_a_point():
    points = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, -1.0]], dtype=np.float64)
    data = points_buffer(points, np.array([0.5, 1.0]))
    assert len(data) == 32
    assert np.frombuffer(data, "<f4").tolist() == [1.5, -2.0, 0.25, 0.5, 3.0, 4.0, -1.0, 1.0]
    back, intensity = read_points_buffer(data)
    np.testing.assert_array_equal(back, points.astype(np.float32))
    np.testing.assert_array_equal(intensity, [0.5, 1.0])
    np.testing.assert_array_equal(read_points_buffer(points_buffer(points))[1], [0.0, 0.0])
    with pytest.raises(DataFormatError, match=r"\(N, 3\)"):
        points_buffer(np.zeros((4, 4)))
    with pytest.raises(DataFormatError, match="16 bytes per point"):
        read_points_buffer(data[:-4])


def test_box_records_and_stable_proposal_ids():
    records = box_records([CAR, WALKER])
    assert [r["id"] for r in records] == ["b0", "b1"]
    assert records[0] == {
        "id": "b0",
        "center": [10.0, 2.0, 0.8],
        "size": [4.2, 1.8, 1.6],
        "yaw": 0.3,
        "label": "car",
    }
    assert records[1]["score"] == 0.8
    far, near = CAR.with_(center=(30.0, 0.0, 0.8)), WALKER
    pending = pending_proposals([far, near, CAR.with_(center=(10.2, 2.1, 0.8))], committed=[CAR])
    assert [index for index, _ in pending] == [1, 0]  # the one over the committed car is gone; nearest first
    assert [r["id"] for r in proposal_records(pending)] == ["p1", "p0"]
    learned = with_source([CAR.with_(score=0.82)], "learned")
    geometric = with_source([WALKER], "geometric")
    records = proposal_records(
        [(0, geometric[0]), (0, learned[0]), (3, with_source([CAR], "interpolated")[0])]
    )
    assert [(r["id"], r["source"]) for r in records] == [
        ("p0", "geometric"),
        ("l0", "learned"),
        ("i3", "interpolated"),
    ]  # one index in two sources, two ids
    assert records[1]["score"] == 0.82 and CAR.attributes == {}  # tagging copies
    assert viewer_labels([CAR, WALKER.with_(label="tram")]) == [
        "car",
        "pedestrian",
        "cyclist",
        "pole",
        "tram",
    ]


# --------------------------------------------------------------------- commits


def test_parse_commit_checks_every_box():
    request = parse_commit(commit_message([CAR, WALKER], base=3))
    assert request.request_id == "r1" and request.base_revision == 3 and request.frame_key == FRAME.key
    assert request.boxes == [CAR, WALKER.with_(score=None)]
    bad = commit_message([CAR, WALKER])
    bad["boxes"][1]["size"] = [0.7, -0.6, 1.7]
    with pytest.raises(DataFormatError, match="box 2: .*positive"):
        parse_commit(bad)
    with pytest.raises(DataFormatError, match="request id"):
        parse_commit({**commit_message([CAR]), "request_id": " "})
    with pytest.raises(DataFormatError, match="list of at most"):
        parse_commit({**commit_message([CAR]), "boxes": "car"})
    with pytest.raises(DataFormatError, match="base revision"):
        parse_commit(commit_message([CAR], base="latest"))
    with pytest.raises(DataFormatError, match="not a commit"):
        parse_commit({"type": "frame", "step": 1})


def test_commit_from_viewer_stores_once_per_request_id(db):
    answer = commit_from_viewer(db, FRAME, "alice", commit_message([CAR, WALKER]))
    assert answer["ok"] and answer["request_id"] == "r1" and answer["revision"] == 1
    assert "2 boxes by alice" in answer["message"]
    assert db.current("synthetic", "seed0") == [CAR, WALKER.with_(score=None)]
    again = commit_from_viewer(db, FRAME, "alice", commit_message([CAR, WALKER]))  # a replayed message
    assert again == answer and len(db.history("synthetic", "seed0")) == 1


def test_commit_from_viewer_explains_what_went_wrong(db):
    no_name = commit_from_viewer(db, FRAME, "  ", commit_message([CAR]))
    assert (
        not no_name["ok"] and "Type your name" in no_name["message"] and db.head("synthetic", "seed0") is None
    )
    other = commit_from_viewer(db, FRAME, "alice", commit_message([CAR], frame_key="synthetic/seed1"))
    assert not other["ok"] and "synthetic/seed1" in other["message"]
    assert commit_from_viewer(db, FRAME, "alice", commit_message([CAR], "a1"))["ok"]
    stale = commit_from_viewer(db, FRAME, "bob", commit_message([WALKER], "b1", base=0))
    assert not stale["ok"] and "changed since revision 0" in stale["message"]
    headless = {**commit_message([CAR], "b2", base=1), "boxes": [{"size": [1, 1, 1]}]}
    broken = commit_from_viewer(db, FRAME, "bob", headless)
    assert not broken["ok"] and "box 1" in broken["message"]
    assert db.current("synthetic", "seed0") == [CAR]


# --------------------------------------------------------------------- frames


def test_frame_names():
    spec = SceneSpec(seed=3, target_points=20_000)
    assert synthetic_frame_name(spec) == "seed3-n20000-cars12-peds10-poles6-walls2"
    assert synthetic_frame_name(SceneSpec(seed=3, target_points=20_000, cars=2)) != synthetic_frame_name(spec)
    assert frame_name("/data/velodyne/000123.bin") == "000123"
    assert frame_name("my scan (1).pcd") == "my_scan_1_"


def test_list_frames_keeps_point_cloud_files_in_name_order(tmp_path):
    for name in ("b.bin", "a.npy", "notes.txt", "c.PCD"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.ply").mkdir()
    assert [p.name for p in list_frames(tmp_path)] == ["a.npy", "b.bin", "c.PCD"]
    with pytest.raises(DataNotFoundError, match="not a folder"):
        list_frames(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no point-cloud files"):
        list_frames(tmp_path / "empty")


def test_ground_plane_follows_the_tilted_ground_and_falls_back_to_a_floor():
    scene = make_scene(SceneSpec(seed=1, target_points=20_000, max_slope_deg=1.0))
    plane = ground_plane(scene.points)
    sx, sy = scene.ground_slope
    for x, y in [(10.0, 5.0), (-15.0, 8.0), (3.0, -20.0)]:
        height = -(plane[0] * x + plane[1] * y + plane[3]) / plane[2]
        assert height == pytest.approx(sx * x + sy * y, abs=0.05)
    wall = np.column_stack([np.full(400, 5.0), np.linspace(-5, 5, 400), np.tile(np.linspace(1, 3, 20), 20)])
    assert ground_plane(wall).tolist() == [0.0, 0.0, 1.0, pytest.approx(-np.percentile(wall[:, 2], 2))]


def test_an_upload_over_the_limit_is_refused_before_parsing():
    with pytest.raises(DataFormatError, match="2.0 MB; the limit is 1 MB"):
        read_cloud_bytes(b"\0" * (2 * 2**20), "scan.bin", max_bytes=2**20)


# --------------------------------------------------------------------- downloads


def test_export_files_hold_every_frame():
    frames = {"000001": [CAR, WALKER], "000002": [WALKER.with_(yaw=math.pi / 2)]}
    name, data, mime = export_file(frames, "kitti", "my set")
    assert (name, mime) == ("my_set-kitti-label_2.zip", "application/zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["label_2/000001.txt", "label_2/000002.txt"]
        text = archive.read("label_2/000001.txt").decode()
    assert text == to_kitti(frames["000001"]) and len(from_kitti(text)) == 2
    name, data, mime = export_file(frames, "nuscenes", "my set")
    assert name == "my_set-nuscenes.json" and mime == "application/json"
    assert from_nuscenes(json.loads(data))["000002"][0].yaw == pytest.approx(math.pi / 2)
    _, data, _ = export_file(frames, "datumaro")
    assert [b.label for b in from_datumaro(json.loads(data))["000001"]] == ["car", "pedestrian"]
    with pytest.raises(DataFormatError, match="unknown export format"):
        export_file(frames, "coco")
