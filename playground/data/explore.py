"""Looking at a set of images: pixel statistics, class counts and a seeded sample of indices.

The data explorer page draws what these return; a notebook can call them on any image tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageStats:
    """Size and pixel statistics of an image tensor ``(N, C, H, W)``."""

    images: int
    channels: int
    height: int
    width: int
    pixel_mean: float
    pixel_std: float  # the sample standard deviation over every pixel value (torch's default)

    @property
    def shape(self) -> str:
        """``C×H×W`` as the tables print it."""
        return f"{self.channels}×{self.height}×{self.width}"


def image_stats(images: torch.Tensor) -> ImageStats:
    """The count, shape and pixel mean / standard deviation of ``images`` ``(N, C, H, W)``."""
    c, h, w = images.shape[1:]
    return ImageStats(
        images=int(images.shape[0]),
        channels=int(c),
        height=int(h),
        width=int(w),
        pixel_mean=images.mean().item(),
        pixel_std=images.std().item(),
    )


def class_counts(labels: torch.Tensor, classes: list[str]) -> dict[str, int]:
    """How many of ``labels`` fall in each class, in the order of ``classes`` (zero for an absent one)."""
    counts = torch.bincount(labels, minlength=len(classes))
    return {c: int(n) for c, n in zip(classes, counts)}


def mask_area(mask: torch.Tensor) -> int:
    """How many pixels a segmentation mask ``(H, W)`` covers (its true or non-zero pixels)."""
    return int(mask.count_nonzero())


def sample_indices(labels: torch.Tensor, count: int, seed: int, class_index: int | None = None) -> list[int]:
    """Up to ``count`` indices drawn without replacement from ``seed``: of every item, or of the items
    of class ``class_index``. The same seed always draws the same indices."""
    pool = torch.arange(len(labels)) if class_index is None else (labels == class_index).nonzero().squeeze(1)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return pool[order[:count]].tolist()
