"""The latency benchmark: every precision/runtime variant of one trained CNN, side by side.

``recipes/latency_fashion.toml`` trains the benchmark CNN on Fashion-MNIST (plus, when asked, a
50%-MAC pruned and fine-tuned copy, and a small student from scratch and by distillation),
builds every variant (:mod:`playground.latency.variants`; ``methods`` runs a subset), checks each
against ``torch_fp32`` on real test images, and measures:

- latency per batch size (the ``[bench]`` section: warm-up, then at least ``bench.min_iters`` calls
  and ``bench.min_seconds``; p50/p90/p99, mean, std, throughput) and the peak memory
  (:mod:`playground.core.timing`);
- accuracy on the test set, on a corrupted copy of it (blur, noise, low contrast:
  ``ood_accuracy``) and agreement with ``torch_fp32`` on far-OOD images (digits), to test
  the claim that reduced precision keeps familiar accuracy but drifts on unfamiliar data.

Metrics: ``bench/<variant>/b<batch>/p50_ms`` ... ``bench/<variant>/accuracy``, ``.../ood_accuracy``,
``.../size_mb``; ``results.json`` keeps the rows, checks and hardware (section ``benchmark``), and the
report adds the hardware, the int8 execution evidence, the flags, a CSV, the latency-versus-accuracy
Pareto chart and the latency bars (:mod:`playground.latency.charts`).
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path
from typing import ClassVar, Literal

import torch

from playground.core.config import RunConfig, chosen_methods
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, report, staged
from playground.core.runs import Result, RunDir
from playground.core.timing import BenchSpec, batch_sweep, hardware_info, measure_peak_memory
from playground.core.training import fit, make_optimizer
from playground.data import ImageDataset, TensorLoader, load_dataset
from playground.data.ood import corrupted_set, fit_images
from playground.data.splits import limit_per_split
from playground.errors import ConfigError
from playground.latency import report as text
from playground.latency.charts import charts
from playground.latency.distill import Distiller, KDLoss
from playground.latency.pruning import PruneSpec, count, prune_to_target
from playground.latency.results import BENCHMARK
from playground.latency.saved_models import MODELS_FOLDER, load_resized, save_models
from playground.latency.variants import (
    OTHER_MODELS,
    VARIANTS,
    BuildContext,
    Variant,
    build_variant,
    check_parity,
)
from playground.models import build_model

EXPERIMENT = "latency"
TEACHER = "benchmark_cnn"  # the trained model every precision variant is built from (and the KD teacher)


@dataclasses.dataclass(frozen=True)
class Bench(BenchSpec):
    """The ``[bench]`` section: how long each latency is measured (:class:`BenchSpec`, at most 20 s
    by default). Its ``threads`` stays 0: the run's ``threads`` reaches the timer at the call site."""

    max_seconds: float = 20.0


