"""Backward compatible training (Shen et al., "Towards Backward-Compatible Representation
Learning", CVPR 2020): the baseline FCT is measured against.

The new model is trained with its own classification loss plus an *influence loss* that
sends its embeddings through the frozen old classifier:

    L(w_new) = CE(W_new phi_new(x), y) + lambda * CE(W_old phi_new(x), y_old)

so new embeddings stay comparable with the old gallery. Classes the old model never saw
get classifier rows synthesised from the old model's class means of their training
images (rescaled to the old rows' mean norm, with the old rows' mean bias). A new class
that refines an old one (e.g. "blue square" of old "blue") uses that old row.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from playground.core.training import logits_of


def influence_targets(old_row_of_new: Sequence[int | None], old_rows: int) -> torch.Tensor:
    """Row of the extended old classifier for each new class: its old row, or a new
    synthesised row appended after the ``old_rows`` learned ones."""
    rows, extra = [], 0
    for row in old_row_of_new:
        if row is None:
            rows.append(old_rows + extra)
            extra += 1
        else:
            if not 0 <= row < old_rows:
                raise ValueError(f"old row {row} is outside the old classifier's {old_rows} rows")
            rows.append(row)
    return torch.tensor(rows, dtype=torch.int64)


@torch.no_grad()
def extend_old_classifier(
    old_classifier: nn.Linear,
    old_embeddings: torch.Tensor,
    labels: torch.Tensor,
    old_row_of_new: Sequence[int | None],
) -> nn.Linear:
    """The frozen old classifier with a synthesised row for every unseen new class."""
    weight, bias = old_classifier.weight.detach().cpu(), old_classifier.bias.detach().cpu()
    unseen = [c for c, row in enumerate(old_row_of_new) if row is None]
    rows = []
    for new_class in unseen:
        members = old_embeddings[labels == new_class]
        if members.shape[0] == 0:
            raise ValueError(f"class {new_class} has no training images to synthesise its old-classifier row")
        rows.append(members.float().mean(0))
    if rows:
        means = torch.stack(rows)
        means = means / means.norm(dim=1, keepdim=True).clamp_min(1e-8) * weight.norm(dim=1).mean()
        weight = torch.cat([weight, means])
        bias = torch.cat([bias, bias.mean().repeat(len(rows))])
    extended = nn.Linear(weight.shape[1], weight.shape[0])
    extended.weight.copy_(weight)
    extended.bias.copy_(bias)
    extended.requires_grad_(False)
    return extended.eval()


class BCTLoss:
    """``loss_fn(output, target)`` for :func:`fit`: new-model CE plus ``weight`` x influence CE."""

    def __init__(self, old_classifier: nn.Linear, targets: torch.Tensor, weight: float = 1.0) -> None:
        self.old_classifier, self.targets, self.weight = old_classifier, targets, weight

    def __call__(self, output, target: torch.Tensor) -> torch.Tensor:
        own = F.cross_entropy(logits_of(output), target)
        classifier = self.old_classifier.to(output.embedding.device)
        influence = F.cross_entropy(classifier(output.embedding), self.targets.to(target.device)[target])
        return own + self.weight * influence
