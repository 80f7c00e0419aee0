"""Batch-wise image augmentations for contrastive learning, vectorised over the batch.

Each call draws fresh random parameters per image from a ``torch.Generator``: a random
resized crop (with aspect jitter) and horizontal flip through one affine warp, then
brightness/contrast jitter and a little Gaussian noise. Colour images also get SimCLR's
colour distortion (hue rotation about the grey axis, saturation jitter, random grayscale),
which SimCLR found essential: without it two crops can be matched by colour alone and the
representation learns little else. Images stay in [0, 1]. One warp per batch keeps
augmentation cheap next to the forward pass on a CPU. ``output_size`` resamples the crop to
another side length (SwAV's small multi-crop views, :mod:`playground.swav.multicrop`).
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
    brightness: float = 0.4  # added offset in [-b, b] * mean
    contrast: float = 0.4  # contrast factor in [1 - c, 1 + c]
    noise: float = 0.03  # Gaussian noise std
    hue: float = 0.2  # colour only: hue rotation in [-h, h] turns
    saturation: float = 0.8  # colour only: saturation factor in [1 - s, 1 + s]
    grayscale: float = 0.2  # colour only: probability of a grey view
    output_size: int | None = None  # side of the square output view (None: the input's size)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _crop_grid(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Affine sampling grid for a random resized crop (and flip) of every image."""
    n = images.shape[0]
    area = _uniform(n, *cfg.crop_scale, generator)
    log_ratio = _uniform(
        n, torch.tensor(cfg.aspect[0]).log().item(), torch.tensor(cfg.aspect[1]).log().item(), generator
    )
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
    size = (
        list(images.shape)
        if cfg.output_size is None
        else [n, images.shape[1], cfg.output_size, cfg.output_size]
    )
    return F.affine_grid(theta, size, align_corners=False)


def _hue_rotation(angles: torch.Tensor) -> torch.Tensor:
    """RGB rotation matrices ``(N, 3, 3)`` about the grey axis (1, 1, 1): a hue shift."""
    k = torch.full((3,), 3**-0.5)
    cross = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    cos, sin = angles.cos().view(-1, 1, 1), angles.sin().view(-1, 1, 1)
    return cos * torch.eye(3) + (1 - cos) * torch.outer(k, k) + sin * cross


def colour_distort(views: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Hue rotation, saturation jitter and random grayscale of RGB ``views`` ``(N, 3, H, W)``."""
    n = views.shape[0]
    rotation = _hue_rotation(_uniform(n, -cfg.hue, cfg.hue, generator) * 2 * torch.pi).to(views)
    views = torch.einsum("nij,njhw->nihw", rotation, views)
    grey = views.mean(dim=1, keepdim=True)
    saturation = _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, generator)
    saturation = torch.where(torch.rand(n, generator=generator) < cfg.grayscale, 0.0, saturation)
    return grey + saturation.view(n, 1, 1, 1).to(views) * (views - grey)


def augment(
    images: torch.Tensor, generator: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """One random view of each image in ``images`` ``(N, C, H, W)``."""
    grid = _crop_grid(images, cfg, generator).to(images.device, images.dtype)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    n = images.shape[0]
    shape = (n, 1, 1, 1)
    mean = views.mean(dim=(1, 2, 3), keepdim=True)
    contrast = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, generator).view(shape).to(views)
    brightness = _uniform(n, -cfg.brightness, cfg.brightness, generator).view(shape).to(views)
    views = (views - mean) * contrast + mean * (1 + brightness)
    if views.shape[1] == 3:
        views = colour_distort(views, cfg, generator)
    if cfg.noise:
        views = views + cfg.noise * torch.randn(views.shape, generator=generator).to(views)
    return views.clamp(0.0, 1.0)
