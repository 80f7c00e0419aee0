"""The optimizers by name: the registry, labels and colours, the ``torch.optim`` counterpart of each,
building one from a config's name and options, and how many samples one of its gradients uses."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from playground.errors import ConfigError
from playground.optimizers.optimizers import (
    SGD,
    AdaDelta,
    Adagrad,
    Adam,
    GradientDescent,
    MiniBatchSGD,
    RMSprop,
)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "gd": GradientDescent,
    "sgd": SGD,
    "minibatch_sgd": MiniBatchSGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adadelta": AdaDelta,
}
LABELS = {
    "gd": "GD (full batch)",
    "sgd": "SGD (1 sample)",
    "minibatch_sgd": "mini-batch SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adadelta": "AdaDelta",
}
COLORS = {
    "gd": "#1f77b4",
    "sgd": "#ff7f0e",
    "minibatch_sgd": "#2ca02c",
    "adagrad": "#d62728",
    "rmsprop": "#9467bd",
    "adam": "#8c564b",
    "adadelta": "#e377c2",
}  # one colour per optimizer, in the charts (report and page)


@dataclass(frozen=True)
class TorchEquivalent:
    """The ``torch.optim`` class an optimizer matches, and how its keyword options translate."""

    cls: type[torch.optim.Optimizer]
    drop: tuple[str, ...] = ()  # options with no torch counterpart (they must be at their default)

    def kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k not in self.drop}


TORCH_EQUIVALENT: dict[str, TorchEquivalent] = {
    "gd": TorchEquivalent(torch.optim.SGD, drop=("accumulate",)),  # with accumulate=1
    "sgd": TorchEquivalent(torch.optim.SGD),
    "minibatch_sgd": TorchEquivalent(torch.optim.SGD),
    "adagrad": TorchEquivalent(torch.optim.Adagrad),
    "rmsprop": TorchEquivalent(torch.optim.RMSprop),
    "adam": TorchEquivalent(torch.optim.Adam),
    "adadelta": TorchEquivalent(torch.optim.Adadelta),
}


def check_name(name: str) -> type[torch.optim.Optimizer]:
    """The class registered as ``name``; ConfigError naming the choices otherwise."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def option_names(name: str) -> tuple[str, ...]:
    """The keyword options optimizer ``name`` accepts besides ``params`` and ``lr``."""
    params = inspect.signature(check_name(name).__init__).parameters
    return tuple(p for p in params if p not in ("self", "params", "lr"))


def written_out_optimizer(name: str, params: Iterable, lr: float, **options: Any) -> torch.optim.Optimizer:
    """Optimizer ``name`` over ``params``; unknown options are a ConfigError listing the valid ones."""
    cls = check_name(name)
    unknown = sorted(set(options) - set(option_names(name)))
    if unknown:
        raise ConfigError(
            f"{name}: unknown option {unknown[0]!r}; valid options: {', '.join(option_names(name))}"
        )
    return cls(params, lr=lr, **options)


def torch_counterpart(name: str, params: Iterable, lr: float, **options: Any) -> torch.optim.Optimizer:
    """The ``torch.optim`` counterpart of ``written_out_optimizer(name, params, lr, **options)``."""
    check_name(name)
    equivalent = TORCH_EQUIVALENT[name]
    return equivalent.cls(params, lr=lr, **equivalent.kwargs(options))


def batch_size_for(name: str, train_size: int, batch_size: int) -> int:
    """How many samples one gradient of optimizer ``name`` is computed on.

    Full-batch ``gd``: the whole training set (``train_size``); ``sgd``: 1; every other
    optimizer: the mini-batch ``batch_size``.
    """
    feeding = check_name(name).feeding
    return {"full": train_size, "single": 1}.get(feeding, min(batch_size, train_size))
