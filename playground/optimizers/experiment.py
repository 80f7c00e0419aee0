"""Train the same small CNN with every written-out optimizer and compare their curves.

``recipes/optimizers_fashion.toml`` trains the small CNN on Fashion-MNIST once per optimizer,
from the same initial weights and through the one training loop (:func:`fit`). How the data
is fed is what tells the first three apart: full-batch gradient descent sees the whole
training set per update (fed in equal chunks whose gradients it averages), SGD one sample,
every other optimizer a mini-batch of ``batch_size``. BatchNorm cannot normalise a batch of
one, so by default (``norm = "group"``) the model's BatchNorm layers are replaced by
per-sample GroupNorm(1, C), which also makes the chunked full-batch gradient exact.

``methods`` picks the optimizers compared (empty: all of them). The run writes per-optimizer metrics
(``optim/<name>/test/accuracy``, ``.../train/final_loss``, ``.../train/seconds``...), the curves
(the ``curves`` section of ``results.json``), loss and accuracy charts, the trajectories of every
optimizer on the 2-D test functions, and ``report.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time
from typing import ClassVar, Literal

from torch import nn

from playground.core.config import RunConfig, chosen_methods
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, ProgressEvent, report
from playground.core.runs import Metrics, Result, RunDir
from playground.core.training import evaluate, fit
from playground.data import ImageDataset, TensorLoader
from playground.data.catalog import load_config_splits
from playground.errors import ConfigError, TrainingDivergedError
from playground.models import build_model
from playground.optimizers import report as text
from playground.optimizers.catalog import OPTIMIZERS, batch_size_for, written_out_optimizer
from playground.optimizers.curves import Curves, binned, write_curves
from playground.optimizers.functions import (
    FUNCTIONS,
    TestFunction,
    Trajectory,
    compare,
    get_function,
    suggested_lr,
)

EXPERIMENT = "optimizers"
# tuned on Fashion-MNIST (see recipes/optimizers_fashion.toml)
DEFAULT_LRS = {
    "gd": 0.03,
    "sgd": 0.003,
    "minibatch_sgd": 0.1,
    "adagrad": 0.01,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "adadelta": 0.3,
}
SGD_FAMILY = ("gd", "sgd", "minibatch_sgd")


@dataclasses.dataclass
class Config(RunConfig):
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"optimizers": "methods"}  # its name before (with a notice)
    name: str = "optimizers"
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    download: bool = False
    train_limit: int = 0  # at most this many training images (0: all), stratified
    val_fraction: float = 0.1  # held out of train for the per-epoch curves
    methods: list[str] = dataclasses.field(default_factory=lambda: list(OPTIMIZERS))  # empty: all
    lr_gd: float = DEFAULT_LRS["gd"]
    lr_sgd: float = DEFAULT_LRS["sgd"]
    lr_minibatch_sgd: float = DEFAULT_LRS["minibatch_sgd"]
    lr_adagrad: float = DEFAULT_LRS["adagrad"]
    lr_rmsprop: float = DEFAULT_LRS["rmsprop"]
    lr_adam: float = DEFAULT_LRS["adam"]
    lr_adadelta: float = DEFAULT_LRS["adadelta"]
    momentum: float = 0.0  # gd, sgd and minibatch_sgd only
    weight_decay: float = 0.0  # every optimizer (L2 added to the gradient)
    epochs: int = 2  # passes over the training data, for every optimizer but gd
    full_batch_epochs: int = 0  # passes for gd, one update each (0: epochs); it needs many more
    batch_size: int = 128  # the mini-batch (sgd: 1 sample, gd: the whole training set)
    full_batch_chunk: int = 500  # gd: images per forward pass while summing the full gradient
    schedule: Literal["constant", "cosine"] = "constant"
    norm: Literal["group", "batch"] = "group"  # group: per-sample norm, needed by sgd's batch of 1
    width: int = 16  # small_cnn
    depth: int = 2
    pool_size: int = 4
    embedding_dim: int = 64
    dropout: float = 0.0
    curve_points: int = 10  # training-loss points per epoch
    functions: list[str] = dataclasses.field(default_factory=lambda: list(FUNCTIONS))
    trajectory_steps: int = 300
    trajectory_noise: float = (
        0.0  # per-sample gradient noise σ on the 2-D functions (mini-batch: σ/√batch_size)
    )
    condition: float = 10.0  # the quadratic's condition number

    def __post_init__(self):
        super().__post_init__()
        self.methods = list(chosen_methods(self.methods, list(OPTIMIZERS)))
        _check_names("functions", self.functions, FUNCTIONS)
        for name in self.methods:
            if not (math.isfinite(self.lr_for(name)) and self.lr_for(name) > 0):
                raise ConfigError(f"lr_{name} must be a positive number, got {self.lr_for(name)}")
        for key in (
            "epochs",
            "batch_size",
            "full_batch_chunk",
            "width",
            "depth",
            "pool_size",
            "embedding_dim",
            "curve_points",
            "trajectory_steps",
        ):
            _check_range(key, getattr(self, key), 1, "be at least 1")
        for key in ("full_batch_epochs", "momentum", "weight_decay", "trajectory_noise"):
            _check_range(key, getattr(self, key), 0, "be >= 0")
        _check_range("condition", self.condition, 1, "be >= 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(
                f"val_fraction must be in (0, 1) (the curves are measured on it), got {self.val_fraction}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.norm == "batch" and "sgd" in self.methods:
            raise ConfigError(
                'norm = "batch" cannot train sgd (BatchNorm needs more than one sample per batch); '
                'use norm = "group" or leave sgd out of methods'
            )

    def epochs_for(self, name: str) -> int:
        """Passes over the training data for optimizer ``name``."""
        return self.full_batch_epochs or self.epochs if OPTIMIZERS[name].feeding == "full" else self.epochs

    def function(self, name: str) -> TestFunction:
        """2-D test function ``name`` (the quadratic with this config's condition number)."""
        return get_function(name, condition=self.condition) if name == "quadratic" else get_function(name)

    def lr_for(self, name: str) -> float:
        return getattr(self, f"lr_{name}")

    def options_for(self, name: str) -> dict:
        """The optimizer options besides ``lr`` this config asks for."""
        options = {"weight_decay": self.weight_decay} if self.weight_decay else {}
        if name in SGD_FAMILY and self.momentum:
            options["momentum"] = self.momentum
        return options


def _check_range(key: str, value: float, low: float, wanted: str) -> None:
    if not value >= low:  # NaN fails too
        raise ConfigError(f"{key} must {wanted}, got {value}")


def _check_names(key: str, names: list[str], known) -> None:
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown name {name!r} in {key}; choose from {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key} lists a name twice: {names}")


@dataclasses.dataclass
class Outcome:
    """What training with one optimizer gave."""

    name: str
    curves: Curves
    test: dict[str, float]  # test loss and accuracy
    final_loss: float  # mean training loss over the last epoch
    seconds: float  # wall time of fit (training plus the per-epoch validation)
    updates: int


def per_sample_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d in ``module`` by GroupNorm(1, C) (per-sample statistics), in place."""
    for key, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, key, nn.GroupNorm(1, child.num_features))
        else:
            per_sample_norm(child)
    return module


load_data = load_config_splits  # (train, val or None, test); every optimizer trains on the same images


def build(config: Config, train: ImageDataset) -> nn.Module:
    """The small CNN every optimizer starts from (same weights for all, from ``config.seed``)."""
    model = build_model(
        "small_cnn",
        in_channels=train.image_shape[0],
        num_classes=train.num_classes,
        embedding_dim=config.embedding_dim,
        width=config.width,
        depth=config.depth,
        dropout=config.dropout,
        pool_size=config.pool_size,
    )
    return per_sample_norm(model) if config.norm == "group" else model


def loader_for(config: Config, name: str, train: ImageDataset) -> tuple[TensorLoader, int]:
    """The training batches optimizer ``name`` is fed, and how many of them make one update.

    gd: the whole set in ``ceil(N / full_batch_chunk)`` equal chunks, one update per pass;
    sgd: one sample per update; the others: mini-batches of ``batch_size``.
    """
    size = batch_size_for(name, len(train), config.batch_size)
    if OPTIMIZERS[name].feeding == "full":
        chunks = math.ceil(size / config.full_batch_chunk)
        return TensorLoader.of(train, batch_size=size // chunks, drop_last=True), chunks
    drop_last = config.norm == "batch" and len(train) > size  # a batch of one breaks BatchNorm
    return TensorLoader.of(train, batch_size=size, shuffle=True, seed=config.seed, drop_last=drop_last), 1


def train_one(config: Config, name: str, initial: nn.Module, data, device, progress: Progress) -> Outcome:
    """Train a copy of ``initial`` with optimizer ``name`` through :func:`fit`; test it."""
    train, val, test = data
    model = copy.deepcopy(initial)
    loader, chunks = loader_for(config, name, train)
    options = config.options_for(name) | ({"accumulate": chunks} if chunks > 1 else {})
    optimizer = written_out_optimizer(
        name, [p for p in model.parameters() if p.requires_grad], config.lr_for(name), **options
    )
    val_loader = TensorLoader.of(val, batch_size=512)
    start = evaluate(model, val_loader, device=device)
    losses: list[float] = []
    began = time.perf_counter()
    try:
        history = fit(
            model,
            loader,
            epochs=config.epochs_for(name),
            optimizer=optimizer,
            device=device,
            schedule=config.schedule,
            val_loader=val_loader,
            progress=_recording(progress, name, losses),
        )
    except TrainingDivergedError as err:
        raise TrainingDivergedError(f"{name} (lr_{name} = {config.lr_for(name):g}): {err}") from None
    seconds = time.perf_counter() - began
    tested = evaluate(model, TensorLoader.of(test, batch_size=512), device=device)
    train_x, train_loss = binned(losses, len(loader), min(config.curve_points, len(loader) // chunks))
    if OPTIMIZERS[name].feeding == "full":  # every loss of pass e was measured at the parameters before it
        train_x = [x - 1 for x in train_x]
    curves = Curves(
        list(range(config.epochs_for(name) + 1)),
        [start["loss"], *history.series("val/loss")],
        [start["accuracy"], *history.series("val/accuracy")],
        train_x,
        train_loss,
    )
    return Outcome(
        name,
        curves,
        tested,
        statistics.fmean(losses[-len(loader) :]),
        seconds,
        config.epochs_for(name) * len(loader) // chunks,
    )


def _recording(progress: Progress, name: str, losses: list[float]):
    """Keep every batch loss of ``name``'s training and pass events on, tagged with the optimizer."""

    def callback(event: ProgressEvent) -> None:
        if event.stage == "train" and "batch_loss" in event.metrics:
            losses.append(event.metrics["batch_loss"])
        if progress is not None:
            progress(dataclasses.replace(event, stage=f"{name} {event.stage}"))

    return callback


def run_trajectories(config: Config, progress: Progress = None) -> dict[str, list[Trajectory]]:
    """Function name -> one trajectory per optimizer at its suggested learning rate."""
    out = {}
    for i, fname in enumerate(config.functions, start=1):
        fn = config.function(fname)
        lrs = {name: suggested_lr(fname, name) for name in config.methods}
        out[fname] = compare(
            fn,
            lrs,
            config.trajectory_steps,
            noise=config.trajectory_noise,
            batch_size=config.batch_size,
            seed=config.seed,
        )
        report(progress, "trajectories", i, len(config.functions))
    return out


@dataclasses.dataclass
class OptimizersResults:
    """What an optimizers run hands back in memory: every optimizer's outcome and the 2-D paths."""

    outcomes: dict[str, Outcome]  # optimizer name -> its training outcome
    trajectories: dict[str, list[Trajectory]]  # function name -> one trajectory per optimizer


def load(config: Config, device=None, progress: Progress = None):
    """``(train, val, test)``: bad data fails here, before a run folder exists."""
    return load_data(config, progress)


def steps(run: Run[Config], data) -> Finished:
    """Train with every optimizer, record the trajectories, write the curves and charts.

    Nothing here is worth keeping as a model (every optimizer trains the same throwaway small
    CNN), so ``run.save_models`` has nothing to save.
    """
    config, device, progress = run.config, run.device, run.progress
    initial = build(config, data[0])
    outcomes = {}
    for i, name in enumerate(config.methods, start=1):
        report(progress, "optimizers", i - 1, len(config.methods), message=name)
        outcomes[name] = train_one(config, name, initial, data, device, progress)
    report(progress, "optimizers", len(config.methods), len(config.methods))
    paths = run_trajectories(config, progress)
    metrics = text.metrics_of(config, outcomes, paths, data[0].num_classes)
    write_curves(run.dir, {name: o.curves for name, o in outcomes.items()})
    text.write_charts(run.dir, {name: o.curves for name, o in outcomes.items()}, paths, config)
    report_text = text.single_report(config, metrics, outcomes, paths, data, device)
    return Finished(metrics, report_text, OptimizersResults(outcomes, paths))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train with every optimizer in ``config.methods``, record trajectories, write the run."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def aggregate_report(config: Config, metrics: Metrics, results: list[Result]) -> str:
    """The multi-seed report: mean ± std of every number and of the curves (chart in the parent folder)."""
    return text.aggregate_report(config, metrics, results)
