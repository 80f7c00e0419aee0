"""The stand-in for trained weights: BatchNorm recalibration and a linear probe folded into the classifier."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from playground.errors import ConfigError
from playground.latency.probe import features_of, fit_linear_probe, recalibrate_batchnorm
from playground.latency.sources import load_source

SHAPE = (3, 32, 32)


def _coloured(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images whose class (0, 1, 2) is the colour channel that is brighter."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randn(n, *SHAPE, generator=generator) * 0.5
    images[torch.arange(n), labels] += 1.0
    return images, labels


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    return load_source("torchvision:resnet18", input_shape="3x32x32", num_classes=3)


def test_recalibration_gives_each_batchnorm_the_statistics_of_the_data(source):
    images, _ = _coloured(64, seed=0)
    first_conv, first_norm = source.module.conv1, source.module.bn1
    assert float(first_norm.running_var.mean()) == pytest.approx(1.0)  # the initial statistics
    assert recalibrate_batchnorm(source.module, images, batch=16) == 20
    with torch.no_grad():
        activations = first_conv(images)
    assert torch.allclose(first_norm.running_mean, activations.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(first_norm.running_var, activations.var((0, 2, 3)), rtol=1e-2)
    assert not source.module.training and not first_norm.training


def test_the_probe_is_folded_into_the_classifier_and_generalises(source, tmp_path):
    images, labels = _coloured(150, seed=1)
    recalibrate_batchnorm(source.module, images)
    assert fit_linear_probe(source.module, images, labels) >= 0.95
    held_out, held_labels = _coloured(90, seed=2)
    with torch.no_grad():
        logits = source.module(held_out)
    assert (logits.argmax(1) == held_labels).float().mean() >= 0.8  # chance is 1/3
    # the folded layer is exactly the probe: its logits come from the features by one affine map
    features = features_of(source.module, held_out)
    expected = features @ source.module.fc.weight.T + source.module.fc.bias
    assert torch.allclose(logits, expected, atol=1e-4)
    # saved as a state dict, it loads through --weights and gives the same logits
    path = tmp_path / "probe.safetensors"
    save_file({k: v.contiguous() for k, v in source.module.state_dict().items()}, str(path))
    reloaded = load_source("torchvision:resnet18", weights=path, input_shape="3x32x32", num_classes=3)
    with torch.no_grad():
        assert torch.allclose(reloaded.module(held_out), logits, atol=1e-5)


def test_a_class_count_that_does_not_fit_the_classifier_is_refused(source):
    images, labels = _coloured(20, seed=3)
    with pytest.raises(ConfigError, match="3 outputs but the labels have 4 classes"):
        fit_linear_probe(source.module, images, torch.where(labels == 2, 3, labels))
    with pytest.raises(ConfigError, match="no nn.Linear"):
        fit_linear_probe(nn.Sequential(nn.Conv2d(3, 3, 1)), images, labels)
