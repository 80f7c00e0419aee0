"""Learned pre-labels for the annotation viewer, and how uncertain a frame is.

**Pre-labels.** A pointcloud run with a learned detector saves ``detector.safetensors`` in its run
folder (:func:`detector_files` finds them, newest first). Its boxes at or above a confidence
(``DetectorConfig.prelabel_score``, 0.3) are offered to the annotator as pending proposals beside the
geometric ones, tagged ``learned`` (:func:`learned_prelabels`).

**Uncertainty of a frame**, so that annotators see the frames a detector is least sure of first
(uncertainty sampling for LiDAR detection; the ensemble term after Feng et al., "Deep Active
Learning for Efficient Training of a LiDAR 3D Object Detector", IV 2019). For one frame, with the
learned boxes ``L`` (confidence ``s_i >= min_score``), ``L' = {i in L : s_i >= prelabel_score}``
and the geometric proposals ``G`` of the detector's classes (car, pedestrian):

    c = mean_{i in L} (1 - |2 s_i - 1|)                  (0 when L is empty)
    d = (|L' \\ G| + |G \\ L'|) / max(1, |L'| + |G|)
    e = mean_{j < k} (|L'_j \\ L'_k| + |L'_k \\ L'_j|) / max(1, |L'_j| + |L'_k|)   (m >= 2 detectors)
    U = mean(c, d[, e])                                    in [0, 1]

where ``A \\ B`` counts the boxes of ``A`` with no box of ``B`` of the same class at bird's-eye
IoU >= ``iou`` (0.3). ``c`` is largest for boxes near s = 0.5 (a box at 0 or 1 is certain);
``d`` is the share of boxes that the detector and the geometry do not both see; ``e`` is the same
between ensemble members, ``L_1`` being the first (the chosen) detector's. The formula is ours: the
paper ranks frames by the ensemble's entropy; with no ensemble, geometry is the second opinion.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np

from playground.core.progress import Progress, report
from playground.core.runs import run_roots
from playground.errors import PlaygroundError
from playground.pointcloud.cuboid import Cuboid, iou_matrix
from playground.pointcloud.detector import CLASSES, PillarNet
from playground.pointcloud.learned import detect
from playground.pointcloud.proposals import propose
from playground.pointcloud.viewer import with_source

DETECTOR_FILE = "detector.safetensors"
FLOOR_SCORE = 0.05  # detections kept below any slider value, so a proposal's index stays put
MATCH_IOU = 0.3


@dataclasses.dataclass(frozen=True)
class FrameCloud:
    """What a detector reads: ``points`` (N, 3) and ``intensity`` (N,) or None."""

    points: np.ndarray
    intensity: np.ndarray | None = None


def detector_files(root: str | Path | None = None) -> list[Path]:
    """The ``detector.safetensors`` of every run under the runs root (and the reference runs),
    newest first."""
    found = [p for base in run_roots(root) if base.is_dir() for p in base.glob(f"*/{DETECTOR_FILE}")]
    return sorted(found, key=lambda p: (p.stat().st_mtime, str(p)), reverse=True)


def learned_prelabels(model: PillarNet, cloud, min_score: float = FLOOR_SCORE) -> list[Cuboid]:
    """The detector's boxes on ``cloud`` (anything with ``points`` and ``intensity``), confidence
    as ``score``, tagged ``source = "learned"``."""
    return with_source(detect(model, cloud, min_score), "learned")


def intensity_note(model: PillarNet, intensity: np.ndarray | None) -> str:
    """A warning when the detector reads intensity but the frame has none ("" otherwise)."""
    if "intensity" in model.layout and intensity is None:
        return (
            "This frame has no intensity, but the detector was trained with it: it sees zeros there, "
            "so its boxes may be weaker than usual."
        )
    return ""


# --------------------------------------------------------------------- uncertainty


@dataclasses.dataclass(frozen=True)
class FrameUncertainty:
    """``score`` U and its terms (see the module docstring), with the box counts behind them."""

    score: float
    confidence: float
    disagreement: float
    ensemble: float | None
    learned: int  # |L'|: learned boxes at or above prelabel_score
    geometric: int  # |G|
    unmatched: int  # |L' \ G| + |G \ L'|
    by_class: tuple[int, ...] = ()  # |L'| per class of CLASSES
    bev: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)  # see bev_image


def unmatched(a: list[Cuboid], b: list[Cuboid], iou: float = MATCH_IOU) -> int:
    """How many boxes of ``a`` have no box of ``b`` with the same label at bird's-eye IoU >= ``iou``."""
    if not a or not b:
        return len(a)
    overlap = iou_matrix(a, b, "bev")
    same = np.array([[x.label == y.label for y in b] for x in a])
    return int((~((overlap >= iou) & same).any(axis=1)).sum())


