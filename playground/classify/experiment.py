"""Train an image classifier through the one training loop and report how well it does.

The baseline recipe (``recipes/classify_fashion.toml``) trains the small CNN on
Fashion-MNIST. The report gives test accuracy, accuracy per class, a confusion matrix and
the training curves; the weights are saved as safetensors (``save_models``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import torch

from playground.classify.charts import charts
from playground.classify.metrics import accuracy, confusion_matrix, per_class_accuracy, slug
from playground.core.checkpoint import save_checkpoint
from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, ProgressEvent
from playground.core.runs import Metrics, Result, RunDir, markdown_table, metrics_table
from playground.core.training import History, fit, make_optimizer, predict
from playground.data import ImageDataset, TensorLoader
from playground.data.catalog import load_config_splits
from playground.errors import ConfigError
from playground.models import build_model, count_parameters
from playground.models.anynet import AnyNetSpec

EXPERIMENT = "classify"
HISTORY = "history"  # the results.json section: per-epoch figures and the loss of every step
CONFUSION = "confusion"  # the results.json section: the test confusion matrix and the class names


@dataclasses.dataclass
class Config(RunConfig):
    name: str = "classify"
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    download: bool = False
    train_limit: int = 0  # at most this many training images (0: all), stratified
    val_fraction: float = 0.1  # held out of train for the per-epoch validation curve
    model: Literal["small_cnn", "resnet18", "regnety_400mf", "regnety_small", "anynet"] = "small_cnn"
    width: int = 32  # small_cnn only
    depth: int = 2  # small_cnn only
    dropout: float = 0.25  # small_cnn only
    pool_size: int = 4  # small_cnn only: final adaptive pool to pool_size x pool_size
    anynet: AnyNetSpec = dataclasses.field(default_factory=AnyNetSpec)  # anynet only: stages, b, g, SE
    embedding_dim: int = 128
    epochs: int = 2
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"
    dtype: Literal["fp32", "fp16", "bf16"] = "fp32"

    def __post_init__(self):
        super().__post_init__()
        for key in ("epochs", "batch_size", "embedding_dim", "width", "depth"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


load_data = load_config_splits  # (train, val or None, test) for the config's dataset


def build(config: Config, train: ImageDataset) -> torch.nn.Module:
    options = dict(width=config.width, depth=config.depth, dropout=config.dropout, pool_size=config.pool_size)
    options["anynet"] = dataclasses.asdict(config.anynet)
    return build_model(
        config.model,
        in_channels=train.image_shape[0],
        num_classes=train.num_classes,
        embedding_dim=config.embedding_dim,
        **options,
    )


@dataclasses.dataclass
class ClassifyResults:
    """What a classify run hands back in memory: the training history and the test confusion."""

    history: History
    confusion: torch.Tensor  # [true, predicted] counts on the test set
    classes: list[str]
    step_loss: list[float]  # the training loss of every step


def load(
    config: Config, device=None, progress: Progress = None
) -> tuple[ImageDataset, ImageDataset | None, ImageDataset]:
    """``(train, val or None, test)``: bad data fails here, before a run folder exists."""
    return load_data(config, progress)


def steps(run: Run[Config], data: tuple[ImageDataset, ImageDataset | None, ImageDataset]) -> Finished:
    """Train, test, write the plots, the history and (when ``run.save_models``) the weights."""
    config, device, progress = run.config, run.device, run.progress
    train, val, test = data
    model = build(config, train)
    step_loss: list[float] = []
    start = time.perf_counter()
    # drop a ragged last batch: a batch of one breaks BatchNorm
    train_loader = TensorLoader.of(
        train,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        drop_last=len(train) > config.batch_size,
    )
    history = fit(
        model,
        train_loader,
        epochs=config.epochs,
        device=device,
        dtype=config.dtype,
        schedule=config.schedule,
        optimizer=make_optimizer(model, config.optimizer, config.lr, config.weight_decay),
        val_loader=TensorLoader.of(val, batch_size=512) if val is not None else None,
        progress=_recording(progress, step_loss),
    )
    train_seconds = time.perf_counter() - start
    outputs = predict(model, TensorLoader.of(test, batch_size=512), device=device, progress=progress)
    metrics, matrix = _test_metrics(outputs, test, train_seconds, count_parameters(model))
    results = ClassifyResults(history, matrix, test.classes, step_loss)
    for chart in charts(results):
        run.dir.save_chart(chart)
    if run.save_models:
        save_checkpoint(
            run.dir.path / "model.safetensors",
            model,
            {"experiment": EXPERIMENT, "config": dataclasses.asdict(config), "classes": test.classes},
        )
    run.dir.write_result(HISTORY, {"epochs": history.epochs, "step_loss": step_loss})
    run.dir.write_result(CONFUSION, {"matrix": matrix.tolist(), "classes": list(test.classes)})
    text = _report(config, metrics, test, train, device)
    return Finished(metrics, text, results)


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train, test and write the run directory; returns the metrics and report."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def _recording(progress: Progress, steps: list[float]):
    """Wrap ``progress`` so per-step training loss is kept for the training curve."""

    def callback(event: ProgressEvent) -> None:
        if event.stage == "train" and "batch_loss" in event.metrics:
            steps.append(event.metrics["batch_loss"])
        if progress is not None:
            progress(event)

    return callback


def _test_metrics(outputs, test: ImageDataset, train_seconds: float, parameters: int):
    logits, targets = outputs["logits"], outputs["target"]
    matrix = confusion_matrix(logits.argmax(1), targets, test.num_classes)
    metrics = Metrics()
    metrics.add("test/accuracy", accuracy(logits, targets), "fraction", "test")
    metrics.add("test/loss", torch.nn.functional.cross_entropy(logits, targets).item(), "nats", "test")
    for name, value in zip(test.classes, per_class_accuracy(matrix).tolist()):
        metrics.add(f"test/accuracy/{slug(name)}", value, "fraction", "test", class_name=name)
    metrics.add("train/seconds", train_seconds, "s", "train")
    metrics.add("model/parameters", parameters, "count")
    return metrics, matrix


def headline(metrics: Metrics) -> Metrics:
    """The metrics without the per-class accuracies (records tagged with a class)."""
    per_class = {r.name for r in metrics.select(class_name=...)}
    return Metrics({k: v for k, v in metrics.values.items() if k not in per_class}, metrics.units)


def _report(config: Config, metrics: Metrics, test: ImageDataset, train: ImageDataset, device) -> str:
    values = metrics.values
    per_class = [[name, values[f"test/accuracy/{slug(name)}"]] for name in test.classes]
    return (
        "\n\n".join(
            [
                f"# {config.name}: {config.model} on {config.dataset}",
                f"Trained on {len(train)} images for {config.epochs} "
                f"epoch{'s' * (config.epochs != 1)} on `{device}` "
                f"({values['train/seconds']:.1f} s); tested on {len(test)} images.",
                f"**Test accuracy: {values['test/accuracy']:.4f}**",
                metrics_table(headline(metrics)),
                "## Accuracy per class\n\n" + markdown_table(["class", "accuracy"], per_class),
                "![accuracy per class](per_class_accuracy.png)",
                "## Confusion matrix\n\n![confusion matrix](confusion_matrix.png)",
                "## Training curves\n\n![training curves](training_curves.png)",
            ]
        )
        + "\n"
    )
