"""What every playground model returns: an embedding and (optionally) class logits."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModelOutput(NamedTuple):
    """Result of a forward pass.

    ``embedding`` is ``(N, embedding_dim)`` and is *not* normalised; callers that do
    retrieval normalise it themselves. ``logits`` is ``(N, num_classes)``, or ``None``
    for an embedding-only model (``num_classes == 0``).
    """

    embedding: torch.Tensor
    logits: torch.Tensor | None