@dataclasses.dataclass
class Config(RunConfig):
    """The benchmark's settings; ``methods`` picks the variants to run (``--set methods='["torch_fp32",
    "ort_int8_static"]'``; empty: all of them; torch_fp32, the reference, must be among them; the old key
    ``variants`` still works), ``threads`` (from :class:`RunConfig`) sets the torch and ONNX Runtime
    intra-op threads, and ``save_models`` writes RUN/models/<name>.safetensors to re-time later.
    The ``[prune]`` section is the :class:`PruneSpec` of the pruned models (``--set prune.target=0.3``),
    the ``[bench]`` section the :class:`Bench` timing of every variant (``--set bench.min_iters=100``)."""

    # the flat keys of runs and recipes made before the [prune] and [bench] sections (read with a notice)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "prune_target": "prune.target",
        "prune_importance": "prune.importance",
        "prune_steps": "prune.steps",
        "prune_finetune_epochs": "prune.finetune_epochs",
        "warmup": "bench.warmup",
        "min_iters": "bench.min_iters",
        "min_seconds": "bench.min_seconds",
        "max_seconds": "bench.max_seconds",
        "variants": "methods",  # the one name of the subset field in every technique
    }
    name: str = "latency"
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    download: bool = False
    train_limit: int = 0
    test_limit: int = 0
    width: int = 64  # the benchmark CNN: small_cnn, 3 stages of width, 2x, 4x
    depth: int = 3
    pool_size: int = 4
    embedding_dim: int = 128
    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    methods: list[str] = dataclasses.field(default_factory=list)  # the variants to run (empty: all of them)
    prune: PruneSpec = dataclasses.field(default_factory=PruneSpec)  # pruned50: target = the MACs removed
    student_width: int = 16
    student_train_limit: int = 0  # the students' transfer set: this many training images (0: all of them)
    student_epochs: int = 0  # the students' epochs (0: epochs)
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0
    batch_sizes: list[int] = dataclasses.field(default_factory=lambda: [1, 32])
    bench: Bench = dataclasses.field(default_factory=Bench)
    calibration_images: int = 512
    corruption_severity: float = 1.5
    far_ood: Literal["digits", "shapes"] = "digits"
    models_from: str = ""  # a latency run folder: load its models instead of training them
    reuse: Literal["all", "teacher"] = "all"  # with models_from: every saved model, or the benchmark CNN only

    def __post_init__(self):
        super().__post_init__()
        self.methods = list(chosen_methods(self.methods, VARIANTS))  # in VARIANTS order; empty: all
        if "torch_fp32" not in self.methods:
            raise ConfigError("methods must include torch_fp32: every other variant is compared with it")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError(f"batch_sizes must be positive, got {self.batch_sizes}")
        for key in ("epochs", "width", "depth", "student_width", "calibration_images"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.student_train_limit < 0 or self.student_epochs < 0:
            raise ConfigError(
                "student_train_limit and student_epochs must be >= 0 (0: the teacher's images / epochs)"
            )
        KDLoss(self.kd_alpha, self.kd_temperature)
        if self.bench.threads:
            raise ConfigError(
                "bench.threads is the run's threads: set threads (e.g. --set threads=2) instead"
            )

    def model(self, in_channels: int, num_classes: int, width: int | None = None) -> torch.nn.Module:
        return build_model(
            "small_cnn",
            in_channels=in_channels,
            num_classes=num_classes,
            embedding_dim=self.embedding_dim,
            width=width or self.width,
            depth=self.depth,
            pool_size=self.pool_size,
            dropout=0.0,
        )


def load_data(config: Config, progress: Progress = None):
    """``(train, test, corrupted test, far-OOD images)``."""
    report(progress, "load data", 0, 1)
    kwargs = dict(root=config.data_root or None, download=config.download, seed=config.seed)
    train = limit_per_split(load_dataset(config.dataset, "train", **kwargs), config.train_limit, config.seed)
    test = limit_per_split(load_dataset(config.dataset, "test", **kwargs), config.test_limit, config.seed)
    corrupted = corrupted_set(test, config.corruption_severity, config.seed)
    far = fit_images(load_dataset(config.far_ood, "test", seed=config.seed).images, test.image_shape)
    report(progress, "load data", 1, 1)
    return train, test, corrupted, far[:2000]


def train(
    model,
    data: ImageDataset,
    config: Config,
    device,
    progress: Progress,
    epochs: int | None = None,
    loss_fn=None,
    parameters=None,
) -> torch.nn.Module:
    loader = TensorLoader.of(
        data,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        drop_last=len(data) > config.batch_size,
    )
    optimizer = make_optimizer(parameters if parameters is not None else model, "adamw", config.lr, 1e-4)
    kwargs = {"loss_fn": loss_fn} if loss_fn else {}
    fit(
        model,
        loader,
        epochs=epochs or config.epochs,
        optimizer=optimizer,
        device=device,
        progress=progress,
        **kwargs,
    )
    return model.cpu().eval()


def train_models(config: Config, train_set: ImageDataset, device, progress: Progress) -> tuple:
    """The benchmark CNN, then (as the variants ask) the pruned copies and the two students;
    with ``models_from``, the saved ones are loaded instead of trained."""
    shape, classes = train_set.image_shape, train_set.num_classes
    saved = load_saved_models(config, shape[0], classes)
    torch.manual_seed(config.seed)
    model = saved.pop(TEACHER, None)
    if model is None:
        model = train(
            config.model(shape[0], classes), train_set, config, device, staged(progress, "benchmark CNN")
        )
    others = dict(saved)
    for name, kd in (("pruned50", False), ("pruned50_kd", True)):
        if name in config.methods and name not in others:
            others[name] = prune(config, model, train_set, device, staged(progress, name), kd)
    if {"student_scratch", "student_kd"} & set(config.methods) - set(others):
        others.update(train_students(config, model, train_set, device, progress))
    return model, {k: v for k, v in others.items() if k in config.methods}


def train_students(config: Config, teacher, train_set: ImageDataset, device, progress: Progress) -> dict:
    """The same initial student trained from scratch and by KD, on the transfer set (``student_train_limit``
    images of ``train_set``: Hinton et al.'s soft targets matter most when the student sees few images)."""
    transfer = limit_per_split(train_set, config.student_train_limit, config.seed)
    epochs = config.student_epochs or config.epochs
    torch.manual_seed(config.seed + 1)
    initial = config.model(train_set.image_shape[0], train_set.num_classes, config.student_width)
    scratch = train(
        copy.deepcopy(initial), transfer, config, device, staged(progress, "student (scratch)"), epochs
    )
    kd = distill(
        config, copy.deepcopy(initial), teacher, transfer, device, staged(progress, "student (KD)"), epochs
    )
    return {"student_scratch": scratch, "student_kd": kd}


def distill(
    config: Config,
    student,
    teacher,
    train_set: ImageDataset,
    device,
    progress: Progress,
    epochs: int | None = None,
) -> torch.nn.Module:
    distiller = Distiller(student, teacher)
    train(
        distiller,
        train_set,
        config,
        device,
        progress,
        epochs=epochs,
        loss_fn=KDLoss(config.kd_alpha, config.kd_temperature),
        parameters=distiller.student,
    )
    return distiller.student.eval()


def prune(
    config: Config, model, train_set: ImageDataset, device, progress: Progress, kd: bool = False
) -> torch.nn.Module:
    """Prune a copy of ``model`` to the MAC target; fine-tune after every round, by KD from the
    unpruned model when ``kd`` (the recovery path) or on the labels alone."""
    pruned = copy.deepcopy(model).eval()
    batches = [(train_set.images[i : i + 128], train_set.labels[i : i + 128]) for i in range(0, 512, 128)]

    def finetune(m, round_):
        stage = staged(progress, f"round {round_}")
        if kd:
            distill(config, m, model, train_set, device, stage, epochs=config.prune.finetune_epochs)
        else:
            train(m, train_set, config, device, stage, epochs=config.prune.finetune_epochs)

    prune_to_target(pruned, train_set.images[:1], config.prune, gradient_batches=batches, finetune=finetune)
    return pruned.eval()


def load_saved_models(config: Config, in_channels: int, classes: int) -> dict:
    """The models saved by the run ``models_from`` (all of them, or the benchmark CNN only)."""
    if not config.models_from:
        return {}
    folder = Path(config.models_from).expanduser() / MODELS_FOLDER
    names = [TEACHER] + ([n for n in OTHER_MODELS if n in config.methods] if config.reuse == "all" else [])
    loaded = {}
    for name in names:
        path = folder / f"{name}.safetensors"
        if name == TEACHER or path.is_file():
            width = config.student_width if name.startswith("student") else config.width
            loaded[name] = load_resized(config.model(in_channels, classes, width), path)
    return loaded


def add_model_costs(results: dict, models: dict, example: torch.Tensor) -> None:
    """``macs`` and ``params`` (torch-pruning's ``count_ops_and_params``, one image) of the model each
    variant runs: its own for the pruned models and students, the benchmark CNN's for the rest."""
    costs = {name: count(m.cpu(), example.cpu()) for name, m in models.items()}
    for name, result in results.items():
        result["macs"], result["params"] = costs[name if name in costs else TEACHER]


@torch.no_grad()
def predictions(run, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return torch.cat(
        [run(images[i : i + batch_size]).argmax(1) for i in range(0, images.shape[0], batch_size)]
    )


def measure(config: Config, variant: Variant, data, reference: torch.Tensor) -> dict:
    """Accuracy on the test and corrupted sets, far-OOD agreement with fp32, latency, memory."""
    _, test, corrupted, far = data
    spec = dataclasses.replace(config.bench, threads=config.threads)
    sweep = batch_sweep(variant.run, test.images[: max(config.batch_sizes)], config.batch_sizes, spec)
    return {
        "accuracy": (predictions(variant.run, test.images) == test.labels).float().mean().item(),
        "ood_accuracy": (predictions(variant.run, corrupted.images) == corrupted.labels)
        .float()
        .mean()
        .item(),
        "far_agreement": (predictions(variant.run, far) == reference).float().mean().item(),
        "latency": sweep,
        "peak_mb": measure_peak_memory(variant.run, test.images[: max(config.batch_sizes)]),
    }


def benchmark(config: Config, model, others: dict, data, folder: Path, progress: Progress) -> tuple:
    train_set, test, _, far = data
    ctx = BuildContext(
        model.eval(),
        test.images[:32],
        train_set.images[: config.calibration_images],
        folder,
        threads=config.threads,
        others=others,
    )
    results, variants = {}, {}
    order = ["torch_fp32"] + [v for v in config.methods if v != "torch_fp32"]  # the reference comes first
    for i, name in enumerate(order):
        report(progress, "variants", i, len(order), message=name)
        variant = build_variant(ctx, name)
        if variant is None:
            continue
        if name == "torch_fp32":
            reference_far = predictions(variant.run, far)
        check_parity(variant, variants.get("torch_fp32", variant).run, test.images[:1000])
        variants[name], results[name] = variant, measure(config, variant, data, reference_far)
    report(progress, "variants", len(order), len(order))
    return variants, results, ctx


@dataclasses.dataclass
class LatencyResults:
    """What one benchmark run measured, in memory: the built variants and each one's measurements
    (accuracy, OOD accuracy, far-OOD agreement, latency sweep, peak memory, MACs, parameters)."""

    variants: dict[str, Variant]
    measurements: dict[str, dict]


def write_artifacts(run_dir: RunDir, config: Config, benchmark_results: dict) -> None:
    """The results section :data:`BENCHMARK`, its rows as ``results.csv``, and the charts at the
    smallest batch size (``pareto.png``, ``latency.png``)."""
    run_dir.write_result(BENCHMARK, benchmark_results)
    text.write_csv(run_dir, benchmark_results["rows"])
    for chart in charts(benchmark_results["rows"], min(config.batch_sizes)):
        run_dir.save_chart(chart)


def load(config: Config, device=None, progress: Progress = None) -> tuple:
    """``(train, test, corrupted test, far-OOD images)``: bad data fails here, before a run folder exists."""
    return load_data(config, progress)


def steps(run: Run[Config], data) -> Finished:
    """Train (or load) the models, build every variant, measure, write the results, CSV and charts."""
    config, progress = run.config, run.progress
    model, others = train_models(config, data[0], run.device, progress)
    if run.save_models:  # RUN/models/<name>.safetensors: re-time the same weights later (models_from)
        save_models(run.dir.path / MODELS_FOLDER, {TEACHER: model, **others})
    with tempfile.TemporaryDirectory() as folder:
        variants, results, ctx = benchmark(config, model, others, data, Path(folder), progress)
    add_model_costs(results, {TEACHER: model, **others}, data[0].images[:1])
    info = hardware_info()
    metrics = text.metrics_of(config, variants, results)
    write_artifacts(run.dir, config, text.benchmark_results(variants, results, info, ctx.skipped))
    report_text = text.single_report(config, metrics, variants, results, ctx, info)
    return Finished(metrics, report_text, LatencyResults(variants, results))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train, build every variant, measure, write the run (metrics, results, CSV, report, charts)."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)
