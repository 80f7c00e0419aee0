"""Batch-wise image augmentations for contrastive learning, vectorised over the batch.

Each call draws fresh random parameters per image from a ``torch.Generator``: a random
resized crop (with aspect jitter) and horizontal flip through one affine warp, then
brightness/contrast jitter and a little Gaussian noise. Images stay in [0, 1]. One warp
per batch keeps augmentation cheap next to the forward pass on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.35, 1.0)  # fraction of the image area kept
    aspect: tuple[float, float] = (0.75, 1.333)
    flip: bool = True
    brightness: float = 0.4                       # added offset in [-b, b] * mean
    contrast: float = 0.4                         # contrast factor in [1 - c, 1 + c]
    noise: float = 0.03                           # Gaussian noise std


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _crop_grid(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Affine sampling grid for a random resized crop (and flip) of every image."""
    n = images.shape[0]
    area = _uniform(n, *cfg.crop_scale, generator)
    log_ratio = _uniform(n, torch.tensor(cfg.aspect[0]).log().item(), torch.tensor(cfg.aspect[1]).log().item(), generator)
    ratio = log_ratio.exp()
    width = (area * ratio).sqrt().clamp(max=1.0)
    height = (area / ratio).sqrt().clamp(max=1.0)
    centre_x = (torch.rand(n, generator=generator) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(n, generator=generator) * 2 - 1) * (1 - height)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    return F.affine_grid(theta, list(images.shape), align_corners=False)


def augment(images: torch.Tensor, generator: torch.Generator, cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """One random view of each image in ``images`` ``(N, C, H, W)``."""
    grid = _crop_grid(images, cfg, generator).to(images.device, images.dtype)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    n = images.shape[0]
    shape = (n, 1, 1, 1)
    mean = views.mean(dim=(1, 2, 3), keepdim=True)
    contrast = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, generator).view(shape).to(views)
    brightness = _uniform(n, -cfg.brightness, cfg.brightness, generator).view(shape).to(views)
    views = (views - mean) * contrast + mean * (1 + brightness)
    if cfg.noise:
        views = views + cfg.noise * torch.randn(views.shape, generator=generator).to(views)
    return views.clamp(0.0, 1.0)
