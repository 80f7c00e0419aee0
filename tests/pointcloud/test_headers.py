"""Point-cloud headers are checked against their data and a point cap before anything is allocated."""

import struct

import numpy as np
import pytest

from playground.errors import ConfigError, DataFormatError
from playground.pointcloud import read_cloud, read_cloud_bytes, write_cloud
from playground.pointcloud.headers import MAX_POINTS, MAX_POINTS_VARIABLE, max_points_default

HEADER = (
    "VERSION .7\nFIELDS {fields}\nSIZE {sizes}\nTYPE {types}\nCOUNT {counts}\n"
    "WIDTH {width}\nHEIGHT {height}\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA {data}\n"
)


def pcd_header(points, data="ascii", width=None, height=1, fields="x y z intensity"):
    k = len(fields.split())
    return HEADER.format(
        fields=fields,
        sizes=" ".join(["4"] * k),
        types=" ".join(["F"] * k),
        counts=" ".join(["1"] * k),
        width=points if width is None else width,
        height=height,
        points=points,
        data=data,
    ).encode()


@pytest.fixture
def no_open3d_reads(monkeypatch):
    """Fail the test if open3d is asked to read (allocate) anything."""
    import open3d as o3d

    def refuse(*args, **kwargs):
        raise AssertionError("open3d read a file the header check should have refused")

    monkeypatch.setattr(o3d.t.io, "read_point_cloud", refuse)


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"1 2 3 4\n5 6 7 8\n", "promises 5 points of 4 values each, the data has 2 rows"),
        (b"1 2 3 4\n" * 6, "promises 5 points of 4 values each, the data has 6 rows"),
        (b"1 2 3 4\n" * 4 + b"1 2 3\n", r"rows of \[3, 4\] values"),
    ],
    ids=["fewer rows", "more rows", "a short row"],
)
def test_an_ascii_pcd_whose_rows_disagree_with_its_header_is_refused(tmp_path, body, problem):
    """open3d would fill the missing values with whatever memory held."""
    (tmp_path / "a.pcd").write_bytes(pcd_header(5) + body)
    with pytest.raises(
        DataFormatError, match=f"a.pcd is truncated or does not match its PCD header: .*{problem}"
    ):
        read_cloud(tmp_path / "a.pcd")


def test_an_ascii_pcd_is_read_here_with_nan_rows_and_multi_value_fields(tmp_path):
    header = HEADER.format(
        fields="x y z normal intensity",
        sizes="4 4 4 4 4",
        types="F F F F F",
        counts="1 1 1 3 1",
        width=3,
        height=1,
        points=3,
        data="ascii",
    ).encode()
    (tmp_path / "n.pcd").write_bytes(header + b"1 2 3 0 0 1 7\nnan nan nan 0 0 1 0\n4 5 6 0 1 0 9\n")
    cloud = read_cloud(tmp_path / "n.pcd", drop_invalid=True)
    assert cloud.points.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert cloud.intensity.tolist() == [7, 9]


@pytest.mark.parametrize(
    "header, problem",
    [
        (pcd_header(5, width=7), "POINTS 5 is not WIDTH 7 × HEIGHT 1"),
        (pcd_header(5, data="zip"), "DATA 'zip' is not ascii, binary or binary_compressed"),
        (pcd_header(5).replace(b"SIZE 4 4 4 4", b"SIZE 4 4 4"), "must name the same number of fields"),
        (pcd_header(5).replace(b"TYPE F F F F", b"TYPE F F F Q"), "unknown TYPE"),
        (pcd_header(5).replace(b"WIDTH 5", b"WIDTH five"), "header is malformed"),
        (pcd_header(5).replace(b"DATA ascii\n", b""), "no 'DATA' line"),
        (b"# " + b"x" * 70_000 + b"\n" + pcd_header(5), "header is longer than 64 KB"),
    ],
    ids=["points", "data", "sizes", "type", "width", "no data line", "huge header"],
)
def test_a_broken_pcd_header_is_refused_with_its_problem(tmp_path, header, problem, no_open3d_reads):
    (tmp_path / "h.pcd").write_bytes(header + b"1 2 3 4\n" * 5)
    with pytest.raises(DataFormatError, match=f"h.pcd is not a valid PCD file: .*{problem}"):
        read_cloud(tmp_path / "h.pcd")


def test_a_241_byte_upload_claiming_20_million_points_is_refused_before_allocating(no_open3d_reads):
    data = pcd_header(20_000_000, "binary") + np.zeros(8, np.float32).tobytes()
    assert len(data) < 300
    with pytest.raises(
        DataFormatError, match=r"up.pcd .*20,000,000 points need 320,000,000 bytes of data, the file has 32"
    ):
        read_cloud_bytes(data, "up.pcd", max_bytes=64 * 2**20)


