"""SimCLR-style contrastive learning (Chen et al., "A Simple Framework for Contrastive
Learning of Visual Representations", ICML 2020).

Two augmented views of each image are encoded and projected to ``z``; the NT-Xent loss
pulls the two views of an image together and pushes every other image in the batch away:

    l(i, j) = -log  exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t)

with cosine similarity ``sim`` and temperature ``t``, averaged over all 2N anchors.
The representation kept for downstream use is the encoder output *before* the projector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from playground.swav.augment import AugmentConfig, augment


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent loss for paired projections ``z1``, ``z2`` of shape ``(N, D)``."""
    if z1.shape != z2.shape:
        raise ValueError(
            f"the two views must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))  # an anchor is never its own negative
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, positives)


class ProjectionHead(nn.Module):
    """The SimCLR projector g: Linear-BN-ReLU-Linear, discarded after training."""

    def __init__(self, in_dim: int, hidden_dim: int = 128, out_dim: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ContrastivePair(nn.Module):
    """``encoder`` (images -> representation) plus projector; ``forward(view1, view2)``
    returns the stacked projections ``(2, N, out_dim)`` for :func:`contrastive_loss`."""

    def __init__(self, encoder: nn.Module, representation_dim: int, projection_dim: int = 64) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(representation_dim, max(128, representation_dim), projection_dim)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(torch.cat([view1, view2]))
        both = self.projector(getattr(encoded, "embedding", encoded))
        return both.view(2, view1.shape[0], -1)


def contrastive_loss(temperature: float = 0.2):
    """A ``loss_fn(output, target)`` for :func:`playground.core.training.fit` (target unused)."""

    def loss(output: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
        return nt_xent(output[0], output[1], temperature)

    return loss


class TwoViewLoader:
    """Batches ``(view1, view2, index)`` of freshly augmented image pairs, reshuffled per epoch.

    Shaped like :class:`playground.data.TensorLoader` so :func:`fit` can train on it.
    """

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int = 256,
        seed: int = 0,
        augment_config: AugmentConfig = AugmentConfig(),
    ) -> None:
        if images.shape[0] < 2:
            raise ValueError("contrastive learning needs at least 2 images")
        self.images, self.batch_size, self.augment_config = (
            images,
            min(batch_size, images.shape[0]),
            augment_config,
        )
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.images.shape[0] // self.batch_size  # drop the ragged last batch

    def __iter__(self):
        order = torch.randperm(self.images.shape[0], generator=self.generator)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            batch = self.images[index]
            yield (
                augment(batch, self.generator, self.augment_config),
                augment(batch, self.generator, self.augment_config),
                index,
            )
