"""KITTI label_2, nuScenes-style and Datumaro cuboid_3d: export then import gives the same boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playground.errors import DataFormatError
from playground.pointcloud.cuboid import Cuboid, wrap_angle
from playground.pointcloud.export import (
    Calibration,
    from_datumaro,
    from_kitti,
    from_nuscenes,
    kitti_line,
    parse_kitti_line,
    quaternion_yaw,
    read_json,
    read_kitti,
    read_kitti_calibration,
    to_datumaro,
    to_kitti,
    to_nuscenes,
    write_json,
    write_kitti,
    yaw_quaternion,
)

# KITTI raw 2011_09_26 calibration (velo_to_cam + R0_rect), a real, slightly tilted one
KITTI_TR = [
    7.533745e-03,
    -9.999714e-01,
    -6.166020e-04,
    -4.069766e-03,
    1.480249e-02,
    7.280733e-04,
    -9.998902e-01,
    -7.631618e-02,
    9.998621e-01,
    7.523790e-03,
    1.480755e-02,
    -2.717806e-01,
]
KITTI_R0 = [
    9.999239e-01,
    9.837760e-03,
    -7.445048e-03,
    -9.869795e-03,
    9.999421e-01,
    -4.278459e-03,
    7.402527e-03,
    4.351614e-03,
    9.999631e-01,
]
RNG = np.random.default_rng(7)
BOXES = [
    Cuboid(
        RNG.uniform(-30, 30, 3) * [1, 1, 0.05],
        RNG.uniform(0.4, 5, 3),
        RNG.uniform(-math.pi, math.pi),
        label,
        score,
    )
    for label, score in [
        ("car", None),
        ("pedestrian", 0.75),
        ("cyclist", None),
        ("person_sitting", 0.1),
        ("car", 1.0),
    ]
    * 4
]


def assert_same(found: list[Cuboid], expected: list[Cuboid], tol: float = 1e-9) -> None:
    assert len(found) == len(expected)
    for a, b in zip(found, expected):
        assert a.label == b.label
        assert (a.score is None) == (b.score is None)
        if b.score is not None:
            assert abs(a.score - b.score) <= tol
        np.testing.assert_allclose(a.center, b.center, rtol=0, atol=tol)
        np.testing.assert_allclose(a.size, b.size, rtol=0, atol=tol)
        assert abs(wrap_angle(a.yaw - b.yaw)) <= tol


def test_kitti_identity_calibration_conventions():
    box = Cuboid((10.0, 2.0, 0.8), (4.0, 1.8, 1.6), 0.3, "car")
    fields = kitti_line(box).split()
    assert fields[0] == "Car" and len(fields) == 15
    h, w, length, x, y, z, ry = map(float, fields[8:15])
    assert (h, w, length) == (1.6, 1.8, 4.0)
    assert (x, y, z) == pytest.approx((-2.0, 0.0, 10.0))  # bottom centre: camera y = -(0.8 - 0.8)
    assert ry == pytest.approx(-0.3 - math.pi / 2)
    assert float(fields[3]) == pytest.approx(wrap_angle(ry - math.atan2(x, z)))  # alpha


@pytest.mark.parametrize("calib", [None, Calibration(np.array(KITTI_TR), np.array(KITTI_R0))])
def test_kitti_round_trip(tmp_path, calib):
    text = to_kitti(BOXES, calib)
    assert_same(from_kitti(text, calib), BOXES)
    paths = write_kitti(tmp_path / "label_2", {"000000": BOXES[:7], "000001": BOXES[7:]}, calib)
    assert [p.name for p in paths] == ["000000.txt", "000001.txt"]
    back = read_kitti(tmp_path / "label_2", calib)
    assert_same(back["000000"] + back["000001"], BOXES)


def test_kitti_with_two_decimals_is_close_and_calibration_files_parse(tmp_path):
    assert_same(from_kitti(to_kitti(BOXES, decimals=2)), BOXES, tol=0.011)
    calib_file = tmp_path / "calib.txt"
    calib_file.write_text(
        "P2: "
        + " ".join(["0"] * 12)
        + "\nR0_rect: "
        + " ".join(map(str, KITTI_R0))
        + "\nTr_velo_to_cam: "
        + " ".join(map(str, KITTI_TR))
        + "\n"
    )
    calib = read_kitti_calibration(calib_file)
    np.testing.assert_allclose(calib.tr_velo_to_cam.reshape(-1), KITTI_TR)
    # the real calibration moves a box by centimetres, not metres
    camera = calib.to_camera([10.0, 0.0, 0.0])[0]
    assert camera == pytest.approx([0.0, 0.0, 10.0], abs=0.4)
    np.testing.assert_allclose(
        calib.to_lidar(calib.to_camera([[1.0, 2.0, 3.0]])), [[1.0, 2.0, 3.0]], atol=1e-12
    )


def test_kitti_reads_dontcare_and_rejects_bad_lines():
    text = "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n" + to_kitti(
        BOXES[:1]
    )
    assert len(from_kitti(text)) == 1
    with pytest.raises(DataFormatError, match="15 or 16 fields"):
        parse_kitti_line("Car 0 0 1 2 3")
    with pytest.raises(DataFormatError, match="must be numbers"):
        parse_kitti_line("Car " + " ".join(["x"] * 14))
    with pytest.raises(DataFormatError, match="spaces"):
        kitti_line(Cuboid((0, 0, 0), (1, 1, 1), 0.0, "traffic cone"))


def test_nuscenes_round_trip(tmp_path):
    frames = {"a": BOXES[:10], "b": BOXES[10:], "empty": []}
    data = to_nuscenes(frames)
    box = data["frames"]["a"][0]
    assert box["size"] == [BOXES[0].size[1], BOXES[0].size[0], BOXES[0].size[2]]  # w, l, h
    assert box["rotation"] == pytest.approx(yaw_quaternion(BOXES[0].yaw))
    back = from_nuscenes(read_json(write_json(tmp_path / "boxes.json", data)))
    assert set(back) == set(frames)
    for name in frames:
        assert_same(back[name], frames[name], tol=1e-12)


def test_quaternions_and_bad_nuscenes_data():
    for yaw in (-3.0, -0.5, 0.0, 1.0, 3.1):
        assert quaternion_yaw(yaw_quaternion(yaw)) == pytest.approx(yaw, abs=1e-12)
        assert quaternion_yaw([-v for v in yaw_quaternion(yaw)]) == pytest.approx(yaw, abs=1e-12)  # -q = q
    with pytest.raises(DataFormatError, match="tilts the box"):
        quaternion_yaw([0.9, 0.3, 0.0, 0.1])
    with pytest.raises(DataFormatError, match="'frames'"):
        from_nuscenes({"boxes": []})
    with pytest.raises(DataFormatError, match="translation, size"):
        from_nuscenes({"frames": {"a": [{"size": [1, 1, 1]}]}})


def test_datumaro_round_trip(tmp_path):
    frames = {"000000": BOXES[:8], "000001": BOXES[8:]}
    data = to_datumaro(frames)
    annotation = data["items"][0]["annotations"][0]
    assert annotation["type"] == "cuboid_3d" and annotation["scale"] == list(BOXES[0].size)
    assert annotation["rotation"] == [0.0, 0.0, BOXES[0].yaw]
    names = [entry["name"] for entry in data["categories"]["label"]["labels"]]
    assert names == ["car", "cyclist", "pedestrian", "person_sitting"]
    back = from_datumaro(read_json(write_json(tmp_path / "default.json", data)))
    for name in frames:
        assert_same(back[name], frames[name], tol=0.0)  # Datumaro keeps the numbers as they are
    with pytest.raises(DataFormatError, match="about x or y"):
        from_datumaro(
            {**data, "items": [{"id": "x", "annotations": [{**annotation, "rotation": [0.2, 0, 0]}]}]}
        )
    with pytest.raises(DataFormatError, match="not a Datumaro"):
        from_datumaro({"items": []})


# --------------------------------------------------------------------- hostile files (issue 25)

GOOD_LINE = "Car 0 0 0 0 0 0 0 1.5 1.8 4.0 1.0 1.5 10.0 0.1"


def test_a_calibration_or_label_file_that_is_missing_a_folder_or_not_utf8_is_one_clear_error(tmp_path):
    from playground.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="nope.txt does not exist"):
        read_kitti_calibration(tmp_path / "nope.txt")
    with pytest.raises(DataFormatError, match="is not a file"):
        read_kitti_calibration(tmp_path)
    (tmp_path / "latin1.txt").write_bytes(b"R0_rect: 1 0 0\xff")
    with pytest.raises(DataFormatError, match="latin1.txt is not UTF-8 text"):
        read_kitti_calibration(tmp_path / "latin1.txt")
    with pytest.raises(DataNotFoundError, match="is not a folder of KITTI label_2 files"):
        read_kitti(tmp_path / "no-labels")  # was an empty dataset, silently
    (tmp_path / "labels" / "000001.txt").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="000001.txt is not a file"):
        read_kitti(tmp_path / "labels")


@pytest.mark.parametrize(
    "line",
    [
        GOOD_LINE.replace(" 0.1", " inf"),  # rotation_y: math.sin raised a bare "math domain error"
        GOOD_LINE + " nan",  # a NaN score was kept
        GOOD_LINE.replace("10.0", "nan"),
        GOOD_LINE.replace("Car", "Car\x00"),
        GOOD_LINE.replace("Car", "C\x1b[2Jar"),
    ],
)
def test_a_kitti_line_with_a_non_finite_number_or_a_control_character_is_refused(line):
    with pytest.raises(DataFormatError, match="label line 1: ") as refused:
        from_kitti(line)
    assert len(str(refused.value)) < 300


def test_a_very_long_kitti_line_gives_a_short_error():
    with pytest.raises(DataFormatError, match="got 100001") as refused:
        from_kitti("Car " + "1 " * 100_000)
    assert len(str(refused.value)) < 300


def test_json_that_is_deep_not_an_object_missing_or_not_utf8_is_one_clear_error(tmp_path):
    from playground.errors import DataNotFoundError

    cases = {"deep.json": b"[" * 200_000, "list.json": b"[1, 2]", "latin1.json": b'{"a": "\xff"}'}
    messages = {"deep.json": "nests its JSON too deeply", "list.json": "must hold a JSON object, not list"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataFormatError, match=messages.get(name, "is not UTF-8 text")):
            read_json(tmp_path / name)
    with pytest.raises(DataNotFoundError, match="gone.json does not exist"):
        read_json(tmp_path / "gone.json")


NUSCENES_BOX = {"translation": [0, 0, 0], "size": [1, 2, 1], "rotation": [1, 0, 0, 0], "category_name": "car"}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(translation="abc"), "could not convert string to float"),
        (dict(size=[1, 2, 10**400]), "OverflowError"),
        (dict(rotation="abcd"), "could not convert"),
        (dict(detection_score="x"), "a score must be a finite number, got 'x'"),
        (dict(detection_score=float("nan")), "a score must be a finite number"),
        (dict(category_name={"a": 1}), "a label must be 1 to 64 printable characters"),
        (dict(category_name="car\x00"), "printable"),
    ],
)
def test_a_nuscenes_box_of_the_wrong_types_is_refused(change, message):
    with pytest.raises(DataFormatError, match=message):
        from_nuscenes({"frames": {"f": [{**NUSCENES_BOX, **change}]}})


DATUMARO_BOX = {
    "type": "cuboid_3d",
    "label_id": 0,
    "position": [0, 0, 0],
    "rotation": [0, 0, 0],
    "scale": [1, 1, 1],
}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(label_id=-1), "label_id must index the 2 labels, got '-1'"),  # was the last label
        (dict(label_id=True), "got 'True'"),  # was label 1
        (dict(label_id=0.0), "got '0.0'"),
        (dict(rotation=[0, 0]), "not enough values to unpack"),
        (dict(rotation=[float("nan"), 0, 0]), "rotated about x or y"),  # a NaN tilt passed as flat
        (dict(position="abc"), "could not convert"),
        (dict(attributes=[1]), "AttributeError"),
        (dict(attributes={"score": "high"}), "a score must be a finite number"),
    ],
)
def test_a_datumaro_cuboid_of_the_wrong_types_is_refused(change, message):
    data = {
        "categories": {"label": {"labels": [{"name": "car"}, {"name": "van"}]}},
        "items": [{"id": "f", "annotations": [{**DATUMARO_BOX, **change}]}],
    }
    with pytest.raises(DataFormatError, match=message):
        from_datumaro(data)
    with pytest.raises(DataFormatError, match="AttributeError"):
        from_datumaro({**data, "items": [{"id": "f", "annotations": "abc"}]})
