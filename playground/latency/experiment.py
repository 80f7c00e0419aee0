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

import dataclasses
import tempfile
from pathlib import Path
from typing import ClassVar, Literal

import torch

from playground.core.config import RunConfig, chosen_methods
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, report
from playground.core.runs import Result, RunDir
from playground.core.timing import BenchSpec, batch_sweep, hardware_info, measure_peak_memory, tile_batch
from playground.data import load_dataset
from playground.data.ood import corrupted_set, fit_images
from playground.data.splits import limit_per_split
from playground.errors import ConfigError
from playground.latency import report as text
from playground.latency.charts import charts
from playground.latency.compat import compat_section, compressed, fct_compatibility
from playground.latency.distill import KDLoss
from playground.latency.evaluation import EvalSet, Reference, measure_quality, reference_of
from playground.latency.own_model import OwnModel, load_own
from playground.latency.pick import check_budget
from playground.latency.project_model import TEACHER, project_models
from playground.latency.pruning import PruneSpec, count
from playground.latency.results import BENCHMARK
from playground.latency.sources import check_model_spec, model_slug
from playground.latency.variants import (
    OTHER_MODELS,
    VARIANTS,
    BuildContext,
    Variant,
    build_variant,
    check_parity,
)
from playground.latency.verdict import Verdict
from playground.models import build_model

