"""The annotators' decisions flow back into training: the queue's accepted and corrected items,
with the images the store kept, as an :class:`~playground.data.ImageDataset` to add to the
labelled set of the next round. Items flagged as OOD or skipped are left out; an undone
decision no longer counts."""

from __future__ import annotations

import numpy as np
import torch

from playground.data import ImageDataset
from playground.errors import DataNotFoundError

TRAINABLE = ("accept", "correct")


def _as_chw(image: np.ndarray) -> torch.Tensor:
    array = np.asarray(image)
    tensor = torch.from_numpy(array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0))
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def annotated_dataset(store, queue: str) -> ImageDataset:
    """The labels people gave in ``queue`` (accept: the model's label; correct: theirs)."""
    effective = {
        row["external_id"]: row["label"] for row in store.labels(queue) if row["action"] in TRAINABLE
    }
    if not effective:
        raise DataNotFoundError(f"queue {queue!r} has no accepted or corrected items yet")
    escalation_of = {
        d.external_id: d.escalation_id
        for d in store.history(queue, limit=10 * len(store.labels(queue)) + 100)
    }
    images = torch.stack([_as_chw(store.item(escalation_of[external_id]).image) for external_id in effective])
    labels = torch.tensor(list(effective.values()), dtype=torch.long)
    return ImageDataset(images, labels, store.class_names(queue), name=f"queue/{queue}", source="annotators")
