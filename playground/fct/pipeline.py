"""The steps of the FCT experiment: train the models, backfill, evaluate every case."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from playground.core.checkpoint import save_checkpoint
from playground.core.progress import Progress, report, staged
from playground.core.runs import RunDir
from playground.core.training import embed_images, evaluate, fit, make_optimizer
from playground.data import ImageDataset, TensorLoader
from playground.fct import backfill_order
from playground.fct.bct import BCTLoss, extend_old_classifier, influence_targets
from playground.fct.gallery import (
    DTYPES,
    GalleryStore,
    backfill_by_reembedding,
    backfill_by_transformation,
    write_gallery,
)
from playground.fct.retrieval import retrieval_metrics
from playground.fct.side_info import train_side_info
from playground.fct.tasks import FCTData
from playground.fct.transformation import Transformation, train_for_config, transform
from playground.fct.upgrade import UpgradeOutcome, study_upgrades
from playground.models import EmbeddingClassifier, build_model, count_macs

# (query, gallery) of every case, in the order of the paper's tables
CASES = ("old-old", "new-new", "new-old", "bct-old", "bct-bct", "new-fct_noside", "new-fct")


@dataclass
class Models:
    old: EmbeddingClassifier
    new: EmbeddingClassifier
    bct: EmbeddingClassifier
    side: nn.Module
    transformation: Transformation
    transformation_noside: Transformation
    sweep: dict[int, tuple[nn.Module, Transformation]] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    transform_loss: dict[str, list[float]] = field(default_factory=dict)
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # h's training inputs, targets, labels


def _classifier(config, name: str, width: int, pool_size: int, train: ImageDataset) -> EmbeddingClassifier:
    return build_model(  # width, pool_size and dropout reach small_cnn only (build_model drops them)
        name,
        in_channels=train.image_shape[0],
        num_classes=train.num_classes,
        embedding_dim=config.embedding_dim,
        width=width,
        pool_size=pool_size,
        dropout=config.dropout,
    )


def _train_classifier(
    config, model: nn.Module, train: ImageDataset, epochs: int, device, progress, loss_fn=None
) -> nn.Module:
    loader = TensorLoader.of(
        train,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        drop_last=len(train) > config.batch_size,
    )
    extra = {"loss_fn": loss_fn} if loss_fn is not None else {}
    fit(
        model,
        loader,
        epochs=epochs,
        optimizer=make_optimizer(model, "adam", config.lr),
        device=device,
        progress=progress,
        **extra,
    )
    return model.eval()


def _timed(seconds: dict[str, float], key: str, work: Callable):
    start = time.perf_counter()
    out = work()
    seconds[key] = time.perf_counter() - start
    return out


def train_models(config, data: FCTData, device, progress: Progress = None) -> Models:
    """Old, side-info, new and BCT models and both transformations (plus any sweep)."""
    seconds: dict[str, float] = {}
    old = _timed(
        seconds,
        "old",
        lambda: _train_classifier(
            config,
            _classifier(config, config.old_model, config.old_width, config.old_pool_size, data.old_train),
            data.old_train,
            config.old_epochs,
            device,
            staged(progress, "old model"),
        ),
    )
    side = _timed(
        seconds,
        "side",
        lambda: train_side_info(
            data.old_train.images,
            config.side_info,
            config.seed,
            device,
            staged(progress, "side-info model"),
        ),
    )
    new = _timed(
        seconds,
        "new",
        lambda: _train_classifier(
            config,
            _classifier(config, config.new_model, config.new_width, config.pool_size, data.new_train),
            data.new_train,
            config.new_epochs,
            device,
            staged(progress, "new model"),
        ),
    )
    images = data.new_train.images
    features = {
        name: embed_images(model, images, device=device)
        for name, model in (("old", old), ("side", side), ("new", new))
    }
    losses: dict[str, list[float]] = {}
    h = _timed(
        seconds,
        "transformation",
        lambda: _transformation(
            config,
            features["old"],
            features["side"],
            features["new"],
            device,
            progress,
            "transformation",
            losses,
        ),
    )
    h0 = _transformation(
        config,
        features["old"],
        features["old"],
        features["new"],
        device,
        progress,
        "transformation without side-info",
        losses,
    )
    bct = _timed(seconds, "bct", lambda: _train_bct(config, old, features["old"], data, device, progress))
    sweep = {
        dim: _sweep_member(config, dim, data, features, device, progress)
        for dim in dict.fromkeys(config.side_info_sweep)
        if dim != config.side_info.dim
    }
    features["labels"] = data.new_train.labels
    return Models(old, new, bct, side, h, h0, sweep, seconds, losses, features)


def _transformation(config, old, side, new, device, progress, label, losses) -> Transformation:
    h, history = train_for_config(
        config, old, side, new, seed=config.seed, device=device, progress=staged(progress, label)
    )
    losses[label] = history.series("train/loss")
    return h


def _train_bct(config, old: EmbeddingClassifier, old_features: torch.Tensor, data: FCTData, device, progress):
    """A new-architecture model trained with the BCT influence loss through the old classifier."""
    classifier = extend_old_classifier(
        old.classifier.linear, old_features, data.new_train.labels, data.old_row_of_new
    )
    loss = BCTLoss(classifier, influence_targets(data.old_row_of_new, old.num_classes), config.bct_weight)
    torch.manual_seed(config.seed + 1)
    model = _classifier(config, config.new_model, config.new_width, config.pool_size, data.new_train)
    return _train_classifier(
        config, model, data.new_train, config.new_epochs, device, staged(progress, "BCT model"), loss_fn=loss
    )


def _sweep_member(config, dim: int, data: FCTData, features, device, progress):
    side = train_side_info(
        data.old_train.images,
        dataclasses.replace(config.side_info, dim=dim),
        config.seed,
        device,
        staged(progress, f"side-info {dim}-d"),
    )
    side_features = embed_images(side, data.new_train.images, device=device)
    h, _ = train_for_config(
        config,
        features["old"],
        side_features,
        features["new"],
        seed=config.seed,
        device=device,
        progress=staged(progress, f"transformation {dim}-d"),
    )
    return side, h


def save_models(run_dir: RunDir, models: Models, config, variance_head=None) -> None:
    """Every model as safetensors with the run's config; FastFill's variance head when one was trained."""
    meta = {"experiment": "fct", "config": dataclasses.asdict(config)}
    if variance_head is not None:
        backfill_order.save_variance_head(
            run_dir.path / backfill_order.VARIANCE_HEAD_FILE, variance_head, meta
        )
    for name in ("old", "new", "bct", "side"):
        save_checkpoint(
            run_dir.path / f"{name}_model.safetensors", getattr(models, name), {**meta, "role": name}
        )
    for name in ("transformation", "transformation_noside"):
        h = getattr(models, name)
        save_checkpoint(
            run_dir.path / f"{name}.safetensors",
            h,
            {
                **meta,
                "role": name,
                "old_dim": h.old_dim,
                "side_dim": h.side_dim,
                "new_dim": h.new_dim,
                "hidden": h.hidden,
            },
        )


@dataclass
class Outcome:
    """Everything one run measured; :mod:`playground.fct.report` turns it into files."""

    retrieval: dict[str, dict[str, float]]
    sweep: list[dict[str, float]]
    cost: dict[str, float]
    accuracy: dict[str, float]
    embeddings: dict[str, torch.Tensor]
    models: Models
    upgrade: UpgradeOutcome = field(default_factory=UpgradeOutcome)
    seconds: float = 0.0


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_backfills(
    config, gallery: GalleryStore, models: Models, images: torch.Tensor, device, root: Path, repeats: int = 3
) -> dict[str, float]:
    """Seconds for each backfill route over the whole gallery, median of ``repeats`` runs.

    Both routes write the same sharded store. Transformation reads the stored old
    embeddings and side-info; re-embedding gets its images already decoded in memory,
    which flatters it (a real backfill would also read and decode every image).
    """
    h = models.transformation.to(device)
    new_dim = models.new.embedding_dim
    ids = torch.arange(images.shape[0])
    by_h = lambda: backfill_by_transformation(
        gallery, lambda o, s: transform(h, o, s), root / "backfill_transform", new_dim
    )
    by_model = lambda: backfill_by_reembedding(
        images,
        ids,
        lambda x: embed_images(models.new, x, device=device),
        root / "backfill_reembed",
        new_dim,
        config.store_dtype,
        config.shard_size,
    )
    seconds = {"transform": _median_seconds(by_h, repeats), "reembed": _median_seconds(by_model, repeats)}
    shutil.rmtree(root / "backfill_reembed")  # only timed: the new model's own gallery is not needed on disk
    return seconds


def _test_embeddings(models: Models, images: torch.Tensor, device) -> dict[str, torch.Tensor]:
    return {
        name: embed_images(getattr(models, name), images, device=device)
        for name in ("old", "new", "bct", "side")
    }


def evaluate_cases(
    config, data: FCTData, models: Models, run_dir: RunDir, device, progress: Progress = None
) -> Outcome:
    """Store the test gallery, backfill it both ways, and score every case and sweep size."""
    test = data.test
    emb = _test_embeddings(models, test.images, device)
    gallery = write_gallery(
        run_dir.path / "gallery",
        torch.arange(len(test)),
        {"old": emb["old"], "side": emb["side"]},
        config.store_dtype,
        config.shard_size,
    )
    seconds = time_backfills(config, gallery, models, test.images, device, run_dir.path)
    stored = gallery.read()
    emb["old_stored"], emb["side_stored"] = stored["old"], stored["side"]
    emb["fct"] = GalleryStore.open(run_dir.path / "backfill_transform").read()["new"]
    emb["fct_noside"] = transform(models.transformation_noside, stored["old"], stored["old"])
    pairs = {
        "old-old": ("old", "old_stored"),
        "new-new": ("new", "new"),
        "new-old": ("new", "old_stored"),
        "bct-old": ("bct", "old_stored"),
        "bct-bct": ("bct", "bct"),
        "new-fct_noside": ("new", "fct_noside"),
        "new-fct": ("new", "fct"),
    }
    retrieval = {}
    for step, case in enumerate(CASES, start=1):
        query, gallery_name = pairs[case]
        retrieval[case] = retrieval_metrics(emb[query], emb[gallery_name], test.labels, config.distance)
        report(
            progress, "retrieval", step, len(CASES), metrics={"top1": retrieval[case]["top1"]}, message=case
        )
    sweep = _sweep_rows(config, models, emb, stored, test, device, gallery, retrieval)
    cost = _costs(models, test, gallery, seconds)
    accuracy = {
        name: evaluate(getattr(models, name), TensorLoader.of(test, batch_size=512), device=device)[
            "accuracy"
        ]
        for name in ("new", "bct")
    }
    upgrade = study_upgrades(config, models, emb, test.labels, cost, progress)
    return Outcome(retrieval, sweep, cost, accuracy, emb, models, upgrade)


def _sweep_rows(
    config,
    models: Models,
    emb,
    stored,
    test: ImageDataset,
    device,
    gallery: GalleryStore,
    retrieval: dict[str, dict[str, float]],
) -> list[dict]:
    """new-fct for each side-info size (0: none): the storage / accuracy trade-off.

    The main size and "none" reuse the scores already in ``retrieval``."""
    rows = [{"dim": config.side_info.dim, **retrieval["new-fct"]}, {"dim": 0, **retrieval["new-fct_noside"]}]
    for dim, (side, h) in models.sweep.items():
        side_info = (
            embed_images(side, test.images, device=device).to(DTYPES[config.store_dtype]).float()
        )  # as stored
        fct = transform(h, stored["old"], side_info)
        rows.append({"dim": dim, **retrieval_metrics(emb["new"], fct, test.labels, config.distance)})
    element = gallery.bytes_per_image("side") // gallery.fields["side"]
    for row in rows:
        row["bytes"] = row["dim"] * element
    return sorted(rows, key=lambda r: r["dim"])


def _costs(models: Models, test: ImageDataset, gallery: GalleryStore, seconds) -> dict[str, float]:
    h, new = (
        copy.deepcopy(models.transformation).cpu(),
        copy.deepcopy(models.new).cpu(),
    )  # count on CPU copies
    per_10k = 10_000 / len(test)
    return {
        "transformation_macs": count_macs(h, torch.zeros(1, h.old_dim), torch.zeros(1, h.side_dim)),
        "new_model_macs": count_macs(new, test.images[:1]),
        "side_info_bytes": gallery.bytes_per_image("side"),
        "old_embedding_bytes": gallery.bytes_per_image("old"),
        "backfill_transform_s": seconds["transform"] * per_10k,
        "backfill_reembed_s": seconds["reembed"] * per_10k,
        "gallery_images": len(test),
    }
