"""Cuboid export and import: KITTI ``label_2``, a nuScenes-style JSON and Datumaro ``cuboid_3d``.

**KITTI** (Geiger et al., 2012; the object devkit's readme) stores one text file per frame, one
object per line: ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]``, in
the rectified camera frame (x right, y down, z forward). ``(x, y, z)`` is the centre of the box's
*bottom* face, ``rotation_y`` the heading's angle about the camera's y axis (0: the object points
along camera +x), ``alpha = rotation_y - atan2(x, z)`` the observation angle. A LiDAR point
``p`` maps to the camera as ``R0_rect (R p + t)`` with ``Tr_velo_to_cam = [R | t]``.

Conventions used here (so export then import is exact for any calibration):

- location = the camera image of the LiDAR bottom-face centre ``centre - (0, 0, h/2)``;
- heading: ``d_cam = R0_rect R (cos yaw, sin yaw, 0)``, ``rotation_y = atan2(-d_z, d_x)``; on import
  the yaw is the LiDAR-plane direction whose camera image lies in the plane spanned by
  ``(cos ry, 0, -sin ry)`` and camera y (closed form), so a tilted calibration round-trips too;
- with no calibration, :meth:`Calibration.identity` is used: the ideal KITTI axes
  (camera x = -LiDAR y, y = -LiDAR z, z = LiDAR x), no offset, ``R0_rect = I``; there
  ``rotation_y = -yaw - pi/2``;
- the 2-D image box needs the camera intrinsics, which a LiDAR annotation has not: it is
  written as ``0 0 0 0``; truncated and occluded as 0. Labels are written capitalised
  (``car`` -> ``Car``) and read back lower-cased. Numbers are written with Python's shortest
  round-trip repr unless ``decimals`` is given (KITTI's own files use 2).

**nuScenes-style** JSON: ``{"frames": {frame: [{"translation": [x, y, z], "size": [w, l, h],
"rotation": [qw, qx, qy, qz], "category_name": label, ...}]}}``, the box centre in the LiDAR
frame and a yaw-only quaternion ``(cos(yaw/2), 0, 0, sin(yaw/2))``.

**Datumaro**: the dataset JSON with ``cuboid_3d`` annotations: ``position`` (centre),
``rotation`` (Euler x, y, z in radians; here ``[0, 0, yaw]``) and ``scale`` (``[l, w, h]``), and
the label names under ``categories.label.labels``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from playground.core.files import expect_object, read_json_file, read_text
from playground.errors import DataFormatError, DataNotFoundError
from playground.pointcloud.cuboid import Cuboid, wrap_angle

FLAT = 1e-6  # a quaternion whose roll/pitch part exceeds this is not a yaw-only rotation


@dataclasses.dataclass(frozen=True)
class Calibration:
    """``Tr_velo_to_cam`` (3, 4) and ``R0_rect`` (3, 3): LiDAR to rectified camera."""

    tr_velo_to_cam: np.ndarray
    r0_rect: np.ndarray

    def __post_init__(self):
        tr = np.asarray(self.tr_velo_to_cam, dtype=np.float64).reshape(3, 4)
        r0 = np.asarray(self.r0_rect, dtype=np.float64).reshape(3, 3)
        if (
            not np.isfinite(tr).all()
            or not np.isfinite(r0).all()
            or abs(np.linalg.det(r0 @ tr[:, :3])) < 1e-9
        ):
            raise DataFormatError(
                "a calibration needs finite, invertible Tr_velo_to_cam and R0_rect matrices"
            )
        object.__setattr__(self, "tr_velo_to_cam", tr)
        object.__setattr__(self, "r0_rect", r0)

    @classmethod
    def identity(cls) -> Calibration:
        """The ideal KITTI axes: camera (x, y, z) = LiDAR (-y, -z, x), no offset, ``R0_rect = I``."""
        return cls(np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]], dtype=np.float64), np.eye(3))

    @property
    def rotation(self) -> np.ndarray:
        """LiDAR to camera rotation ``R0_rect R`` (3, 3)."""
        return self.r0_rect @ self.tr_velo_to_cam[:, :3]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return (points @ self.tr_velo_to_cam[:, :3].T + self.tr_velo_to_cam[:, 3]) @ self.r0_rect.T

    def to_lidar(self, points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        unrectified = np.linalg.solve(self.r0_rect, points.T).T
        return np.linalg.solve(self.tr_velo_to_cam[:, :3], (unrectified - self.tr_velo_to_cam[:, 3]).T).T


def read_kitti_calibration(path: str | Path) -> Calibration:
    """``Tr_velo_to_cam`` and ``R0_rect`` from a KITTI ``calib/*.txt`` file."""
    values = {}
    for line in read_text(path).splitlines():
        key, _, rest = line.partition(":")
        if rest.strip():
            try:
                values[key.strip()] = [float(v) for v in rest.split()]
            except ValueError:
                raise DataFormatError(
                    f"{Path(path).name}: {key.strip()[:40]!r} is not a list of numbers"
                ) from None
    missing = [k for k in ("Tr_velo_to_cam", "R0_rect") if k not in values]
    if missing or len(values.get("Tr_velo_to_cam", [])) != 12 or len(values.get("R0_rect", [])) != 9:
        raise DataFormatError(
            f"{Path(path).name} needs Tr_velo_to_cam (12 numbers) and R0_rect (9 numbers)"
            + (f"; missing {', '.join(missing)}" if missing else "")
        )
    return Calibration(np.array(values["Tr_velo_to_cam"]), np.array(values["R0_rect"]))


# --------------------------------------------------------------------- KITTI


def _number(value: float, decimals: int | None) -> str:
    return repr(float(value)) if decimals is None else f"{value:.{decimals}f}"


def _kitti_type(label: str) -> str:
    if any(ch.isspace() for ch in label):
        raise DataFormatError(f"a KITTI type cannot hold spaces, got the label {label!r}")
    return label[:1].upper() + label[1:]


def kitti_line(box: Cuboid, calib: Calibration | None = None, decimals: int | None = None) -> str:
    """One ``label_2`` line for ``box`` (see the module docstring for the conventions)."""
    calib = calib or Calibration.identity()
    bottom = np.array(box.center) - np.array([0.0, 0.0, box.size[2] / 2])
    location = calib.to_camera(bottom)[0]
    heading = calib.rotation @ np.array([math.cos(box.yaw), math.sin(box.yaw), 0.0])
    rotation_y = math.atan2(-heading[2], heading[0])
    alpha = wrap_angle(rotation_y - math.atan2(location[0], location[2]))
    length, w, h = box.size
    numbers = [0.0, 0, alpha, 0, 0, 0, 0, h, w, length, *location, rotation_y]
    fields = (
        [_kitti_type(box.label)]
        + [_number(numbers[0], decimals), "0"]
        + [_number(v, decimals) for v in numbers[2:]]
    )
    if box.score is not None:
        fields.append(_number(box.score, decimals))
    return " ".join(fields)


def _yaw_from_rotation_y(rotation_y: float, calib: Calibration) -> float:
    """The LiDAR yaw whose heading the camera sees at ``rotation_y`` (exact inverse of ``kitti_line``)."""
    normal = np.array([math.sin(rotation_y), 0.0, math.cos(rotation_y)])  # normal of span{u, camera y}
    m = calib.rotation.T @ normal
    yaw = math.atan2(m[0], -m[1])
    heading = calib.rotation @ np.array([math.cos(yaw), math.sin(yaw), 0.0])
    if heading[0] * math.cos(rotation_y) - heading[2] * math.sin(rotation_y) < 0:
        yaw += math.pi
    return wrap_angle(yaw)


def parse_kitti_line(line: str, calib: Calibration | None = None, where: str = "label") -> Cuboid:
    """The cuboid one ``label_2`` line describes, back in the LiDAR frame."""
    calib = calib or Calibration.identity()
    fields = line.split()
    if len(fields) not in (15, 16):
        raise DataFormatError(
            f"{where}: a KITTI label line has 15 or 16 fields, got {len(fields)}: {line[:80]!r}"
        )
    try:
        numbers = [float(v) for v in fields[1:]]
    except ValueError:
        numbers = [math.nan]
    if not all(math.isfinite(v) for v in numbers):
        raise DataFormatError(
            f"{where}: fields 2-16 of a KITTI label line must be numbers (not NaN or infinite): {line[:80]!r}"
        )
    h, w, length = numbers[7:10]
    bottom = calib.to_lidar(np.array(numbers[10:13]))[0]
    yaw = _yaw_from_rotation_y(numbers[13], calib)
    score = numbers[14] if len(numbers) == 15 else None
    label = imported_label(fields[0], where).lower()
    return Cuboid(bottom + np.array([0.0, 0.0, h / 2]), (length, w, h), yaw, label, score)


def to_kitti(boxes: list[Cuboid], calib: Calibration | None = None, decimals: int | None = None) -> str:
    """A whole ``label_2`` file (one line per box)."""
    return "".join(kitti_line(b, calib, decimals) + "\n" for b in boxes)


def from_kitti(
    text: str, calib: Calibration | None = None, where: str = "label", skip: tuple[str, ...] = ("dontcare",)
) -> list[Cuboid]:
    """The cuboids of a ``label_2`` file's text; ``DontCare`` regions are skipped."""
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and line.split()[0].lower() not in skip:
            boxes.append(parse_kitti_line(line, calib, f"{where} line {number}"))
    return boxes


def write_kitti(
    folder: str | Path,
    frames: dict[str, list[Cuboid]],
    calib: Calibration | None = None,
    decimals: int | None = None,
) -> list[Path]:
    """``<folder>/<frame>.txt`` per frame; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame, boxes in frames.items():
        paths.append(folder / f"{frame}.txt")
        paths[-1].write_text(to_kitti(boxes, calib, decimals), encoding="utf-8")
    return paths


def read_kitti(folder: str | Path, calib: Calibration | None = None) -> dict[str, list[Cuboid]]:
    """Frame (file stem) -> cuboids, for every ``*.txt`` in ``folder`` (a missing folder is an error,
    not an empty dataset)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder} is not a folder of KITTI label_2 files (<frame>.txt)")
    return {p.stem: from_kitti(read_text(p), calib, p.name) for p in sorted(folder.glob("*.txt"))}


# --------------------------------------------------------------------- nuScenes-style


def yaw_quaternion(yaw: float) -> list[float]:
    """``[w, x, y, z]`` of a rotation by ``yaw`` about +z."""
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def quaternion_yaw(quaternion) -> float:
    """The yaw of a ``[w, x, y, z]`` quaternion that rotates about z only (normalised first)."""
    q = np.asarray(quaternion, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) == 0:
        raise DataFormatError(f"a rotation must be a non-zero quaternion [w, x, y, z], got {quaternion!r}")
    w, x, y, z = q / np.linalg.norm(q)
    if abs(x) > FLAT or abs(y) > FLAT:
        raise DataFormatError(
            f"the quaternion {list(q)} tilts the box (x or y part non-zero); cuboids here rotate about z only"
        )
    return wrap_angle(2 * math.atan2(z, w))


def to_nuscenes(frames: dict[str, list[Cuboid]]) -> dict:
    """``{"frames": {frame: [box, ...]}}`` with nuScenes' translation / size (w, l, h) / rotation."""

    def record(box: Cuboid) -> dict:
        out = {
            "translation": list(box.center),
            "size": [box.size[1], box.size[0], box.size[2]],
            "rotation": yaw_quaternion(box.yaw),
            "category_name": box.label,
        }
        if box.score is not None:
            out["detection_score"] = box.score
        return out

    return {"frames": {str(frame): [record(b) for b in boxes] for frame, boxes in frames.items()}}


def from_nuscenes(data: dict) -> dict[str, list[Cuboid]]:
    """The inverse of :func:`to_nuscenes`."""
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise DataFormatError("a nuScenes-style file is an object with a 'frames' object of box lists")
    out = {}
    for frame, boxes in data["frames"].items():
        where = f"frame {str(frame)[:80]!r}"
        try:
            out[frame] = [
                Cuboid(
                    b["translation"],
                    (b["size"][1], b["size"][0], b["size"][2]),
                    quaternion_yaw(b["rotation"]),
                    imported_label(b["category_name"], where),
                    imported_score(b.get("detection_score"), where),
                )
                for b in boxes
            ]
        except (KeyError, IndexError, TypeError, ValueError, OverflowError, AttributeError) as err:
            if isinstance(err, DataFormatError):
                raise
            raise DataFormatError(
                f"{where}: a box needs translation, size, rotation and category_name ({_brief(err)})"
            ) from None
    return out


# --------------------------------------------------------------------- Datumaro


def to_datumaro(frames: dict[str, list[Cuboid]]) -> dict:
    """A Datumaro dataset (``default.json`` layout) with one item per frame, ``cuboid_3d`` annotations."""
    labels = sorted({b.label for boxes in frames.values() for b in boxes})
    index = {name: k for k, name in enumerate(labels)}
    items = []
    for frame, boxes in frames.items():
        annotations = [
            {
                "id": k,
                "type": "cuboid_3d",
                "attributes": _attributes(b),
                "group": 0,
                "label_id": index[b.label],
                "position": list(b.center),
                "rotation": [0.0, 0.0, b.yaw],
                "scale": list(b.size),
            }
            for k, b in enumerate(boxes)
        ]
        items.append({"id": str(frame), "annotations": annotations, "point_cloud": {"path": ""}})
    categories = {
        "label": {"labels": [{"name": n, "parent": "", "attributes": []} for n in labels], "attributes": []}
    }
    return {"info": {}, "categories": categories, "items": items}


def _attributes(box: Cuboid) -> dict:
    return {"score": box.score} if box.score is not None else {}


def from_datumaro(data: dict) -> dict[str, list[Cuboid]]:
    """The inverse of :func:`to_datumaro`; non-``cuboid_3d`` annotations are ignored."""
    try:
        labels = [entry["name"] for entry in data["categories"]["label"]["labels"]]
        out = {}
        for item in data["items"]:
            out[str(item["id"])] = [
                _datumaro_box(a, labels) for a in item.get("annotations", []) if a.get("type") == "cuboid_3d"
            ]
        return out
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, AttributeError) as err:
        if isinstance(err, DataFormatError):
            raise
        raise DataFormatError(f"not a Datumaro dataset with cuboid_3d annotations ({_brief(err)})") from None


def _datumaro_box(annotation: dict, labels: list[str]) -> Cuboid:
    rx, ry, rz = (float(angle) for angle in annotation["rotation"])
    if not (abs(rx) <= FLAT and abs(ry) <= FLAT):  # NaN is refused too
        raise DataFormatError(
            f"a cuboid_3d rotated about x or y ({rx}, {ry}); cuboids here rotate about z only"
        )
    label_id = annotation["label_id"]
    if isinstance(label_id, bool) or not isinstance(label_id, int) or not 0 <= label_id < len(labels):
        raise DataFormatError(
            f"a cuboid_3d's label_id must index the {len(labels)} labels, got {str(label_id)[:40]!r}"
        )
    return Cuboid(
        annotation["position"],
        annotation["scale"],
        wrap_angle(rz),
        imported_label(labels[label_id], "a Datumaro label"),
        imported_score((annotation.get("attributes") or {}).get("score"), "a cuboid_3d"),
    )


def imported_label(label, where: str) -> str:
    """A class label read from a file: non-empty text without control characters."""
    if not isinstance(label, str) or not label.strip() or not label.isprintable() or len(label) > 64:
        raise DataFormatError(
            f"{where}: a label must be 1 to 64 printable characters, got {str(label)[:40]!r}"
        )
    return label


def imported_score(score, where: str) -> float | None:
    """A detection score read from a file: None or a finite number."""
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise DataFormatError(f"{where}: a score must be a finite number, got {str(score)[:40]!r}")
    return float(score)


def _brief(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err)[:120]}"


def write_json(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def read_json(path: str | Path) -> dict:
    """A nuScenes-style or Datumaro JSON file: a JSON object, with one clear error otherwise."""
    return expect_object(read_json_file(path), str(path))


# --------------------------------------------------------------------- downloads

EXPORT_FORMATS = ("kitti", "nuscenes", "datumaro")


def export_file(
    frames: dict[str, list[Cuboid]], fmt: str, dataset: str = "cuboids", calib: Calibration | None = None
) -> tuple[str, bytes, str]:
    """``(file name, contents, MIME type)`` of ``frames`` in one download: ``kitti`` is a zip with
    ``label_2/<frame>.txt`` per frame; ``nuscenes`` and ``datumaro`` are one JSON file each."""
    import io
    import re
    import zipfile

    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", dataset).strip("._") or "cuboids"
    if fmt == "kitti":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for frame, boxes in frames.items():
                archive.writestr(f"label_2/{frame}.txt", to_kitti(boxes, calib))
        return f"{stem}-kitti-label_2.zip", buffer.getvalue(), "application/zip"
    if fmt == "nuscenes":
        return f"{stem}-nuscenes.json", json.dumps(to_nuscenes(frames), indent=2).encode(), "application/json"
    if fmt == "datumaro":
        return f"{stem}-datumaro.json", json.dumps(to_datumaro(frames), indent=2).encode(), "application/json"
    raise DataFormatError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
