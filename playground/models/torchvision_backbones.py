"""torchvision ResNet-18, RegNetY-400MF and a small RegNetY adapted to small images as feature extractors.

The ImageNet stems downsample by 4 (ResNet) or 2 (RegNet) before the first stage, which
throws away most of a 28x28 or 32x32 image. Here the stem is a 3x3 stride-1 convolution
that accepts any number of input channels, ResNet's stem max-pool is removed, and the
final ``fc`` is replaced by ``nn.Identity`` so the model returns its pooled features.
Weights are always random (``weights=None``): nothing is downloaded.
"""

from __future__ import annotations

from torch import nn
from torchvision import models
from torchvision.models.regnet import BlockParams, RegNet
from torchvision.models.resnet import ResNet


def resnet18_backbone(in_channels: int = 3) -> ResNet:
    """ResNet-18 with a 3x3 stride-1 stem, no stem max-pool and no fc; ``feature_dim`` 512."""
    model = models.resnet18(weights=None)
    model.conv1 = nn.Conv2d(
        in_channels, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False
    )
    model.maxpool = nn.Identity()
    model.feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model


def regnet_y_400mf_backbone(in_channels: int = 3) -> RegNet:
    """RegNetY-400MF with a 3x3 stride-1 conv-BN-ReLU stem and no fc; ``feature_dim`` 440."""
    return _small_image_regnet(models.regnet_y_400mf(weights=None), in_channels)


def regnet_y_small_backbone(in_channels: int = 3) -> RegNet:
    """A RegNetY small enough for a CPU (47k parameters for 1 channel; SEER's trunk family, toy-sized).

    Radosavovic et al. 2020's design space (Y: squeeze-excitation 0.25, group width 8) with
    depth 6, w_0 = 16, w_a = 8, w_m = 2: stages of 1, 3 and 2 blocks, 16, 32 and 64 wide, each
    halving the resolution (28 -> 4 px). Same stem as :func:`regnet_y_400mf_backbone`;
    ``feature_dim`` 64. RegNetY-400MF has 16 blocks in 4 stages and about 4M parameters.
    """
    params = BlockParams.from_init_params(depth=6, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=0.25)
    return _small_image_regnet(RegNet(params, stem_width=16), in_channels)


def _small_image_regnet(model: RegNet, in_channels: int) -> RegNet:
    stem_channels = model.stem[0].out_channels
    model.stem = nn.Sequential(
        nn.Conv2d(in_channels, stem_channels, kernel_size=3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(stem_channels),
        nn.ReLU(inplace=True),
    )
    model.feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model
