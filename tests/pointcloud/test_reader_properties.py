"""Property tests and a bounded fuzz run of the point-cloud readers: any bytes give a cloud or one
``DataFormatError``, never another exception, and never points the file does not hold."""

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.errors import DataFormatError
from playground.pointcloud import FORMATS, read_cloud_bytes, write_cloud

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_or_refuse(data: bytes, name: str, max_points: int = 10_000):
    """The cloud, or None when it was refused with a ``DataFormatError``; any other exception fails."""
    try:
        cloud = read_cloud_bytes(data, name, max_points=max_points)
    except DataFormatError as err:
        assert name in str(err) and len(str(err)) < 600, str(err)
        return None
    assert cloud.points.dtype == np.float32 and cloud.points.shape == (len(cloud), 3)
    assert np.isfinite(cloud.points).all() and 0 < len(cloud) <= max_points
    return cloud


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(FORMATS))
def test_any_bytes_give_a_cloud_or_one_clear_error(data, suffix):
    read_or_refuse(data, f"any{suffix}")


@settings(max_examples=80, deadline=None)
@given(
    points=st.integers(0, 40),
    width=st.integers(0, 40),
    rows=st.integers(0, 40),
    values=st.integers(2, 5),
    data=st.sampled_from(["ascii", "binary"]),
)
def test_a_pcd_is_read_only_when_its_data_is_what_its_header_promises(points, width, rows, values, data):
    header = (
        f"VERSION .7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {width}\n"
        f"HEIGHT 1\nPOINTS {points}\nDATA {data}\n"
    ).encode()
    table = np.arange(rows * values, dtype=np.float32).reshape(rows, values)
    body = (
        "".join(" ".join(map(str, row)) + "\n" for row in table).encode()
        if data == "ascii"
        else table.tobytes()
    )
    cloud = read_or_refuse(header + body, "h.pcd")
    consistent = (
        points == width and points > 0 and (rows == points and values == 4 if data == "ascii" else True)
    )
    if data == "binary":
        consistent = consistent and 16 * points <= len(body) < 16 * points + 16  # < 1 point of padding
    assert (cloud is not None) == consistent
    if cloud is not None:
        records = table.reshape(-1)[: 4 * points].reshape(points, 4)  # the points the header promises
        assert (
            cloud.points.tolist() == records[:, :3].tolist()
            and cloud.intensity.tolist() == records[:, 3].tolist()
        )


@functools.cache
def seed_files() -> dict[str, bytes]:
    """One small valid file of each format and encoding, written by the project and by hand."""
    points = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    intensity = np.linspace(0, 1, 12, dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        files = {
            name: write_cloud(Path(folder) / name, points, None if ".xyz" in name else intensity).read_bytes()
            for name in ("s.bin", "s.npy", "s.pcd", "s.ply", "s.xyz")
        }
        files["c.pcd"] = _compressed_pcd(Path(folder) / "c.pcd", points)
    rows = "".join(f"{x} {y} {z} {i}\n" for (x, y, z), i in zip(points, intensity))
    files["a.pcd"] = (
        "VERSION .7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH 12\nHEIGHT 1\n"
        f"POINTS 12\nDATA ascii\n{rows}"
    ).encode()
    files["a.ply"] = (
        "ply\nformat ascii 1.0\nelement vertex 12\nproperty float x\nproperty float y\nproperty float z\n"
        f"property float intensity\nend_header\n{rows}"
    ).encode()
    return files


def _compressed_pcd(path: Path, points: np.ndarray) -> bytes:
    import open3d as o3d

    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(points))
    o3d.t.io.write_point_cloud(str(path), cloud, write_ascii=False, compressed=True)
    return path.read_bytes()


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
)


def mutate(data: bytes, mutations) -> bytes:
    data = bytearray(data)
    for kind, where, value in mutations:
        where %= max(len(data), 1)
        if kind == "flip" and data:
            data[where] ^= value
        elif kind == "cut":
            del data[where:]
        else:
            data[where:where] = bytes([value]) * (1 + value % 7)
    return bytes(data)


@pytest.mark.slow
@settings(max_examples=800, deadline=None)
@given(
    name=st.sampled_from(["s.bin", "s.npy", "s.pcd", "s.ply", "s.xyz", "a.pcd", "a.ply", "c.pcd"]),
    data=st.data(),
)
def test_fuzz_mutated_clouds_give_a_cloud_or_one_clear_error(name, data):
    """A bounded fuzz run (about 10 s on 2 busy cores): flipped, cut and inserted bytes in real files."""
    mutations = data.draw(st.lists(MUTATION, min_size=1, max_size=4))
    read_or_refuse(mutate(seed_files()[name], mutations), name)
