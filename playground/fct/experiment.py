"""The FCT experiment: old model, new model, side-info, transformation, BCT, retrieval.

Ramanujan et al., "Forward Compatible Training for Large-Scale Embedding Retrieval
Systems" (CVPR 2022), against BCT (Shen et al., CVPR 2020). One run trains

1. the old model on the old-time task and, on the same images without labels, the
   side-info model (:mod:`~playground.fct.side_info`);
2. the new model on the new task, independently (it is never modified);
3. the transformation h(old, side) -> new, and h(old, old) for "FCT without side-info";
4. BCT: a second new model trained with the influence loss through the old classifier;

then stores the test gallery (old embedding + side-info, sharded), backfills it both by
transformation and by re-embedding (timed side by side), and evaluates every
query/gallery case with CMC top-1/top-5 and mAP (:mod:`~playground.fct.retrieval`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import ClassVar, Literal

from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress
from playground.core.runs import Result, RunDir
from playground.errors import ConfigError
from playground.fct import pipeline, report
from playground.fct.side_info import SideInfoSpec, check_dims
from playground.fct.tasks import FCTData, load_task
from playground.fct.upgrade import UpgradeSpec

EXPERIMENT = "fct"


@dataclasses.dataclass
class Config(RunConfig):
    # the flat keys of runs and recipes made before the [side_info] section (read with a notice)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "side_info_method": "side_info.method",
        "side_info_dim": "side_info.dim",
        "side_width": "side_info.width",
        "side_epochs": "side_info.epochs",
        "side_lr": "side_info.lr",
        "side_batch_size": "side_info.batch_size",
        "temperature": "side_info.temperature",
        "side_prototypes": "side_info.prototypes",
        "side_small_crops": "side_info.small_crops",
    }
    name: str = "fct"
    # data
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    download: bool = False
    old_classes: list[int] = dataclasses.field(default_factory=list)  # empty: the first half
    train_limit: int = 0  # at most this many training images (0: all), stratified
    test_limit: int = 0  # at most this many query/gallery images (0: all)
    image_size: int = 32  # shapes and folder only
    shapes_train: int = 6000  # shapes only
    shapes_test: int = 2000  # shapes only
    # old, new and BCT models
    old_model: Literal["small_cnn", "resnet18", "regnety_400mf", "regnety_small"] = "small_cnn"
    old_width: int = 16  # small_cnn only
    old_pool_size: int = 1  # small_cnn only: 1 = global average pool, as in ResNet-style old models
    new_model: Literal["small_cnn", "resnet18", "regnety_400mf", "regnety_small"] = "small_cnn"
    new_width: int = 32  # small_cnn only
    pool_size: int = 7  # small_cnn only: the new and BCT models' final pool
    dropout: float = 0.1  # small_cnn only
    embedding_dim: int = 128  # old and new embeddings (the same size, so new-old can be measured)
    old_epochs: int = 3
    new_epochs: int = 3
    lr: float = 3e-3
    batch_size: int = 128
    # side-information: the [side_info] section (--set side_info.dim=64), the spec its trainer receives
    side_info: SideInfoSpec = dataclasses.field(default_factory=SideInfoSpec)
    side_info_sweep: list[int] = dataclasses.field(default_factory=list)  # extra side-info sizes to try
    # transformation and BCT
    transform_hidden: int = 256
    transform_epochs: int = 20
    transform_lr: float = 2e-3
    bct_weight: float = 1.0
    # upgrade policies and partial backfill: the [upgrade] section (--set upgrade.orders='["random"]')
    upgrade: UpgradeSpec = dataclasses.field(default_factory=UpgradeSpec)
    # evaluation and storage
    distance: Literal["l2", "cosine"] = "l2"
    store_dtype: Literal["fp16", "fp32"] = "fp16"
    shard_size: int = 4096

    def __post_init__(self):
        super().__post_init__()
        for key in (
            "old_epochs",
            "new_epochs",
            "transform_epochs",
            "batch_size",
            "embedding_dim",
            "transform_hidden",
            "shard_size",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        check_dims(self.side_info_sweep)
        if min(self.lr, self.transform_lr) <= 0:
            raise ConfigError("learning rates must be positive")


def load(config: Config, device=None, progress: Progress = None) -> FCTData:
    """The old and new tasks and the query/gallery test set."""
    return load_task(
        config.dataset,
        data_root=config.data_root,
        download=config.download,
        seed=config.seed,
        old_classes=config.old_classes,
        train_limit=config.train_limit,
        test_limit=config.test_limit,
        image_size=config.image_size,
        shapes_train=config.shapes_train,
        shapes_test=config.shapes_test,
    )


def steps(run: Run[Config], data: FCTData) -> Finished:
    """Train every model, backfill the gallery both ways, evaluate every case."""
    config, device, progress = run.config, run.device, run.progress
    start = time.perf_counter()
    models = pipeline.train_models(config, data, device, progress)
    outcome = pipeline.evaluate_cases(config, data, models, run.dir, device, progress)
    outcome.seconds = time.perf_counter() - start
    if run.save_models:
        pipeline.save_models(run.dir, models, config, outcome.upgrade.variance_head)
    metrics = report.metrics_of(outcome)
    report.write_artifacts(run.dir, config, outcome, data)
    return Finished(metrics, report.report_text(config, data, outcome, metrics, device), outcome)


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Train every model, backfill the gallery both ways, evaluate every case, write the run."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def aggregate_report(config: Config, metrics, results) -> str:
    """The multi-seed report: the compatibility table with mean ± std over seeds."""
    return report.aggregate_text(config, metrics, results)
