"""Post-hoc adapters between two embedding spaces, trained on a small paired set.

Drift-Adapter (Vejendla, EMNLP 2025): when a new embedding model replaces an old one, a small
map fitted on ``n`` images embedded by both models lets the two spaces meet without re-embedding
the gallery. Either the new model's *queries* are mapped into the old space (the old index stays
as it is; ``direction="query"``), or the stored old *gallery* vectors are mapped into the new space
once (``direction="gallery"``, like FCT without side-information but fitted post hoc on few pairs).
Three maps, from the most to the least constrained, each fitted to ``Y ~ f(X)``:

- **Procrustes**: ``f(x) = (x - mu_x) W + mu_y`` with ``W`` orthogonal (a rotation):
  ``W = U V^T`` where ``U S V^T`` is the SVD of ``(X - mu_x)^T (Y - mu_y)`` (Schoenemann 1966).
  Distances between mapped vectors are the old distances, so it cannot distort the space.
- **Low rank**: ``f(x) = x A B + b`` with ``A`` of ``d x r`` and ``B`` of ``r x d``: reduced-rank
  ridge regression, the least-squares map ``W`` projected onto the top ``r`` right singular
  vectors of the fitted values ``X W`` (Izenman 1975), solved in closed form.
- **Residual MLP**: ``f(x) = x W + b + MLP(x)``, the linear part started at the ridge solution and
  the MLP's last layer at zero, then trained end to end with the squared error.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from playground.core.progress import Progress
from playground.core.training import fit, make_optimizer
from playground.data import TensorLoader
from playground.errors import ConfigError
from playground.fct.transformation import mse_loss

AdapterKind = Literal["procrustes", "low_rank", "residual_mlp"]
ADAPTER_KINDS: tuple[str, ...] = ("procrustes", "low_rank", "residual_mlp")


class AffineMap(nn.Module):
    """``x W + b``, or ``(x A) B + b`` when given two factors (fewer multiply-accumulates)."""

    def __init__(self, *factors: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.factors = nn.ParameterList([nn.Parameter(f.float(), requires_grad=False) for f in factors])
        self.bias = nn.Parameter(bias.float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for factor in self.factors:
            x = x.float() @ factor
        return x + self.bias


class ResidualMLP(nn.Module):
    """``x W + b + MLP(x)``: a linear map plus a learned correction."""

    def __init__(self, linear: AffineMap, hidden: int) -> None:
        super().__init__()
        d_in, d_out = linear.factors[0].shape[0], linear.bias.shape[0]
        self.linear = nn.Linear(d_in, d_out)
        with torch.no_grad():
            self.linear.weight.copy_(linear.factors[0].T)
            self.linear.bias.copy_(linear.bias)
        self.correction = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d_out)
        )
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return self.linear(x) + self.correction(x)


def _check_pairs(source: torch.Tensor, target: torch.Tensor) -> None:
    if source.ndim != 2 or target.ndim != 2 or source.shape[0] != target.shape[0]:
        raise ValueError(
            f"source {tuple(source.shape)} and target {tuple(target.shape)} must be (N, D), one row per image"
        )
    if source.shape[0] < 2:
        raise ConfigError("an adapter needs at least 2 paired images")


def procrustes(source: torch.Tensor, target: torch.Tensor) -> AffineMap:
    """The orthogonal map (after centring) closest to ``target`` in squared error."""
    _check_pairs(source, target)
    mu_x, mu_y = source.float().mean(0), target.float().mean(0)
    u, _, vh = torch.linalg.svd((source.float() - mu_x).T @ (target.float() - mu_y), full_matrices=False)
    rotation = u @ vh
    return AffineMap(rotation, bias=mu_y - mu_x @ rotation)


def ridge(source: torch.Tensor, target: torch.Tensor, weight_decay: float = 1e-3) -> AffineMap:
    """Least squares ``x W + b`` with a small ridge (relative to the features' mean square)."""
    _check_pairs(source, target)
    mu_x, mu_y = source.float().mean(0), target.float().mean(0)
    x, y = source.float() - mu_x, target.float() - mu_y
    gram = x.T @ x
    penalty = weight_decay * gram.diagonal().mean().clamp_min(1e-12) * torch.eye(x.shape[1])
    weight = torch.linalg.solve(gram + penalty, x.T @ y)
    return AffineMap(weight, bias=mu_y - mu_x @ weight)


def low_rank(source: torch.Tensor, target: torch.Tensor, rank: int) -> AffineMap:
    """Reduced-rank ridge regression: the ridge map restricted to ``rank`` output directions."""
    if rank < 1:
        raise ConfigError(f"the low-rank adapter's rank must be at least 1, got {rank}")
    full = ridge(source, target)
    weight = full.factors[0]
    fitted = (source.float() - source.float().mean(0)) @ weight
    directions = torch.linalg.svd(fitted, full_matrices=False).Vh[: min(rank, weight.shape[1])].T
    mu_x, mu_y = source.float().mean(0), target.float().mean(0)
    first, second = weight @ directions, directions.T
    return AffineMap(first, second, bias=mu_y - (mu_x @ first) @ second)


def residual_mlp(
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    hidden: int = 256,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    progress: Progress = None,
) -> ResidualMLP:
    """The ridge map plus an MLP correction, trained with the squared error."""
    torch.manual_seed(seed)
    model = ResidualMLP(ridge(source, target), hidden)
    loader = TensorLoader(
        source.float(), target.float(), batch_size=batch_size, shuffle=True, seed=seed, drop_last=False
    )
    fit(
        model,
        loader,
        epochs=epochs,
        optimizer=make_optimizer(model, "adamw", lr, 1e-4),
        loss_fn=mse_loss,
        progress=progress,
    )
    return model.eval()


def fit_adapter(
    kind: str,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    rank: int = 16,
    hidden: int = 256,
    epochs: int = 30,
    seed: int = 0,
    progress: Progress = None,
) -> nn.Module:
    """One adapter of ``kind`` (:data:`ADAPTER_KINDS`) mapping ``source`` rows onto ``target`` rows."""
    if kind == "procrustes":
        return procrustes(source, target)
    if kind == "low_rank":
        return low_rank(source, target, rank)
    if kind == "residual_mlp":
        return residual_mlp(source, target, hidden=hidden, epochs=epochs, seed=seed, progress=progress)
    raise ConfigError(f"unknown adapter {kind!r}; choose one of {', '.join(ADAPTER_KINDS)}")


@torch.no_grad()
def apply_adapter(adapter: nn.Module, vectors: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """The adapter over ``vectors`` in batches, float32."""
    adapter.eval()
    parts = [adapter(vectors[i : i + batch_size].float()) for i in range(0, vectors.shape[0], batch_size)]
    return torch.cat(parts) if parts else vectors.float()
