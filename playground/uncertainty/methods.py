"""Uncertainty methods behind one small interface: ``fit(train, val)``, then ``predict(images)``
returning a :class:`~playground.uncertainty.scores.Prediction` of per-sample probabilities.

- ``SingleModel``: one network, softmax of its logits (S = 1).
- ``TemperatureScaled`` (Guo et al. 2017, "On Calibration of Modern Neural Networks"): the same
  network with logits divided by one scalar ``T`` fitted by minimising NLL on a held-out split,
  ``p = softmax(z / T)``; accuracy is unchanged, confidence is recalibrated.
- ``MCDropout`` (Gal & Ghahramani 2016, "Dropout as a Bayesian Approximation"): dropout stays on
  at test time and S stochastic passes approximate samples from a variational posterior,
  ``p(y|x) ≈ (1/S) Σ_s softmax(f_{ŵ_s}(x))`` with ``ŵ_s`` the weights under a fresh dropout mask.
- ``DeepEnsemble`` (Lakshminarayanan et al. 2017, "Simple and Scalable Predictive Uncertainty
  Estimation using Deep Ensembles"): N networks from different random initialisations and data
  orders, ``p(y|x) = (1/N) Σ_n softmax(f_n(x))``.
The pyro Bayesian network (``bnn.py``) has the same interface.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal, Protocol

import torch
from torch import nn

from playground.core.device import seed_everything
from playground.core.progress import Progress, report
from playground.core.training import fit, make_optimizer
from playground.data import ImageDataset, TensorLoader
from playground.errors import ConfigError, DataFormatError
from playground.models import build_model, count_parameters
from playground.uncertainty.scores import Prediction


@dataclasses.dataclass
class NetSpec:
    """How to build and train one classifier through the project's training loop: the uncertainty
    config's ``[net]`` section itself (``--set net.epochs=3``). The device is passed to the methods."""

    model: Literal["small_cnn", "resnet18", "regnety_400mf", "regnety_small"] = "small_cnn"
    width: int = 32
    depth: int = 2
    dropout: float = 0.25
    pool_size: int = 7
    embedding_dim: int = 128
    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = 0.0

    def __post_init__(self):
        for key in ("epochs", "batch_size", "embedding_dim", "width", "depth"):
            if getattr(self, key) < 1:
                raise ConfigError(f"net.{key} must be at least 1, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ConfigError(f"net.lr must be positive, got {self.lr}")

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        options = dict(width=self.width, depth=self.depth, dropout=self.dropout, pool_size=self.pool_size)
        return build_model(
            self.model,
            in_channels=in_channels,
            num_classes=num_classes,
            embedding_dim=self.embedding_dim,
            **options,
        )


class UncertaintyMethod(Protocol):
    name: str
    train_seconds: float

    def fit(
        self, train: ImageDataset, val: ImageDataset | None = None, progress: Progress = None
    ) -> None: ...

    def predict(self, images: torch.Tensor, progress: Progress = None) -> Prediction: ...

    @property
    def parameters(self) -> int: ...


def train_net(
    spec: NetSpec, train: ImageDataset, seed: int, progress: Progress = None, device: str = "cpu"
) -> nn.Module:
    """One classifier trained on ``device`` from seed ``seed`` (initialisation and data order)."""
    seed_everything(seed)
    model = spec.build(train.image_shape[0], train.num_classes)
    loader = TensorLoader.of(
        train, batch_size=spec.batch_size, shuffle=True, seed=seed, drop_last=len(train) > spec.batch_size
    )
    fit(
        model,
        loader,
        epochs=spec.epochs,
        device=device,
        progress=progress,
        optimizer=make_optimizer(model, spec.optimizer, spec.lr, spec.weight_decay),
    )
    return model.cpu().eval()


@torch.no_grad()
def forward_batches(
    model: nn.Module,
    images: torch.Tensor,
    device: str = "cpu",
    batch_size: int = 512,
    progress: Progress = None,
    stage: str = "predict",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, embedding)`` of ``model`` over ``images`` in batches, in the model's current mode."""
    check_images(images)
    model.to(device)
    logits, embedding = [], []
    steps = max(1, -(-images.shape[0] // batch_size))
    for step, start in enumerate(range(0, images.shape[0], batch_size), start=1):
        output = model(images[start : start + batch_size].to(device))
        logits.append(output.logits.float().cpu())
        embedding.append(output.embedding.float().cpu())
        report(progress, stage, step, steps)
    return torch.cat(logits), torch.cat(embedding)


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataFormatError(f"predict needs a non-empty image batch (N, C, H, W), got {shape}")


def _from_logits(logits: torch.Tensor, embedding: torch.Tensor | None) -> Prediction:
    """A prediction from stacked logits ``(S, N, C)``."""
    return Prediction(torch.softmax(logits, -1), logits, embedding)


class SingleModel:
    """One deterministic network, trained and run on ``device``."""

    name = "single"

    def __init__(self, spec: NetSpec, seed: int = 0, model: nn.Module | None = None, device: str = "cpu"):
        self.spec, self.seed, self.model, self.device, self.train_seconds = spec, seed, model, device, 0.0

    def fit(self, train: ImageDataset, val: ImageDataset | None = None, progress: Progress = None) -> None:
        start = time.perf_counter()
        self.model = train_net(self.spec, train, self.seed, progress, self.device)
        self.train_seconds = time.perf_counter() - start

    def predict(self, images: torch.Tensor, progress: Progress = None) -> Prediction:
        self.model.eval()
        logits, embedding = forward_batches(self.model, images, self.device, progress=progress)
        return _from_logits(logits[None], embedding)

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, steps: int = 100) -> float:
    """The ``T > 0`` that minimises the NLL of ``softmax(logits / T)`` (optimised as ``log T`` by L-BFGS)."""
    if logits.ndim != 2 or targets.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise DataFormatError(
            f"temperature fitting needs logits (N, C) and targets (N,), got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


class TemperatureScaled:
    """A trained single model whose logits are divided by a temperature fitted on ``val``."""

    name = "temp_scaled"

    def __init__(self, base: SingleModel, temperature: float = 1.0):
        self.base, self.temperature, self.train_seconds = base, temperature, 0.0

    def fit(self, train: ImageDataset, val: ImageDataset | None = None, progress: Progress = None) -> None:
        if val is None or len(val) == 0:
            raise ConfigError("temperature scaling needs a held-out validation split (val_fraction > 0)")
        start = time.perf_counter()
        prediction = self.base.predict(val.images, progress)
        self.temperature = fit_temperature(prediction.logits[0], val.labels)
        self.train_seconds = self.base.train_seconds + time.perf_counter() - start

    def predict(self, images: torch.Tensor, progress: Progress = None) -> Prediction:
        prediction = self.base.predict(images, progress)
        return _from_logits(prediction.logits / self.temperature, prediction.embedding)

    @property
    def parameters(self) -> int:
        return self.base.parameters + 1


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    return [
        m for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout))
    ]


class MCDropout:
    """A trained network with dropout left on at test time; ``samples`` stochastic passes."""

    name = "mc_dropout"

    def __init__(self, base: SingleModel, samples: int = 10, seed: int = 0):
        if samples < 2:
            raise ConfigError(f"MC dropout needs at least 2 samples, got {samples}")
        self.base, self.samples, self.seed, self.train_seconds = base, samples, seed, 0.0

    def fit(self, train: ImageDataset, val: ImageDataset | None = None, progress: Progress = None) -> None:
        if self.base.model is None:
            self.base.fit(train, val, progress)
        self.train_seconds = self.base.train_seconds

    def predict(self, images: torch.Tensor, progress: Progress = None) -> Prediction:
        model = self.base.model.eval()  # batch norm keeps its running statistics
        layers = dropout_modules(model)
        if not layers or all(m.p == 0 for m in layers):
            raise ConfigError("MC dropout needs a model with dropout > 0")
        _, embedding = forward_batches(model, images, self.base.device)
        for m in layers:
            m.train()
        try:
            with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
                torch.manual_seed(self.seed)  # the same masks for the same call: repeatable scores
                logits = torch.stack(
                    [
                        forward_batches(model, images, self.base.device)[0]
                        for _ in _counted(self.samples, progress, "mc dropout")
                    ]
                )
        finally:
            model.eval()
        return _from_logits(logits, embedding)

    @property
    def parameters(self) -> int:
        return self.base.parameters


class DeepEnsemble:
    """``members`` networks trained from different seeds on ``device``; ``first`` may reuse a trained
    single model."""

    name = "ensemble"

    def __init__(
        self,
        spec: NetSpec,
        members: int = 5,
        seed: int = 0,
        first: SingleModel | None = None,
        device: str = "cpu",
    ):
        if members < 2:
            raise ConfigError(f"an ensemble needs at least 2 members, got {members}")
        self.spec, self.members, self.seed, self.first, self.device = spec, members, seed, first, device
        self.models: list[nn.Module] = []
        self.train_seconds = 0.0

    def member_seed(self, index: int) -> int:
        return self.first.seed if index == 0 and self.first is not None else self.seed * 1000 + index

    def fit(self, train: ImageDataset, val: ImageDataset | None = None, progress: Progress = None) -> None:
        self.models, self.train_seconds = [], 0.0
        for index in range(self.members):
            report(progress, "ensemble member", index, self.members)
            if index == 0 and self.first is not None and self.first.model is not None:
                self.models.append(self.first.model)
                self.train_seconds += self.first.train_seconds
                continue
            start = time.perf_counter()
            self.models.append(train_net(self.spec, train, self.member_seed(index), progress, self.device))
            self.train_seconds += time.perf_counter() - start
        report(progress, "ensemble member", self.members, self.members)

    def predict(self, images: torch.Tensor, progress: Progress = None) -> Prediction:
        outputs = [
            forward_batches(m.eval(), images, self.device)
            for m in _counted(self.models, progress, "ensemble predict")
        ]
        logits = torch.stack([logit for logit, _ in outputs])
        return _from_logits(logits, outputs[0][1])

    @property
    def parameters(self) -> int:
        return sum(count_parameters(m) for m in self.models)


def _counted(items, progress: Progress, stage: str):
    """Iterate ``items`` (or ``range(items)``) reporting progress per item."""
    items = range(items) if isinstance(items, int) else items
    for index, item in enumerate(items):
        report(progress, stage, index, len(items))
        yield item
    report(progress, stage, len(items), len(items))
