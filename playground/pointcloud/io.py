"""Reading and writing point clouds: ``.pcd`` and ``.ply`` (binary ones read by open3d's tensor
I/O, ASCII ones parsed here), ``.xyz`` (rows of x y z, parsed here), KITTI velodyne ``.bin``
(float32 x, y, z, reflectance per point) and NumPy ``.npy`` ((N, 3) or (N, 4): x, y, z[, intensity]).

Every reader returns a :class:`PointCloud`: ``points`` (N, 3) float32 and ``intensity`` (N,)
float32 or None (``.xyz`` has none; ``.pcd``/``.ply`` have it when the file has an
``intensity`` field). A file that cannot be parsed, holds no points or holds NaN/inf values
raises :class:`~playground.errors.DataFormatError` saying which and how many;
``drop_invalid=True`` removes the rows with NaN/inf instead (an all-invalid cloud still fails).
Every header is checked against its data, and the point count against a cap, before anything is
allocated (:mod:`playground.pointcloud.headers`): open3d fills a short ASCII PCD or PLY with
whatever memory held, and a 241-byte file may claim 20 million points.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from pathlib import Path

import numpy as np

from playground.errors import DataFormatError, DataNotFoundError
from playground.pointcloud.headers import check_npy, check_pcd, check_ply, check_point_count, count_lines

OPEN3D_FORMATS = (".pcd", ".ply", ".xyz")
FORMATS = OPEN3D_FORMATS + (".bin", ".npy")


@dataclasses.dataclass
class PointCloud:
    """Points (N, 3) float32 in metres and, when the source has it, intensity (N,) float32."""

    points: np.ndarray
    intensity: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    def xyzi(self) -> np.ndarray:
        """(N, 4) float32: x, y, z and intensity (0 where there is none)."""
        intensity = self.intensity if self.intensity is not None else np.zeros(len(self), np.float32)
        return np.column_stack([self.points, intensity]).astype(np.float32)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataFormatError(
            f"{path.name}: unknown point-cloud format {suffix or '(no extension)'!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    return suffix


def check_cloud(
    points, intensity=None, source: str = "the point cloud", drop_invalid: bool = False
) -> PointCloud:
    """Check shapes and values; returns a float32 :class:`PointCloud`.

    An (N, 4) ``points`` array is split into x, y, z and intensity.
    """
    try:
        points = np.asarray(points, dtype=np.float32)
        intensity = None if intensity is None else np.asarray(intensity, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{source}: points must be numbers ({err})") from None
    if points.ndim != 2 or points.shape[1] not in (3, 4):
        raise DataFormatError(f"{source}: points must be an (N, 3) or (N, 4) array, got shape {points.shape}")
    if points.shape[1] == 4:
        points, intensity = points[:, :3], points[:, 3] if intensity is None else intensity
    if intensity is not None and len(intensity) != len(points):
        raise DataFormatError(f"{source}: {len(points)} points but {len(intensity)} intensity values")
    if not len(points):
        raise DataFormatError(f"{source} holds no points (an empty cloud)")
    valid = np.isfinite(points).all(axis=1) & (np.isfinite(intensity) if intensity is not None else True)
    bad = int(len(points) - valid.sum())
    if bad == len(points):
        raise DataFormatError(f"{source} has no valid points: all {bad} have NaN or inf values")
    if bad and not drop_invalid:
        raise DataFormatError(
            f"{source} has {bad} of {len(points)} points with NaN or inf values; "
            "fix the file or read it with drop_invalid=True to remove them"
        )
    if bad:
        points, intensity = points[valid], None if intensity is None else intensity[valid]
    return PointCloud(
        np.ascontiguousarray(points), None if intensity is None else np.ascontiguousarray(intensity)
    )


def read_cloud(path: str | Path, drop_invalid: bool = False, max_points: int | None = None) -> PointCloud:
    """Read a point cloud from ``path`` (format from its extension, see ``FORMATS``).

    ``max_points``: refuse a cloud with more points, before allocating them (None: the default
    cap, :func:`~playground.pointcloud.headers.max_points_default`).
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DataNotFoundError(f"point-cloud file {path} does not exist")
    if suffix == ".bin":
        points, intensity = _read_bin(path, max_points), None
    elif suffix == ".npy":
        check_npy(path, max_points)
        points, intensity = _read_npy(path), None
    elif suffix == ".xyz":
        points, intensity = _read_xyz(path, max_points), None
    else:
        points, intensity = _read_open3d(path, suffix, max_points)
    return check_cloud(points, intensity, path.name, drop_invalid)


