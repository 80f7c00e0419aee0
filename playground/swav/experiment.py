"""SwAV pretraining without labels, judged by a linear probe and low-shot fine-tuning.

A small analogue of SEER's low-shot table (Goyal et al. 2021): ``recipes/swav_fashion.toml``
pretrains an encoder with SwAV (:mod:`playground.swav.swav`) on the training images without
their labels, then compares three initialisations of the same architecture:

- ``swav``: the SwAV-pretrained encoder;
- ``random_init``: the same encoder before pretraining (the same initial weights);
- ``supervised``: the same architecture trained with every training label (a ceiling: it
  has seen all the labels the others go without).

SwAV's own settings are the ``[swav]`` section (:class:`SwAVConfig`, ``--set swav.prototypes=50``;
its crops' jitter the nested ``[swav.augment]``, ``--set swav.augment.flip=false``).

Each gets a linear probe (:mod:`playground.swav.probe`) on ``probe_fractions`` of the labels,
and ``swav`` and ``random_init`` are fine-tuned end to end on ``lowshot_fractions`` of them.
``methods`` runs a subset of the initialisations (``--set methods='["swav","random_init"]'``; empty:
all three); it must include ``swav``.
The representation is the encoder's embedding, the input of SwAV's projection head.

Metrics: ``ssl/<init>/linear_probe/accuracy`` (all labels), ``ssl/<init>/linear_probe_<pct>/accuracy``,
``ssl/<init>/lowshot_<pct>/accuracy``, ``ssl/swav/linear_probe/gain_over_random`` (points), the
SwAV loss, the prototypes' class purity and the Sinkhorn equipartition error.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from typing import ClassVar, Literal

import torch

from playground.core.checkpoint import save_checkpoint
from playground.core.config import RunConfig, chosen_methods
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, report, staged
from playground.core.runs import Metrics, Result, RunDir
from playground.core.training import embed_images, fit, make_optimizer
from playground.data import ImageDataset, TensorLoader, load_dataset
from playground.data.splits import limit_per_split
from playground.errors import ConfigError
from playground.models import build_model
from playground.swav import report as text
from playground.swav.diagnostics import Diagnostics, diagnose
from playground.swav.probe import balanced_subset, finetune, linear_probe
from playground.swav.swav import SwAVConfig, build_swav, train_swav

EXPERIMENT = "swav"
INITS = ("swav", "random_init", "supervised")
OLD_SWAV_KEYS = (  # the [swav] keys that were flat config keys
    "prototypes",
    "projection_dim",
    "hidden_dim",
    "temperature",
    "epsilon",
    "sinkhorn_iterations",
    "small_crops",
    "queue_length",
    "freeze_prototypes_steps",
)
CHECKPOINT = "swav.safetensors"


@dataclasses.dataclass
class Config(RunConfig):
    # the flat keys of runs and recipes made before the [swav] section (read with a notice)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        **{key: f"swav.{key}" for key in OLD_SWAV_KEYS},
        "flip": "swav.augment.flip",
        "inits": "methods",
    }
    name: str = "swav"
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    download: bool = False
    pretrain_limit: int = 0  # unlabelled training images SwAV sees (0: the whole training split)
    train_limit: int = 0  # labelled training images the probes draw from (0: all), stratified
    test_limit: int = 0  # test images (0: all), stratified
    model: Literal["small_cnn", "regnety_small", "regnety_400mf", "resnet18"] = "small_cnn"
    width: int = 32  # small_cnn only
    pool_size: int = 4  # small_cnn only
    representation_dim: int = 32  # the embedding that is probed (and FCT's side-info size)
    # SwAV itself: prototypes, temperature, crops, ... and [swav.augment] (flip: off for digits)
    swav: SwAVConfig = dataclasses.field(default_factory=SwAVConfig)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-6
    methods: list[str] = dataclasses.field(default_factory=lambda: list(INITS))  # of INITS; empty: all
    probe_fractions: list[float] = dataclasses.field(default_factory=lambda: [0.01, 0.1, 1.0])
    probe_l2: float = 1e-4
    lowshot_fractions: list[float] = dataclasses.field(default_factory=lambda: [0.01, 0.1])
    finetune_steps: int = 300
    finetune_batch: int = 64
    finetune_lr: float = 1e-3
    supervised_epochs: int = 5

    def __post_init__(self):
        super().__post_init__()
        if "swav" not in chosen_inits(self.methods):
            raise ConfigError('methods must include "swav": the experiment is about the SwAV encoder')
        for key in ("probe_fractions", "lowshot_fractions"):
            if any(not 0.0 < f <= 1.0 for f in getattr(self, key)):
                raise ConfigError(f"{key} must lie in (0, 1], got {getattr(self, key)}")
        for key in (
            "representation_dim",
            "epochs",
            "batch_size",
            "finetune_steps",
            "finetune_batch",
            "supervised_epochs",
            "width",
            "pool_size",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if min(self.lr, self.finetune_lr, self.probe_l2 + 1) <= 0 or self.weight_decay < 0:
            raise ConfigError(
                "lr and finetune_lr must be positive; probe_l2 and weight_decay cannot be negative"
            )

    def encoder(self, in_channels: int, num_classes: int = 0) -> torch.nn.Module:
        """The architecture every init shares (weights from the current torch seed)."""
        options = {"width": self.width, "pool_size": self.pool_size, "dropout": 0.0}  # small_cnn's only
        return build_model(
            self.model,
            in_channels=in_channels,
            num_classes=num_classes,
            embedding_dim=self.representation_dim,
            **options,
        )


def chosen_inits(methods: Sequence[str] = ()) -> tuple[str, ...]:
    """The initialisations a run compares, in :data:`INITS` order: ``methods`` (empty: all of them)."""
    return chosen_methods(methods, INITS)


@dataclasses.dataclass
class Pretrained:
    """The SwAV model after pretraining, its per-epoch loss and how long it took."""

    model: torch.nn.Module
    losses: list[float]
    seconds: float


def load_data(config: Config, progress: Progress = None) -> tuple[torch.Tensor, ImageDataset, ImageDataset]:
    """``(unlabelled pretraining images, labelled train, test)``."""
    report(progress, "load data", 0, 1)
    kwargs = dict(root=config.data_root or None, download=config.download, seed=config.seed)
    train, test = (
        load_dataset(config.dataset, "train", **kwargs),
        load_dataset(config.dataset, "test", **kwargs),
    )
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(train), generator=generator)  # labels are not used to pick these
    unlabelled = train.images[order[: config.pretrain_limit] if config.pretrain_limit > 0 else order]
    report(progress, "load data", 1, 1)
    return (
        unlabelled,
        limit_per_split(train, config.train_limit, config.seed),
        limit_per_split(test, config.test_limit, config.seed),
    )


def pretrain(
    config: Config, initial: torch.nn.Module, images: torch.Tensor, device, progress: Progress
) -> Pretrained:
    """SwAV on ``images`` starting from a copy of ``initial``."""
    model = build_swav(copy.deepcopy(initial), config.representation_dim, config.swav)
    began = time.perf_counter()
    history = train_swav(
        model,
        images,
        config.swav,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        seed=config.seed,
        device=device,
        progress=staged(progress, "swav"),
    )
    return Pretrained(model.cpu().eval(), history.series("train/loss"), time.perf_counter() - began)


def train_supervised(
    config: Config, initial: torch.nn.Module, train: ImageDataset, device, progress: Progress
) -> torch.nn.Module:
    """The same architecture trained on every label (a classifier head on the embedding)."""
    model = config.encoder(train.image_shape[0], train.num_classes)
    model.load_state_dict(initial.state_dict(), strict=False)  # same backbone and embedding start
    loader = TensorLoader.of(
        train,
        batch_size=config.finetune_batch * 2,
        shuffle=True,
        seed=config.seed,
        drop_last=len(train) > config.finetune_batch * 2,
    )
    fit(
        model,
        loader,
        epochs=config.supervised_epochs,
        device=device,
        schedule="cosine",
        optimizer=make_optimizer(model, "adamw", config.finetune_lr, 1e-4),
        progress=staged(progress, "supervised"),
    )
    return model.cpu().eval()


def probe_all(
    config: Config, encoders: dict, train: ImageDataset, test: ImageDataset, device, progress: Progress
) -> dict[str, dict[float, float]]:
    """Init -> label fraction -> linear-probe test accuracy."""
    subsets = {f: balanced_subset(train.labels, f, config.seed) for f in config.probe_fractions}
    out = {}
    for i, (init, encoder) in enumerate(encoders.items()):
        report(progress, "linear probe", i, len(encoders), message=init)
        a = embed_images(encoder, train.images, device=device).cpu()
        b = embed_images(encoder, test.images, device=device).cpu()
        out[init] = {
            f: linear_probe(a[idx], train.labels[idx], b, test.labels, train.num_classes, config.probe_l2)
            for f, idx in subsets.items()
        }
    report(progress, "linear probe", len(encoders), len(encoders))
    return out


def lowshot_all(
    config: Config, encoders: dict, train: ImageDataset, test: ImageDataset, device, progress: Progress
) -> dict[str, dict[float, float]]:
    """Init (not ``supervised``: it saw every label) -> label fraction -> fine-tuned test accuracy."""
    jobs = [(init, f) for init in encoders if init != "supervised" for f in config.lowshot_fractions]
    out: dict[str, dict[float, float]] = {}
    for i, (init, fraction) in enumerate(jobs):
        report(
            progress, "low-shot fine-tuning", i, len(jobs), message=f"{init}, {fraction:.0%} of the labels"
        )
        subset = train.subset(balanced_subset(train.labels, fraction, config.seed))
        out.setdefault(init, {})[fraction] = finetune(
            encoders[init],
            config.representation_dim,
            subset,
            test,
            steps=config.finetune_steps,
            batch_size=config.finetune_batch,
            lr=config.finetune_lr,
            seed=config.seed,
            device=device,
        )
    report(progress, "low-shot fine-tuning", len(jobs), len(jobs))
    return out


@dataclasses.dataclass
class Outcome:
    """What a SwAV run hands back in memory (``Result.results``): the pretrained model, the probe and
    low-shot accuracies (init -> label fraction -> accuracy) and the diagnostics."""

    pretrained: Pretrained
    probes: dict[str, dict[float, float]]
    lowshot: dict[str, dict[float, float]]
    diagnostics: Diagnostics


def evaluate_inits(config: Config, data, device, progress: Progress) -> Outcome:
    """Pretrain, train the supervised ceiling, then probe and fine-tune every init."""
    unlabelled, train, test = data
    torch.manual_seed(config.seed)
    initial = config.encoder(train.image_shape[0])
    pretrained = pretrain(config, initial, unlabelled, device, progress)
    encoders = {"swav": pretrained.model.encoder, "random_init": initial.eval()}
    inits = chosen_inits(config.methods)
    if "supervised" in inits:
        encoders["supervised"] = train_supervised(config, initial, train, device, progress)
    encoders = {init: encoders[init] for init in inits}
    probes = probe_all(config, encoders, train, test, device, progress)
    lowshot = lowshot_all(config, encoders, train, test, device, progress)
    diagnostics = diagnose(pretrained.model, test, config.swav, seed=config.seed)
    return Outcome(pretrained, probes, lowshot, diagnostics)


def load(
    config: Config, device=None, progress: Progress = None
) -> tuple[torch.Tensor, ImageDataset, ImageDataset]:
    """``(unlabelled pretraining images, labelled train, test)``; bad data fails here, before a run
    folder exists."""
    return load_data(config, progress)


def steps(run: Run[Config], data) -> Finished:
    """Pretrain, evaluate every init, save the SwAV model (when ``run.save_models``), write the artifacts."""
    config, device, progress = run.config, run.device, run.progress
    outcome = evaluate_inits(config, data, device, progress)
    if run.save_models:
        save_checkpoint(
            run.dir.path / CHECKPOINT,
            outcome.pretrained.model,
            {
                "experiment": EXPERIMENT,
                "config": dataclasses.asdict(config),
                "in_channels": data[1].image_shape[0],
                "classes": data[1].classes,
            },
        )
    metrics = text.metrics_of(config, outcome, data[1].num_classes)
    text.write_artifacts(run.dir, config, outcome, data[2])
    return Finished(metrics, text.single_report(config, metrics, outcome, data, device), outcome)


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Pretrain with SwAV, evaluate every init, write the run (metrics, report, charts, model)."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def aggregate_report(config: Config, metrics: Metrics, results: list[Result]) -> str:
    """The multi-seed report: every number as mean ± std over the seeds."""
    return text.aggregate_report(config, metrics, results)
