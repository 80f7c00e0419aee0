"""The knowledge-fusion ablation on the synthetic shapes (``recipes/fusion_shapes.toml``).

One run, one seed, everything on the same data:

1. the knowledge: a slot captioner trained on its own captioned pool (half of it degraded, so
   it copes with poor images), the sentence encoder, the shapes knowledge graph with TransE
   embeddings, and per regime a retrieval index over the labelled images;
2. the ablation: for every task (``classify`` the shape, ``segment`` it per pixel into
   background + 6 shape classes), every regime (``full`` labels, ``lowlabel``: a few per
   class, ``degraded_lowlabel``: the same few, blurred and occluded, train and test) and every
   variant (``image_only``, ``text``, ``kg``, ``retrieval``, ``all``; ``methods`` runs a subset, which
   always has image-only), one :class:`FusionNet` trained for the same number of steps;
3. the latency each addition costs (one image, the whole pipeline: caption, text encoder,
   entity lookup, retrieval, network);
4. zero-shot label embeddings on unseen colour-shape compositions (:mod:`.zeroshot_task`).

Metrics: ``fusion/<variant>/<regime>/accuracy`` and ``.../miou`` (plus ``..._gain`` over
image-only), ``fusion/<variant>/latency_ms``, ``zeroshot/heldout/accuracy``,
``zeroshot/heldout/chance``, ``zeroshot/gzsl/harmonic_mean``. Charts (:mod:`playground.fusion.charts`):
``ablation.png`` (every variant's scores) and ``gains.png`` (the change against image-only).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from playground.core.config import RunConfig, chosen_methods
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, report, staged
from playground.core.runs import Metrics, Result, RunDir
from playground.core.timing import BenchSpec, measure_latency
from playground.core.training import fit, make_optimizer
from playground.data import TensorLoader
from playground.data.shapes import make_shapes
from playground.errors import ConfigError
from playground.fusion import report as text
from playground.fusion.captioner import SlotCaptioner, caption_loss, describe, slot_accuracy, slot_targets
from playground.fusion.charts import charts
from playground.fusion.degrade import degrade
from playground.fusion.heads import FUSIONS
from playground.fusion.knowledge_graph import shapes_graph
from playground.fusion.metrics import confusion_matrix, mean_iou
from playground.fusion.model import TASKS, FusionNet
from playground.fusion.saved import save_run_models
from playground.fusion.sources import VARIANT_SOURCES, Knowledge, context_for, sources_of
from playground.fusion.text_encoder import load_text_encoder
from playground.fusion.transe import train_transe
from playground.fusion.zeroshot_fashion import run_fashion_zero_shot
from playground.fusion.zeroshot_task import ZeroShotResult, run_zero_shot
from playground.retrieval.index import build_index

EXPERIMENT = "fusion"
REGIMES = ("full", "lowlabel", "degraded_lowlabel")


@dataclasses.dataclass
class Config(RunConfig):
    """``methods`` picks the variants to compare (``--set methods='["image_only","retrieval"]'``; empty:
    all of them; image_only, the reference, must be among them; the old key ``variants`` still works)."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"variants": "methods"}  # the one name of the subset field
    name: str = "fusion"
    image_size: int = 32
    caption_pool: int = 3000  # captioned images (no task labels) the captioner learns from
    train_size: int = 2000  # labelled images in the full regime
    test_size: int = 1000
    lowlabel_per_class: int = 5  # labelled images per class in the low-label regimes
    blur: float = 1.5  # degraded: Gaussian blur sigma in pixels ...
    occlusion: float = 0.4  # ... and an occluding square of this fraction of the side
    tasks: list[str] = dataclasses.field(default_factory=lambda: list(TASKS))
    methods: list[str] = dataclasses.field(default_factory=list)  # the variants (empty: all of them)
    regimes: list[str] = dataclasses.field(default_factory=lambda: list(REGIMES))
    fusion: str = "film"
    compare_fusions: list[str] = dataclasses.field(default_factory=list)  # also train `all` with these heads
    modality_dropout: float = 0.5  # share of training samples whose image bottleneck is zeroed (ModDrop)
    width: int = 16
    steps: int = 400  # optimizer steps for every fusion model, whatever the regime
    batch_size: int = 64
    lr: float = 3e-3
    captioner_epochs: int = 8
    transe_dim: int = 32
    transe_epochs: int = 300
    k: int = 8  # retrieved neighbours
    temperature: float = 0.1  # softmax temperature over their similarities
    text_encoder: str = "auto"  # auto (MiniLM when installed), minilm, hashing
    index_backend: str = "auto"  # auto (FAISS when installed), torch, faiss
    zeroshot_train: int = 3000
    zeroshot_test: int = 1500
    zeroshot_epochs: int = 6
    fashion_zeroshot: bool = (
        True  # also zero-shot on Fashion-MNIST with WordNet descriptions and graph embeddings
    )
    fashion_zeroshot_train: int = 12000
    fashion_zeroshot_test: int = 0  # 0: all 10,000 test images
    latency_iters: int = 30

    def __post_init__(self):
        super().__post_init__()
        for name, allowed in (("tasks", TASKS), ("regimes", REGIMES)):
            chosen = getattr(self, name)
            if not chosen or any(c not in allowed for c in chosen):
                raise ConfigError(f"{name} must be a non-empty list from {', '.join(allowed)}, got {chosen}")
        self.methods = list(chosen_methods(self.methods, tuple(VARIANT_SOURCES)))  # in that order; empty: all
        if "image_only" not in self.methods:
            raise ConfigError("methods must include image_only: every fused variant is compared with it")
        if self.fusion not in FUSIONS or any(head not in FUSIONS for head in self.compare_fusions):
            raise ConfigError(
                f"unknown fusion in {[self.fusion, *self.compare_fusions]}; choose from {', '.join(FUSIONS)}"
            )
        for key in ("caption_pool", "train_size", "test_size", "lowlabel_per_class", "steps", "k", "width"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if not 0 <= self.modality_dropout < 1:
            raise ConfigError(f"modality_dropout must be in [0, 1), got {self.modality_dropout}")
        if self.k >= 6 * self.lowlabel_per_class:
            raise ConfigError(
                f"k={self.k} needs more labelled images: raise lowlabel_per_class above {self.k // 6}"
            )


def few_per_class(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` images of every class, chosen at random."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = [order[labels[order] == c][:per_class] for c in labels.unique()]
    return torch.cat(chosen).sort().values


def task_target(task: str, data, indices: torch.Tensor) -> torch.Tensor:
    labels = data.labels[indices]
    if task == "classify":
        return labels
    return data.masks[indices].long() * (labels + 1)[:, None, None]


def regime_split(config: Config, regime: str, train, test) -> dict:
    """The labelled images and test images of one regime (degraded where it says so)."""
    chosen = (
        torch.arange(len(train))
        if regime == "full"
        else few_per_class(train.labels, config.lowlabel_per_class, config.seed)
    )
    train_images, test_images = train.images[chosen], test.images
    if regime.startswith("degraded"):
        train_images = degrade(train_images, config.blur, config.occlusion, config.seed + 11)
        test_images = degrade(test_images, config.blur, config.occlusion, config.seed + 12)
    return {
        "chosen": chosen,
        "train_images": train_images,
        "test_images": test_images,
        "train_labels": train.labels[chosen],
    }


def train_captioner(config: Config, progress: Progress) -> tuple[SlotCaptioner, dict]:
    """The captioner on its own pool; half the pool is degraded so it copes with poor images.
    Returns it with its slot accuracy on a clean and a degraded held-out set."""
    pool = make_shapes(config.caption_pool, seed=1000 + config.seed, image_size=config.image_size)
    images = pool.images.clone()
    half = torch.arange(0, len(images), 2)
    images[half] = degrade(images[half], config.blur, config.occlusion, config.seed + 13)
    targets = slot_targets(pool.attributes)
    captioner = SlotCaptioner(width=config.width * 2)
    loader = TensorLoader(images, targets, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    fit(
        captioner,
        loader,
        epochs=config.captioner_epochs,
        optimizer=make_optimizer(captioner, "adamw", config.lr),
        loss_fn=caption_loss,
        progress=staged(progress, "captioner"),
    )
    held = make_shapes(500, seed=1500 + config.seed, image_size=config.image_size)
    held_targets = slot_targets(held.attributes)
    quality = {
        "clean": slot_accuracy(captioner, held.images, held_targets),
        "degraded": slot_accuracy(
            captioner, degrade(held.images, config.blur, config.occlusion, 7), held_targets
        ),
    }
    return captioner.eval(), quality


def build_knowledge(config: Config, captioner: SlotCaptioner, progress: Progress) -> Knowledge:
    """Text encoder, shapes graph + TransE; the index is set per regime (:func:`with_index`)."""
    graph = shapes_graph()
    transe = train_transe(
        graph,
        dim=config.transe_dim,
        epochs=config.transe_epochs,
        seed=config.seed,
        progress=staged(progress, "knowledge graph"),
    )
    encoder = load_text_encoder(config.text_encoder)
    return Knowledge(
        captioner,
        encoder.encode,
        graph,
        transe.entity_embeddings,
        None,
        num_classes=6,
        k=config.k,
        temperature=config.temperature,
    )


def with_index(config: Config, knowledge: Knowledge, split: dict) -> Knowledge:
    """``knowledge`` with a retrieval index over this regime's labelled images."""
    _, embeddings = describe(knowledge.captioner, split["train_images"])
    index = build_index(
        embeddings, split["train_labels"], knowledge.num_classes, backend=config.index_backend
    )
    return dataclasses.replace(knowledge, index=index)


def train_fusion(
    config: Config, task: str, sources, knowledge: Knowledge, images, context, target, progress: Progress
) -> FusionNet:
    """One FusionNet trained for ``config.steps`` optimizer steps."""
    torch.manual_seed(config.seed)
    classes = 6 if task == "classify" else 7
    model = FusionNet(
        task,
        classes,
        knowledge.source_dims(sources),
        config.fusion,
        config.width,
        modality_dropout=config.modality_dropout,
    )
    loader = TensorLoader(
        images,
        *context,
        target,
        batch_size=min(config.batch_size, len(images)),
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    epochs = math.ceil(config.steps / len(loader))
    fit(
        model,
        loader,
        epochs=epochs,
        optimizer=make_optimizer(model, "adamw", config.lr, 1e-4),
        progress=progress,
    )
    return model.eval()


@torch.no_grad()
def score(model: FusionNet, task: str, images, context, target, batch_size: int = 256) -> dict[str, float]:
    """``accuracy`` (classify) or ``miou`` and ``pixel_accuracy`` (segment) on the test images."""
    logits = torch.cat(
        [
            model(images[i : i + batch_size], *[c[i : i + batch_size] for c in context])
            for i in range(0, len(images), batch_size)
        ]
    )
    predicted = logits.argmax(1)
    if task == "classify":
        return {"accuracy": (predicted == target).float().mean().item()}
    return {
        "miou": mean_iou(confusion_matrix(predicted, target, 7)),
        "pixel_accuracy": (predicted == target).float().mean().item(),
    }


def pick(contexts: dict[str, list], sources) -> list[torch.Tensor]:
    return [tensor for source in sources for tensor in contexts[source]]


def all_sources(variants) -> list[str]:
    return list(dict.fromkeys(s for v in variants for s in sources_of(v)))


def run_regime(config: Config, regime: str, data, knowledge: Knowledge, progress: Progress) -> tuple:
    """Every task and variant of one regime (plus the ``compare_fusions`` heads on ``all``):
    ``(scores {(task, variant or "all@<head>"): {...}}, models {(task, variant): model}, knowledge)``."""
    train, test = data
    split = regime_split(config, regime, train, test)
    knowledge = with_index(config, knowledge, split)
    sources = all_sources(config.methods)
    contexts = [
        context_for(knowledge, split[f"{part}_images"], sources, exclude_self=part == "train")[0]
        for part in ("train", "test")
    ]
    train_ctx, test_ctx = ({s: flat[2 * i : 2 * i + 2] for i, s in enumerate(sources)} for flat in contexts)
    jobs = [(task, variant, config.fusion) for task in config.tasks for variant in config.methods]
    jobs += [
        (task, "all", head)
        for task in config.tasks
        for head in config.compare_fusions
        if head != config.fusion
    ]
    scores, models = {}, {}
    for step, (task, variant, head) in enumerate(jobs):
        name = variant if head == config.fusion else f"all@{head}"
        report(progress, f"{regime}: models", step, len(jobs), message=f"{task} / {name}")
        chosen = sources_of(variant)
        model = train_fusion(
            dataclasses.replace(config, fusion=head),
            task,
            chosen,
            knowledge,
            split["train_images"],
            pick(train_ctx, chosen),
            task_target(task, train, split["chosen"]),
            staged(progress, f"{regime} {task} {name}"),
        )
        scores[task, name] = score(
            model,
            task,
            split["test_images"],
            pick(test_ctx, chosen),
            task_target(task, test, torch.arange(len(test))),
        )
        if head == config.fusion:
            models[task, variant] = model
    report(progress, f"{regime}: models", len(jobs), len(jobs))
    return scores, models, knowledge


def pipeline_latency(
    config: Config, knowledge: Knowledge, models: dict, image: torch.Tensor
) -> dict[str, float]:
    """p50 ms per image of the whole pipeline of every variant, the text encoder uncached."""
    uncached = dataclasses.replace(
        knowledge, encode_text=load_text_encoder(config.text_encoder).encoder.encode
    )
    spec = BenchSpec(warmup=3, min_iters=config.latency_iters, min_seconds=0.2, max_seconds=10.0)
    latency = {}
    for variant, model in models.items():
        sources = sources_of(variant)

        def pipeline(x, model=model, sources=sources):
            return model(x, *context_for(uncached, x, sources)[0]) if sources else model(x)

        latency[variant] = measure_latency(pipeline, image, spec).p50_ms
    return latency


def add_scores(metrics: Metrics, regime: str, scores: dict, head: str) -> None:
    """``fusion/<variant>/<regime>/<score>`` and its ``_gain``; other heads as ``fusion_heads/<head>/...``.

    Test-split records tagged ``variant``, ``regime``, ``task``, ``measure`` (``accuracy``, ``miou``,
    ``pixel_accuracy``, or ``<score>_gain`` with ``reference="image_only"``) and, where a context is
    fused, the fusion ``head``: ``head`` (the config's) for the main variants, ``<h>`` for ``all@<h>``."""
    for (task, variant), values in scores.items():
        base = scores[task, "image_only"]
        if variant.startswith("all@"):
            prefix, tags = f"fusion_heads/{variant[4:]}", dict(variant="all", head=variant[4:])
        elif variant == "image_only":  # no context, nothing to fuse
            prefix, tags = f"fusion/{variant}", dict(variant=variant)
        else:
            prefix, tags = f"fusion/{variant}", dict(variant=variant, head=head)
        tags |= dict(regime=regime, task=task)
        for name, value in values.items():
            metrics.add(f"{prefix}/{regime}/{name}", value, "fraction", "test", **tags, measure=name)
            if variant != "image_only":
                gain = dict(tags, measure=f"{name}_gain", reference="image_only")
                metrics.add(f"{prefix}/{regime}/{name}_gain", value - base[name], "fraction", "test", **gain)


def task_shapes(config: Config, split: str):
    """The task's labelled ``"train"`` or ``"test"`` shapes; the page regenerates them through this too."""
    size, offset = (config.train_size, 2000) if split == "train" else (config.test_size, 3000)
    return make_shapes(size, seed=offset + config.seed, image_size=config.image_size)


@dataclasses.dataclass
class FusionResults:
    """What one run keeps in memory besides its metrics."""

    scores: dict[str, dict]  # regime -> {(task, variant or "all@<head>"): {score: value}}
    latency: dict[str, float]  # variant -> p50 ms per image, the whole pipeline
    zero_shot: ZeroShotResult
    caption_quality: dict[str, float]  # the captioner's slot accuracy: clean, degraded
    fashion_zero_shot: dict[str, dict[str, float]]  # {} unless fashion_zeroshot


def load(config: Config, device=None, progress: Progress = None) -> tuple:
    """The task's labelled train and test shapes."""
    return task_shapes(config, "train"), task_shapes(config, "test")


def steps(run: Run[Config], data: tuple) -> Finished:
    """Train the knowledge, run the ablation, time the pipelines, run zero-shot."""
    config, progress = run.config, run.progress
    captioner, caption_quality = train_captioner(config, progress)
    knowledge = build_knowledge(config, captioner, progress)
    metrics, all_scores, saved = Metrics(), {}, {}
    for regime in config.regimes:
        scores, models, regime_knowledge = run_regime(config, regime, data, knowledge, progress)
        add_scores(metrics, regime, scores, config.fusion)
        all_scores[regime], saved[regime] = scores, (models, regime_knowledge)
    first_models, first_knowledge = saved[config.regimes[0]]
    task = config.tasks[0]
    latency = pipeline_latency(
        config, first_knowledge, {v: m for (t, v), m in first_models.items() if t == task}, data[1].images[:1]
    )
    for variant, ms in latency.items():
        metrics.add(f"fusion/{variant}/latency_ms", ms, "ms", variant=variant, measure="latency_ms")
    zero_shot = run_zero_shot(config, knowledge.encode_text, staged(progress, "zero-shot"))
    fashion = (
        run_fashion_zero_shot(config, knowledge.encode_text, progress) if config.fashion_zeroshot else {}
    )
    text.add_zero_shot_metrics(metrics, zero_shot, caption_quality, fashion)
    if run.save_models:
        save_run_models(run.dir.path, config, captioner, knowledge, saved, zero_shot)
    report_text = text.report(config, all_scores, latency, zero_shot, caption_quality, knowledge, fashion)
    for chart in charts(metrics.values, config):
        run.dir.save_chart(chart)
    results = FusionResults(all_scores, latency, zero_shot, caption_quality, fashion)
    return Finished(metrics, report_text, results)


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train the knowledge, run the ablation, time the pipelines, run zero-shot; write the run."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)
