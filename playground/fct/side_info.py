"""Side-information: a compact, label-free feature stored next to each old embedding.

FCT (Ramanujan et al., CVPR 2022, section 3.2) learns it when the old model is trained,
on the same old-time images but *without* their labels, so it keeps what the old task
threw away. The default trainer is SimCLR-style contrastive learning
(:mod:`playground.swav.contrastive`); SwAV (Caron et al., NeurIPS 2020,
:mod:`playground.swav.swav`) is registered as ``"swav"``. Either way the side-info is the
encoder output of ``dim`` numbers (8 to 128) before the projection head.

Trainers are plug-ins: ``SIDE_INFO_TRAINERS[name](images, spec, seed, device, progress) -> model``
where ``model(images).embedding`` is the side-info. Register another with
:func:`register_side_info_trainer`. :class:`SideInfoSpec` is the FCT config's ``[side_info]``
section itself (``--set side_info.dim=64``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from playground.core.progress import Progress
from playground.core.training import fit, make_optimizer
from playground.errors import ConfigError
from playground.models import build_model
from playground.swav.contrastive import ContrastivePair, TwoViewLoader, contrastive_loss
from playground.swav.swav import SwAVConfig, build_swav, train_swav

MIN_DIM, MAX_DIM = 8, 128


@dataclass
class SideInfoSpec:
    """The ``[side_info]`` section: the method, the side-info size, the encoder and its optimisation."""

    method: str = "simclr"  # a registered trainer: "simclr" or "swav"
    dim: int = 32
    model: str = "small_cnn"
    width: int = 16  # small_cnn only
    pool_size: int = 4  # small_cnn only
    epochs: int = 8
    lr: float = 2e-3
    batch_size: int = 256
    temperature: float = 0.2  # SimCLR's NT-Xent and SwAV's softmax temperature
    prototypes: int = 30  # SwAV only: K
    small_crops: int = 4  # SwAV only: low-resolution views besides the 2 large ones

    def __post_init__(self):
        check_dims([self.dim])
        if self.method not in SIDE_INFO_TRAINERS:
            raise ConfigError(
                f"unknown side-info method {self.method!r}; "
                f"choose one of: {', '.join(sorted(SIDE_INFO_TRAINERS))}"
            )
        for key in ("epochs", "batch_size", "width", "pool_size", "prototypes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"side_info.{key} must be at least 1, got {getattr(self, key)}")
        if min(self.lr, self.temperature) <= 0 or self.small_crops < 0:
            raise ConfigError("side_info: lr and temperature must be positive, small_crops at least 0")


def check_dims(dims) -> None:
    """Raise ConfigError unless every side-info size is in [MIN_DIM, MAX_DIM]."""
    for dim in dims:
        if not MIN_DIM <= dim <= MAX_DIM:
            raise ConfigError(f"side-info sizes must be between {MIN_DIM} and {MAX_DIM}, got {dim}")


SideInfoTrainer = Callable[[torch.Tensor, SideInfoSpec, int, "torch.device | str", Progress], nn.Module]
SIDE_INFO_TRAINERS: dict[str, SideInfoTrainer] = {}


def register_side_info_trainer(name: str, trainer: SideInfoTrainer) -> None:
    SIDE_INFO_TRAINERS[name] = trainer


def build_encoder(spec: SideInfoSpec, in_channels: int) -> nn.Module:
    options = {"width": spec.width, "pool_size": spec.pool_size, "dropout": 0.0}  # small_cnn's only
    return build_model(spec.model, in_channels=in_channels, num_classes=0, embedding_dim=spec.dim, **options)


def train_simclr(
    images: torch.Tensor, spec: SideInfoSpec, seed: int = 0, device="cpu", progress: Progress = None
) -> nn.Module:
    """Contrastive (SimCLR) side-info encoder trained on unlabelled ``images``."""
    torch.manual_seed(seed)
    encoder = build_encoder(spec, images.shape[1])
    pair = ContrastivePair(encoder, spec.dim)
    loader = TwoViewLoader(images, batch_size=spec.batch_size, seed=seed)
    fit(
        pair,
        loader,
        epochs=spec.epochs,
        optimizer=make_optimizer(pair, "adamw", spec.lr, 1e-4),
        loss_fn=contrastive_loss(spec.temperature),
        device=device,
        progress=progress,
    )
    return encoder.eval()


register_side_info_trainer("simclr", train_simclr)


def train_swav_side_info(
    images: torch.Tensor, spec: SideInfoSpec, seed: int = 0, device="cpu", progress: Progress = None
) -> nn.Module:
    """SwAV side-info encoder (multi-crop, Sinkhorn codes, swapped prediction) trained on
    unlabelled ``images``; the SwAV settings not in the spec are :class:`SwAVConfig`'s defaults."""
    torch.manual_seed(seed)
    encoder = build_encoder(spec, images.shape[1])
    config = SwAVConfig(
        temperature=spec.temperature, prototypes=spec.prototypes, small_crops=spec.small_crops
    )
    model = build_swav(encoder, spec.dim, config)
    train_swav(
        model,
        images,
        config,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr=spec.lr,
        weight_decay=1e-4,
        seed=seed,
        device=device,
        progress=progress,
    )
    return encoder.eval()


register_side_info_trainer("swav", train_swav_side_info)


def train_side_info(
    images: torch.Tensor, spec: SideInfoSpec, seed: int = 0, device="cpu", progress: Progress = None
) -> nn.Module:
    """Train the side-info model with the trainer registered as ``spec.method``."""
    return SIDE_INFO_TRAINERS[spec.method](images, spec, seed, device, progress)