def disagreement(a: list[Cuboid], b: list[Cuboid], iou: float = MATCH_IOU) -> float:
    """``(|a \\ b| + |b \\ a|) / max(1, |a| + |b|)``: 0 when every box has a partner, 1 when none has."""
    return (unmatched(a, b, iou) + unmatched(b, a, iou)) / max(1, len(a) + len(b))


def confidence_term(learned: list[Cuboid], min_score: float) -> float:
    """``mean (1 - |2 s - 1|)`` over the boxes with ``s >= min_score`` (0 when there are none)."""
    scores = [b.score for b in learned if b.score is not None and b.score >= min_score]
    return float(np.mean([1 - abs(2 * s - 1) for s in scores])) if scores else 0.0


def frame_uncertainty(
    learned: list[Cuboid],
    geometric: list[Cuboid],
    members: list[list[Cuboid]] = (),
    min_score: float = 0.1,
    prelabel_score: float = 0.3,
    iou: float = MATCH_IOU,
) -> FrameUncertainty:
    """U for one frame from the chosen detector's boxes ``learned``, the geometric proposals and,
    optionally, the other ensemble members' boxes (``members``, one list per detector)."""
    confident = [b for b in learned if (b.score or 0.0) >= prelabel_score]
    geometry = [b for b in geometric if b.label in CLASSES]
    c, d = confidence_term(learned, min_score), disagreement(confident, geometry, iou)
    ensemble = None
    if members:
        sets = [confident, *([b for b in m if (b.score or 0.0) >= prelabel_score] for m in members)]
        ensemble = float(np.mean([disagreement(x, y, iou) for x, y in itertools.combinations(sets, 2)]))
    terms = [c, d] if ensemble is None else [c, d, ensemble]
    missing = unmatched(confident, geometry, iou) + unmatched(geometry, confident, iou)
    by_class = tuple(sum(b.label == name for b in confident) for name in CLASSES)
    return FrameUncertainty(
        float(np.mean(terms)), c, d, ensemble, len(confident), len(geometry), missing, by_class
    )


def bev_image(points: np.ndarray, size: int = 32, extent: float = 32.0) -> np.ndarray:
    """A (size, size) uint8 bird's-eye occupancy picture of the frame (255 where any point falls
    within ``extent`` metres), row 0 at +y: what the annotation queue stores as the frame's image."""
    points = np.asarray(points, dtype=np.float64)
    image = np.zeros((size, size), np.uint8)
    cells = np.floor((points[:, :2] + extent) / (2 * extent) * size).astype(np.int64)
    inside = ((cells >= 0) & (cells < size)).all(axis=1)
    image[size - 1 - cells[inside, 1], cells[inside, 0]] = 255
    return image


def score_cloud(models: list[PillarNet], cloud, min_score: float = 0.1, prelabel_score: float = 0.3):
    """U of one frame: the geometric proposals (none when the frame has too few points for them)
    against the first detector, the others as ensemble members."""
    try:
        geometric = propose(cloud.points)
    except PlaygroundError:
        geometric = []
    boxes = [detect(model, cloud, min_score) for model in models]
    found = frame_uncertainty(boxes[0], geometric, boxes[1:], min_score, prelabel_score)
    return dataclasses.replace(found, bev=bev_image(cloud.points))


def score_frames(
    clouds: dict[str, object],
    models: list[PillarNet],
    min_score: float = 0.1,
    prelabel_score: float = 0.3,
    progress: Progress = None,
) -> tuple[dict[str, FrameUncertainty], dict[str, str]]:
    """U of every frame of ``clouds`` (frame name -> cloud, or a callable returning one, so that a
    folder is read one frame at a time), reported as progress stage ``score frames``; and why the
    frames that could not be read were skipped (name -> message)."""
    if not models:
        raise PlaygroundError("scoring frames needs at least one detector")
    scores, skipped = {}, {}
    for step, (name, cloud) in enumerate(clouds.items()):
        report(progress, "score frames", step, len(clouds))
        try:
            scores[name] = score_cloud(
                models, cloud() if callable(cloud) else cloud, min_score, prelabel_score
            )
        except PlaygroundError as err:
            skipped[name] = str(err)
    report(progress, "score frames", len(clouds), len(clouds))
    return scores, skipped
