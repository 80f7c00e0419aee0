"""What a trained SwAV model does with its prototypes: assignments, purity, Sinkhorn convergence.

- **Assignments**: each image's prototype is the one its projection is most similar to
  (``argmax_k z^T c_k``; at inference there is no batch to equipartition).
- **Purity**: the share of images whose prototype's most common class is their own class,
  ``sum_k max_y |{i : k_i = k, y_i = y}| / N``; 1/C for assignments unrelated to the labels,
  1 when every prototype holds one class. Labels are used only to read this number.
- **Sinkhorn trace**: the codes of one batch before and after each Sinkhorn-Knopp iteration,
  with the largest deviation of the sample sums from 1 and the prototype sums from B/K.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground.data import ImageDataset
from playground.swav.sinkhorn import equipartition_error, sinkhorn_trace
from playground.swav.swav import SwAV, SwAVConfig

TRACE_ITERATIONS = 10


@dataclass
class Diagnostics:
    assignments: torch.Tensor  # (N,) prototype of every test image
    labels: torch.Tensor  # (N,) their classes (for purity and the page's sample grid)
    classes: list[str]
    purity: float
    used_prototypes: int  # prototypes that hold at least one test image
    trace: list[torch.Tensor]  # codes (B, K) of one batch, before and after each iteration
    errors: list[tuple[float, float]]  # per trace entry: (sample-sum error, prototype-sum error)

    def counts(self, prototypes: int) -> torch.Tensor:
        """(K, C) how many test images of each class every prototype holds."""
        table = torch.zeros(prototypes, len(self.classes), dtype=torch.long)
        table.index_put_((self.assignments, self.labels), torch.ones_like(self.labels), accumulate=True)
        return table


def purity(assignments: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of items whose cluster's most common label is their label."""
    if assignments.numel() == 0:
        return float("nan")
    hits = 0
    for cluster in assignments.unique():
        hits += int(torch.bincount(labels[assignments == cluster]).max())
    return hits / assignments.numel()


def diagnose(
    model: SwAV,
    test: ImageDataset,
    config: SwAVConfig = SwAVConfig(),
    batch: int = 256,
    seed: int = 0,
    iterations: int = TRACE_ITERATIONS,
) -> Diagnostics:
    """Assignments of every test image and the Sinkhorn trace of a random batch of them."""
    scores = model.prototype_scores(test.images)
    assignments = scores.argmax(dim=1)
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randperm(len(test), generator=generator)[:batch]
    trace = sinkhorn_trace(scores[sample], config.epsilon, max(iterations, config.sinkhorn_iterations))
    return Diagnostics(
        assignments,
        test.labels.clone(),
        list(test.classes),
        purity(assignments, test.labels),
        int(assignments.unique().numel()),
        trace,
        [equipartition_error(c) for c in trace],
    )
