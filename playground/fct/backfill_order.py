"""Partial backfill: which gallery images to re-embed first, and the backfilling curve.

FastFill (Jaeckle et al., "FastFill: Efficient Compatible Model Update", ICLR 2023): after an
FCT upgrade every gallery vector is ``h(old, side)``; re-embedding images with the new model
replaces the worst of them first, in an order given by an uncertainty score ``u(x)`` (highest
first). The **backfilling curve** is retrieval mAP against the fraction ``f`` of the gallery
re-embedded, queries always by the new model; its **area** ``A = int_0^1 mAP(f) df`` (in mAP
points) is what an order buys over random (FastFill: 40.5 -> 44.8 on ImageNet without side-info).

Orders (every score is computed from what a gallery stores, never from the new model):

- ``fastfill``: a variance head ``log s^2(x)`` on the frozen ``h``, trained with the heteroscedastic
  Gaussian negative log-likelihood (Kendall and Gal, NeurIPS 2017)
  ``L = ||h(x) - phi_new(x)||^2 / (2 s^2) + (d/2) log s^2``, so ``s^2`` learns h's error. FastFill trains
  the variance jointly with h; freezing h keeps every order on the same transformed gallery.
- ``ensemble``: disagreement of K transformations trained from different seeds,
  ``u = mean_k ||h_k(x) - mean_j h_j(x)||^2`` (Lakshminarayanan et al. 2017).
- ``knn``: distance from the old embedding to its k-th nearest neighbour among h's training inputs
  (far from what h saw, Sun et al. 2022).
- ``mahalanobis``: the smallest class-conditional Mahalanobis distance of the old embedding with a
  shared covariance, fitted on h's training inputs (Lee et al. 2018).
- ``random``: the baseline.
- ``oracle``: h's true error ``||h(x) - phi_new(x)||^2``, known only once an image is re-embedded: not an
  order anyone can use, the upper reference for the others (how much any order could gain here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from playground.core.checkpoint import build_loaded, load_checkpoint, save_checkpoint
from playground.core.progress import Progress
from playground.core.training import fit, make_optimizer
from playground.data import TensorLoader
from playground.errors import ConfigError
from playground.fct.retrieval import Distance, distances, retrieval_metrics
from playground.fct.transformation import Transformation, mlp_bn, transform

ORDERS: tuple[str, ...] = ("random", "fastfill", "ensemble", "knn", "mahalanobis", "oracle")
USABLE_ORDERS: tuple[str, ...] = ORDERS[1:-1]  # the uncertainty orders a real backfill can follow
VARIANCE_HEAD_FILE = "variance_head.safetensors"  # in a run folder: FastFill's head for h with side-info


class VarianceHead(nn.Module):
    """``log s^2(old, side)`` for a frozen transformation ``h``: an MLP on h's own inputs."""

    def __init__(self, h: Transformation, hidden: int = 128) -> None:
        super().__init__()
        self.h = h.eval().requires_grad_(False)
        self.log_var = mlp_bn([h.old_dim + h.side_dim, hidden, 1], last_plain=True)

    def forward(self, old: torch.Tensor, side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            self.h.eval()
            mean = self.h(old, side)
        return mean, self.log_var(torch.cat([old.float(), side.float()], dim=1)).squeeze(1)


def save_variance_head(path: Path, head: VarianceHead, meta: dict) -> None:
    """The head's own layers (h is saved on its own) and their input width and hidden size."""
    hidden = head.log_var[0].out_features
    save_checkpoint(path, head.log_var, {**meta, "role": "variance_head", "hidden": hidden})


def load_variance_head(path: Path, h: Transformation) -> VarianceHead:
    """A head saved by :func:`save_variance_head`, on top of the run's ``h``."""
    state, meta = load_checkpoint(path, metadata={"hidden": range(1, 1 << 16)})
    inputs = h.old_dim + h.side_dim
    layers = build_loaded(path, state, lambda: mlp_bn([inputs, meta["hidden"], 1], last_plain=True))
    head = VarianceHead(h, hidden=meta["hidden"])
    head.log_var = layers
    return head.eval()


def gaussian_nll(output: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """``||mean - target||^2 / (2 s^2) + (d/2) log s^2``, averaged over the batch."""
    mean, log_var = output
    squared = (mean - target).pow(2).sum(dim=1)
    return (0.5 * squared * torch.exp(-log_var) + 0.5 * mean.shape[1] * log_var).mean()


def train_variance_head(
    h: Transformation,
    old: torch.Tensor,
    side: torch.Tensor,
    new: torch.Tensor,
    *,
    epochs: int = 10,
    lr: float = 2e-3,
    batch_size: int = 256,
    seed: int = 0,
    progress: Progress = None,
) -> VarianceHead:
    """FastFill's uncertainty for ``h``, fitted on h's training triples."""
    torch.manual_seed(seed)
    head = VarianceHead(h)
    loader = TensorLoader(
        old.float(), side.float(), new.float(), batch_size=batch_size, shuffle=True, seed=seed, drop_last=True
    )
    optimizer = make_optimizer(head.log_var, "adamw", lr, 1e-4)
    fit(head, loader, epochs=epochs, optimizer=optimizer, loss_fn=gaussian_nll, progress=progress)
    return head.eval()


@torch.no_grad()
def fastfill_scores(head: VarianceHead, old: torch.Tensor, side: torch.Tensor, batch_size: int = 4096):
    """The learned log-variance of h for each gallery vector (higher: re-embed sooner)."""
    head.eval()
    parts = [
        head(old[i : i + batch_size], side[i : i + batch_size])[1] for i in range(0, len(old), batch_size)
    ]
    return torch.cat(parts)


def ensemble_scores(members: Sequence[Transformation], old: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each member's output from the members' mean."""
    if len(members) < 2:
        raise ConfigError("ensemble disagreement needs at least 2 transformations")
    outputs = torch.stack([transform(h, old, side) for h in members])
    return (outputs - outputs.mean(0)).pow(2).sum(-1).mean(0)


def knn_scores(
    reference: torch.Tensor, vectors: torch.Tensor, k: int = 10, chunk: int = 1024
) -> torch.Tensor:
    """Distance from each vector to its ``k``-th nearest reference vector."""
    k = min(k, reference.shape[0])
    parts = [
        distances(vectors[i : i + chunk], reference).topk(k, dim=1, largest=False).values[:, -1]
        for i in range(0, vectors.shape[0], chunk)
    ]
    return torch.cat(parts)


def mahalanobis_scores(reference: torch.Tensor, labels: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Smallest class-conditional Mahalanobis distance (shared covariance, small ridge)."""
    reference = reference.float()
    classes = labels.unique()
    means = torch.stack([reference[labels == c].mean(0) for c in classes])
    centred = reference - means[torch.searchsorted(classes, labels)]
    covariance = centred.T @ centred / max(1, reference.shape[0] - 1)
    covariance += 1e-4 * covariance.diagonal().mean() * torch.eye(reference.shape[1])
    precision = torch.linalg.inv(covariance)
    diff = vectors.float()[:, None, :] - means[None]  # (N, C, D)
    return torch.einsum("ncd,de,nce->nc", diff, precision, diff).min(dim=1).values


def order_by(scores: torch.Tensor) -> torch.Tensor:
    """Gallery indices, most uncertain first (ties broken by index, so the order is stable)."""
    return torch.sort(scores.float(), descending=True, stable=True).indices


def random_order(count: int, seed: int) -> torch.Tensor:
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))


def backfill_curve(
    query: torch.Tensor,
    transformed: torch.Tensor,
    reembedded: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    fractions: Sequence[float],
    *,
    query_rows: torch.Tensor | None = None,
    distance: Distance = "l2",
) -> list[float]:
    """mAP (in points) of the mixed gallery at each fraction: the first ``f N`` of ``order``
    re-embedded, the rest transformed. ``query_rows`` names the gallery row of each query."""
    if transformed.shape != reembedded.shape or order.shape != (transformed.shape[0],):
        raise ValueError(
            f"transformed {tuple(transformed.shape)}, re-embedded {tuple(reembedded.shape)} and order "
            f"{tuple(order.shape)} must describe the same gallery"
        )
    curve = []
    for fraction in fractions:
        mixed = transformed.clone()
        chosen = order[: round(fraction * len(order))]
        mixed[chosen] = reembedded[chosen]
        scores = retrieval_metrics(query, mixed, labels, distance, topk=(1,), query_rows=query_rows)
        curve.append(100.0 * scores["mAP"])
    return curve


def curve_area(fractions: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under the curve over ``[fractions[0], fractions[-1]]``, divided by its width."""
    if len(fractions) != len(values) or len(fractions) < 2:
        raise ValueError("a curve needs at least two points, one value per fraction")
    width = fractions[-1] - fractions[0]
    if width <= 0:
        raise ValueError("fractions must increase")
    total = sum((b - a) * (u + v) / 2 for a, b, u, v in zip(fractions, fractions[1:], values, values[1:]))
    return total / width
