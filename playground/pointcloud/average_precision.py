"""Average precision of scored 3D boxes, as the KITTI object benchmark computes it.

Per class and IoU threshold, over every frame: the boxes of all frames are taken in order of
decreasing ``score``; each claims the still unclaimed ground-truth box of its frame with the highest
IoU (bird's-eye or 3D) if that IoU is at least the threshold (a true positive), else it is a false
positive. A box that claims an *ignored* ground truth (fewer than ``min_points`` returns, KITTI's
DontCare) counts as neither. With ``P(r)`` the precision at recall ``r``, the interpolated precision
is ``P_interp(r) = max_{r' >= r} P(r')`` and

    AP|R40 = (1 / 40) * sum_{r in {1/40, 2/40, ..., 1}} P_interp(r)

(Simonelli et al., "Disentangling Monocular 3D Object Detection", ICCV 2019, which KITTI adopted in
place of the 11-point rule that rewarded a single detection at recall 0). Boxes without a score
rank as score 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from playground.pointcloud.cuboid import Cuboid, iou_matrix

RECALL_POINTS = np.linspace(1 / 40, 1.0, 40)


def frame_outcomes(
    truth: Sequence[Cuboid], boxes: Sequence[Cuboid], threshold: float, kind: str = "bev", min_points: int = 0
) -> tuple[list[tuple[float, int]], int]:
    """``[(score, outcome)]`` for one frame's boxes of one class (1 true positive, 0 false positive;
    boxes on ignored ground truth left out) and the number of ground-truth boxes that count."""
    counts = [t.attributes.get("num_points", min_points) >= min_points for t in truth]
    iou = iou_matrix(truth, boxes, kind) if truth and boxes else np.zeros((len(truth), len(boxes)))
    claimed, outcomes = set(), []
    for column in sorted(range(len(boxes)), key=lambda k: -(boxes[k].score or 0.0)):
        candidates = [(iou[row, column], row) for row in range(len(truth)) if row not in claimed]
        best, row = max(candidates, default=(0.0, -1))
        score = float(boxes[column].score or 0.0)
        if best >= threshold:
            claimed.add(row)
            if counts[row]:
                outcomes.append((score, 1))
        else:
            outcomes.append((score, 0))
    return outcomes, sum(counts)


def average_precision(outcomes: Sequence[tuple[float, int]], ground_truth: int) -> float:
    """AP|R40 from every frame's ``(score, outcome)`` pairs; NaN without ground truth."""
    if ground_truth == 0:
        return float("nan")
    if not outcomes:
        return 0.0
    ordered = sorted(outcomes, key=lambda pair: -pair[0])
    hits = np.cumsum([outcome for _, outcome in ordered])
    precision = hits / np.arange(1, len(ordered) + 1)
    recall = hits / ground_truth
    interpolated = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= r
    reached = np.searchsorted(recall, RECALL_POINTS - 1e-9, side="left")  # first index with recall >= r
    values = [interpolated[i] if i < len(ordered) else 0.0 for i in reached]
    return float(np.mean(values))


def class_ap(
    frames: Sequence[tuple[Sequence[Cuboid], Sequence[Cuboid]]],
    label: str,
    threshold: float,
    kind: str = "bev",
    min_points: int = 0,
) -> float:
    """AP|R40 of ``label`` over ``frames`` given as ``(ground truth, boxes)`` pairs."""
    outcomes, total = [], 0
    for truth, boxes in frames:
        mine = frame_outcomes(
            [t for t in truth if t.label == label],
            [b for b in boxes if b.label == label],
            threshold,
            kind,
            min_points,
        )
        outcomes += mine[0]
        total += mine[1]
    return average_precision(outcomes, total)
