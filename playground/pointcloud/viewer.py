"""What the 3D cuboid viewer and the library exchange, with no Streamlit in it.

The viewer (``apps/components/cuboid_viewer``) is a three.js component. Between it and the page:

- **points** travel as one binary buffer per frame (:func:`points_buffer`): little-endian float32
  ``x, y, z, intensity`` per point, 16 bytes a point, which the browser reads as a
  ``Float32Array`` without parsing anything;
- **boxes** travel as small JSON records (:func:`box_records`): ``id``, ``center``, ``size``,
  ``yaw``, ``label`` (and a proposal's ``score`` and ``source``: ``geometric``, ``learned`` or
  ``interpolated``, from the box's ``attributes["source"]``);
- on **commit** the viewer sends the frame's whole box list with a fresh request id and the
  revision it started from; :func:`commit_from_viewer` checks it (:func:`parse_commit`) and stores
  it through :meth:`CuboidAnnotations.commit`, which makes a replayed request id harmless, and
  answers with a record the viewer shows (``ok``, ``message``, ``revision``).

Also here: which proposals are still worth showing once boxes are committed
(:func:`pending_proposals`), the names of synthetic frames and the frames in a folder.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np

from playground.errors import DataFormatError, DataNotFoundError, PlaygroundError
from playground.pointcloud.cuboid import Cuboid, bev_iou
from playground.pointcloud.io import FORMATS
from playground.pointcloud.proposals import DEFAULT_SIZES
from playground.pointcloud.scenes import SceneSpec

POINT_DTYPE = np.dtype("<f4")
FLOATS_PER_POINT = 4  # x, y, z, intensity
MAX_COMMIT_BOXES = 2000


def points_buffer(points: np.ndarray, intensity: np.ndarray | None = None) -> bytes:
    """``points`` (N, 3) and ``intensity`` (N,) (zeros when None) as the viewer's binary buffer."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise DataFormatError(f"points must be (N, 3), got shape {points.shape}")
    values = np.empty((len(points), FLOATS_PER_POINT), dtype=POINT_DTYPE)
    values[:, :3] = points
    values[:, 3] = 0.0 if intensity is None else np.asarray(intensity).reshape(-1)
    return values.tobytes()


def read_points_buffer(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`points_buffer`: ``(points (N, 3), intensity (N,))`` float32."""
    if len(data) % (FLOATS_PER_POINT * POINT_DTYPE.itemsize):
        raise DataFormatError(
            f"a point buffer holds 16 bytes per point; {len(data)} bytes is not a whole number"
        )
    values = np.frombuffer(data, dtype=POINT_DTYPE).reshape(-1, FLOATS_PER_POINT)
    return values[:, :3].astype(np.float32), values[:, 3].astype(np.float32)


def box_records(boxes: list[Cuboid], prefix: str = "b") -> list[dict]:
    """JSON records for the viewer, with ids ``<prefix><index>``."""
    records = []
    for index, box in enumerate(boxes):
        record = {
            "id": f"{prefix}{index}",
            "center": list(box.center),
            "size": list(box.size),
            "yaw": box.yaw,
            "label": box.label,
        }
        if box.score is not None:
            record["score"] = box.score
        if box.attributes.get("source"):
            record["source"] = str(box.attributes["source"])
        records.append(record)
    return records


def pending_proposals(
    proposals: list[Cuboid], committed: list[Cuboid], threshold: float = 0.3, sensor_xy=(0.0, 0.0)
) -> list[tuple[int, Cuboid]]:
    """``(index, proposal)`` for the proposals no committed box already covers (bird's-eye IoU below
    ``threshold`` with every one), nearest to the sensor first. The index into ``proposals`` keeps a
    proposal's id stable while others are accepted."""
    open_ = [(k, p) for k, p in enumerate(proposals) if all(bev_iou(p, box) < threshold for box in committed)]
    return sorted(
        open_, key=lambda kp: math.hypot(kp[1].center[0] - sensor_xy[0], kp[1].center[1] - sensor_xy[1])
    )


PROPOSAL_PREFIXES = {"learned": "l", "interpolated": "i"}  # any other source: "p"


def proposal_records(pending: list[tuple[int, Cuboid]]) -> list[dict]:
    """JSON records for :func:`pending_proposals`' output, with the stable ids ``<prefix><index>``:
    ``p`` for a geometric proposal, ``l`` for a learned one, ``i`` for an interpolated one, so that
    proposals from several sources on one frame never share an id."""
    return [
        {**box_records([box])[0], "id": f"{PROPOSAL_PREFIXES.get(box.attributes.get('source'), 'p')}{index}"}
        for index, box in pending
    ]


def with_source(boxes: list[Cuboid], source: str) -> list[Cuboid]:
    """``boxes`` with ``attributes["source"] = source`` (how the viewer tells proposals apart)."""
    return [b.with_(attributes={**b.attributes, "source": source}) for b in boxes]


def viewer_labels(boxes: list[Cuboid] = ()) -> list[str]:
    """The classes the viewer offers: the default ones, then any other label already in use."""
    extra = sorted({b.label for b in boxes} - set(DEFAULT_SIZES))
    return [*DEFAULT_SIZES, *extra]


# --------------------------------------------------------------------- frames


@dataclasses.dataclass(frozen=True)
class FrameRef:
    """Where a frame's annotations live: ``dataset`` and ``frame`` in :class:`CuboidAnnotations`."""

    dataset: str
    frame: str

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.frame}"


