"""Uncertain frames first: a folder's frames in the store's annotation queue, by uncertainty.

One queue per folder dataset, ``pointcloud/<dataset>``, in the same database as the cuboid
annotations (:class:`~playground.store.Store`'s queue API, so leases, the audit trail and
accounts work as for the 2D flow). Each frame is one item: external id the frame name, priority
its uncertainty U (:func:`~playground.pointcloud.prelabels.frame_uncertainty`), image its
bird's-eye occupancy picture, "class probabilities" the share of car and pedestrian boxes the
detector saw, and U's terms in ``meta``.

- :func:`enqueue_frames` is idempotent: the store keeps one item per ``(queue, frame)``, so a replayed
  or concurrent call adds nothing twice; re-scoring moves the priority of the frames still open and
  leaves the committed ones as they are.
- :func:`next_frame` leases the most uncertain open frame to one annotator, so two annotators
  asking at once get two frames.
- :func:`mark_committed` closes a frame's item when its boxes are committed: a ``correct``
  decision with the frame's most common committed class, or ``ood`` when it holds neither class.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.detector import CLASSES
from playground.pointcloud.prelabels import FrameUncertainty
from playground.store import QueueItem, Store

PREFIX = "pointcloud/"
LEASE_SECONDS = 900.0


def queue_name(dataset: str) -> str:
    """The queue of a folder dataset's frames."""
    return f"{PREFIX}{dataset}"


def is_frame_queue(queue: str) -> bool:
    """Whether ``queue`` holds point-cloud frames (the 2D Annotate page leaves these out)."""
    return queue.startswith(PREFIX)


@dataclasses.dataclass(frozen=True)
class QueuedFrame:
    """One frame in its queue: name, uncertainty, ``open`` / ``leased`` / ``done``, and by whom."""

    frame: str
    uncertainty: float
    status: str
    leased_by: str | None = None


def _item(frame: str, found: FrameUncertainty, meta: dict) -> QueueItem:
    counts = np.array(found.by_class or (0,) * len(CLASSES), dtype=np.float64)
    probs = counts / counts.sum() if counts.sum() else np.full(len(CLASSES), 1 / len(CLASSES))
    terms = {"confidence": found.confidence, "disagreement": found.disagreement, "ensemble": found.ensemble}
    image = found.bev if found.bev is not None else np.zeros((1, 1), np.uint8)
    return QueueItem(
        external_id=frame,
        image=image,
        probs=probs.tolist(),
        uncertainty=found.score,
        disagreement=found.disagreement,
        class_names=list(CLASSES),
        meta={**terms, "learned": found.learned, "geometric": found.geometric, **meta},
    )


def enqueue_frames(
    store: Store,
    dataset: str,
    scores: dict[str, FrameUncertainty],
    meta: dict[str, dict] | None = None,
    model: str = "",
) -> tuple[int, int]:
    """Put ``scores``' frames into the dataset's queue; ``(frames added, open frames re-prioritised)``."""
    if not scores:
        return 0, 0
    queue = queue_name(dataset)
    items = [_item(frame, found, (meta or {}).get(frame, {})) for frame, found in scores.items()]
    added = store.enqueue(queue, items, model=model)
    moved = store.reprioritise(queue, {frame: found.score for frame, found in scores.items()})
    return added, moved


def queued_frames(store: Store, dataset: str) -> list[QueuedFrame]:
    """The dataset's frames in its queue, most uncertain first (empty when it has no queue yet)."""
    queue = queue_name(dataset)
    if queue not in store.queues():
        return []
    return [
        QueuedFrame(row["external_id"], row["priority"], row["status"], row["leased_by"])
        for row in store.queue_items(queue)
        if row["reason"] != "review"
    ]


def next_frame(
    store: Store, dataset: str, annotator: str, lease_seconds: float = LEASE_SECONDS
) -> str | None:
    """Lease the most uncertain open frame to ``annotator`` (the one they hold, if any); its name,
    or None when every frame is done or held by someone else."""
    queue = queue_name(dataset)
    if queue not in store.queues():
        return None
    item = store.lease_next(queue, annotator, lease_seconds)
    return None if item is None else item.external_id


def mark_committed(
    store: Store, dataset: str, frame: str, boxes: list[Cuboid], annotator: str, request_id: str
) -> bool:
    """Close ``frame``'s queue item after a commit of ``boxes`` by ``annotator`` (idempotent on
    ``request_id``); False when the frame is not queued or its item is already done. A frame
    leased to someone else raises :class:`~playground.errors.ConflictError`."""
    queue = queue_name(dataset)
    if queue not in store.queues():
        return False
    rows = [r for r in store.queue_items(queue) if r["external_id"] == frame and r["status"] != "done"]
    if not rows:
        return False
    counts = Counter(b.label for b in boxes if b.label in CLASSES)
    request = f"{request_id}/queue"
    if not counts:
        store.submit(request, rows[0]["escalation_id"], annotator, "ood")
        return True
    label = CLASSES.index(max(CLASSES, key=lambda name: (counts[name], -CLASSES.index(name))))
    store.submit(request, rows[0]["escalation_id"], annotator, "correct", label)
    return True
