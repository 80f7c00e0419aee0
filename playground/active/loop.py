"""The pool-based active-learning loop (Settles 2009; Gal et al. 2017's protocol).

Start from ``initial`` labels (balanced over the classes), then each round: retrain, record
test accuracy, score a random subset of the unlabelled pool with the acquisition function,
and label the ``query`` highest scorers, until ``budget`` labels are spent. Each round
records accuracy, forgetting (accuracy lost on the labels the model already had, from
before to after the update) and the seconds spent training and acquiring.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import torch

from playground.active.acquisition import SELECTIONS, acquisition, select
from playground.active.learner import Learner, TrainSpec
from playground.core.progress import Progress, report
from playground.data import ImageDataset
from playground.errors import ConfigError


@dataclasses.dataclass
class LoopSpec:
    """The ``[loop]`` section: the labels to start from, to add per round and to spend, and how
    each round scores and picks the pool candidates."""

    initial: int = 20
    query: int = 10
    budget: int = 1000
    pool_subset: int = 2000  # unlabelled samples scored per round (0: the whole pool)
    mc_samples: int = 20  # MC-dropout samples per score (the escalation's scores too)
    members: int = 1  # 1: MC dropout on one network; N > 1: a deep ensemble of N networks (N × the training)
    selection: Literal["top", "power"] = "top"  # the k highest scores, or sample ∝ score (Kirsch et al. 2023)

    def __post_init__(self):
        if self.query < 1 or self.budget < self.initial:
            raise ConfigError(
                "need loop.query >= 1 and loop.budget >= loop.initial, "
                f"got query {self.query}, budget {self.budget}, initial {self.initial}"
            )
        if self.mc_samples < 1 or self.pool_subset < 0:
            raise ConfigError("loop.mc_samples must be >= 1 and loop.pool_subset >= 0")
        if self.members < 1:
            raise ConfigError(f"loop.members must be at least 1, got {self.members}")
        if self.selection not in SELECTIONS:
            raise ConfigError(
                f"unknown loop.selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}"
            )

    def check(self, pool_size: int, num_classes: int) -> None:
        """The start must cover every class and the budget must fit in the pool."""
        if self.initial < num_classes:
            raise ConfigError(f"initial labels ({self.initial}) must cover every class ({num_classes})")
        if self.budget > pool_size:
            raise ConfigError(f"budget {self.budget} exceeds the pool of {pool_size} samples")


@dataclasses.dataclass
class Round:
    labels: int
    accuracy: float
    forgetting: float
    train_seconds: float
    acquire_seconds: float


@dataclasses.dataclass
class LoopHistory:
    strategy: str
    policy: str
    rounds: list[Round]
    labelled: torch.Tensor  # pool positions, in the order they were labelled
    learner: Learner

    def series(self, name: str) -> list[float]:
        return [getattr(r, name) for r in self.rounds]


def balanced_start(labels: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` positions spread evenly over the classes (Gal et al.: 2 per class for 20)."""
    classes = labels.unique()
    per_class = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    chosen = []
    for c, n in zip(classes, per_class):
        members = (labels == c).nonzero().squeeze(1)
        chosen.append(members[torch.randperm(members.shape[0], generator=generator)[:n]])
    return torch.cat(chosen)


def _candidates(unlabelled: torch.Tensor, subset: int, generator: torch.Generator) -> torch.Tensor:
    if subset == 0 or subset >= unlabelled.shape[0]:
        return unlabelled
    return unlabelled[torch.randperm(unlabelled.shape[0], generator=generator)[:subset]]


def acquire(
    learner: Learner,
    pool: ImageDataset,
    labelled: torch.Tensor,
    strategy: str,
    spec: LoopSpec,
    generator: torch.Generator,
    seed: int,
) -> torch.Tensor:
    """The next ``spec.query`` pool positions to label."""
    unlabelled = torch.ones(len(pool), dtype=torch.bool)
    unlabelled[labelled] = False
    candidates = _candidates(unlabelled.nonzero().squeeze(1), spec.pool_subset, generator)
    samples = 1 if strategy == "random" else spec.mc_samples
    probs = learner.probs(pool.images[candidates], samples, seed)
    scores = acquisition(strategy)(probs, generator)
    how = "top" if strategy == "random" else spec.selection
    return candidates[select(scores, spec.query, how, generator)]


def run_loop(
    pool: ImageDataset,
    test: ImageDataset,
    strategy: str,
    policy: str,
    spec: LoopSpec,
    train: TrainSpec,
    seed: int,
    progress: Progress = None,
    stage: str = "",
    device: str = "cpu",
) -> LoopHistory:
    """One learning curve: ``strategy`` acquires, ``policy`` retrains (on ``device``)."""
    acquisition(strategy)  # unknown names fail before any training
    spec.check(len(pool), pool.num_classes)
    generator = torch.Generator().manual_seed(seed)
    learner = Learner(train, policy, pool.image_shape, pool.num_classes, seed, spec.members, device)
    labelled = balanced_start(pool.labels, spec.initial, generator)
    new, rounds, acquire_seconds = labelled, [], 0.0
    total = 1 + -(-(spec.budget - spec.initial) // spec.query)
    while True:
        forgetting, train_seconds = _update(learner, pool, labelled, new)
        rounds.append(
            Round(
                labelled.shape[0],
                learner.accuracy(test.images, test.labels),
                forgetting,
                train_seconds,
                acquire_seconds,
            )
        )
        report(
            progress,
            stage or f"{strategy}/{policy}",
            len(rounds),
            total,
            metrics={"labels": labelled.shape[0], "accuracy": rounds[-1].accuracy},
        )
        if labelled.shape[0] >= spec.budget:
            return LoopHistory(strategy, policy, rounds, labelled, learner)
        start = time.perf_counter()
        new = acquire(learner, pool, labelled, strategy, spec, generator, seed * 7919 + len(rounds))
        new = new[: spec.budget - labelled.shape[0]]
        acquire_seconds = time.perf_counter() - start
        labelled = torch.cat([labelled, new])


def _update(
    learner: Learner, pool: ImageDataset, labelled: torch.Tensor, new: torch.Tensor
) -> tuple[float, float]:
    """Retrain; return (forgetting on the previously labelled samples, training seconds)."""
    old = labelled[: labelled.shape[0] - new.shape[0]]
    before = learner.accuracy(pool.images[old], pool.labels[old]) if learner.rounds else float("nan")
    start = time.perf_counter()
    positions = torch.arange(labelled.shape[0] - new.shape[0], labelled.shape[0])
    learner.update(pool.images[labelled], pool.labels[labelled], positions)
    seconds = time.perf_counter() - start
    after = learner.accuracy(pool.images[old], pool.labels[old]) if learner.rounds > 1 else float("nan")
    return before - after, seconds


def labels_to_target(history: LoopHistory, target: float) -> float:
    """The fewest labels at which test accuracy reached ``target`` (``inf`` if never)."""
    for r in history.rounds:
        if r.accuracy >= target:
            return float(r.labels)
    return float("inf")
