"""Point-cloud file headers checked against their data before anything is allocated.

A header states how many points follow; a hostile or broken file can state anything. Before a
reader allocates, every header here is checked three ways:

- its **counts** are consistent (PCD: ``POINTS = WIDTH × HEIGHT``, one ``SIZE``/``TYPE``/``COUNT``
  per field);
- its **data** is there: a binary body holds ``points × bytes per point`` bytes, an ASCII body
  holds exactly as many rows of as many values as the header promises (open3d fills a short
  ASCII PCD or PLY with whatever memory held, so ASCII bodies are parsed here);
- the number of points is at most ``max_points`` (:func:`max_points_default`: 30 million, or the
  environment variable ``PLAYGROUND_MAX_POINTS``).

Every failure is one :class:`~playground.errors.DataFormatError` naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

from playground.core.config_values import env_count
from playground.errors import DataFormatError

MAX_POINTS = 30_000_000
MAX_POINTS_VARIABLE = "PLAYGROUND_MAX_POINTS"
HEADER_BYTES = 65536  # a real header is a few hundred bytes; a longer one is refused
_PLY_SIZES = {
    **dict.fromkeys(("char", "uchar", "int8", "uint8"), 1),
    **dict.fromkeys(("short", "ushort", "int16", "uint16"), 2),
    **dict.fromkeys(("int", "uint", "int32", "uint32", "float", "float32"), 4),
    **dict.fromkeys(("double", "float64"), 8),
}
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_PCD_TYPES = {"I": (1, 2, 4, 8), "U": (1, 2, 4, 8), "F": (4, 8)}


def max_points_default() -> int:
    """The cap on points per cloud: ``PLAYGROUND_MAX_POINTS`` when set, else :data:`MAX_POINTS`."""
    return env_count(MAX_POINTS_VARIABLE, MAX_POINTS, "points")


def check_point_count(name: str, count: int, max_points: int | None) -> None:
    """Refuse a cloud of more than ``max_points`` points (the default cap when None)."""
    limit = max_points_default() if max_points is None else max_points
    if count > limit:
        raise DataFormatError(
            f"{name} holds {count:,} points; the limit is {limit:,} (voxel-downsample or crop the "
            f"cloud, or raise the limit with max_points= or {MAX_POINTS_VARIABLE})"
        )


def _header_lines(path: Path, kind: str, last: bytes) -> tuple[list[str], int]:
    """The header's lines up to the first starting with ``last`` (included), and where the data starts."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    position = 0
    lines = []
    while (end := head.find(b"\n", position)) >= 0:
        line = head[position:end]
        lines.append(line.decode("ascii", errors="replace").strip())
        position = end + 1
        if line.lstrip().startswith(last):
            return lines, position
    if head[position:].lstrip().startswith(last):  # the header's last line ends the file
        return lines + [head[position:].decode("ascii", errors="replace").strip()], len(head)
    if len(head) == HEADER_BYTES:
        raise DataFormatError(f"{path.name} is not a valid {kind} file: its header is longer than 64 KB")
    raise DataFormatError(f"{path.name} is not a valid {kind} file: its header has no '{last.decode()}' line")


def read_ascii_rows(
    path: Path, start: int, count: int, names: list[str], kind: str, exact: bool
) -> np.ndarray:
    """``count`` rows of ``len(names)`` numbers from byte ``start`` on, as (count, len(names)) float64.

    ``exact``: more rows than ``count`` is an error too (a PLY's vertices may be followed by faces).
    """
    rows = [r.split() for r in path.read_bytes()[start:].split(b"\n") if r.strip()]
    if len(rows) < count or (exact and len(rows) > count) or any(len(r) != len(names) for r in rows[:count]):
        widths = sorted({len(r) for r in rows[:count]})
        raise DataFormatError(
            f"{path.name} is truncated or does not match its {kind} header: it promises {count:,} "
            f"points of {len(names)} values each, the data has {len(rows):,} rows of {widths[:3]} values"
        )
    try:
        return np.array(rows[:count], dtype=np.float64).reshape(count, len(names))
    except ValueError:
        raise DataFormatError(
            f"{path.name} is not a valid {kind} point cloud: a value is not a number"
        ) from None


