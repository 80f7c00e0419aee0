"""The 3D cuboid annotation page under AppTest.

AppTest cannot run the three.js viewer, but it sees what the page hands it (the component's
arguments, the points as a bytes argument) and can play the viewer's part: :func:`viewer_says`
sends a value the way the browser does when the viewer calls ``setComponentValue``, so the page's
callback (commit, frame step, points request) runs exactly as it does in a browser.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.scenes import SceneSpec, make_scene
from playground.pointcloud.viewer import read_points_buffer, synthetic_frame_name
from playground.store import Store, default_url
from tests.apps.conftest import open_page_at

PAGE = "views/pointcloud.py"
SMALL = 20_000


def viewer_args(at) -> tuple[dict, dict[str, bytes], str]:
    """The viewer's JSON arguments, its bytes arguments and its widget id (exactly one viewer on the page)."""
    viewers = at.get("component_instance")
    assert len(viewers) == 1, viewers
    proto = viewers[0].proto
    data = {a.key: a.bytes for a in proto.special_args if a.WhichOneof("value") == "bytes"}
    return json.loads(proto.json_args), data, proto.id


def viewer_says(at, value: dict):
    """Rerun as the browser does after the viewer's ``setComponentValue(value)``."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    _, _, widget_id = viewer_args(at)
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=widget_id, json_value=json.dumps(value)))
    at._run(states)
    assert not at.exception, at.exception
    return at


def small_scene_page(name: str = ""):
    """The page on a 20k-point synthetic scene, with ``name`` typed as the annotator."""
    at = open_page_at(PAGE)
    at.selectbox(key="cub_points").select(SMALL).run()
    if name:
        at.text_input(key="annotator").input(name).run()
    assert not at.exception, at.exception
    return at


def store() -> CuboidAnnotations:
    return CuboidAnnotations(Store(default_url()))


def commit_value(args: dict, boxes: list[dict], request_id: str = "req-1") -> dict:
    return {
        "type": "commit",
        "request_id": request_id,
        "frame_key": args["frame"]["key"],
        "base_revision": args["revision"],
        "boxes": boxes,
    }


def test_the_page_shows_a_synthetic_scene_and_sends_its_points_once():
    at = small_scene_page()
    assert at.title[0].value == "3D cuboid annotation"
    args, data, _ = viewer_args(at)
    scene = make_scene(SceneSpec(target_points=SMALL))
    assert args["frame"]["key"] == "synthetic/" + synthetic_frame_name(SceneSpec(target_points=SMALL))
    assert args["frame"]["count"] == len(scene.points) and args["revision"] == 0 and args["boxes"] == []
    points, intensity = read_points_buffer(data["points"])
    np.testing.assert_array_equal(points, scene.points)
    np.testing.assert_array_equal(intensity, scene.intensity)
    assert len(args["proposals"]) >= 10 and all(p["id"].startswith("p") for p in args["proposals"])
    assert len(args["ground"]) == 4 and args["default_sizes"]["car"] == [4.2, 1.8, 1.6]
    at.run()  # any rerun on the same frame: the browser has the points already
    args, data, _ = viewer_args(at)
    assert "points" not in data and args["points"] is None
    at.number_input(key="cub_seed").set_value(1).run()
    args, data, _ = viewer_args(at)
    assert "seed1-" in args["frame"]["key"] and len(data["points"]) == 16 * args["frame"]["count"]
    at.number_input(key="cub_seed").set_value(0).run()  # back to a frame the browser still holds
    args, data, _ = viewer_args(at)
    assert "seed0-" in args["frame"]["key"] and "points" not in data
    for seed in (1, 2, 3, 0):  # seed 0 has left the browser's three-frame cache by now
        at.number_input(key="cub_seed").set_value(seed).run()
    assert "points" in viewer_args(at)[1]


def test_the_viewer_gets_the_points_again_when_it_asks():
    at = small_scene_page()
    args, _, _ = viewer_args(at)
    at.run()
    assert "points" not in viewer_args(at)[1]
    viewer_says(at, {"type": "need_points", "frame_key": args["frame"]["key"], "nonce": "1"})
    assert len(viewer_args(at)[1]["points"]) == 16 * args["frame"]["count"]


def test_a_commit_from_the_viewer_is_stored_once_answered_and_undone():
    at = small_scene_page("alice")
    args, _, _ = viewer_args(at)
    accepted = {k: args["proposals"][0][k] for k in ("center", "size", "yaw", "label")}
    placed = {"center": [5.0, -8.0, 0.8], "size": [4.6, 1.8, 1.6], "yaw": 0.25, "label": "car"}
    viewer_says(at, commit_value(args, [accepted, placed]))
    args, data, _ = viewer_args(at)
    assert args["commit_result"]["ok"] and args["commit_result"]["request_id"] == "req-1", args[
        "commit_result"
    ]
    frame = args["frame"]["key"].split("/", 1)[1]
    stored = store().current("synthetic", frame)
    assert [b.to_dict() for b in stored] == [{**accepted}, placed]
    assert args["revision"] == 1 and [b["size"] for b in args["boxes"]] == [accepted["size"], placed["size"]]
    assert all(p["center"] != accepted["center"] for p in args["proposals"])  # the accepted proposal is gone
    assert "points" not in data  # a commit does not resend the points
    assert len(at.dataframe[0].value) == 2 and "alice" in at.table[0].value["annotator"].tolist()
    viewer_says(at, {**commit_value(args, [accepted, placed]), "base_revision": 0})  # the same message again
    assert len(store().history("synthetic", frame)) == 1 and viewer_args(at)[0]["commit_result"]["ok"]
    at.button(key="cub_undo").click().run()
    assert store().head("synthetic", frame) is None and viewer_args(at)[0]["revision"] == 0
    assert "undone" in at.table[0].value["undone"].tolist()


def test_a_commit_without_a_name_is_refused_with_a_message():
    at = small_scene_page()
    args, _, _ = viewer_args(at)
    viewer_says(
        at, commit_value(args, [{"center": [5, 5, 0.8], "size": [4, 2, 1.5], "yaw": 0, "label": "car"}])
    )
    answer = viewer_args(at)[0]["commit_result"]
    assert not answer["ok"] and "Type your name" in answer["message"]
    assert store().datasets() == []


def test_page_down_in_the_viewer_moves_to_the_next_scene():
    at = small_scene_page()
    args, _, _ = viewer_args(at)
    viewer_says(at, {"type": "frame", "step": 1, "frame_key": args["frame"]["key"], "nonce": "x"})
    assert at.number_input(key="cub_seed").value == 1
    args, data, _ = viewer_args(at)
    assert "seed1-" in args["frame"]["key"] and "points" in data


def test_a_malformed_frame_step_from_the_browser_steps_forward_not_a_traceback():
    at = small_scene_page()
    args, _, _ = viewer_args(at)
    viewer_says(at, {"type": "frame", "step": "back", "frame_key": args["frame"]["key"], "nonce": "m"})
    assert at.number_input(key="cub_seed").value == 1  # viewer_says asserts no exception
    args, _, _ = viewer_args(at)
    viewer_says(at, {"type": "frame", "step": -1, "frame_key": args["frame"]["key"], "nonce": "n"})
    assert at.number_input(key="cub_seed").value == 0


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BAD_UPLOADS = {
    "broken.ply": (
        (
            b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n1 2 3\n"
        ),
        "broken.ply is truncated or does not match its PLY header",
    ),
    "lying.pcd": (
        b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 20000000\nHEIGHT 1\n"
        b"POINTS 20000000\nDATA binary\n" + b"\0" * 24,
        "lying.pcd is truncated or does not match its PCD header: 20,000,000 points need 240,000,000 bytes",
    ),
    "short.pcd": (
        b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 3\nHEIGHT 1\n"
        b"POINTS 3\nDATA ascii\n1 2 3\n",
        "promises 3 points of 3 values each, the data has 1 rows",
    ),
    "empty.npy": (npy_bytes(np.zeros((0, 3), np.float32)), "holds no points"),
    "nan.npy": (
        npy_bytes(np.array([[1, 2, 3], [np.nan, 0, 0], [4, 5, 6]], np.float32)),
        "1 of 3 points with NaN",
    ),
    "odd.bin": (b"\0" * 20, "not a whole number"),
}


@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_a_bad_upload_gives_a_clear_error_not_a_traceback(name):
    data, message = BAD_UPLOADS[name]
    at = open_page_at(PAGE)
    at.radio(key="cub_source").set_value("Upload a file").run()
    at.file_uploader(key="cub_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("component_instance")


def test_a_nan_laden_upload_opens_once_the_bad_points_are_dropped():
    at = open_page_at(PAGE)
    at.radio(key="cub_source").set_value("Upload a file").run()
    at.file_uploader(key="cub_upload").set_value(
        ("scan.npy", BAD_UPLOADS["nan.npy"][0], "application/octet-stream")
    )
    at.checkbox(key="cub_drop_upload").check().run()
    assert not at.exception and not at.error
    args, data, _ = viewer_args(at)
    assert (
        args["frame"]["key"] == "uploads/scan" and args["frame"]["count"] == 2 and len(data["points"]) == 32
    )


def test_a_folder_of_frames_steps_through_its_files(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(2):
        np.save(tmp_path / f"frame{k}.npy", rng.uniform(-10, 10, (500 + k, 4)).astype(np.float32))
    (tmp_path / "frame2.npy").write_bytes(b"not numpy")
    at = open_page_at(PAGE)
    at.radio(key="cub_source").set_value("Folder of frames").run()
    at.text_input(key="cub_folder").input(str(tmp_path)).run()
    args, data, _ = viewer_args(at)
    assert args["frame"]["key"] == f"{tmp_path.name}/frame0" and len(data["points"]) == 16 * 500
    viewer_says(at, {"type": "frame", "step": 1, "frame_key": args["frame"]["key"], "nonce": "1"})
    assert viewer_args(at)[0]["frame"]["key"] == f"{tmp_path.name}/frame1"
    viewer_says(at, {"type": "frame", "step": 1, "frame_key": f"{tmp_path.name}/frame1", "nonce": "2"})
    assert any("not a valid .npy" in e.value for e in at.error) and not at.exception


def test_downloads_are_offered_once_something_is_committed():
    at = small_scene_page("bob")
    assert [b.disabled for b in at.get("download_button")] == [True, True, True]
    args, _, _ = viewer_args(at)
    viewer_says(
        at, commit_value(args, [{"center": [5, 5, 0.8], "size": [4, 2, 1.5], "yaw": 0, "label": "car"}])
    )
    assert [b.disabled for b in at.get("download_button")] == [False, False, False]


def test_a_signed_in_account_commits_under_its_own_name_with_no_name_box(playground_home, monkeypatch):
    from argon2 import PasswordHasher

    from playground import accounts as accounts_module
    from tests.apps.test_login import open_app, sign_in

    monkeypatch.setattr(accounts_module, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    with Store(default_url()) as server:
        accounts_module.Accounts(server).add("carol", "correct horse", "admin")
    at = sign_in(open_app(), "carol", "correct horse")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not [box for box in at.text_input if box.key == "annotator"]
    assert any("Committing as **carol**" in caption.value for caption in at.caption)
