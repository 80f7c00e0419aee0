"""The annotation store's records: what goes in (:class:`QueueItem`, checked and turned into column
values by :func:`prepare_item`; an image as its raw pixels, dtype and shape) and what comes out
(:class:`Item` as an annotator sees it, :class:`Decision`). The tables are in
:mod:`playground.store_schema`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from playground.core.files import json_object_text
from playground.errors import ConflictError, DataFormatError, StoreError
from playground.store_checks import as_real, class_list, clean_name, shown

REASONS = ("uncertain", "ood", "seed", "calibration", "review")  # see playground.label.rounds
MAX_IMAGE_BYTES = 256 * 2**20  # one stored image (float pixels as float32) at most; a thumbnail is far less
PROBABILITY_SLACK = 1e-3  # how far from 1 the class probabilities may sum (float32 softmax rounding)


# --------------------------------------------------------------------- what goes in


@dataclass
class QueueItem:
    """One sample to escalate: its image, the model's class probabilities and why it is escalated.

    ``image`` is (H, W) or (H, W, C) (a (1|3, H, W) array or tensor is moved channels-last), uint8
    or float in [0, 1]; None for a sample already in the queue's pool (a labelling project's).
    ``meta`` is any JSON-able data kept with the sample, e.g. the true label.
    """

    external_id: str
    image: Any
    probs: list[float]
    uncertainty: float
    disagreement: float = 0.0
    reason: str = "uncertain"
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)


def _numpy(value: Any) -> np.ndarray:
    """An array, a list or a (CPU or GPU, grad or not) tensor as a NumPy array."""
    return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)


def image_record(image: Any) -> dict:
    """The image's raw pixels, dtype and shape; uint8 stays uint8, anything else becomes float32 in [0, 1]."""
    try:
        array = _numpy(image)
    except (TypeError, ValueError) as err:  # a ragged list, an object NumPy cannot hold as pixels
        raise DataFormatError(f"an image must be an array of pixels ({err})") from None
    if array.dtype.kind not in "biuf":
        raise DataFormatError(f"an image must hold real pixel values, got dtype {array.dtype}")
    stored = array.size * (1 if array.dtype == np.uint8 else 4)
    if stored > MAX_IMAGE_BYTES:
        raise DataFormatError(
            f"an image of shape {tuple(array.shape)} takes {stored:,} bytes; at most "
            f"{MAX_IMAGE_BYTES:,} are stored per item (send a smaller view)"
        )
    if array.ndim == 3 and (array.shape[0] == 1 or (array.shape[0] == 3 and array.shape[2] not in (3, 4))):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or not array.size:
        raise DataFormatError(f"an image must be (H, W) or (H, W, 1|3|4), got shape {tuple(array.shape)}")
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise DataFormatError("a float image must have values in [0, 1]; pass uint8 for 0-255 pixels")
    array = np.ascontiguousarray(array)
    return {"image": array.tobytes(), "dtype": str(array.dtype), "shape": json.dumps(list(array.shape))}


def _probabilities(probs: Any, external_id: str) -> list[float]:
    """Two or more finite, non-negative class probabilities that sum to 1."""
    try:
        values = [float(p) for p in _numpy(probs).astype(np.float64).reshape(-1)]
    except (TypeError, ValueError):
        values = []
    if len(values) < 2 or not all(math.isfinite(p) and p >= 0 for p in values):
        raise DataFormatError(
            f"item {external_id!r}: probs must be two or more finite, non-negative class probabilities"
        )
    if abs(math.fsum(values) - 1) > PROBABILITY_SLACK:
        raise DataFormatError(
            f"item {external_id!r}: class probabilities must sum to 1, these sum to {math.fsum(values):.6g}"
        )
    return values


