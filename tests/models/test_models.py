"""Behaviour of playground.models: shapes, heads, registry errors, gradients, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from playground.core.checkpoint import load_checkpoint, save_checkpoint
from playground.errors import ConfigError
from playground.models import (
    MODEL_NAMES,
    ClassifierHead,
    EmbeddingClassifier,
    EmbeddingHead,
    ModelOutput,
    SmallCNN,
    build_model,
    count_parameters,
)


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32)])
def test_output_shapes(name, shape):
    torch.manual_seed(0)
    model = build_model(name, in_channels=shape[1], num_classes=10, embedding_dim=32)
    out = model(torch.randn(shape))
    assert isinstance(out, ModelOutput)
    assert out.embedding.shape == (2, 32)
    assert out.logits.shape == (2, 10)
    assert torch.isfinite(out.embedding).all() and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_small_cnn_handles_8x8_digits(depth):
    model = build_model("small_cnn", in_channels=1, num_classes=10, width=8, depth=depth)
    out = model(torch.randn(2, 1, 8, 8))
    assert out.embedding.shape == (2, 128)
    assert out.logits.shape == (2, 10)


@pytest.mark.parametrize(
    ("width", "depth", "pool", "expected"),
    [(32, 1, 1, 32), (32, 2, 1, 64), (16, 3, 1, 64), (32, 2, 4, 64 * 16), (8, 2, 7, 16 * 49)],
)
def test_small_cnn_feature_dim_doubles_per_stage(width, depth, pool, expected):
    backbone = SmallCNN(in_channels=3, width=width, depth=depth, pool_size=pool)
    assert backbone.feature_dim == expected
    assert backbone(torch.randn(2, 3, 32, 32)).shape == (2, expected)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_backbone_feature_dim_matches_features(name):
    model = build_model(name, in_channels=1, num_classes=3)
    model.eval()
    features = model.backbone(torch.randn(1, 1, 28, 28))
    assert features.shape == (1, model.feature_dim)
    assert model.embedding_dim == 128 and model.num_classes == 3


def test_torchvision_feature_dims():
    assert build_model("resnet18", in_channels=1, num_classes=2).feature_dim == 512
    assert build_model("regnety_400mf", in_channels=1, num_classes=2).feature_dim == 440
    assert build_model("regnety_small", in_channels=1, num_classes=2).feature_dim == 64


def test_small_regnety_has_squeeze_excitation_and_three_stages():
    from torchvision.ops.misc import SqueezeExcitation

    regnet = build_model("regnety_small", in_channels=1, num_classes=10).backbone
    assert len(regnet.trunk_output) == 3
    assert any(isinstance(m, SqueezeExcitation) for m in regnet.modules())
    assert 30_000 < sum(p.numel() for p in regnet.parameters()) < 80_000  # 47k for one input channel


def test_num_classes_zero_gives_embedding_only_model():
    model = build_model("small_cnn", in_channels=1, num_classes=0, embedding_dim=16)
    out = model(torch.randn(2, 1, 28, 28))
    assert out.logits is None
    assert out.embedding.shape == (2, 16)
    assert model.classifier is None


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_embed_equals_forward_embedding_in_eval(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=3, num_classes=5, embedding_dim=24).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.embed(x), model(x).embedding)


def test_resnet18_stem_keeps_resolution():
    model = build_model("resnet18", in_channels=1, num_classes=10)
    resnet = model.backbone
    assert resnet.conv1.stride == (1, 1) and resnet.conv1.kernel_size == (3, 3)
    assert resnet.conv1.in_channels == 1
    assert isinstance(resnet.maxpool, nn.Identity)
    assert isinstance(resnet.fc, nn.Identity)
    x = torch.randn(2, 1, 28, 28)
    stem_out = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
    assert resnet.layer1(stem_out).shape[-2:] == (28, 28)


def test_regnet_stem_keeps_resolution():
    regnet = build_model("regnety_400mf", in_channels=1, num_classes=10).backbone
    conv = regnet.stem[0]
    assert conv.stride == (1, 1) and conv.in_channels == 1
    assert regnet.stem(torch.randn(2, 1, 32, 32)).shape[-2:] == (32, 32)
    assert isinstance(regnet.fc, nn.Identity)


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ConfigError, match="vgg99") as info:
        build_model("vgg99", in_channels=1, num_classes=10)
    for name in MODEL_NAMES:
        assert name in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_backbone_kwarg_names_key_and_valid_options():
    with pytest.raises(ConfigError, match="widht") as info:
        build_model("small_cnn", in_channels=1, num_classes=10, widht=64)
    assert "width" in str(info.value) and "depth" in str(info.value)
    with pytest.raises(ConfigError, match="widht"):
        build_model("resnet18", in_channels=1, num_classes=10, widht=64)


def test_options_of_another_backbone_are_dropped_in_one_place():
    """One config can name any model: small_cnn's width and pool size mean nothing to a ResNet."""
    plain = build_model("resnet18", in_channels=1, num_classes=10)
    with_cnn_options = build_model(
        "resnet18", in_channels=1, num_classes=10, width=64, pool_size=7, dropout=0.2
    )
    assert count_parameters(with_cnn_options) == count_parameters(plain)
    assert count_parameters(
        build_model("small_cnn", in_channels=1, num_classes=10, width=8)
    ) < count_parameters(build_model("small_cnn", in_channels=1, num_classes=10, width=16))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": -1, "num_classes": 10},
        {"in_channels": 0, "num_classes": 10},
        {"in_channels": 1, "num_classes": -2},
        {"in_channels": 1, "num_classes": 10, "embedding_dim": 0},
        {"in_channels": 1, "num_classes": 10, "embedding_dim": -5},
        {"in_channels": 1, "num_classes": 10, "depth": 0},
        {"in_channels": 1, "num_classes": 10, "dropout": 1.5},
    ],
)
def test_bad_sizes_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        build_model("small_cnn", **kwargs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_first_conv(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=4, embedding_dim=16)
    out = model(torch.randn(4, 1, 28, 28))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    grad = first_conv(model).weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_heads_standalone():
    features = torch.randn(5, 40)
    embedding = EmbeddingHead(40, 12)(features)
    assert embedding.shape == (5, 12)
    assert ClassifierHead(12, 7)(embedding).shape == (5, 7)


def test_embedding_classifier_wraps_any_backbone():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 20))
    model = EmbeddingClassifier(backbone, feature_dim=20, embedding_dim=8, num_classes=3)
    out = model(torch.randn(6, 3, 4, 4))
    assert out.embedding.shape == (6, 8) and out.logits.shape == (6, 3)


