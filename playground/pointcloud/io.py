"""Reading and writing point clouds: ``.pcd``, ``.ply`` and ``.xyz`` through open3d's tensor I/O,
KITTI velodyne ``.bin`` (float32 x, y, z, reflectance per point) and NumPy ``.npy`` ((N, 3) or
(N, 4): x, y, z[, intensity]).

Every reader returns a :class:`PointCloud`: ``points`` (N, 3) float32 and ``intensity`` (N,)
float32 or None (``.xyz`` has none; ``.pcd``/``.ply`` have it when the file has an
``intensity`` field). A file that cannot be parsed, holds no points or holds NaN/inf values
raises :class:`~playground.errors.DataFormatError` saying which and how many;
``drop_invalid=True`` removes the rows with NaN/inf instead (an all-invalid cloud still fails).
open3d fills a broken PLY with whatever memory held, so a PLY's header and data length are
checked here before open3d reads it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from playground.errors import DataFormatError, DataNotFoundError

OPEN3D_FORMATS = (".pcd", ".ply", ".xyz")
FORMATS = OPEN3D_FORMATS + (".bin", ".npy")
_PLY_SIZES = {
    "char": 1,
    "uchar": 1,
    "int8": 1,
    "uint8": 1,
    "short": 2,
    "ushort": 2,
    "int16": 2,
    "uint16": 2,
    "int": 4,
    "uint": 4,
    "int32": 4,
    "uint32": 4,
    "float": 4,
    "float32": 4,
    "double": 8,
    "float64": 8,
}


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


def read_cloud(path: str | Path, drop_invalid: bool = False) -> PointCloud:
    """Read a point cloud from ``path`` (format from its extension, see ``FORMATS``)."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DataNotFoundError(f"point-cloud file {path} does not exist")
    if suffix == ".bin":
        points, intensity = _read_bin(path), None
    elif suffix == ".npy":
        points, intensity = _read_npy(path), None
    else:
        points, intensity = _read_open3d(path, suffix)
    return check_cloud(points, intensity, path.name, drop_invalid)


def read_cloud_bytes(
    data: bytes, filename: str, drop_invalid: bool = False, max_bytes: int | None = None
) -> PointCloud:
    """Read a point cloud held in memory (an upload); ``filename``'s extension names the format.

    ``max_bytes``: refuse anything larger, before parsing it.
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
            return read_cloud(path, drop_invalid)
        except DataFormatError as err:
            raise DataFormatError(str(err).replace(path.name, Path(filename).name)) from None


def _read_bin(path: Path) -> np.ndarray:
    size = path.stat().st_size
    if size % 16:
        raise DataFormatError(
            f"{path.name} is not a KITTI .bin file: its {size} bytes are not a whole number "
            "of points (4 float32 each: x, y, z, reflectance)"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(f"{path.name} is not a valid .npy array file ({err})") from None
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DataFormatError(f"{path.name} holds {array.dtype} values; points must be real numbers")
    if array.ndim != 2 or array.shape[1] not in (3, 4):
        raise DataFormatError(
            f"{path.name} holds an array of shape {array.shape}; a point cloud is (N, 3) "
            "x, y, z or (N, 4) x, y, z, intensity"
        )
    return array


def _read_open3d(path: Path, suffix: str) -> tuple[np.ndarray, np.ndarray | None]:
    import open3d as o3d

    if suffix == ".ply" and (ascii_cloud := _check_ply(path)) is not None:
        return ascii_cloud
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        cloud = o3d.t.io.read_point_cloud(str(path), remove_nan_points=False, remove_infinite_points=False)
    if "positions" not in cloud.point:
        if path.stat().st_size == 0 or (suffix == ".xyz" and not path.read_bytes().strip()):
            raise DataFormatError(f"{path.name} holds no points (an empty file)")
        raise DataFormatError(
            f"{path.name} is not a valid {suffix} point cloud: open3d could not parse it "
            "(a broken header, a truncated file, or a line that is not x y z numbers)"
        )
    points = cloud.point.positions.numpy()
    intensity = cloud.point.intensity.numpy().reshape(-1) if "intensity" in cloud.point else None
    return points, intensity


def _ply_header(path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]], int]:
    """A PLY's format, its elements (name, count, (type, name) of each property) and where the data starts."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise DataFormatError(
            f"{path.name} is not a valid PLY file: it must start with 'ply' and have an 'end_header' line"
        )
    lines = head[:end].decode("ascii", errors="replace").splitlines()
    data_start = head.index(b"\n", end) + 1 if b"\n" in head[end:] else len(head)
    fmt, elements = "", []
    try:
        for words in (line.split() for line in lines[1:]):
            if words[:1] == ["format"]:
                fmt = words[1]
            elif words[:1] == ["element"]:
                elements.append((words[1], int(words[2]), []))
            elif words[:1] == ["property"]:
                elements[-1][2].append(("list", "") if words[1] == "list" else (words[1], words[2]))
    except (IndexError, ValueError):
        raise DataFormatError(f"{path.name} is not a valid PLY file: its header is malformed") from None
    return fmt, elements, data_start


def _check_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The vertex element is there and its data is complete (the first element; others unchecked).

    An ASCII PLY's vertices are parsed here and returned: open3d's ASCII reader fails on ``inf``
    and then hands back uninitialised memory instead of an error.
    """
    fmt, elements, start = _ply_header(path)
    if not elements or elements[0][0] != "vertex":
        if not any(name == "vertex" for name, _, _ in elements):
            raise DataFormatError(f"{path.name} is a PLY file without vertices: no points to read")
        return None
    _, count, properties = elements[0]
    types = [kind for kind, _ in properties]
    if "list" in types:
        return None
    if fmt == "ascii":
        return _read_ascii_vertices(path, start, count, [name for _, name in properties])
    if fmt.startswith("binary"):
        need = count * sum(_PLY_SIZES.get(t, 4) for t in types)
        if path.stat().st_size - start < need:
            raise DataFormatError(
                f"{path.name} is a truncated PLY file: {count} points need {need} bytes of "
                f"data, it has {path.stat().st_size - start}"
            )
        return None
    raise DataFormatError(f"{path.name} has an unknown PLY format {fmt!r}")


def _read_ascii_vertices(
    path: Path, start: int, count: int, names: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """x, y, z (and intensity when present) of an ASCII PLY's first ``count`` rows."""
    rows = [r.split() for r in path.read_bytes()[start:].split(b"\n") if r.strip()][:count]
    if len(rows) < count or any(len(r) < len(names) for r in rows):
        raise DataFormatError(
            f"{path.name} is a truncated PLY file: its header promises {count} points "
            f"with {len(names)} values each"
        )
    if not {"x", "y", "z"} <= set(names):
        raise DataFormatError(f"{path.name} is a PLY file whose vertices have no x, y, z properties")
    try:
        values = np.array([r[: len(names)] for r in rows], dtype=np.float64)
    except ValueError:
        raise DataFormatError(
            f"{path.name} is not a valid .ply point cloud: a vertex value is not a number"
        ) from None
    values = values.reshape(count, len(names))
    points = values[:, [names.index(a) for a in "xyz"]].astype(np.float32)
    intensity = values[:, names.index("intensity")].astype(np.float32) if "intensity" in names else None
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