def xyz_and_intensity(values: np.ndarray, names: list[str], path: Path, kind: str):
    """The x, y, z columns (and the intensity column when there is one) of parsed rows."""
    if not {"x", "y", "z"} <= set(names):
        raise DataFormatError(f"{path.name} is a {kind} file whose points have no x, y, z fields")
    points = values[:, [names.index(a) for a in "xyz"]].astype(np.float32)
    intensity = values[:, names.index("intensity")].astype(np.float32) if "intensity" in names else None
    return points, intensity


@dataclasses.dataclass
class PcdHeader:
    """A PCD header's fields, each with its byte size, type and count, and its point count and encoding."""

    fields: list[str]
    sizes: list[int]
    types: list[str]
    counts: list[int]
    points: int
    data: str
    data_start: int

    def columns(self) -> list[str]:
        """One name per value in a row: a field of COUNT c gives c columns (``f``, ``f_1``, ...)."""
        return [f if k == 0 else f"{f}_{k}" for f, c in zip(self.fields, self.counts) for k in range(c)]

    def point_bytes(self) -> int:
        return sum(s * c for s, c in zip(self.sizes, self.counts))


def _pcd_header(path: Path) -> PcdHeader:
    lines, start = _header_lines(path, "PCD", b"DATA")
    entries = {
        words[0].upper(): words[1:]
        for words in (line.split() for line in lines)
        if words and words[0][0] != "#"
    }
    try:
        fields = entries["FIELDS"]
        sizes = [int(s) for s in entries.get("SIZE", [])]
        types = [t.upper() for t in entries.get("TYPE", [])]
        counts = [int(c) for c in entries.get("COUNT", ["1"] * len(fields))]
        width, height = int(entries["WIDTH"][0]), int(entries.get("HEIGHT", ["1"])[0])
        points = int(entries.get("POINTS", [width * height])[0])
        data = entries["DATA"][0].lower()
    except (KeyError, IndexError, ValueError) as err:
        raise DataFormatError(
            f"{path.name} is not a valid PCD file: its header is malformed ({err})"
        ) from None
    header = PcdHeader(fields, sizes, types, counts, points, data, start)
    _check_pcd_header(header, width, height, path.name)
    return header


def _check_pcd_header(header: PcdHeader, width: int, height: int, name: str) -> None:
    problem = None
    if not header.fields or not len(header.fields) == len(header.sizes) == len(header.types) == len(
        header.counts
    ):
        problem = "FIELDS, SIZE, TYPE and COUNT must name the same number of fields"
    elif (
        any(s not in _PCD_TYPES.get(t, ()) for s, t in zip(header.sizes, header.types))
        or min(header.counts) < 1
    ):
        problem = "a field has an unknown TYPE, a SIZE its type does not have, or a COUNT below 1"
    elif min(width, height, header.points) < 0 or header.points != width * height:
        problem = f"POINTS {header.points:,} is not WIDTH {width:,} × HEIGHT {height:,}"
    elif header.data not in ("ascii", "binary", "binary_compressed"):
        problem = f"DATA {header.data[:20]!r} is not ascii, binary or binary_compressed"
    if problem:
        raise DataFormatError(f"{name} is not a valid PCD file: {problem}")


def check_pcd(path: Path, max_points: int | None):
    """Check a PCD's header against its data; an ASCII PCD is parsed here and returned as
    ``(points, intensity)``, a binary one is left to open3d (None)."""
    header = _pcd_header(path)
    check_point_count(path.name, header.points, max_points)
    if header.data == "ascii":
        columns = header.columns()
        values = read_ascii_rows(path, header.data_start, header.points, columns, "PCD", exact=True)
        return xyz_and_intensity(values, columns, path, "PCD")
    body = path.stat().st_size - header.data_start
    need = header.points * header.point_bytes()
    if header.data == "binary_compressed":
        with path.open("rb") as handle:
            handle.seek(header.data_start)
            sizes = handle.read(8)
        packed, unpacked = struct.unpack("<II", sizes) if len(sizes) == 8 else (body, 0)
        if unpacked != need or packed > body - 8:
            raise DataFormatError(
                f"{path.name} is truncated or does not match its PCD header: {header.points:,} points "
                f"are {need:,} bytes unpacked; its compressed block claims {unpacked:,} bytes unpacked "
                f"from {packed:,}, and the file holds {max(body - 8, 0):,}"
            )
    elif not need <= body < need + max(header.point_bytes(), 2):
        raise DataFormatError(
            f"{path.name} is truncated or does not match its PCD header: {header.points:,} points "
            f"need {need:,} bytes of data, the file has {body:,}"
        )
    return None


