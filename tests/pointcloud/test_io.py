"""Point-cloud I/O: round trips for every format, and clear errors for bad, empty and NaN-laden files."""

from __future__ import annotations

import numpy as np
import pytest

from playground.errors import DataFormatError, DataNotFoundError
from playground.pointcloud.io import FORMATS, check_cloud, read_cloud, read_cloud_bytes, write_cloud

RNG = np.random.default_rng(0)
POINTS = RNG.uniform(-20, 20, (57, 3)).astype(np.float32)
INTENSITY = RNG.uniform(0, 1, 57).astype(np.float32)


@pytest.mark.parametrize("suffix", [".pcd", ".ply", ".bin", ".npy"])
def test_round_trip_with_intensity(tmp_path, suffix):
    path = write_cloud(tmp_path / f"cloud{suffix}", POINTS, INTENSITY)
    cloud = read_cloud(path)
    assert cloud.points.dtype == np.float32 and cloud.points.shape == (57, 3)
    np.testing.assert_allclose(cloud.points, POINTS, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cloud.intensity, INTENSITY, rtol=0, atol=1e-6)


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_points_only(tmp_path, suffix):
    cloud = read_cloud(write_cloud(tmp_path / f"cloud{suffix}", POINTS))
    np.testing.assert_allclose(cloud.points, POINTS, rtol=0, atol=1e-5)  # .xyz is text with 10 decimals
    if suffix == ".bin":  # KITTI always has a reflectance column
        np.testing.assert_array_equal(cloud.intensity, np.zeros(57, np.float32))
    elif suffix in (".xyz", ".npy", ".pcd", ".ply"):
        assert cloud.intensity is None


def test_npy_with_four_columns_splits_intensity(tmp_path):
    np.save(tmp_path / "c.npy", np.column_stack([POINTS, INTENSITY]).astype(np.float64))
    cloud = read_cloud(tmp_path / "c.npy")
    assert cloud.points.dtype == np.float32
    np.testing.assert_allclose(cloud.intensity, INTENSITY, atol=1e-6)
    np.testing.assert_allclose(cloud.xyzi()[:, :3], POINTS)


def test_upload_bytes_name_the_uploaded_file(tmp_path):
    data = write_cloud(tmp_path / "a.bin", POINTS, INTENSITY).read_bytes()
    assert len(read_cloud_bytes(data, "000123.bin")) == 57
    with pytest.raises(DataFormatError, match=r"000124\.bin"):
        read_cloud_bytes(data[:-3], "000124.bin")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.pcd", b"garbage\n1 2 3\n", "not a valid PCD"),
        ("bad.xyz", b"1 2 3\n4 5 six\n", "not a valid .xyz"),
        (
            "bad.ply",
            b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\n"
            b"end_header\n1 2 3\n",
            "truncated or does not match its PLY header",
        ),
        ("bad2.ply", b"PK\x03\x04 a zip file", "must start with 'ply'"),
        ("bad.bin", b"\x00" * 30, "not a whole number of points"),
        ("bad.npy", b"not numpy at all", "not a valid .npy"),
    ],
)
def test_malformed_files_give_a_clear_error(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataFormatError, match=message):
        read_cloud(tmp_path / name)


def test_truncated_binary_pcd_and_ply(tmp_path):
    for suffix in (".pcd", ".ply"):
        full = write_cloud(tmp_path / f"full{suffix}", POINTS, INTENSITY).read_bytes()
        (tmp_path / f"cut{suffix}").write_bytes(full[:-40])
        with pytest.raises(DataFormatError, match="truncated|not a valid"):
            read_cloud(tmp_path / f"cut{suffix}")


