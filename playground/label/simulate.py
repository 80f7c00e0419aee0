"""The whole labelling loop with simulated annotators, through the real project code.

A pool of images with known labels is written as PNG files and made a labelling project in a
scratch database; then, round after round, :func:`~playground.label.rounds.run_round` queues items,
simulated annotators lease and label them through the store (each answer drawn from a confusion
matrix of :mod:`playground.label.crowd`, so ``accuracy=1`` is a perfect annotator), and
:func:`~playground.label.retrain.retrain` trains the next version. After each retrain the version is
scored on a separate test set: test accuracy against the labels people spent, for an order
(``uncertainty``: the project's acquisition and selection with calibration picks; ``random``: the
same budget, drawn at random). Each round's auto-labels are checked against the truth: the error among
them should stay ``≤ α``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sqlalchemy import select

from playground.label.crowd import confusion
from playground.label.project import ProjectSettings, init_project, open_project, pool_meta
from playground.label.retrain import retrain
from playground.label.rounds import run_round
from playground.label.versions import latest, load_models, predict
from playground.store import Store
from playground.store_schema import rounds, routes


@dataclasses.dataclass
class LoopCurve:
    """One order's run: labels people spent and test accuracy after each retrain, and the auto-labels."""

    order: str
    labels: list[int] = dataclasses.field(default_factory=list)
    accuracy: list[float] = dataclasses.field(default_factory=list)
    auto_labelled: int = 0
    auto_wrong: int = 0
    seconds: float = 0.0

    @property
    def auto_label_error(self) -> float:
        return self.auto_wrong / self.auto_labelled if self.auto_labelled else math.nan

    def labels_to_target(self, target: float) -> float:
        """The labels spent when test accuracy first reached ``target`` (inf: never)."""
        return next((n for n, a in zip(self.labels, self.accuracy) if a >= target), math.inf)


def write_pool(images: torch.Tensor, labels: torch.Tensor, folder: Path) -> dict[str, int]:
    """The pool as PNG files ``<index>.png``; returns ``file name -> true label``."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for index, (image, label) in enumerate(zip(images, labels)):
        name = f"{index:06d}.png"
        pixels = (image.permute(1, 2, 0).squeeze(-1).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / name)
        truth[name] = int(label)
    return truth


def simulate_loop(
    store: Store,
    pool_dir: Path,
    truth: dict[str, int],
    test: tuple[torch.Tensor, torch.Tensor],
    class_names: list[str],
    settings: ProjectSettings,
    order: str,
    rounds_: int,
    annotator_accuracy: float = 1.0,
    seed: int = 0,
    progress=None,
) -> LoopCurve:
    """Run ``rounds_`` rounds (the first picks the seed set) with one simulated annotator per item."""
    name = f"loop-{order}"
    init_project(store, name, pool_dir, class_names, settings)
    generator = torch.Generator().manual_seed(seed)
    matrix = (
        confusion("good", len(class_names), annotator_accuracy, generator) if annotator_accuracy < 1 else None
    )
    curve, spent = LoopCurve(order), 0
    for number in range(rounds_):
        run_round(store, name, order=order, seed=seed)
        spent += _annotate(store, name, truth, matrix, generator)
        _count_auto_labels(store, name, truth, curve)
        version = retrain(store, name, seed=seed)
        curve.labels.append(spent)
        curve.accuracy.append(_test_accuracy(store, name, test, seed))
        curve.seconds += version.detail["seconds"]
        if progress is not None:
            progress(number + 1, rounds_)
    return curve


def _annotate(store: Store, queue: str, truth: dict[str, int], matrix, generator) -> int:
    """Label everything in the queue; an answer is the truth, or drawn from the annotator's confusion row."""
    done = 0
    while (item := store.lease_next(queue, "simulated")) is not None:
        label = truth[item.external_id]
        if matrix is not None:
            label = int(
                torch.multinomial(torch.as_tensor(matrix[label], dtype=torch.float), 1, generator=generator)
            )
        store.submit(f"sim-{item.escalation_id}", item.escalation_id, "simulated", "correct", label)
        done += 1
    return done


def _count_auto_labels(store: Store, name: str, truth: dict[str, int], curve: LoopCurve) -> None:
    project = open_project(store, name)
    meta = pool_meta(store, project)

    def work(conn):
        newest = conn.execute(
            select(rounds.c.id)
            .where(rounds.c.project_id == project.id)
            .order_by(rounds.c.number.desc())
            .limit(1)
        ).scalar()
        query = select(routes.c.sample_id, routes.c.predicted).where(
            routes.c.round_id == newest, routes.c.route == "auto"
        )
        return conn.execute(query).all()

    auto = store.read(work)
    curve.auto_labelled += len(auto)
    curve.auto_wrong += sum(truth[meta[sid]["path"]] != predicted for sid, predicted in auto)


def _test_accuracy(store: Store, name: str, test: tuple[torch.Tensor, torch.Tensor], seed: int) -> float:
    project = open_project(store, name)
    models = load_models(project, latest(store, project))
    images, labels = test
    predicted = torch.cat(
        [
            predict(models, images[i : i + 2048], 1, seed).mean(0).argmax(1)
            for i in range(0, len(images), 2048)
        ]
    )
    return float((predicted == labels).float().mean())
