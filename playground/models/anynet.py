"""AnyNet, the network family of "Designing Network Design Spaces" (Radosavovic et al., CVPR 2020).

An AnyNet is a stem (3×3 conv, BN, ReLU), a body of stages and a head (global average pool; the
classifier comes from :class:`~playground.models.heads.EmbeddingClassifier`). Stage ``i`` has
``d_i`` blocks of width ``w_i``; its first block halves the resolution. Every block is the paper's
**X block**, a residual bottleneck with a group convolution::

    y = ReLU(x' + BN(conv1x1(ReLU(BN(gconv3x3_g(ReLU(BN(conv1x1(x)))))))))   with x' = x, or a
    strided 1×1 projection where width or resolution change; the inner width is w_i / b_i and the
    3×3 convolution has (w_i / b_i) / g_i groups of width g_i.

A **Y block** adds squeeze-and-excitation (Hu et al. 2018) after the 3×3 convolution, its
bottleneck a quarter of the block's input width. Widths, bottleneck ratios and group widths are
made compatible here (the inner width a multiple of the group width).
FLOPs (multiply-adds, the paper's "flops") are counted by :func:`anynet_flops` without building
the model, so a design space can be sampled under a budget quickly.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from playground.errors import ConfigError

SE_RATIO = 0.25


@dataclasses.dataclass
class AnyNetSpec:
    """Per stage: ``depths`` (blocks), ``widths`` (channels), ``bottlenecks`` (ratio b) and
    ``group_widths`` (g); ``se``: Y blocks (squeeze-excitation) instead of X blocks."""

    depths: list[int] = dataclasses.field(default_factory=lambda: [1, 1, 2, 2])
    widths: list[int] = dataclasses.field(default_factory=lambda: [16, 32, 64, 128])
    bottlenecks: list[int] = dataclasses.field(default_factory=lambda: [1, 1, 1, 1])
    group_widths: list[int] = dataclasses.field(default_factory=lambda: [8, 8, 8, 8])
    se: bool = False
    stem_width: int = 16

    def __post_init__(self):
        lists = (self.depths, self.widths, self.bottlenecks, self.group_widths)
        if not self.depths or len({len(values) for values in lists}) != 1:
            raise ConfigError(
                "anynet: depths, widths, bottlenecks and group_widths need one value per stage each"
            )
        for name, values in zip(("depths", "widths", "bottlenecks", "group_widths"), lists):
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"anynet: {name} must be whole numbers ≥ 1, got {values}")
        if self.stem_width < 1:
            raise ConfigError(f"anynet: stem_width must be at least 1, got {self.stem_width}")
        self.widths, self.group_widths = compatible(self.widths, self.bottlenecks, self.group_widths)


def compatible(
    widths: list[int], bottlenecks: list[int], group_widths: list[int]
) -> tuple[list[int], list[int]]:
    """Widths whose inner width ``w / b`` is a multiple of the group width ``g`` (at least one group),
    as the paper's ``adjust_ws_gs_comp`` but keeping ``g``, so a space that shares ``g`` still does."""
    inner = [max(g, round(w / b / g) * g) for w, b, g in zip(widths, bottlenecks, group_widths)]
    return [i * b for i, b in zip(inner, bottlenecks)], list(group_widths)


class XBlock(nn.Module):
    """The residual bottleneck block with a group convolution (a Y block with ``se``)."""

    def __init__(self, w_in: int, w_out: int, stride: int, bottleneck: int, group_width: int, se: bool):
        super().__init__()
        inner = w_out // bottleneck
        layers = [
            nn.Conv2d(w_in, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
            nn.Conv2d(inner, inner, 3, stride, 1, groups=inner // group_width, bias=False),
            nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
        ]  # fmt: skip
        if se:
            layers.append(SqueezeExcitation(inner, max(1, round(w_in * SE_RATIO))))
        layers += [nn.Conv2d(inner, w_out, 1, bias=False), nn.BatchNorm2d(w_out)]
        self.body = nn.Sequential(*layers)
        self.shortcut = (
            nn.Identity()
            if w_in == w_out and stride == 1
            else nn.Sequential(nn.Conv2d(w_in, w_out, 1, stride, bias=False), nn.BatchNorm2d(w_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.shortcut(x) + self.body(x))


class SqueezeExcitation(nn.Module):
    """Channel gates ``x · σ(W2 ReLU(W1 avgpool(x)))`` (Hu et al., CVPR 2018)."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1), nn.ReLU(inplace=True),
            nn.Conv2d(squeezed, channels, 1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class AnyNet(nn.Module):
    """Stem, stages of X (or Y) blocks, global average pool: an (N, ``feature_dim``) embedding."""

    def __init__(self, in_channels: int = 1, spec: AnyNetSpec | None = None):
        super().__init__()
        spec = spec or AnyNetSpec()
        self.spec = spec
        stem = spec.stem_width
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(True),
        ]
        w_in = stem
        for depth, width, b, g in zip(spec.depths, spec.widths, spec.bottlenecks, spec.group_widths):
            for k in range(depth):
                layers.append(XBlock(w_in, width, 2 if k == 0 else 1, b, g, spec.se))
                w_in = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = w_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def anynet_backbone(in_channels: int = 1, anynet: AnyNetSpec | dict | None = None) -> AnyNet:
    """The backbone the model registry builds: ``anynet`` a spec or a dict of its fields."""
    spec = AnyNetSpec(**anynet) if isinstance(anynet, dict) else anynet
    return AnyNet(in_channels, spec)


def anynet_flops(spec: AnyNetSpec, image_size: int = 28, in_channels: int = 1) -> int:
    """Multiply-adds of one forward pass at ``image_size`` (convolutions and SE; BN and ReLU are free)."""
    side = image_size
    flops = side * side * 9 * in_channels * spec.stem_width
    w_in = spec.stem_width
    for depth, width, b, g in zip(spec.depths, spec.widths, spec.bottlenecks, spec.group_widths):
        for k in range(depth):
            out_side = (side - 1) // 2 + 1 if k == 0 else side
            inner = width // b
            flops += side * side * w_in * inner  # 1x1 in
            flops += out_side * out_side * 9 * inner * g  # 3x3, groups of width g
            if spec.se:
                flops += 2 * inner * max(1, round(w_in * SE_RATIO))
            flops += out_side * out_side * inner * width  # 1x1 out
            if k == 0 and (w_in != width or out_side != side):
                flops += out_side * out_side * w_in * width  # projection
            side, w_in = out_side, width
    return flops
