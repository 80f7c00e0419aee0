"""Reading a fusion run back, and following one image through its pipeline (what the page shows).

:func:`follow` gives, for one image and one regime: the generated caption, the entities it
names, their knowledge-graph neighbourhood, the k retrieved labelled images with their labels
and weights, and the predictions (class probabilities and segmentation maps) of image-only and
of every fused variant.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from playground.core.config import build_config, rename_keys, renamed_keys_of
from playground.core.runs import RunInfo, list_runs, read_run_config
from playground.core.seeds import first_seed
from playground.data.shapes import SHAPES
from playground.errors import DataNotFoundError
from playground.fusion.experiment import EXPERIMENT, Config, few_per_class, task_shapes
from playground.fusion.saved import MODELS, Pipeline, load_pipeline
from playground.fusion.sources import context_for, sources_of
from playground.fusion.zeroshot import scores


def find_fusion_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The fusion runs under ``root``, newest first."""
    return list_runs(root, EXPERIMENT)


def run_config(path: str | Path) -> Config:
    """The Config a fusion run was made with (its first seed's, for a multi-seed run)."""
    folder = first_seed(path)
    if not folder.is_dir():
        raise DataNotFoundError(f"fusion run {path} does not exist")
    source = f"{folder}/config.toml"
    values = rename_keys(
        read_run_config(folder).get("config", {}), source, renamed_keys_of(Config), notify=False
    )
    return build_config(Config, values, source)  # an old run's `variants` read as `methods`, quietly


def has_models(path: str | Path) -> bool:
    """Whether the run saved its models (it did unless it ran with ``save_models = false``)."""
    return (first_seed(path) / MODELS / "captioner.safetensors").is_file()


def open_run(path: str | Path) -> Pipeline:
    return load_pipeline(first_seed(path), run_config(path))


def labelled_images(config: Config, regime: str) -> torch.Tensor:
    """The regime's labelled training images, regenerated exactly as the run drew them (undegraded)."""
    train = task_shapes(config, "train")
    chosen = (
        torch.arange(len(train))
        if regime == "full"
        else few_per_class(train.labels, config.lowlabel_per_class, config.seed)
    )
    return train.images[chosen]


@dataclasses.dataclass
class Followed:
    caption: str
    entities: list[str]
    neighbourhood: list[tuple[str, str, str]]
    neighbours: list[int]  # indices into labelled_images(config, regime)
    neighbour_labels: list[str]
    neighbour_weights: list[float]
    probabilities: dict[str, torch.Tensor]  # variant -> (6,) over SHAPES
    segmentation: dict[str, torch.Tensor]  # variant -> (H, W) class per pixel (0 background, 1+ SHAPES)


@torch.no_grad()
def follow(pipeline: Pipeline, image: torch.Tensor, regime: str, hops: int = 1) -> Followed:
    """Everything the page shows for one ``(3, H, W)`` image."""
    knowledge = pipeline.knowledge[regime]
    batch = image[None]
    flat, details = context_for(knowledge, batch, ("text", "kg", "retrieval"))
    found = details["retrieved"]
    probabilities, segmentation = {}, {}
    for (model_regime, task, variant), model in pipeline.models.items():
        if model_regime != regime:
            continue
        context = [
            flat[2 * i + j]
            for i, s in enumerate(("text", "kg", "retrieval"))
            if s in sources_of(variant)
            for j in (0, 1)
        ]
        output = model(batch, *context)[0]
        if task == "classify":
            probabilities[variant] = output.softmax(0)
        else:
            segmentation[variant] = output.argmax(0)
    entities = details["entities"][0]
    return Followed(
        details["captions"][0],
        entities,
        knowledge.graph.neighbourhood(entities, hops),
        found.neighbours[0].tolist(),
        [SHAPES[int(knowledge.index.labels[j])] for j in found.neighbours[0]],
        found.weights[0].tolist(),
        probabilities,
        segmentation,
    )


def zero_shot_scores(pipeline: Pipeline, images: torch.Tensor, class_names: list[str]) -> torch.Tensor:
    """Softmax over ``class_names`` (any typed text) for ``images``: ``(N, len(class_names))``."""
    encode = next(iter(pipeline.knowledge.values())).encode_text
    return (pipeline.zero_shot.scale * scores(pipeline.zero_shot, images, encode(class_names))).softmax(1)


def best_classes(probabilities: torch.Tensor, class_names: list[str]) -> list[tuple[str, float]]:
    """Per image, the most probable of ``class_names`` and its probability (``probabilities``: ``(N, C)``,
    as :func:`zero_shot_scores` returns them)."""
    best = probabilities.max(1)
    return [(class_names[int(k)], float(p)) for p, k in zip(best.values, best.indices)]
