"""Build any playground model by name: ``build_model("small_cnn", in_channels=1, num_classes=10)``.

Every model is an ``EmbeddingClassifier`` around one of the backbones below. Bad names,
unknown backbone options and out-of-range sizes raise ``ConfigError`` with a one-line
message that names the valid choices.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from playground.errors import ConfigError
from playground.models.anynet import anynet_backbone
from playground.models.cnn import SmallCNN
from playground.models.heads import EmbeddingClassifier
from playground.models.torchvision_backbones import (
    regnet_y_400mf_backbone,
    regnet_y_small_backbone,
    resnet18_backbone,
)

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": SmallCNN,
    "resnet18": resnet18_backbone,
    "regnety_400mf": regnet_y_400mf_backbone,
    "regnety_small": regnet_y_small_backbone,
    "anynet": anynet_backbone,
}
MODEL_NAMES: tuple[str, ...] = tuple(BACKBONES)


def backbone_options(name: str) -> tuple[str, ...]:
    """The keyword options a backbone accepts besides ``in_channels``."""
    params = inspect.signature(BACKBONES[name]).parameters
    return tuple(p for p in params if p != "in_channels")


def _check_size(name: str, value: Any, minimum: int) -> None:
    """Raise ConfigError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _backbone_kwargs(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options backbone ``name`` takes. Options another backbone takes are dropped (so one config
    can name any model, as timm's ``create_model`` allows); an option no backbone takes is an error."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    valid = backbone_options(name)
    anywhere = {option for backbone in BACKBONES for option in backbone_options(backbone)}
    for key in options:
        if key not in anywhere:
            choices = ", ".join(valid) if valid else "none"
            raise ConfigError(f"{name}: unknown backbone option {key!r}; valid options: {choices}")
    return {key: value for key, value in options.items() if key in valid}


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    embedding_dim: int = 128,
    **backbone_kwargs: Any,
) -> EmbeddingClassifier:
    """Build model ``name``; ``num_classes=0`` gives an embedding-only model (logits None).

    ``backbone_kwargs`` may hold options of any backbone (``width``, ``pool_size``...): those
    ``name`` does not take are dropped here, in this one place.

    The model's 4-D weights are laid out channels-last (NHWC): convolutions, batch norm and
    max-pooling then run through oneDNN's NHWC kernels, which on a CPU train a ``small_cnn``
    about 1.5x faster (a conv layer 2.4x, a max-pool 10x; ``scripts/bench_memory_format.py``).
    Inputs need no change: a convolution whose weight is channels-last returns channels-last."""
    backbone_kwargs = _backbone_kwargs(name, backbone_kwargs)
    _check_size("in_channels", in_channels, 1)
    _check_size("num_classes", num_classes, 0)
    _check_size("embedding_dim", embedding_dim, 1)
    backbone = BACKBONES[name](in_channels=in_channels, **backbone_kwargs)
    model = EmbeddingClassifier(backbone, backbone.feature_dim, embedding_dim, num_classes)
    return model.to(memory_format=torch.channels_last)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters in ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, *inputs) -> int:
    """Multiply-accumulates of one forward pass on ``inputs`` (FLOPs / 2, by PyTorch's
    own ``FlopCounterMode``), with the model in eval mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    model.train(was_training)
    return counter.get_total_flops() // 2
