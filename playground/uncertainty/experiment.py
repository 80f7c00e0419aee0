"""The OOD benchmark: which model knows when it does not know?

One run trains a single network (read as MSP, energy, temperature-scaled and MC dropout), a
deep ensemble, and a pyro Bayesian network, then scores the in-distribution test set against
every OOD set (near: held-out classes; far: digits, shapes, noise) and a corrupted test set.
``methods`` picks some of them (``--set methods='["bnn"]'``); the others are neither trained nor
reported. The network is the ``[net]`` section (:class:`~playground.uncertainty.methods.NetSpec`,
``--set net.epochs=3``), each method's settings the ``[bench]`` section
(:class:`~playground.uncertainty.benchmark.MethodSettings`, ``--set bench.bnn_layers='"last"'``).
See :mod:`~playground.uncertainty.methods`, :mod:`~playground.uncertainty.bnn`,
:mod:`~playground.uncertainty.scores` and :mod:`~playground.uncertainty.metrics`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress
from playground.core.runs import Metrics, Result, RunDir
from playground.data.ood import DataSpec, OODData, load_ood_data
from playground.uncertainty import benchmark, report
from playground.uncertainty.methods import NetSpec

EXPERIMENT = "uncertainty"


@dataclasses.dataclass
class Config(RunConfig):
    # the flat keys of runs and recipes made before the [net] and [bench] sections (read with a notice)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        **{
            key: f"net.{key}"
            for key in (
                "model",
                "width",
                "depth",
                "dropout",
                "pool_size",
                "embedding_dim",
                "epochs",
                "batch_size",
                "lr",
                "optimizer",
                "weight_decay",
            )
        },
        **{
            key: f"bench.{key}"
            for key in (
                "members",
                "mc_samples",
                "bnn_layers",
                "bnn_prior_scale",
                "bnn_samples",
                "bnn_epochs",
                "bnn_lr",
                "knn_k",
                "scores",
            )
        },
    }
    name: str = "uncertainty"
    # data (flat: DataSpec also carries the run's seed, so it is built by data_spec())
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
    # the network every method is built from: the [net] section (--set net.epochs=3)
    net: NetSpec = dataclasses.field(default_factory=NetSpec)
    # which of single, temp_scaled, mc_dropout, ensemble, bnn to train and report (empty: all)
    methods: list[str] = dataclasses.field(default_factory=list)
    # each method's own settings (members, mc_samples, bnn_*, knn_k, scores): the [bench] section
    bench: benchmark.MethodSettings = dataclasses.field(default_factory=benchmark.MethodSettings)

    def __post_init__(self):
        super().__post_init__()
        benchmark.chosen_methods(self.methods)  # unknown names: one line listing the valid ones
        self.data_spec().check()

    def data_spec(self) -> DataSpec:
        """The data fields and the run's seed (which seeds the splits, subsets and noise sets)."""
        return DataSpec(
            dataset=self.dataset,
            data_root=self.data_root,
            heldout_classes=tuple(self.heldout_classes),
            far_sets=tuple(self.far_sets),
            ood_folder=self.ood_folder,
            train_limit=self.train_limit,
            val_fraction=self.val_fraction,
            test_limit=self.test_limit,
            ood_limit=self.ood_limit,
            corruption_severity=self.corruption_severity,
            seed=self.seed,
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
    """Train the chosen methods, evaluate every set, write the results, charts and (when ``save_models``)
    the models."""
    config, device, progress = run.config, str(run.device), run.progress
    methods = benchmark.build_methods(config.net, config.bench, config.methods, config.seed, device)
    benchmark.train_methods(methods, data, config.bench, progress)
    outcome = benchmark.evaluate(methods, data, config.bench, progress)
    metrics = outcome.metrics(methods)
    report.write_artifacts(run.dir, outcome, data, config.bench.scores)
    if run.save_models:
        report.save_methods(run.dir, methods, config, data.train.image_shape[0])
    text = report.report_text(config, metrics, data, device)
    return Finished(metrics, text, UncertaintyResults(outcome, methods, data))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train every method, evaluate every set, write metrics, report, results, charts and models."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def aggregate_report(config: Config, metrics: Metrics, results) -> str:
    """The multi-seed report: every table as mean ± std over seeds."""
    return report.aggregate_text(config, metrics, results)