@pytest.mark.parametrize("suffix", [".xyz", ".bin", ".npy", ".pcd"])
def test_empty_clouds_are_refused(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    if suffix == ".npy":
        np.save(path, np.zeros((0, 3), np.float32))
    elif suffix == ".pcd":
        path.write_text(
            "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 0\nHEIGHT 1\n"
            "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 0\nDATA ascii\n"
        )
    else:
        path.write_bytes(b"")
    with pytest.raises(DataFormatError, match="no points|not a valid"):
        read_cloud(path)


@pytest.mark.parametrize("suffix", [".pcd", ".ply", ".xyz", ".bin", ".npy"])
def test_nan_points_are_counted_and_can_be_dropped(tmp_path, suffix):
    points = POINTS.copy()
    points[[3, 10, 20], 1] = np.nan
    points[40, 2] = np.inf
    path = tmp_path / f"nan{suffix}"
    _write_raw(path, points)
    with pytest.raises(DataFormatError, match="4 of 57 points with NaN or inf"):
        read_cloud(path)
    cloud = read_cloud(path, drop_invalid=True)
    keep = np.ones(57, bool)
    keep[[3, 10, 20, 40]] = False
    np.testing.assert_allclose(cloud.points, POINTS[keep], atol=1e-5)


def _write_raw(path, points):
    """Write without the writer's checks (which refuse NaN)."""
    if path.suffix == ".npy":
        np.save(path, points)
    elif path.suffix == ".ply":  # open3d's PLY writer refuses inf; write ASCII by hand
        header = (
            f"ply\nformat ascii 1.0\nelement vertex {len(points)}\n"
            + "".join(f"property float {a}\n" for a in "xyz")
            + "end_header\n"
        )
        path.write_text(header + "".join(" ".join(str(v) for v in row) + "\n" for row in points.tolist()))
    elif path.suffix == ".bin":
        np.column_stack([points, np.zeros(len(points), np.float32)]).astype(np.float32).tofile(path)
    else:
        import open3d as o3d

        o3d.t.io.write_point_cloud(str(path), o3d.t.geometry.PointCloud(o3d.core.Tensor(points)))


def test_an_all_nan_cloud_fails_even_when_dropping(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((5, 3), np.nan, np.float32))
    with pytest.raises(DataFormatError, match="no valid points: all 5"):
        read_cloud(tmp_path / "nan.npy", drop_invalid=True)


def test_wrong_shapes_missing_files_and_unknown_formats(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(12, np.float32))
    with pytest.raises(DataFormatError, match=r"shape \(12,\)"):
        read_cloud(tmp_path / "flat.npy")
    np.save(tmp_path / "five.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(DataFormatError, match=r"\(N, 3\) x, y, z or \(N, 4\)"):
        read_cloud(tmp_path / "five.npy")
    with pytest.raises(DataFormatError, match="unknown point-cloud format '.las'"):
        read_cloud(tmp_path / "scan.las")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_cloud(tmp_path / "missing.pcd")
    with pytest.raises(DataFormatError, match="stores no intensity"):
        write_cloud(tmp_path / "x.xyz", POINTS, INTENSITY)
    with pytest.raises(DataFormatError, match="57 points but 3 intensity"):
        check_cloud(POINTS, INTENSITY[:3])


def test_ascii_ply_reads_intensity_by_name_and_refuses_words(tmp_path):
    header = "ply\nformat ascii 1.0\nelement vertex 2\n" + "".join(
        f"property float {a}\n" for a in ("intensity", "x", "y", "z")
    )
    (tmp_path / "a.ply").write_text(header + "end_header\n0.5 1 2 3\n0.25 4 5 -inf\n")
    cloud = read_cloud(tmp_path / "a.ply", drop_invalid=True)
    np.testing.assert_array_equal(cloud.points, [[1, 2, 3]])
    np.testing.assert_array_equal(cloud.intensity, [0.5])
    (tmp_path / "b.ply").write_text(header + "end_header\n0.5 1 2 3\n0.25 4 five 6\n")
    with pytest.raises(DataFormatError, match="not a number"):
        read_cloud(tmp_path / "b.ply")
