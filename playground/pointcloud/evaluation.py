"""Scoring cuboid proposals against ground truth: one-to-one greedy matching at an IoU threshold.

Pairs of the same label are matched greedily, highest IoU first, each box at most once, when
their IoU (bird's-eye or 3D) is at least ``threshold``. Ground-truth boxes with fewer than
``min_points`` LiDAR returns are *ignored*, as KITTI's DontCare regions are: nobody can find
them, so they count neither as misses nor, when a proposal matches one, as false positives.

- recall = matched evaluated ground truth / evaluated ground truth;
- precision = matched proposals / (proposals of the evaluated classes - those matching ignored boxes).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from playground.pointcloud.cuboid import Cuboid, iou_matrix


@dataclasses.dataclass
class Matching:
    """Counts for one frame and one label (add them up over frames with ``+``)."""

    ground_truth: int = 0
    proposals: int = 0
    matched: int = 0
    ignored_proposals: int = 0
    iou_sum: float = 0.0

    def __add__(self, other: Matching) -> Matching:
        return Matching(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    @property
    def recall(self) -> float:
        return self.matched / self.ground_truth if self.ground_truth else float("nan")

    @property
    def precision(self) -> float:
        counted = self.proposals - self.ignored_proposals
        return self.matched / counted if counted else float("nan")

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.matched if self.matched else float("nan")


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """One-to-one ``(row, column, iou)`` pairs, highest IoU first, each at least ``threshold``."""
    pairs = []
    if iou.size:
        rows, cols = np.nonzero(iou >= threshold)
        used_r, used_c = set(), set()
        for k in np.argsort(-iou[rows, cols], kind="stable"):
            r, c = int(rows[k]), int(cols[k])
            if r not in used_r and c not in used_c:
                used_r.add(r)
                used_c.add(c)
                pairs.append((r, c, float(iou[r, c])))
    return pairs


def match_label(
    truth: list[Cuboid],
    proposals: list[Cuboid],
    threshold: float = 0.5,
    kind: str = "bev",
    min_points: int = 0,
) -> Matching:
    """Match one label's boxes; ``truth`` boxes below ``min_points`` (``attributes["num_points"]``)
    are ignored.
    """
    counted = [t for t in truth if t.attributes.get("num_points", min_points) >= min_points]
    ignored = [t for t in truth if t.attributes.get("num_points", min_points) < min_points]
    pairs = greedy_match(iou_matrix(counted, proposals, kind), threshold)
    free = [p for k, p in enumerate(proposals) if k not in {c for _, c, _ in pairs}]
    on_ignored = len(greedy_match(iou_matrix(ignored, free, kind), threshold))
    return Matching(len(counted), len(proposals), len(pairs), on_ignored, sum(i for _, _, i in pairs))


def match_frame(
    truth: list[Cuboid],
    proposals: list[Cuboid],
    labels: tuple[str, ...] = ("car", "pedestrian"),
    threshold: float = 0.5,
    kind: str = "bev",
    min_points: int = 0,
) -> dict[str, Matching]:
    """Label -> :class:`Matching` for one frame (a proposal must carry the ground truth's label)."""
    return {
        label: match_label(
            [t for t in truth if t.label == label],
            [p for p in proposals if p.label == label],
            threshold,
            kind,
            min_points,
        )
        for label in labels
    }


# --------------------------------------------------------------------- the annotators' edits

EDIT_KINDS = ("accepted", "adjusted", "added", "deleted")
GOOD_ENOUGH = {"car": 0.7, "pedestrian": 0.5}  # KITTI's 3D IoU for a correct box of each class


def annotator_edits(
    truth: list[Cuboid],
    start: list[Cuboid],
    labels: tuple[str, ...] = ("car", "pedestrian"),
    min_points: int = 0,
) -> dict[str, int]:
    """The edits that turn the pre-labels ``start`` into ``truth`` for one frame.

    Per label, pre-labels and ground truth are paired one to one (greedy, bird's-eye IoU >= 0.1). A pair
    at 3D IoU >= :data:`GOOD_ENOUGH` is **accepted** unchanged, a looser pair is **adjusted**; a ground
    truth with no pair is **added** and a pre-label with no pair **deleted**. Ground truth under
    ``min_points`` returns is not asked for: a pre-label on it is accepted or adjusted as any other,
    and nothing is added for it.
    """
    counts = dict.fromkeys(EDIT_KINDS, 0)
    for label in labels:
        wanted = [t for t in truth if t.label == label]
        given = [p for p in start if p.label == label]
        pairs = greedy_match(iou_matrix(wanted, given, "bev"), 0.1)
        good = GOOD_ENOUGH.get(label, 0.5)
        for row, col, _ in pairs:
            exact = iou_matrix([wanted[row]], [given[col]], "3d")[0, 0] >= good
            counts["accepted" if exact else "adjusted"] += 1
        paired_truth = {row for row, _, _ in pairs}
        counts["added"] += sum(
            1
            for k, t in enumerate(wanted)
            if k not in paired_truth and t.attributes.get("num_points", min_points) >= min_points
        )
        counts["deleted"] += len(given) - len(pairs)
    return counts