EXPERIMENT = "latency"
PROJECT_NAMES = ("latency", "latency_fashion")  # run names of the project's CNN; a team's model names its own
REFERENCES = ("torch_fp32", "ort_fp32")  # the first that builds is what every variant is compared with


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
    far_ood: Literal["digits", "shapes", "noise"] = "digits"
    # a team's own model (playground.latency.own_model); empty: the project's CNN, trained here
    model: str = ""  # torchvision:NAME, timm:NAME or a .onnx file; random weights unless weights is set
    weights: str = ""  # a .safetensors (or .pt/.pth state dict) for a torchvision/timm architecture
    input_shape: str = ""  # CxHxW, e.g. 3x224x224 (default: the model's own)
    num_classes: int = 0  # build the architecture with this many outputs (0: its own)
    preprocess: dict = dataclasses.field(default_factory=dict)  # resize, crop, mean, std, interpolation
    calibration_dir: str = ""  # images for int8 calibration (half are held out for agreement)
    eval_dir: str = ""  # an ImageFolder with the model's classes: accuracy, ECE, corrupted accuracy
    far_dir: str = ""  # far-OOD images (default: far_ood)
    eval_images: int = 500  # most images read from eval_dir
    compat_images: int = 2000  # the project CNN's embedders against its fp32 gallery (0: not measured)
    # the pick: the fastest variant within a budget at pick_batch (0: the smallest batch size)
    max_drop: float = -1.0  # accuracy points below the reference (negative: not set)
    min_agreement: float = 0.0  # argmax agreement with the reference (0: not set)
    pick_batch: int = 0
    models_from: str = ""  # a latency run folder: load its models instead of training them
    reuse: Literal["all", "teacher"] = "all"  # with models_from: every saved model, or the benchmark CNN only

    def __post_init__(self):
        super().__post_init__()
        self.methods = list(chosen_methods(self.methods, VARIANTS))  # in VARIANTS order; empty: all
        if not set(REFERENCES if self.model else REFERENCES[:1]) & set(self.methods):
            raise ConfigError(
                "methods must include torch_fp32 (or ort_fp32 for an ONNX file): every other variant is "
                "compared with it"
            )
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError(f"batch_sizes must be positive, got {self.batch_sizes}")
        if self.compat_images < 0:
            raise ConfigError(f"compat_images must be >= 0 (0: not measured), got {self.compat_images}")
        for key in ("epochs", "width", "depth", "student_width", "calibration_images"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.student_train_limit < 0 or self.student_epochs < 0:
            raise ConfigError(
                "student_train_limit and student_epochs must be >= 0 (0: the teacher's images / epochs)"
            )
        KDLoss(self.kd_alpha, self.kd_temperature)
        if self.max_drop >= 0 or self.min_agreement > 0:
            check_budget(*self.budget())
        if self.pick_batch and self.pick_batch not in self.batch_sizes:
            raise ConfigError(f"pick_batch {self.pick_batch} is not among batch_sizes {self.batch_sizes}")
        if self.model:  # a misspelt name or a missing file is refused before any data is read
            check_model_spec(self.model)
        if self.model and self.name in PROJECT_NAMES:  # runs/latency_resnet50-<time>, not latency_fashion
            self.name = f"latency_{model_slug(self.model)}"
        if self.model and self.models_from:
            raise ConfigError("models_from re-times the project's saved CNN; it cannot go with model")
        if self.bench.threads:
            raise ConfigError(
                "bench.threads is the run's threads: set threads (e.g. --set threads=2) instead"
            )

    def budget(self) -> tuple[float | None, float | None]:
        """``(max_drop, min_agreement)`` for :func:`playground.latency.pick.pick_variant`."""
        return (self.max_drop if self.max_drop >= 0 else None, self.min_agreement or None)

    def project_model(self, in_channels: int, num_classes: int, width: int | None = None) -> torch.nn.Module:
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


def add_model_costs(results: dict, models: dict, example: torch.Tensor) -> None:
    """``macs`` and ``params`` (torch-pruning's ``count_ops_and_params``, one image) of the model each
    variant runs: its own for the pruned models and students, the benchmark CNN's for the rest."""
    costs = {name: count(m.cpu(), example.cpu()) for name, m in models.items()}
    for name, result in results.items():
        result["macs"], result["params"] = costs[name if name in costs else TEACHER]


CPU_ONLY = ("torch_int8",)  # PT2E int8 (X86InductorQuantizer) runs on the CPU whatever the run's device


def timing_device(variant: Variant, device: str) -> str:
    """Where ``variant`` runs: the run's device for torch variants, the CPU for ONNX Runtime (its own
    provider copies the inputs) and for the CPU-only ones."""
    return device if variant.backend == "torch" and variant.name not in CPU_ONLY else "cpu"


def measure(
    config: Config, variant: Variant, data: EvalSet, reference: Reference, device: str = "cpu"
) -> dict:
    """Quality and trust (:func:`playground.latency.evaluation.measure_quality`), latency, memory. On a
    CUDA device the timing inputs stay on the GPU, calls are timed with CUDA events and the peak memory
    is the GPU's (:mod:`playground.core.timing`)."""
    spec = dataclasses.replace(config.bench, threads=config.threads)
    timing = tile_batch(data.images, max(config.batch_sizes))
    where = timing_device(variant, device)
    sweep = batch_sweep(variant.run, timing, config.batch_sizes, spec, where)
    return {
        **measure_quality(variant.run, data, reference),
        "latency": sweep,
        "peak_mb": measure_peak_memory(variant.run, timing, where),
    }


def benchmark(config: Config, ctx: BuildContext, data: EvalSet, progress: Progress) -> tuple:
    """Build and measure every variant asked for; the reference (torch_fp32, or ort_fp32 for an ONNX
    file) first, since every other variant is compared with it."""
    results, variants, reference = {}, {}, None
    order = [n for n in REFERENCES if n in config.methods] + [
        n for n in config.methods if n not in REFERENCES
    ]
    for i, name in enumerate(order):
        report(progress, "variants", i, len(order), message=name)
        if name in ctx.skipped:  # known not to run here (e.g. pruning for a team's model)
            continue
        variant = build_variant(ctx, name)
        if variant is None:
            continue
        if reference is None:
            reference = variant
            reference_logits = reference_of(variant.run, data)
        check_parity(variant, reference.run, data.images[:1000])
        variants[name], results[name] = variant, measure(config, variant, data, reference_logits, ctx.device)
    report(progress, "variants", len(order), len(order))
    if reference is None:
        raise ConfigError(f"no reference variant could be built: {ctx.skipped}")
    return variants, results


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


def load(config: Config, device=None, progress: Progress = None):
    """The project's data ``(train, test, corrupted test, far-OOD images)``, or with ``model`` the team's
    model and images (:class:`OwnModel`): bad input fails here, before a run folder exists."""
    if config.model:
        report(progress, "load model and images", 0, 1)
        own = load_own(config)
        report(progress, "load model and images", 1, 1)
        return own
    return load_data(config, progress)


def embedder_compatibility(config, ctx, variants, results, own, progress) -> list[str]:
    """The project CNN's reduced-precision embedders against its fp32 gallery
    (:func:`playground.latency.compat.fct_compatibility`), merged into ``results``; the report's section
    (none for a team's classifier or with ``compat_images = 0``)."""
    labels = own.data.labels
    if config.model or not config.compat_images or labels is None or "torch_fp32" not in variants:
        return []
    report(progress, "fct compatibility", 0, 1)
    count = min(config.compat_images, len(labels))
    rows, skipped = fct_compatibility(ctx, compressed(variants), own.data.images[:count], labels[:count])
    for name, row in rows.items():
        results[name].update(row)
    own.notes.extend(
        f"FCT compatibility: the {name} embedder did not build ({why})" for name, why in skipped.items()
    )
    report(progress, "fct compatibility", 1, 1)
    return compat_section(rows, count)


def steps(run: Run[Config], data) -> Finished:
    """Train (or load) the models, build every variant, measure, pick, write the results and report."""
    config, progress = run.config, run.progress
    own, others = (data, {}) if isinstance(data, OwnModel) else project_models(run, data)
    module = own.source.module
    with tempfile.TemporaryDirectory() as folder:
        ctx = BuildContext(
            module,
            own.data.images[:32],
            own.data.calibration,
            Path(folder),
            device=str(run.device),
            threads=config.threads,
            others=others,
            onnx_path=own.source.onnx_path,
        )
        if config.model:
            for name in set(config.methods) & set(OTHER_MODELS):
                ctx.skipped[name] = "pruning and distillation train the project's own CNN (run without model)"
        variants, results = benchmark(config, ctx, own.data, progress)
        compat = embedder_compatibility(config, ctx, variants, results, own, progress)
    if module is not None:
        add_model_costs(results, {TEACHER: module, **others}, own.source.example(1))
    info = hardware_info()
    verdict = Verdict.of(config, variants, results, ctx.skipped, info)
    metrics = text.metrics_of(config, variants, results)
    verdict.add_metrics(metrics)
    write_artifacts(run.dir, config, text.benchmark_results(variants, results, info, ctx.skipped))
    notes = [*own.notes, f"Measured on: {own.data.description}."]
    sections = [*compat, *verdict.sections()]
    report_text = text.single_report(config, metrics, variants, results, ctx, info, notes, sections)
    return Finished(metrics, report_text, LatencyResults(variants, results))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train, build every variant, measure, write the run (metrics, results, CSV, report, charts)."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)