def _ply_header(path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]], int]:
    """A PLY's format, its elements (name, count, (type, name) of each property) and where the data starts."""
    with path.open("rb") as handle:
        if handle.read(3) != b"ply":
            raise DataFormatError(f"{path.name} is not a valid PLY file: it must start with 'ply'")
    lines, start = _header_lines(path, "PLY", b"end_header")
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
    return fmt, elements, start


def check_ply(path: Path, max_points: int | None):
    """Check a PLY's vertex element against its data (the first element; others unchecked).

    An ASCII PLY's vertices are parsed here and returned as ``(points, intensity)``: open3d's
    ASCII reader fails on ``inf`` and then hands back uninitialised memory instead of an error.
    """
    fmt, elements, start = _ply_header(path)
    vertices = [(count, props) for name, count, props in elements if name == "vertex"]
    if not vertices:
        raise DataFormatError(f"{path.name} is a PLY file without vertices: no points to read")
    check_point_count(path.name, vertices[0][0], max_points)
    if elements[0][0] != "vertex" or any(kind == "list" for kind, _ in elements[0][2]):
        return None
    _, count, properties = elements[0]
    if fmt == "ascii":
        names = [name for _, name in properties]
        values = read_ascii_rows(path, start, count, names, "PLY", exact=False)
        return xyz_and_intensity(values, names, path, "PLY")
    if fmt.startswith("binary"):
        need = count * sum(_PLY_SIZES.get(kind, 4) for kind, _ in properties)
        if path.stat().st_size - start < need:
            raise DataFormatError(
                f"{path.name} is a truncated PLY file: {count:,} points need {need:,} bytes of "
                f"data, it has {path.stat().st_size - start:,}"
            )
        return None
    raise DataFormatError(f"{path.name} has an unknown PLY format {fmt[:20]!r}")


def check_npy(path: Path, max_points: int | None) -> None:
    """A ``.npy`` header names a real-number (N, 3) or (N, 4) array whose bytes are all in the file."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in _NPY_HEADER_READERS:
                raise ValueError(f"format version {version} is not read here; save with numpy.save")
            shape, _, dtype = _NPY_HEADER_READERS[version](handle)
            start = handle.tell()
    except Exception as err:  # numpy parses a hostile header with ast and tokenize: any error is possible
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise DataFormatError(f"{path.name} is not a valid .npy array file ({reason})") from None
    if dtype.hasobject or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise DataFormatError(f"{path.name} holds {dtype} values; points must be real numbers")
    if len(shape) != 2 or shape[1] not in (3, 4):
        raise DataFormatError(
            f"{path.name} holds an array of shape {shape}; a point cloud is (N, 3) "
            "x, y, z or (N, 4) x, y, z, intensity"
        )
    check_point_count(path.name, shape[0], max_points)
    need = shape[0] * shape[1] * dtype.itemsize
    if path.stat().st_size - start != need:
        raise DataFormatError(
            f"{path.name} does not match its .npy header: shape {shape} of {dtype} needs {need:,} "
            f"bytes of data, the file has {path.stat().st_size - start:,}"
        )


def count_lines(path: Path, max_points: int | None) -> None:
    """An ``.xyz`` file's rows, counted in 1 MB pieces, are at most ``max_points``."""
    rows = 0
    with path.open("rb") as handle:
        while piece := handle.read(2**20):
            rows += piece.count(b"\n")
    check_point_count(path.name, rows, max_points)