def test_binary_pcds_are_checked_against_their_byte_size(tmp_path):
    points = np.arange(12, dtype=np.float32).reshape(4, 3)
    for compressed in (False, True):
        data = _open3d_pcd(tmp_path, points, compressed)
        assert read_cloud_bytes(data, "ok.pcd").points.tolist() == points.tolist()
        with pytest.raises(DataFormatError, match="truncated or does not match its PCD header"):
            read_cloud_bytes(data[:-3], "cut.pcd")
    start = data.index(b"binary_compressed\n") + len(b"binary_compressed\n")
    packed, _ = struct.unpack("<II", data[start : start + 8])
    lying = data[:start] + struct.pack("<II", packed, 10**9) + data[start + 8 :]
    with pytest.raises(DataFormatError, match="compressed block claims 1,000,000,000 bytes unpacked"):
        read_cloud_bytes(lying, "bomb.pcd")


def _open3d_pcd(tmp_path, points, compressed: bool) -> bytes:
    import open3d as o3d

    path = tmp_path / f"o3d-{compressed}.pcd"
    o3d.t.io.write_point_cloud(
        str(path),
        o3d.t.geometry.PointCloud(o3d.core.Tensor(points)),
        write_ascii=False,
        compressed=compressed,
    )
    return path.read_bytes()


def test_a_npy_header_is_checked_against_its_byte_size_before_loading(tmp_path):
    path = tmp_path / "lie.npy"
    np.save(path, np.zeros((4, 3), np.float32))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"(4, 3)", b"(20000000, 3)"))
    with pytest.raises(
        DataFormatError, match=r"lie.npy does not match its .npy header: shape \(20000000, 3\)"
    ):
        read_cloud(path)
    path.write_bytes(data[:-4])
    with pytest.raises(DataFormatError, match="needs 48 bytes of data, the file has 44"):
        read_cloud(path)
    path.write_bytes(data[:8] + b"\xff\xff" + data[10:])
    with pytest.raises(DataFormatError, match="not a valid .npy array file"):
        read_cloud(path)


@pytest.mark.parametrize("suffix", [".bin", ".npy", ".pcd", ".ply", ".xyz"])
def test_a_cloud_over_the_point_cap_is_refused_and_the_cap_is_configurable(tmp_path, monkeypatch, suffix):
    path = write_cloud(tmp_path / f"c{suffix}", np.random.default_rng(0).normal(size=(100, 3)))
    assert len(read_cloud(path, max_points=100)) == 100
    with pytest.raises(DataFormatError, match=f"c{suffix} holds 100 points; the limit is 99"):
        read_cloud(path, max_points=99)
    monkeypatch.setenv(MAX_POINTS_VARIABLE, "50")
    with pytest.raises(DataFormatError, match=f"limit is 50 .*{MAX_POINTS_VARIABLE}"):
        read_cloud_bytes(path.read_bytes(), path.name)


def test_the_point_cap_defaults_to_30_million_and_a_bad_setting_is_refused(monkeypatch):
    monkeypatch.delenv(MAX_POINTS_VARIABLE, raising=False)
    assert max_points_default() == MAX_POINTS == 30_000_000
    monkeypatch.setenv(MAX_POINTS_VARIABLE, "1_000")
    assert max_points_default() == 1000
    for bad in ("0", "lots", "-5"):
        monkeypatch.setenv(MAX_POINTS_VARIABLE, bad)
        with pytest.raises(
            ConfigError, match=f"{MAX_POINTS_VARIABLE} must be a positive whole number of points"
        ):
            max_points_default()


def test_a_binary_ply_claiming_more_vertices_than_its_bytes_is_refused(tmp_path, no_open3d_reads):
    header = b"ply\nformat binary_little_endian 1.0\nelement vertex 20000000\nproperty float x\n"
    header += b"property float y\nproperty float z\nend_header\n"
    (tmp_path / "big.ply").write_bytes(header + np.zeros(6, np.float32).tobytes())
    with pytest.raises(DataFormatError, match="20,000,000 points need 240,000,000 bytes of data, it has 24"):
        read_cloud(tmp_path / "big.ply")


def test_an_xyz_whose_last_line_has_no_newline_is_read_whole(tmp_path):
    """open3d's .xyz reader overran its buffer on this file (found by the fuzz test) and crashed."""
    (tmp_path / "t.xyz").write_bytes(b"1 2 3\n4 5 6 7\n0.5 -1 2.25")
    assert read_cloud(tmp_path / "t.xyz").points.tolist() == [[1, 2, 3], [4, 5, 6], [0.5, -1, 2.25]]
    for body, problem in (
        (b"1 2\n", "invalid column index 2"),
        (b"1 2 x\n", "could not convert"),
        (b"\n\n", "no points"),
    ):
        (tmp_path / "t.xyz").write_bytes(body)
        with pytest.raises(DataFormatError, match=f"t.xyz .*{problem}"):
            read_cloud(tmp_path / "t.xyz")