def prepare_item(item: QueueItem) -> dict:
    """Check ``item`` and turn it into column values for samples, predictions and escalations."""
    if not isinstance(item, QueueItem):
        raise DataFormatError(f"a queue takes QueueItem records, got {type(item).__name__} {shown(item)}")
    external_id = clean_name(item.external_id, "external id", 256)
    probs = _probabilities(item.probs, external_id)
    uncertainty, disagreement = as_real(item.uncertainty), as_real(item.disagreement)
    if uncertainty is None or disagreement is None:
        raise DataFormatError(f"item {external_id!r}: uncertainty and disagreement must be finite numbers")
    if item.reason not in REASONS:
        raise DataFormatError(
            f"item {external_id!r}: reason must be one of {', '.join(REASONS)}, got {shown(item.reason)}"
        )
    meta = json_object_text(item.meta, f"item {external_id!r}: meta")
    return {
        "external_id": external_id,
        "probs": probs,
        "class_names": None if item.class_names is None else class_list(item.class_names),
        "sample": None  # a pool sample already in the store is escalated without sending its image again
        if item.image is None
        else {"external_id": external_id, "meta": meta, **image_record(item.image)},
        "prediction": {
            "probs": json.dumps(probs),
            "predicted": int(np.argmax(probs)),
            "uncertainty": uncertainty,
            "disagreement": disagreement,
        },
        "escalation": {"reason": item.reason, "priority": uncertainty},
    }


# --------------------------------------------------------------------- what comes out


@dataclass
class Item:
    """An escalated sample as an annotator sees it."""

    escalation_id: int
    sample_id: int
    copy: int  # which of the k annotators asked for this sample (0..k-1; k for a reviewer)
    queue: str
    external_id: str
    image: np.ndarray
    probs: list[float]
    predicted: int
    class_names: list[str]
    uncertainty: float
    disagreement: float
    reason: str
    status: str
    leased_by: str | None
    lease_expires: float | None
    meta: dict

    @classmethod
    def from_row(cls, row) -> Item:
        image = np.frombuffer(row.image, dtype=row.dtype).reshape(json.loads(row.shape))
        return cls(
            escalation_id=row.id,
            sample_id=row.sample_id,
            copy=row.copy,
            queue=row.queue,
            external_id=row.external_id,
            image=image,
            probs=json.loads(row.probs),
            predicted=row.predicted,
            class_names=json.loads(row.class_names),
            uncertainty=row.uncertainty,
            disagreement=row.disagreement,
            reason=row.reason,
            status=row.status,
            leased_by=row.holder,
            lease_expires=row.lease_expires,
            meta=json.loads(row.meta),
        )

    @property
    def predicted_name(self) -> str:
        return self.class_names[self.predicted]

    def top_k(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The ``k`` most probable classes: (index, name, probability), most probable first."""
        order = sorted(range(len(self.probs)), key=lambda c: -self.probs[c])[:k]
        return [(c, self.class_names[c], self.probs[c]) for c in order]

    def decided_label(self, action: str, label: int | None) -> int | None:
        """The label ``action`` stores: the model's for accept, ``label`` for correct, none otherwise."""
        if action == "accept":
            return self.predicted
        if action != "correct":
            return None
        if (
            label is None
            or isinstance(label, bool)
            or not isinstance(label, (int, np.integer))
            or not 0 <= label < len(self.class_names)
        ):
            raise StoreError(
                f"a correction needs a class index from 0 to {len(self.class_names) - 1}, got {label!r}"
            )
        return int(label)


@dataclass(frozen=True)
class Decision:
    """One annotator decision; ``undone_at`` is set when it was undone (decisions are never deleted)."""

    id: int
    request_id: str
    escalation_id: int
    external_id: str
    annotator: str
    action: str
    label: int | None
    created_at: float
    undone_at: float | None = None

    @property
    def undone(self) -> bool:
        return self.undone_at is not None

    def replayed(self, escalation_id: int, annotator: str, action: str, label: int | None) -> Decision:
        """This decision, when a replayed request asks for the same thing; a conflict otherwise."""
        same = (self.escalation_id, self.annotator, self.action) == (escalation_id, annotator, action)
        if not same or (action == "correct" and label != self.label):
            raise ConflictError(
                f"request id {self.request_id!r} was already used for another decision "
                f"({self.action} of item {self.external_id!r} by {self.annotator})"
            )
        return self
