"""The labelling loop measured (experiment ``label``): consensus on simulated crowds, and the whole
loop with simulated annotators, uncertainty-ordered against random, on Fashion-MNIST.

- **Crowds** (:mod:`playground.label.crowd`): 3 annotators per test image with known confusion
  matrices; single annotator, majority vote and Dawid-Skene label accuracy, per setting.
- **Loop** (:mod:`playground.label.simulate`): a project on a pool of training images written as
  PNG files, rounds of ``budget`` items through the real store, retraining after each; test accuracy
  against labels spent per order, labels to reach ``target_accuracy``, and the auto-label error.

Store throughput with 8 annotator processes is ``scripts/bench_store.py`` (SQLite and PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from playground.active.learner import TrainSpec
from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, report
from playground.core.runs import Metrics, Result, RunDir
from playground.data import load_dataset
from playground.errors import ConfigError
from playground.label.crowd import FASHION_CONFUSABLE, crowd_benchmark
from playground.label.project import ProjectSettings
from playground.label.simulate import LoopCurve, simulate_loop, write_pool
from playground.store import Store

EXPERIMENT = "label"
ORDERS = ("uncertainty", "random")


@dataclasses.dataclass
class Config(RunConfig):
    """The crowd benchmark, then the loop: ``pool_size`` images, ``rounds`` rounds of ``budget`` labels."""

    name: str = "label"
    dataset: Literal["fashion_mnist"] = "fashion_mnist"
    data_root: str = ""
    crowd_limit: int = 10000  # test images the simulated crowds label
    pool_size: int = 20000
    test_size: int = 10000
    orders: list[str] = dataclasses.field(default_factory=lambda: list(ORDERS))
    rounds: int = 8
    budget: int = 200
    seed_size: int = 100
    annotator_accuracy: float = 1.0  # the simulated annotator of the loop (1: always right)
    target_accuracy: float = 0.80
    alpha: float = 0.05
    min_calibration: int = 100
    acquisition: str = "entropy"  # the uncertainty order's score: entropy, margin or bald
    selection: str = "power"  # top k, or sampled in proportion to the score
    train: TrainSpec = dataclasses.field(default_factory=TrainSpec)

    def __post_init__(self):
        super().__post_init__()
        unknown = [o for o in self.orders if o not in ORDERS]
        if unknown or not self.orders:
            raise ConfigError(f"orders {self.orders}: choose one or more of {', '.join(ORDERS)}")
        if self.rounds < 2 or self.budget < 10 or self.pool_size < self.budget * self.rounds:
            raise ConfigError("need rounds >= 2, budget >= 10 and a pool of at least rounds x budget images")


@dataclasses.dataclass
class LabelData:
    crowd_labels: np.ndarray
    pool: object
    test: object


def load(config: Config, device=None, progress: Progress = None) -> LabelData:
    root = config.data_root or None
    train = load_dataset(config.dataset, "train", root=root)
    test = load_dataset(config.dataset, "test", root=root)
    return LabelData(
        test.labels[: config.crowd_limit].numpy(),
        train.subset(torch.arange(min(config.pool_size, len(train)))),
        test.subset(torch.arange(min(config.test_size, len(test)))),
    )


def steps(run: Run[Config], data: LabelData) -> Finished:
    config = run.config
    crowd = crowd_benchmark(data.crowd_labels, 10, config.seed, FASHION_CONFUSABLE)
    curves = _loops(config, data, run.progress)
    metrics = _metrics(config, crowd, curves)
    _plot(run.dir.path, config, curves)
    return Finished(metrics, _report(config, crowd, curves, metrics), {"crowd": crowd, "loops": curves})


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def _settings(config: Config) -> ProjectSettings:
    return ProjectSettings(
        image_size=28,
        channels=1,
        budget=config.budget,
        seed_size=config.seed_size,
        alpha=config.alpha,
        min_calibration=config.min_calibration,
        acquisition=config.acquisition,
        selection=config.selection,
        train=config.train,
    )


def _loops(config: Config, data: LabelData, progress: Progress) -> dict[str, LoopCurve]:
    scratch = Path(tempfile.mkdtemp(prefix="label-loop-"))
    try:
        truth = write_pool(data.pool.images, data.pool.labels, scratch / "pool")
        curves = {}
        for order in config.orders:
            with Store(f"sqlite:///{scratch / order / 'loop.db'}") as store:
                curves[order] = simulate_loop(
                    store,
                    scratch / "pool",
                    truth,
                    (data.test.images, data.test.labels),
                    data.pool.classes,
                    _settings(config),
                    order,
                    config.rounds,
                    config.annotator_accuracy,
                    config.seed,
                    _stage(progress, order),
                )
        return curves
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _stage(progress: Progress, order: str):
    """``progress(done, total)`` rounds as run-template events ("loop (uncertainty)": round k of N)."""
    return lambda done, total: report(progress, f"loop ({order})", done, total)


def _metrics(config: Config, crowd: dict, curves: dict[str, LoopCurve]) -> Metrics:
    out = Metrics()
    for name, value in crowd.items():
        out.add(name, value, "", "test")
    wrong = labelled = 0
    for order, curve in curves.items():
        needed = curve.labels_to_target(config.target_accuracy)
        if needed < math.inf:
            out.add(
                f"loop/{order}/labels_to_target",
                needed,
                "labels",
                "test",
                target_accuracy=config.target_accuracy,
            )
        out.add(f"loop/{order}/final_accuracy", curve.accuracy[-1], "", "test", labels=curve.labels[-1])
        out.add(f"loop/{order}/auto_labelled", curve.auto_labelled, "images")
        wrong, labelled = wrong + curve.auto_wrong, labelled + curve.auto_labelled
    if labelled:
        out.add("loop/auto_label_error", wrong / labelled, "", "pool", alpha=config.alpha)
    return out


def _plot(folder: Path, config: Config, curves: dict[str, LoopCurve]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for order, curve in curves.items():
        axis.plot(curve.labels, curve.accuracy, marker="o", label=order)
    axis.axhline(config.target_accuracy, color="grey", linestyle="--", label="target")
    axis.set_xlabel("labels people gave")
    axis.set_ylabel("test accuracy")
    axis.set_title("The labelling loop on Fashion-MNIST")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "loop_curve.png", dpi=110)
    plt.close(figure)


def _report(config: Config, crowd: dict, curves: dict[str, LoopCurve], metrics: Metrics) -> str:
    lines = ["# The labelling loop", "", "## Consensus on simulated crowds (Fashion-MNIST test labels)", ""]
    lines += ["| metric | accuracy |", "|---|---|"] + [f"| `{k}` | {v:.4f} |" for k, v in crowd.items()]
    lines += [
        "",
        f"## The loop: {config.pool_size} pool images, {config.rounds} rounds of {config.budget}",
        "",
    ]
    lines += [
        "| order | labels | test accuracy | auto-labelled | auto-label error |",
        "|---|---|---|---|---|",
    ]
    for order, curve in curves.items():
        for n, accuracy in zip(curve.labels, curve.accuracy):
            lines.append(f"| {order} | {n} | {accuracy:.4f} | | |")
        error = f"{curve.auto_label_error:.4f}" if curve.auto_labelled else "none auto-labelled"
        lines.append(f"| {order} (all rounds) | | | {curve.auto_labelled} | {error} |")
    lines += ["", "![loop](loop_curve.png)", ""]
    error = metrics.values.get("loop/auto_label_error")
    if error is None:
        lines.append(
            f"Nothing was auto-labelled: the held-out labels people gave could not certify an error "
            f"≤ α = {config.alpha} with probability 1 − δ (more rounds, or a larger budget, give more)."
        )
    else:
        verdict = "within" if error <= config.alpha + 0.01 else "ABOVE"
        lines.append(f"Auto-label error {error:.4f}: {verdict} α + 0.01 = {config.alpha + 0.01:.2f}.")
    return "\n".join(lines) + "\n"
