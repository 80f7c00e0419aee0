"""Feature-space OOD scores on a model's embeddings (higher means more likely OOD).

- Mahalanobis (Lee et al. 2018, "A Simple Unified Framework for Detecting Out-of-Distribution
  Samples and Adversarial Attacks"): class-conditional Gaussians with a shared covariance
  fitted on the training embeddings; the score is the distance to the closest class mean,
  ``min_c (f - μ_c)ᵀ Σ⁻¹ (f - μ_c)``.
- KNN (Sun et al. 2022, "Out-of-Distribution Detection with Deep Nearest Neighbors"): the
  distance from the L2-normalised embedding to its k-th nearest normalised training embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from playground.errors import DataFormatError


@dataclass
class Mahalanobis:
    """Class means ``(C, D)`` and the shared precision matrix ``(D, D)``."""

    means: torch.Tensor
    precision: torch.Tensor

    @classmethod
    def fit(
        cls, embedding: torch.Tensor, labels: torch.Tensor, num_classes: int, shrinkage: float = 1e-3
    ) -> Mahalanobis:
        _check(embedding, labels)
        x = embedding.double()
        means = torch.stack([x[labels == c].mean(0) for c in range(num_classes)])
        centred = x - means[labels]
        covariance = centred.T @ centred / x.shape[0]
        covariance += shrinkage * covariance.diagonal().mean() * torch.eye(x.shape[1], dtype=x.dtype)
        return cls(means.float(), torch.linalg.inv(covariance).float())

    def score(self, embedding: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        parts = []
        for start in range(0, embedding.shape[0], chunk):
            diff = embedding[start : start + chunk, None, :] - self.means[None]  # (n, C, D)
            parts.append(torch.einsum("ncd,de,nce->nc", diff, self.precision, diff).min(1).values)
        return torch.cat(parts) if parts else torch.zeros(0)


@dataclass
class KNNScore:
    """The normalised training embeddings and ``k``."""

    bank: torch.Tensor
    k: int = 50

    @classmethod
    def fit(cls, embedding: torch.Tensor, k: int = 50, limit: int = 20000, seed: int = 0) -> KNNScore:
        if embedding.ndim != 2 or embedding.shape[0] == 0:
            raise DataFormatError(f"KNN needs (N, D) training embeddings, got shape {tuple(embedding.shape)}")
        if embedding.shape[0] > limit:  # a random subset keeps the score cheap (Sun et al. use 1%-100%)
            embedding = embedding[
                torch.randperm(embedding.shape[0], generator=torch.Generator().manual_seed(seed))[:limit]
            ]
        return cls(F.normalize(embedding.float(), dim=1), min(k, embedding.shape[0]))

    def score(self, embedding: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        parts = []
        for start in range(0, embedding.shape[0], chunk):
            similarity = F.normalize(embedding[start : start + chunk].float(), dim=1) @ self.bank.T
            kth = similarity.topk(self.k, dim=1).values[:, -1]
            parts.append((2 - 2 * kth).clamp_min(0).sqrt())  # Euclidean distance of unit vectors
        return torch.cat(parts) if parts else torch.zeros(0)


def _check(embedding: torch.Tensor, labels: torch.Tensor) -> None:
    if embedding.ndim != 2 or labels.shape != (embedding.shape[0],):
        raise DataFormatError(
            f"need embeddings (N, D) and labels (N,), got {tuple(embedding.shape)} and {tuple(labels.shape)}"
        )
    if embedding.shape[0] <= embedding.shape[1]:
        raise DataFormatError(
            f"Mahalanobis needs more embeddings ({embedding.shape[0]}) than dimensions ({embedding.shape[1]})"
        )
