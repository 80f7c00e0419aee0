"""Sinkhorn-Knopp codes for SwAV (Caron et al., "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS 2020, section 3.1 and Algorithm 1).

Given the scores ``S = Z^T C`` of B samples against K prototypes, SwAV's codes solve

    max_Q  Tr(Q^T C^T Z) + eps * H(Q)   over   Q >= 0,  Q 1_B = 1_K / K,  Q^T 1_K = 1_B / B

(equipartition: every prototype gets the same share of the batch). The solution is
``Q = diag(u) exp(S^T / eps) diag(v)``; a few Sinkhorn-Knopp iterations alternately rescale
the K rows (prototypes) to sum to 1/K and the B columns (samples) to sum to 1/B. The result
is multiplied by B so that each sample's code sums to 1 and each prototype's column of the
returned ``(B, K)`` codes sums to B/K. This is the official ``distributed_sinkhorn`` on one
process, run in the log domain in float64 (``logsumexp`` subtracts the maximum), so large
scores or a small ``eps`` never overflow and a sample whose scores are all very low never
becomes a column of zeros.
"""

from __future__ import annotations

import math
from collections import deque

import torch

from playground.errors import ConfigError, DataFormatError


def _check(scores: torch.Tensor, epsilon: float, iterations: int) -> None:
    if scores.ndim != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise DataFormatError(
            f"sinkhorn needs scores of shape (batch, prototypes), got {tuple(scores.shape)}"
        )
    if not epsilon > 0:
        raise ConfigError(f"sinkhorn epsilon must be positive, got {epsilon}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ConfigError(f"sinkhorn iterations must be an integer >= 0, got {iterations!r}")
    if not torch.isfinite(scores).all():
        raise DataFormatError("sinkhorn scores contain NaN or infinite values")


def _log_steps(scores: torch.Tensor, epsilon: float, iterations: int):
    """Yield ``log Q`` (K, B) before the first and after every Sinkhorn-Knopp iteration."""
    n_samples, n_prototypes = scores.shape
    log_q = scores.detach().double().T / epsilon
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)  # Q /= sum(Q)
    yield log_q
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n_prototypes)  # rows: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(n_samples)  # columns: 1/B
        yield log_q


def _codes(log_q: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``B * Q^T`` as ``(B, K)`` codes in ``dtype``: each sample's row sums to 1."""
    return (log_q + math.log(log_q.shape[1])).exp().T.to(dtype)


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV codes ``(B, K)`` for ``scores`` ``(B, K)``: rows sum to 1, columns to about B/K.

    No gradient flows through the codes (SwAV treats them as targets).
    """
    _check(scores, epsilon, iterations)
    log_q = deque(_log_steps(scores, epsilon, iterations), maxlen=1)[0]  # the last step
    out_dtype = scores.dtype if scores.is_floating_point() else torch.float32
    return _codes(log_q, out_dtype)


@torch.no_grad()
def sinkhorn_trace(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> list[torch.Tensor]:
    """Codes ``(B, K)`` (scaled by B like :func:`sinkhorn`) before the first iteration and after
    each one: ``iterations + 1`` tensors, the last equal to ``sinkhorn(scores, epsilon, iterations)``.
    """
    _check(scores, epsilon, iterations)
    out_dtype = scores.dtype if scores.is_floating_point() else torch.float32
    return [_codes(log_q, out_dtype) for log_q in _log_steps(scores, epsilon, iterations)]


def equipartition_error(codes: torch.Tensor) -> tuple[float, float]:
    """Largest deviation of the per-sample sums from 1 and of the per-prototype sums from B/K."""
    n_samples, n_prototypes = codes.shape
    sample_error = (codes.sum(dim=1) - 1).abs().max().item()
    prototype_error = (codes.sum(dim=0) - n_samples / n_prototypes).abs().max().item()
    return sample_error, prototype_error


def prototype_share_range(codes: torch.Tensor) -> tuple[float, float]:
    """The smallest and the largest share of the batch a prototype gets: the column sums of codes
    ``(B, K)`` (every one B/K at equipartition)."""
    shares = codes.sum(0)
    return float(shares.min()), float(shares.max())


def example_scores(
    batch: int = 64,
    prototypes: int = 16,
    clusters: int = 4,
    spread: float = 0.5,
    dim: int = 16,
    seed: int = 0,
) -> torch.Tensor:
    """Cosine scores (B, K) of unit vectors drawn around ``clusters`` centres against random unit
    prototypes: a lopsided batch (most samples prefer a few prototypes) to watch Sinkhorn spread."""
    if min(batch, prototypes, clusters, dim) < 1 or spread < 0:
        raise ConfigError("example_scores needs positive sizes and a spread >= 0")
    generator = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(clusters, dim, generator=generator), dim=1)
    which = torch.randint(0, clusters, (batch,), generator=generator)
    z = torch.nn.functional.normalize(
        centres[which] + spread * torch.randn(batch, dim, generator=generator), dim=1
    )
    c = torch.nn.functional.normalize(torch.randn(prototypes, dim, generator=generator), dim=1)
    return z @ c.T
