"""The fusion network: a small U-Net-style encoder, an optional fusion head on its bottleneck,
and a classification or segmentation head.

- encoder: three conv stages at full, 1/2 and 1/4 resolution (channels w, 2w, 4w);
- fusion: :class:`~playground.fusion.heads.FusionHead` on the 1/4-resolution map, fed by
  :class:`~playground.fusion.heads.ContextTokens` (no sources: image only);
- ``classify``: global average pool -> linear; ``segment``: upsample twice with skip
  connections -> per-pixel logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from playground.errors import ConfigError
from playground.fusion.heads import ContextTokens, FusionHead
from playground.models.cnn import conv_bn_relu

TASKS = ("classify", "segment")


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


class FusionNet(nn.Module):
    """``forward(images, *context) -> logits`` ((N, classes) or (N, classes, H, W))."""

    def __init__(
        self,
        task: str,
        num_classes: int,
        source_dims: dict[str, int] | None = None,
        fusion: str = "film",
        width: int = 16,
        token_dim: int = 64,
        in_channels: int = 3,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 <= modality_dropout < 1:
            raise ConfigError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.modality_dropout = modality_dropout
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.task, self.sources = task, list(source_dims or {})
        self.stages = nn.ModuleList(
            [
                double_conv(in_channels, width),
                double_conv(width, 2 * width),
                double_conv(2 * width, 4 * width),
            ]
        )
        self.context = ContextTokens(source_dims, token_dim) if self.sources else None
        self.fuse = FusionHead(fusion, 4 * width, token_dim) if self.sources else None
        if task == "classify":
            self.head = nn.Linear(4 * width, num_classes)
        else:
            self.up = nn.ModuleList([double_conv(6 * width, 2 * width), double_conv(3 * width, width)])
            self.head = nn.Conv2d(width, num_classes, kernel_size=1)

    def drop_image(self, features: torch.Tensor) -> torch.Tensor:
        """Modality dropout (Neverova et al., "ModDrop", 2015): in training, zero the image bottleneck of a
        random ``modality_dropout`` share of the samples, so the network must also learn to read the context
        instead of memorising a few labelled images."""
        if not self.training or self.modality_dropout == 0:
            return features
        keep = torch.rand(features.shape[0], 1, 1, 1, device=features.device) >= self.modality_dropout
        return features * keep

    def forward(self, images: torch.Tensor, *context: torch.Tensor) -> torch.Tensor:
        skips, x = [], images
        for i, stage in enumerate(self.stages):
            x = stage(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        if self.fuse is not None:
            x = self.fuse(self.drop_image(x), *self.context(list(context)))
        if self.task == "classify":
            return self.head(x.mean((2, 3)))
        for up, skip in zip(self.up, reversed(skips[:-1])):
            x = up(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.head(x)