def test_count_parameters():
    model = build_model("small_cnn", in_channels=1, num_classes=10, width=8, depth=1)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total
    model.classifier.linear.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - 128 * 10
    assert count_parameters(build_model("resnet18", in_channels=1, num_classes=10)) > 10_000_000


def test_small_cnn_overfits_random_labels():
    torch.manual_seed(0)
    images = torch.randn(64, 1, 16, 16)
    labels = torch.randint(0, 10, (64,))
    model = build_model("small_cnn", in_channels=1, num_classes=10, width=16, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        optimizer.zero_grad()
        F.cross_entropy(model(images).logits, labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images).logits.argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.95


def test_models_are_channels_last_and_compute_what_nchw_computes(tmp_path):
    torch.manual_seed(0)
    model = build_model("small_cnn", in_channels=1, num_classes=10, width=8, pool_size=2).eval()
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(4, 1, 16, 16)  # plain NCHW input works unchanged
    nchw = build_model("small_cnn", in_channels=1, num_classes=10, width=8, pool_size=2)
    nchw.load_state_dict(model.state_dict())
    nchw = nchw.to(memory_format=torch.contiguous_format).eval()
    torch.testing.assert_close(model(images).logits, nchw(images).logits, rtol=1e-4, atol=1e-5)
    path = save_checkpoint(tmp_path / "m.safetensors", model.state_dict())  # safetensors wants contiguous
    nchw.load_state_dict(load_checkpoint(path)[0])
    torch.testing.assert_close(model(images).logits, nchw(images).logits, rtol=1e-4, atol=1e-5)