def read_cloud_bytes(
    data: bytes,
    filename: str,
    drop_invalid: bool = False,
    max_bytes: int | None = None,
    max_points: int | None = None,
) -> PointCloud:
    """Read a point cloud held in memory (an upload); ``filename``'s extension names the format.

    ``max_bytes``: refuse anything larger, before parsing it. ``max_points``: as :func:`read_cloud`.
    """
    suffix = _suffix(Path(filename))
    if max_bytes is not None and len(data) > max_bytes:
        raise DataFormatError(
            f"{Path(filename).name} is {len(data) / 2**20:.1f} MB; the limit is "
            f"{max_bytes / 2**20:.0f} MB (voxel-downsample or crop the cloud first)"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_cloud(path, drop_invalid, max_points)
        except DataFormatError as err:
            raise DataFormatError(str(err).replace(path.name, Path(filename).name)) from None


def _read_bin(path: Path, max_points: int | None) -> np.ndarray:
    size = path.stat().st_size
    if size % 16:
        raise DataFormatError(
            f"{path.name} is not a KITTI .bin file: its {size} bytes are not a whole number "
            "of points (4 float32 each: x, y, z, reflectance)"
        )
    check_point_count(path.name, size // 16, max_points)
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def _read_npy(path: Path) -> np.ndarray:
    """An array :func:`~playground.pointcloud.headers.check_npy` has checked."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(f"{path.name} is not a valid .npy array file ({err})") from None


def _read_xyz(path: Path, max_points: int | None) -> np.ndarray:
    """Rows of x y z (further columns ignored), read here: open3d's reader overruns its buffer on
    a last line without a newline."""
    count_lines(path, max_points)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file: refused below
            points = np.loadtxt(path, dtype=np.float64, usecols=(0, 1, 2), ndmin=2, encoding="latin-1")
    except ValueError as err:
        reason = str(err).splitlines()[0][:120]
        raise DataFormatError(f"{path.name} is not a valid .xyz point cloud: {reason}") from None
    if not points.size:
        raise DataFormatError(f"{path.name} holds no points (an empty file)")
    return points


def _read_open3d(path: Path, suffix: str, max_points: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    import open3d as o3d

    check = {".ply": check_ply, ".pcd": check_pcd}[suffix]
    if (ascii_cloud := check(path, max_points)) is not None:
        return ascii_cloud
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        cloud = o3d.t.io.read_point_cloud(str(path), remove_nan_points=False, remove_infinite_points=False)
    if "positions" not in cloud.point:
        if path.stat().st_size == 0:
            raise DataFormatError(f"{path.name} holds no points (an empty file)")
        raise DataFormatError(
            f"{path.name} is not a valid {suffix} point cloud: open3d could not parse it "
            "(a broken header, a truncated file, or a line that is not x y z numbers)"
        )
    points = cloud.point.positions.numpy()
    intensity = cloud.point.intensity.numpy().reshape(-1) if "intensity" in cloud.point else None
    return points, intensity


def write_cloud(path: str | Path, points, intensity=None) -> Path:
    """Write ``points`` (N, 3) (and ``intensity`` (N,)) to ``path`` in the format its extension names.

    ``.xyz`` stores no intensity (pass none); ``.bin`` always stores four columns (intensity 0
    when none is given).
    """
    path = Path(path)
    suffix = _suffix(path)
    cloud = check_cloud(points, intensity, path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".bin":
        cloud.xyzi().tofile(path)
    elif suffix == ".npy":
        np.save(path, cloud.points if cloud.intensity is None else cloud.xyzi())
    else:
        _write_open3d(path, suffix, cloud)
    return path


def _write_open3d(path: Path, suffix: str, cloud: PointCloud) -> None:
    import open3d as o3d

    if suffix == ".xyz" and cloud.intensity is not None:
        raise DataFormatError(
            f"{path.name}: the .xyz format stores no intensity; write .pcd, .ply, .bin or .npy"
        )
    tensor = o3d.t.geometry.PointCloud(o3d.core.Tensor(cloud.points))
    if cloud.intensity is not None:
        tensor.point.intensity = o3d.core.Tensor(cloud.intensity.reshape(-1, 1))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        written = o3d.t.io.write_point_cloud(str(path), tensor)
    if not written:
        raise DataFormatError(f"open3d could not write {path}")
