"""One small checkpoint per loader that reads safetensors, written by the project's own code, and the
call that reads it back: what the fuzz test (``tests/test_checkpoint_fuzz.py``) damages and feeds to
every loader (issue 25).

Each case's ``make(folder)`` writes the files its loader needs under ``folder`` and returns
``(file, read)``: the checkpoint to damage and a function that reads it the way the pages and the CLI do
(including what they do next with the tensors: neighbours, projections, scores).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from playground.core.checkpoint import save_checkpoint

Read = Callable[[], object]


def detector(folder: Path) -> tuple[Path, Read]:
    from playground.pointcloud.detector import Grid, PillarNet, load_detector, save_detector

    grid = Grid(extent=8.0, pillar=0.5, max_points=4, max_pillars=500)
    path = save_detector(folder / "detector.safetensors", PillarNet(grid, width=4))
    return path, lambda: load_detector(path)


def _transformation():
    from playground.fct.transformation import Transformation

    torch.manual_seed(0)
    return Transformation(8, 4, 8, hidden=16)


def transformation(folder: Path) -> tuple[Path, Read]:
    from playground.fct.transformation import load_transformation

    h = _transformation()
    meta = {"experiment": "fct", "old_dim": 8, "side_dim": 4, "new_dim": 8, "hidden": 16}
    path = save_checkpoint(folder / "transformation.safetensors", h, meta)  # as fct.pipeline saves it
    return path, lambda: load_transformation(path)


def variance_head(folder: Path) -> tuple[Path, Read]:
    from playground.fct.backfill_order import VarianceHead, load_variance_head, save_variance_head

    h = _transformation()
    path = folder / "variance_head.safetensors"
    save_variance_head(path, VarianceHead(h, hidden=8), {"experiment": "fct"})
    return path, lambda: load_variance_head(path, h)


def gallery_store(folder: Path) -> tuple[Path, Read]:
    from playground.fct.gallery import GalleryStore, write_gallery

    tensors = {"old": torch.randn(12, 8), "side": torch.randn(12, 4)}
    write_gallery(folder / "gallery", torch.arange(12), tensors, shard_size=6)
    return folder / "gallery" / "shard-00001.safetensors", lambda: GalleryStore.open(
        folder / "gallery"
    ).read()


def fct_embeddings(folder: Path) -> tuple[Path, Read]:
    from playground.fct import results as fct

    tensors = {name: torch.randn(12, 8) for name in fct.GALLERIES}
    tensors |= {f"projection_{name}": torch.randn(6, 2) for name in fct.PROJECTIONS}
    tensors |= {"labels": torch.arange(12) % 3, "projection_index": torch.arange(6) * 2}
    tensors["images"] = torch.randint(0, 255, (12, 1, 8, 8), dtype=torch.uint8)
    path = save_checkpoint(folder / fct.EMBEDDINGS, tensors, {"classes": ["a", "b", "c"]})

    def read():
        run = fct.FCTRun(folder, {}, {}, artifact_dir=folder)
        return fct.neighbours(run, 3, "fct", k=3), fct.projection_points(run), fct.image(run, 11)

    return path, read


def gallery_version_shard(folder: Path) -> tuple[Path, Read]:
    from playground.fct import versions

    version = {"name": "v1", "dim": 8, "model": "old", "route": "embed"}
    gallery = versions.Gallery(folder, {"shard_size": 6, "versions": [version]}, ["x.png"] * 12)
    shard = {"ids": torch.arange(6, 12), "vec": torch.randn(6, 8), "how": torch.zeros(6, dtype=torch.int64)}
    versions.write_shard(gallery, version, 1, {**shard, "side": torch.randn(6, 4)})
    return gallery.shard_path(version, 1), lambda: gallery.read_shard(version, 1)["how"].sum()


def fct_model_pack(folder: Path) -> tuple[Path, Read]:
    from playground.fct.experiment import Config
    from playground.fct.model_pack import ModelPack, _build
    from playground.fct.transformation import Transformation

    config = dataclasses.asdict(Config(dataset="digits"))
    shapes = {"conv.weight": torch.empty(1, 1, 1, 1), "classifier.linear.weight": torch.empty(10, 1)}
    meta = {"experiment": "fct", "config": config}
    for role in ("old", "side", "new"):  # as fct.pipeline saves them, the architectures model_pack builds
        model = _build(role, config, shapes)
        save_checkpoint(folder / f"{role}_model.safetensors", model, {**meta, "role": role})
    dims = {"old_dim": config["embedding_dim"], "side_dim": config["side_info"]["dim"], "hidden": 16}
    dims["new_dim"] = dims["old_dim"]
    h = Transformation(dims["old_dim"], dims["side_dim"], dims["new_dim"], dims["hidden"])
    save_checkpoint(folder / "transformation.safetensors", h, {**meta, **dims})
    return folder / "old_model.safetensors", lambda: ModelPack.load(folder)


def fusion_zero_shot(folder: Path) -> tuple[Path, Read]:
    from playground.fusion.experiment import Config
    from playground.fusion.saved import load_zero_shot
    from playground.fusion.zeroshot import LabelEmbeddingClassifier

    config = Config()
    model = LabelEmbeddingClassifier(torch.randn(4, 16), width=config.width * 2)
    path = save_checkpoint(  # as fusion.saved.save_run_models writes it
        folder / "zeroshot.safetensors",
        {"classes": model.classes, **model.state_dict()},
        {"class_names": ["a", "b", "c", "d"], "unseen": ["d"]},
    )
    return path, lambda: load_zero_shot(folder, config)


def label_model(folder: Path) -> tuple[Path, Read]:
    from playground.active.learner import TrainSpec, build_learner
    from playground.label.project import ProjectSettings
    from playground.label.versions import fitted_models

    settings = ProjectSettings(image_size=16, channels=3, train=TrainSpec(width=8))
    model = build_learner(settings.train, (3, 16, 16), 3)
    path = save_checkpoint(folder / "member0.safetensors", model, {"project": "p", "version": 1})
    return path, lambda: fitted_models(path, settings, 3)


def _small_cnn() -> nn.Module:
    from playground.models import build_model

    return build_model(
        "small_cnn", in_channels=1, num_classes=3, embedding_dim=8, width=4, depth=1, pool_size=1
    )


def latency_saved_model(folder: Path) -> tuple[Path, Read]:
    from playground.latency.saved_models import load_resized, save_models

    (path,) = save_models(folder, {"cnn": _small_cnn()})
    return path, lambda: load_resized(_small_cnn(), path)


def latency_weights(folder: Path) -> tuple[Path, Read]:
    from safetensors.torch import save_file

    from playground.latency.weights import load_weights

    path = folder / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in _small_cnn().state_dict().items()}, str(path))
    return path, lambda: load_weights(_small_cnn(), path)


def swav_examples(folder: Path) -> tuple[Path, Read]:
    from playground.swav.report import EXAMPLES_FILE
    from playground.swav.results import load_examples

    tensors = {"examples": torch.rand(5, 2, 1, 8, 8), "counts": torch.randint(0, 9, (5, 3))}
    path = save_checkpoint(folder / EXAMPLES_FILE, tensors, {"classes": ["a", "b", "c"]})
    return path, lambda: load_examples(folder)


def swav_model(folder: Path) -> tuple[Path, Read]:
    from playground.swav.experiment import CHECKPOINT, EXPERIMENT, Config
    from playground.swav.results import load_model
    from playground.swav.swav import SwAVConfig, build_swav

    config = Config(dataset="digits", width=8, pool_size=2, swav=SwAVConfig(prototypes=5))
    model = build_swav(config.encoder(1), config.representation_dim, config.swav)
    meta = {
        "experiment": EXPERIMENT,
        "config": dataclasses.asdict(config),
        "in_channels": 1,
        "classes": ["a"],
    }
    path = save_checkpoint(folder / CHECKPOINT, model, meta)  # as swav.experiment.steps saves it
    return path, lambda: load_model(folder)


def ood_scores(folder: Path) -> tuple[Path, Read]:
    from playground.uncertainty.experiment import Config
    from playground.uncertainty.results import SCORES_FILE, OODRun

    tensors = {f"{row}/{name}": torch.rand(10) for row in ("single", "ensemble") for name in ("test", "near")}
    path = save_checkpoint(folder / SCORES_FILE, tensors)
    return path, lambda: OODRun(folder, {}, Config(), artifact_dir=folder).scores


CASES: dict[str, Callable[[Path], tuple[Path, Read]]] = {
    "pointcloud detector": detector,
    "fct transformation": transformation,
    "fct variance head": variance_head,
    "fct gallery store shard": gallery_store,
    "fct embeddings": fct_embeddings,
    "fct gallery version shard": gallery_version_shard,
    "fct model pack": fct_model_pack,
    "fusion zero-shot": fusion_zero_shot,
    "label model": label_model,
    "latency saved model": latency_saved_model,
    "latency user weights": latency_weights,
    "swav prototype examples": swav_examples,
    "swav model": swav_model,
    "ood scores": ood_scores,
}


def metadata_of(path: Path) -> dict:
    """The playground metadata of the checkpoint at ``path`` (decoded), {} when it has none."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return json.loads((handle.metadata() or {}).get("playground", "{}"))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors file at ``path``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}
