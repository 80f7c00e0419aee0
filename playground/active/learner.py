"""The model that is labelled for, how it is (re)trained each round, and its MC-dropout posterior.

``ActiveCNN`` follows the network of Gal, Islam & Ghahramani 2017 ("Deep Bayesian Active
Learning with Image Data": two convolutions, max-pool, dropout 0.25, dense 128, dropout 0.5,
dense C) with a max-pool after each convolution: conv 3x3 (w) - ReLU - pool - conv 3x3 (2w) -
ReLU - pool - dropout 0.25 - dense 128 - ReLU - dropout 0.5 - dense C. Measured on
Fashion-MNIST with 1,000 labels and 300 steps, w = 32 reaches 0.82 test accuracy against 0.80
for Gal's layout at w = 16 in about the same time. Its dropout sits only in the dense head, so MC
dropout computes the convolutional features once and runs the head S times:
``p(y|x) ≈ (1/S) Σ_s softmax(head_{m_s}(φ(x)))`` with ``m_s`` a fresh dropout mask.

Two retraining policies:

- ``scratch``: every round restarts from the same initial weights and trains on every label;
- ``finetune_replay``: continue from last round's weights on the new labels plus ``replay``
  old ones drawn at random, so the model keeps what it knew (experience replay) at a
  fraction of the compute.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn

from playground.core.training import fit
from playground.data import TensorLoader
from playground.errors import ConfigError
from playground.models.outputs import ModelOutput

POLICIES = ("scratch", "finetune_replay")


class ActiveCNN(nn.Module):
    """A small CNN in Gal et al.'s mould; ``features`` is deterministic, ``head`` holds the dropout."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        width: int = 32,
        hidden: int = 128,
        dropout: tuple[float, float] = (0.25, 0.5),
    ):
        super().__init__()
        if image_size < 4:
            raise ConfigError(f"ActiveCNN needs images of at least 4x4 pixels, got {image_size}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 2 * width * (image_size // 4) ** 2
        self.hidden = nn.Sequential(nn.Dropout(dropout[0]), nn.Linear(flat, hidden), nn.ReLU())
        self.classifier = nn.Sequential(nn.Dropout(dropout[1]), nn.Linear(hidden, num_classes))

    def head(self, features: torch.Tensor) -> ModelOutput:
        embedding = self.hidden(features)
        return ModelOutput(embedding=embedding, logits=self.classifier(embedding))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.head(self.features(x))


@dataclasses.dataclass
class TrainSpec:
    """The ``[train]`` section: how each round trains: ``epochs`` over the labels, kept within
    [min_steps, max_steps] optimiser steps so that 20 labels still train and 1,000 do not take all day;
    ``finetune_steps`` and ``replay`` are the ``finetune_replay`` policy's."""

    epochs: int = 50
    min_steps: int = 150
    max_steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    finetune_steps: int = 50  # optimiser steps per round under finetune_replay
    replay: int = 100  # old labels replayed with the new ones (finetune_replay)
    width: int = 32

    def __post_init__(self):
        for key in ("epochs", "min_steps", "max_steps", "batch_size", "width", "finetune_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be at least 1, got {getattr(self, key)}")


def build_learner(spec: TrainSpec, image_shape: tuple[int, int, int], num_classes: int) -> ActiveCNN:
    channels, height, width = image_shape
    model = ActiveCNN(channels, num_classes, min(height, width), spec.width)
    return model.to(memory_format=torch.channels_last)  # NHWC kernels, as models.build_model


def scratch_steps(spec: TrainSpec, labels: int) -> int:
    """``epochs`` over ``labels`` samples, kept within [min_steps, max_steps]."""
    per_epoch = math.ceil(labels / min(spec.batch_size, labels))
    return min(max(spec.epochs * per_epoch, spec.min_steps), spec.max_steps)


def train_on(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: TrainSpec,
    steps: int,
    seed: int,
    device: str = "cpu",
) -> nn.Module:
    """Train ``model`` in place on ``device`` for about ``steps`` optimiser steps (whole epochs) on the
    given labels; it comes back on the CPU."""
    batch = min(spec.batch_size, images.shape[0])
    epochs = max(1, round(steps / math.ceil(images.shape[0] / batch)))
    loader = TensorLoader(images, labels, batch_size=batch, shuffle=True, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    fit(model, loader, epochs=epochs, optimizer=optimizer, device=device)
    return model.cpu().eval()


class Learner:
    """A model and its retraining policy: ``update(images, labels, new)`` after each query, trained
    on ``device``."""

    def __init__(
        self,
        spec: TrainSpec,
        policy: str,
        image_shape,
        num_classes: int,
        seed: int,
        members: int = 1,
        device: str = "cpu",
    ):
        if policy not in POLICIES:
            raise ConfigError(f"unknown retraining policy {policy!r}; choose one of {', '.join(POLICIES)}")
        if members < 1:
            raise ConfigError(f"an ensemble needs at least 1 member, got {members}")
        torch.manual_seed(seed)
        self.spec, self.policy, self.seed, self.device, self.rounds = spec, policy, seed, device, 0
        self.models = [build_learner(spec, image_shape, num_classes) for _ in range(members)]
        self.initial_states = [copy.deepcopy(m.state_dict()) for m in self.models]

    @property
    def model(self) -> ActiveCNN:
        """The (first) network: the embedding for OOD scores comes from it."""
        return self.models[0]

    def update(self, images: torch.Tensor, labels: torch.Tensor, new: torch.Tensor) -> None:
        """Retrain every member after ``new`` (positions in ``images``) joined the labelled set."""
        seed = self.seed * 1000 + self.rounds
        self.rounds += 1
        scratch = self.policy == "scratch" or self.rounds == 1
        chosen = None if scratch else torch.cat([new, self._replayed(images.shape[0], new, seed)])
        for index, (model, initial) in enumerate(zip(self.models, self.initial_states)):
            member_seed = seed + index * 7_777_777
            if scratch:
                model.load_state_dict(initial)
                steps = scratch_steps(self.spec, images.shape[0])
                train_on(model, images, labels, self.spec, steps, member_seed, self.device)
            else:
                steps = self.spec.finetune_steps
                train_on(model, images[chosen], labels[chosen], self.spec, steps, member_seed, self.device)

    def probs(self, images: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
        """``(S, N, C)``: ``samples`` MC-dropout passes of one network, or one deterministic pass
        per member of a deep ensemble (Beluch et al. 2018, "The power of ensembles for active learning")."""
        if len(self.models) == 1:
            return mc_probs(self.model, images, samples, seed)
        return torch.cat([mc_probs(model, images, 1, seed) for model in self.models])

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Accuracy of the deterministic prediction (dropout off; the ensemble's mean)."""
        if images.shape[0] == 0:
            return float("nan")
        return (self.probs(images, 1, 0).mean(0).argmax(1) == labels).float().mean().item()

    def _replayed(self, total: int, new: torch.Tensor, seed: int) -> torch.Tensor:
        old = torch.ones(total, dtype=torch.bool)
        old[new] = False
        old = old.nonzero().squeeze(1)
        order = torch.randperm(old.shape[0], generator=torch.Generator().manual_seed(seed))
        return old[order[: self.spec.replay]]


@torch.no_grad()
def mc_probs(
    model: ActiveCNN, images: torch.Tensor, samples: int, seed: int, batch_size: int = 1024
) -> torch.Tensor:
    """Probability samples ``(S, N, C)``: features once, the dropout head ``samples`` times.

    ``samples == 1`` is the deterministic network (dropout off). The masks come from
    ``seed``, so the same call gives the same answer; the caller's RNG is left alone.
    """
    model.eval()
    features = torch.cat(
        [model.features(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)]
    )
    if samples == 1:
        return torch.softmax(model.head(features).logits, -1)[None]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.hidden.train(), model.classifier.train()
        try:
            return torch.stack([torch.softmax(model.head(features).logits, -1) for _ in range(samples)])
        finally:
            model.eval()


@torch.no_grad()
def embed(model: ActiveCNN, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The dense head's hidden activations (dropout off): the embedding for OOD scores."""
    model.eval()
    return torch.cat(
        [
            model.head(model.features(images[i : i + batch_size])).embedding
            for i in range(0, images.shape[0], batch_size)
        ]
    )
