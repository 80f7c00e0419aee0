"""Degraded images for the fusion ablation: Gaussian blur plus a grey occluding square.

Extra knowledge (a caption from a model trained elsewhere, facts, retrieved neighbours) should
matter most when the pixels are poor, so the ``degraded_lowlabel`` regime blurs every image
(σ = ``blur`` pixels) and covers a random square of side ``occlusion`` × the image size,
placed so that it overlaps the image centre region where shapes usually lie.
"""

from __future__ import annotations

import torch

from playground.data.ood import corrupt
from playground.errors import ConfigError


def occlude(images: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A mid-grey square of side ``fraction`` × H at a random place in every image."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"occlusion must be in [0, 1), got {fraction}")
    n, _, height, width = images.shape
    side = int(round(fraction * min(height, width)))
    if side == 0:
        return images.clone()
    generator = torch.Generator().manual_seed(seed)
    top = torch.randint(0, height - side + 1, (n,), generator=generator)
    left = torch.randint(0, width - side + 1, (n,), generator=generator)
    rows, cols = torch.arange(height), torch.arange(width)
    inside_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + side)
    inside_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + side)
    covered = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]
    return torch.where(covered, torch.full_like(images, 0.5), images)


def degrade(images: torch.Tensor, blur: float = 1.5, occlusion: float = 0.4, seed: int = 0) -> torch.Tensor:
    """Blur (σ = ``blur`` px; 0 for none), then occlude (see :func:`occlude`)."""
    if blur < 0:
        raise ConfigError(f"blur must be >= 0, got {blur}")
    blurred = corrupt(images, "blur", blur) if blur > 0 else images
    return occlude(blurred, occlusion, seed)
