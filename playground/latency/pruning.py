"""Structured channel pruning with torch-pruning (Fang et al., "DepGraph: Towards Any Structural
Pruning", CVPR 2023).

Removing a conv's output channel also removes the matching batch-norm channel and the next
layer's input channel; torch-pruning's dependency graph finds these coupled groups, so the
model stays a smaller dense model that any runtime (ONNX Runtime included) runs faster.
Which channels go is decided by a group importance:

- ``magnitude``: the L2 norm of the group's weights (Li et al. 2017, "Pruning Filters");
- ``taylor``: |w * dL/dw| summed over the group, the first-order loss change when it is
  removed (Molchanov et al. 2019); needs a gradient from a few labelled batches;
- ``lamp``: layer-adaptive magnitude (Lee et al. 2021): within a layer, the squared weight of
  a channel divided by the sum of the squared weights not smaller than it.

:func:`prune_to_target` removes channels in ``steps`` rounds until the MACs (or parameters)
fall by ``target``; a ``finetune`` callback runs after every round (iterative pruning).
MACs and parameters come from ``torch_pruning.utils.count_ops_and_params``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from playground.core.training import logits_of
from playground.errors import ConfigError

IMPORTANCES: dict[str, Callable[[], object]] = {
    "magnitude": lambda: tp.importance.MagnitudeImportance(p=2),
    "taylor": lambda: tp.importance.TaylorImportance(),
    "lamp": lambda: tp.importance.LAMPImportance(p=2),
}
FINE_STEPS = 50  # torch-pruning's own increments; rounds stop as soon as their target is met


@dataclass(frozen=True)
class PruneSpec:
    """How to prune; the latency config's ``[prune]`` section itself (``--set prune.target=0.3``)."""

    target: float = 0.5  # fraction of the MACs (or parameters) to remove
    measure: Literal["macs", "params"] = "macs"
    importance: Literal["magnitude", "taylor", "lamp"] = "magnitude"  # a key of IMPORTANCES
    steps: int = 2  # rounds, each followed by the finetune callback
    finetune_epochs: int = 1  # the latency experiment's fine-tuning epochs after every round (0: its epochs)
    global_pruning: bool = False  # rank channels across layers instead of per layer
    max_channel_ratio: float = 0.9  # never remove more than this share of a layer's channels

    def __post_init__(self):
        if not 0.0 < self.target < 1.0:
            raise ConfigError(f"prune.target must be a fraction in (0, 1), got {self.target}")
        if self.measure not in ("macs", "params"):
            raise ConfigError(f"prune.measure must be 'macs' or 'params', got {self.measure!r}")
        if self.importance not in IMPORTANCES:
            raise ConfigError(
                f"unknown prune.importance {self.importance!r}; choose from {', '.join(IMPORTANCES)}"
            )
        for key, minimum in (("steps", 1), ("finetune_epochs", 0)):
            if getattr(self, key) < minimum:
                raise ConfigError(f"prune.{key} must be at least {minimum}, got {getattr(self, key)}")
        if not 0.0 < self.max_channel_ratio < 1.0:
            raise ConfigError(f"prune.max_channel_ratio must be in (0, 1), got {self.max_channel_ratio}")


@dataclass
class PruneResult:
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    rounds: int

    @property
    def macs_removed(self) -> float:
        return 1 - self.macs_after / self.macs_before

    @property
    def params_removed(self) -> float:
        return 1 - self.params_after / self.params_before


def count(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """``(MACs, parameters)`` of ``model`` for one forward of ``example``."""
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, example)
    model.train(was_training)
    return int(macs), int(params)


def _final_layers(model: nn.Module) -> list[nn.Module]:
    """The classifier layer keeps its outputs: one per class."""
    classifier = getattr(model, "classifier", None)
    if classifier is not None:
        return [classifier]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1:]


def _taylor_gradients(model: nn.Module, batches) -> None:
    model.zero_grad()
    for images, labels in batches:
        F.cross_entropy(logits_of(model(images)), labels).backward()


def build_pruner(model: nn.Module, example: torch.Tensor, spec: PruneSpec) -> tp.pruner.BasePruner:
    return tp.pruner.BasePruner(
        model,
        example,
        importance=IMPORTANCES[spec.importance](),
        global_pruning=spec.global_pruning,
        pruning_ratio=spec.max_channel_ratio,
        iterative_steps=FINE_STEPS,
        ignored_layers=_final_layers(model),
        output_transform=logits_of,
    )


def prune_to_target(
    model: nn.Module,
    example: torch.Tensor,
    spec: PruneSpec = PruneSpec(),
    *,
    gradient_batches=None,
    finetune: Callable[[nn.Module, int], None] | None = None,
) -> PruneResult:
    """Prune ``model`` in place until its MACs/params fall by ``spec.target``.

    ``gradient_batches`` (``[(images, labels), ...]``) is required by the Taylor importance;
    ``finetune(model, round)`` runs after each round.
    """
    if spec.importance == "taylor" and not gradient_batches:
        raise ConfigError(
            "the Taylor importance needs gradient_batches: a few labelled (images, labels) batches"
        )
    macs, params = count(model, example)
    pruner, index = build_pruner(model, example, spec), 0
    measure = (
        (lambda: count(model, example)[0]) if spec.measure == "macs" else (lambda: count(model, example)[1])
    )
    start = macs if spec.measure == "macs" else params
    for round_ in range(1, spec.steps + 1):
        goal = start * (1 - spec.target * round_ / spec.steps)
        while measure() > goal and index < FINE_STEPS:
            model.eval()
            if spec.importance == "taylor":
                _taylor_gradients(model, gradient_batches)
            pruner.step()
            index += 1
        if finetune is not None:
            finetune(model, round_)
    after_macs, after_params = count(model, example)
    if (after_macs if spec.measure == "macs" else after_params) > start * (1 - spec.target) * (1 + 1e-6):
        achieved = 1 - (after_macs if spec.measure == "macs" else after_params) / start
        raise ConfigError(
            f"pruning stopped at {achieved:.0%} fewer {spec.measure} (target {spec.target:.0%}): "
            f"raise prune.max_channel_ratio ({spec.max_channel_ratio}) or lower prune.target"
        )
    return PruneResult(macs, after_macs, params, after_params, spec.steps)


def channel_counts(model: nn.Module) -> list[int]:
    """Output channels of every conv layer, in order (what pruning changed)."""
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
