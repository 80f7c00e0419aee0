"""Back into the model: train the project's next model version from the labels people gave.

Two policies (as in the active-learning technique, :mod:`playground.active.learner`):

- ``finetune_replay`` (default once a version exists): continue from the newest version's weights on
  the labels it has not seen plus ``train.replay`` labels it has, drawn at random (experience replay,
  so the model keeps what it knew), for ``train.finetune_steps`` optimiser steps;
- ``scratch``: from fresh weights on every label, ``train.epochs`` epochs within
  ``[train.min_steps, train.max_steps]`` steps.

The labels are people's consensus (:func:`playground.label.project.people_labels`); the held-out
ones are never trained on and give the version's accuracy. Each version is recorded with the labels
it used and its accuracy; the next round scores with it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from playground.active.learner import scratch_steps, train_on
from playground.errors import DataFormatError
from playground.label.project import open_project, people_labels, pool_images
from playground.label.versions import Version, build_models, latest, load_models, predict, save_version
from playground.store import Store

MIN_LABELS = 10


def retrain(store: Store, name: str, policy: str | None = None, seed: int = 0, progress=None) -> Version:
    """Train, evaluate and record the next model version of project ``name``."""
    started = time.time()
    project = open_project(store, name)
    settings = project.settings
    people = people_labels(store, project)
    train_ids, train_labels = people.split(held_out=False)
    test_ids, test_labels = people.split(held_out=True)
    if len(train_ids) < MIN_LABELS or len(set(train_labels.tolist())) < 2:
        raise DataFormatError(
            f"retraining {name!r} needs at least {MIN_LABELS} labels of two or more classes outside the "
            f"held-out set; people have given {len(train_ids)} so far: label the queue first"
        )
    previous = latest(store, project)
    policy = policy or settings.policy
    if policy not in ("finetune_replay", "scratch"):
        raise DataFormatError(f"unknown retraining policy {policy!r}; choose finetune_replay or scratch")
    if previous is None:
        policy = "scratch"
    images = _images(store, train_ids)
    torch.manual_seed(seed)
    models = build_models(project) if policy == "scratch" else load_models(project, previous)
    chosen, steps, new = _plan(project, policy, previous, train_ids, seed)
    for index, model in enumerate(models):
        train_on(model, images[chosen], train_labels[chosen], settings.train, steps, seed + 7_777_777 * index)
        if progress is not None:
            progress(index + 1, len(models))
    accuracy = _accuracy(store, models, test_ids, test_labels, settings.mc_samples, seed)
    detail = {
        "policy": policy,
        "parent": previous.number if previous else None,
        "labels": len(train_ids),
        "new_labels": new,
        "held_out": len(test_ids),
        "accuracy": accuracy,
        "steps": steps,
        "seconds": round(time.time() - started, 2),
    }
    version = save_version(store, project, models, detail)
    (Path(version.path) / "trained_on.json").write_text(json.dumps(train_ids))
    return version


def _images(store: Store, sample_ids: list[int]) -> torch.Tensor:
    return torch.cat([images for _, images in pool_images(store, sample_ids)])


def _plan(project, policy: str, previous: Version | None, train_ids: list[int], seed: int):
    """Which labels to train on (positions in ``train_ids``), for how many steps, and how many are new."""
    spec = project.settings.train
    seen = set()
    if previous is not None:
        trained = Path(previous.path) / "trained_on.json"
        seen = set(json.loads(trained.read_text())) if trained.is_file() else set()
    new = [i for i, sid in enumerate(train_ids) if sid not in seen]
    if policy == "scratch":
        return torch.arange(len(train_ids)), scratch_steps(spec, len(train_ids)), len(new)
    if not new:
        raise DataFormatError(
            f"v{previous.number} already learnt from every label; label more, or retrain --policy scratch"
        )
    old = torch.tensor([i for i, sid in enumerate(train_ids) if sid in seen], dtype=torch.long)
    replay = old[torch.randperm(len(old), generator=torch.Generator().manual_seed(seed))[: spec.replay]]
    return torch.cat([torch.tensor(new), replay]), spec.finetune_steps, len(new)


def _accuracy(store: Store, models, ids: list[int], labels: torch.Tensor, samples: int, seed: int):
    """Held-out accuracy of the mean prediction (None when people labelled no held-out image yet)."""
    if not ids:
        return None
    predicted = torch.cat(
        [predict(models, images, 1, seed).mean(0).argmax(1) for _, images in pool_images(store, ids)]
    )
    return float((predicted == labels).float().mean())