def synthetic_frame_name(spec: SceneSpec) -> str:
    """The frame name of a synthetic scene: it changes whenever the scene would."""
    return (
        f"seed{spec.seed}-n{spec.target_points}-cars{spec.cars}-peds{spec.pedestrians}"
        f"-poles{spec.poles}-walls{spec.walls}"
    )


def list_frames(folder: str | Path) -> list[Path]:
    """The point-cloud files (``FORMATS``) directly in ``folder``, sorted by name."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder} is not a folder")
    frames = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
    if not frames:
        raise DataNotFoundError(f"{folder} holds no point-cloud files ({', '.join(FORMATS)})")
    return frames


def frame_name(path: str | Path) -> str:
    """A file's frame name: its stem (``000123.bin`` -> ``000123``), safe as a KITTI label file name."""
    stem = Path(path).stem.strip() or "frame"
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem)[:256]


# --------------------------------------------------------------------- commits


@dataclasses.dataclass(frozen=True)
class CommitRequest:
    """A commit as the viewer sent it."""

    request_id: str
    frame_key: str
    base_revision: int | None
    boxes: list[Cuboid]


def parse_commit(value) -> CommitRequest:
    """Check a commit message from the viewer; a :class:`DataFormatError` says what is wrong."""
    if not isinstance(value, dict) or value.get("type") != "commit":
        raise DataFormatError("not a commit message from the viewer")
    request_id, frame_key = str(value.get("request_id") or "").strip(), str(value.get("frame_key") or "")
    if not request_id:
        raise DataFormatError("a commit needs a request id")
    records = value.get("boxes")
    if not isinstance(records, list) or len(records) > MAX_COMMIT_BOXES:
        raise DataFormatError(f"a commit carries a list of at most {MAX_COMMIT_BOXES} boxes")
    boxes = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataFormatError(f"box {number} is not a record")
        try:
            boxes.append(
                Cuboid.from_dict({k: record[k] for k in ("center", "size", "yaw", "label") if k in record})
            )
        except DataFormatError as err:
            raise DataFormatError(f"box {number}: {err}") from None
    base = value.get("base_revision")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 0):
        raise DataFormatError(f"a commit's base revision is a revision id (0 or more), got {base!r}")
    return CommitRequest(request_id, frame_key, base, boxes)


def commit_from_viewer(annotations, ref: FrameRef, annotator: str, value) -> dict:
    """Store the viewer's commit for frame ``ref`` as ``annotator``; the answer the viewer shows:
    ``{"request_id", "ok", "message", "revision"}``. Never raises for a user-facing problem."""
    request_id = str(value.get("request_id", "")) if isinstance(value, dict) else ""
    answer = {"request_id": request_id, "ok": False, "revision": None}
    if not str(annotator or "").strip():
        return {
            **answer,
            "message": "Type your name above the viewer before committing; your boxes stay in the viewer.",
        }
    try:
        request = parse_commit(value)
        if request.frame_key != ref.key:
            return {
                **answer,
                "message": f"The viewer showed frame {request.frame_key!r}, not {ref.key!r}; commit again.",
            }
        revision = annotations.commit(
            ref.dataset,
            ref.frame,
            request.boxes,
            annotator,
            request.request_id,
            base_revision=request.base_revision,
        )
    except PlaygroundError as err:
        return {**answer, "message": f"Not committed: {err}"}
    return {
        **answer,
        "ok": True,
        "revision": revision.id,
        "message": f"Committed revision {revision.id}: {len(revision.cuboids)} boxes by {revision.annotator}",
    }
