"""Multi-crop augmentation (Caron et al., SwAV, NeurIPS 2020, section 3.2).

Each image gives ``large`` views at full resolution covering a large part of it
(scale ``large_scale`` of the area) and ``small`` low-resolution views of small parts
(``small_scale``): ``2 x 224 + 6 x 96`` pixels in the paper. Small crops add views almost
for free, since their cost grows with their area; only the large crops are used to compute
codes, which every other view must then predict ("local-to-global" matching).

The crops reuse the batch random-resized-crop machinery of :mod:`playground.swav.augment`
(one affine warp per batch, plus its brightness, contrast, colour and noise jitter).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from playground.errors import ConfigError, DataFormatError
from playground.swav.augment import AugmentConfig, augment


class MultiCrop:
    """``multicrop(images, generator)`` -> a list of ``large + small`` view batches.

    ``large_size`` and ``small_size`` are the output sides in pixels; ``None`` keeps the
    input's side for large views and uses half of it (at least 2) for small ones, e.g.
    28 -> 14 on Fashion-MNIST and 8 -> 4 on digits.
    """

    def __init__(
        self,
        large: int = 2,
        small: int = 4,
        large_size: int | None = None,
        small_size: int | None = None,
        large_scale: tuple[float, float] = (0.35, 1.0),
        small_scale: tuple[float, float] = (0.08, 0.35),
        augment_config: AugmentConfig = AugmentConfig(),
    ) -> None:
        if large < 1 or small < 0:
            raise ConfigError(
                f"multi-crop needs at least 1 large view and >= 0 small views, got {large} and {small}"
            )
        for name, scale in (("large_scale", large_scale), ("small_scale", small_scale)):
            if not 0 < scale[0] <= scale[1] <= 1:
                raise ConfigError(f"multi-crop {name} must satisfy 0 < low <= high <= 1, got {scale}")
        for name, size in (("large_size", large_size), ("small_size", small_size)):
            if size is not None and size < 1:
                raise ConfigError(f"multi-crop {name} must be a positive number of pixels, got {size}")
        self.large, self.small = large, small
        self.large_size, self.small_size = large_size, small_size
        self.large_scale, self.small_scale = tuple(large_scale), tuple(small_scale)
        self.augment_config = augment_config

    @property
    def views(self) -> int:
        return self.large + self.small

    def sizes(self, image_size: int) -> list[int]:
        """Output side of every view for images of side ``image_size``."""
        large = self.large_size or image_size
        small = self.small_size or max(2, image_size // 2)
        return [large] * self.large + [small] * self.small

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        if images.ndim != 4:
            raise DataFormatError(f"multi-crop needs images (N, C, H, W), got shape {tuple(images.shape)}")
        sizes = self.sizes(images.shape[-1])
        scales = [self.large_scale] * self.large + [self.small_scale] * self.small
        return [
            augment(images, generator, replace(self.augment_config, crop_scale=scale, output_size=size))
            for size, scale in zip(sizes, scales)
        ]


class MultiCropLoader:
    """Batches ``(view_1, ..., view_V, index)`` of freshly multi-cropped images, reshuffled
    per epoch; the ragged last batch is dropped. Shaped like
    :class:`playground.swav.contrastive.TwoViewLoader`, so :func:`fit` can train on it.
    ``channels_last`` lays the views out NHWC, for a model in that memory format.
    """

    def __init__(
        self,
        images: torch.Tensor,
        multicrop: MultiCrop,
        batch_size: int = 256,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        if images.ndim != 4 or images.shape[0] < 2:
            raise DataFormatError(
                f"SwAV needs at least 2 images (N, C, H, W), got shape {tuple(images.shape)}"
            )
        self.images, self.multicrop = images, multicrop
        self.batch_size = min(batch_size, images.shape[0])
        self.generator = torch.Generator().manual_seed(seed)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return self.images.shape[0] // self.batch_size

    def __iter__(self):
        order = torch.randperm(self.images.shape[0], generator=self.generator)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            views = self.multicrop(self.images[index], self.generator)
            yield (*(view.contiguous(memory_format=self.memory_format) for view in views), index)
