"""The OOD benchmark: which model knows when it does not know?

One run trains a single network (read as MSP, energy, temperature-scaled and MC dropout), a
deep ensemble, and a pyro Bayesian network, then scores the in-distribution test set against
every OOD set (near: held-out classes; far: digits, shapes, noise) and a corrupted test set.
``methods`` picks some of them (``--set methods='["bnn"]'``); the others are neither trained nor
reported.
See :mod:`~playground.uncertainty.methods`, :mod:`~playground.uncertainty.bnn`,
:mod:`~playground.uncertainty.scores` and :mod:`~playground.uncertainty.metrics`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress
from playground.core.runs import Metrics, Result, RunDir
from playground.data.ood import DataSpec, OODData, load_ood_data
from playground.errors import ConfigError
from playground.uncertainty import benchmark, report
from playground.uncertainty.methods import NetSpec
from playground.uncertainty.scores import SCORES

EXPERIMENT = "uncertainty"


@dataclasses.dataclass
class Config(RunConfig):
    name: str = "uncertainty"
    # data
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    heldout_classes: list[int] = dataclasses.field(default_factory=lambda: [8, 9])  # near-OOD classes
    far_sets: list[str] = dataclasses.field(
        default_factory=lambda: ["digits", "shapes", "gaussian", "uniform"]
    )
    ood_folder: str = ""  # a user's OOD image folder, used when far_sets has "folder"
    train_limit: int = 0  # at most this many in-distribution training images (0: all)
    val_fraction: float = 0.1  # held out for temperature scaling
    test_limit: int = 0
    ood_limit: int = 2000  # images per OOD set
    corruption_severity: float = 1.5
    # the network every method is built from
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
    # methods
    methods: list[str] = dataclasses.field(
        default_factory=list
    )  # which of single, temp_scaled, mc_dropout, ensemble, bnn to train and report (empty: all)
    members: int = 5
    mc_samples: int = 10
    bnn_layers: Literal["last", "head", "all"] = "head"
    bnn_prior_scale: float = 0.05
    bnn_samples: int = 10
    bnn_epochs: int = 0  # 0: the same as epochs
    bnn_lr: float = 0.0  # 0: the same as lr
    knn_k: int = 50
    scores: dict[str, str] = dataclasses.field(
        default_factory=dict
    )  # row -> OOD score, e.g. {ensemble = "mutual_information"}

    def __post_init__(self):
        super().__post_init__()
        for key in ("epochs", "batch_size", "embedding_dim", "width", "depth", "knn_k"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        for key, least in (("members", 2), ("mc_samples", 2), ("bnn_samples", 2)):
            if getattr(self, key) < least:
                raise ConfigError(f"{key} must be at least {least}, got {getattr(self, key)}")
        if self.lr <= 0 or self.bnn_lr < 0 or self.bnn_prior_scale <= 0:
            raise ConfigError("lr and bnn_prior_scale must be positive and bnn_lr non-negative")
        benchmark.chosen_methods(self.methods)  # unknown names: one line listing the valid ones
        for row, name in self.scores.items():
            if row not in benchmark.ROWS or row in benchmark.FEATURE_ROWS or name not in SCORES:
                raise ConfigError(
                    f"scores: {row} = {name!r} is not a method row with a known score "
                    f"(rows {', '.join(r for r in benchmark.ROWS if r not in benchmark.FEATURE_ROWS)}; "
                    f"scores {', '.join(SCORES)})"
                )
        self.data_spec().check()

    def data_spec(self) -> DataSpec:
        return DataSpec(
            self.dataset,
            self.data_root,
            tuple(self.heldout_classes),
            tuple(self.far_sets),
            self.ood_folder,
            self.train_limit,
            self.val_fraction,
            self.test_limit,
            self.ood_limit,
            self.corruption_severity,
            self.seed,
        )

    def net_spec(self, device: str = "cpu") -> NetSpec:
        return NetSpec(
            self.model,
            self.width,
            self.depth,
            self.dropout,
            self.pool_size,
            self.embedding_dim,
            self.epochs,
            self.batch_size,
            self.lr,
            self.optimizer,
            self.weight_decay,
            device,
        )

    def method_settings(self) -> benchmark.MethodSettings:
        return benchmark.MethodSettings(
            self.members,
            self.mc_samples,
            self.bnn_layers,
            self.bnn_prior_scale,
            self.bnn_samples,
            self.bnn_epochs,
            self.bnn_lr,
            self.knn_k,
            dict(self.scores),
            tuple(self.methods),
        )


@dataclasses.dataclass
class UncertaintyResults:
    """What one run keeps in memory: the evaluation, the trained methods and the data they saw."""

    outcome: benchmark.Outcome
    methods: benchmark.Methods
    data: OODData


def load(config: Config, device=None, progress: Progress = None) -> OODData:
    """The in-distribution splits, the OOD sets and the corrupted test set."""
    return load_ood_data(config.data_spec())


def steps(run: Run[Config], data: OODData) -> Finished:
    """Train the chosen methods, evaluate every set, write plots and (when ``save_models``) the models."""
    config, device, progress = run.config, str(run.device), run.progress
    settings = config.method_settings()
    methods = benchmark.build_methods(config.net_spec(device), settings, config.seed)
    benchmark.train_methods(methods, data, settings, progress)
    outcome = benchmark.evaluate(methods, data, settings, progress)
    metrics = outcome.metrics(methods)
    report.write_artifacts(run.dir, outcome, data)
    if run.save_models:
        report.save_methods(run.dir, methods, config, data.train.image_shape[0])
    text = report.report_text(config, metrics, data, device)
    return Finished(metrics, text, UncertaintyResults(outcome, methods, data))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train every method, evaluate every set, write metrics, report, plots and models."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def aggregate_report(config: Config, metrics: Metrics, results) -> str:
    """The multi-seed report: every table as mean ± std over seeds."""
    return report.aggregate_text(config, metrics, results)
