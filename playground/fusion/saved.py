"""What a fusion run keeps for the page: every model as safetensors plus the knowledge tensors.

``RUN/models/captioner.safetensors``, ``zeroshot.safetensors``, ``<regime>_<task>_<variant>.safetensors``
and ``RUN/models/knowledge_<regime>.safetensors`` (TransE entity embeddings, the retrieval index's
embeddings and labels). :func:`load_pipeline` rebuilds them (the graph and text encoder are
rebuilt, not stored).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from playground.core.checkpoint import (
    REDO,
    TensorSpec,
    build_loaded,
    load_checkpoint,
    load_into,
    save_checkpoint,
)
from playground.errors import CheckpointError
from playground.fusion.captioner import SlotCaptioner
from playground.fusion.knowledge_graph import shapes_graph
from playground.fusion.model import FusionNet
from playground.fusion.sources import Knowledge, sources_of
from playground.fusion.text_encoder import load_text_encoder
from playground.fusion.zeroshot import LabelEmbeddingClassifier
from playground.retrieval.index import build_index

MODELS = "models"


def save_run_models(folder: Path, config, captioner, knowledge: Knowledge, saved: dict, zero_shot) -> None:
    models = Path(folder) / MODELS
    models.mkdir(exist_ok=True)
    save_checkpoint(models / "captioner.safetensors", captioner)
    save_checkpoint(
        models / "zeroshot.safetensors",
        {"classes": zero_shot.model.classes, **zero_shot.model.state_dict()},
        {"class_names": zero_shot.class_names, "unseen": zero_shot.unseen},
    )
    for regime, (regime_models, regime_knowledge) in saved.items():
        for (task, variant), model in regime_models.items():
            save_checkpoint(models / f"{regime}_{task}_{variant}.safetensors", model)
        index = regime_knowledge.index
        save_checkpoint(
            models / f"knowledge_{regime}.safetensors",
            {
                "entity_embeddings": knowledge.entity_embeddings,
                "index_embeddings": index.embeddings,
                "index_labels": index.labels,
            },
        )


@dataclasses.dataclass
class Pipeline:
    """A saved run, ready for the page: knowledge per regime, models by (regime, task, variant)."""

    config: object
    knowledge: dict
    models: dict
    zero_shot: LabelEmbeddingClassifier
    class_names: list[str]


def load_pipeline(run_path: Path, config) -> Pipeline:
    """Rebuild everything :func:`save_run_models` wrote (``config``: the run's Config)."""
    models = Path(run_path) / MODELS
    if not (models / "captioner.safetensors").is_file():
        raise CheckpointError(
            f"{run_path} has no saved fusion models (models/captioner.safetensors); "
            "it ran with save_models = false, re-run it to follow images"
        )
    captioner = SlotCaptioner(width=config.width * 2)
    load_into(captioner, models / "captioner.safetensors")
    encoder = load_text_encoder(config.text_encoder)
    knowledge, fused, graph = {}, {}, shapes_graph()
    for regime in config.regimes:
        specs = {
            "entity_embeddings": TensorSpec((graph.num_entities, None)),
            "index_embeddings": TensorSpec(("M", captioner.embedding_dim)),
            "index_labels": TensorSpec(("M",), "int"),
        }
        tensors, _ = load_checkpoint(models / f"knowledge_{regime}.safetensors", tensors=specs)
        index = build_index(tensors["index_embeddings"], tensors["index_labels"], 6, backend="torch")
        knowledge[regime] = Knowledge(
            captioner.eval(),
            encoder.encode,
            graph,
            tensors["entity_embeddings"],
            index,
            6,
            config.k,
            config.temperature,
        )
        for task in config.tasks:
            for variant in config.methods:
                model = FusionNet(
                    task,
                    6 if task == "classify" else 7,
                    knowledge[regime].source_dims(sources_of(variant)),
                    config.fusion,
                    config.width,
                )
                load_into(model, models / f"{regime}_{task}_{variant}.safetensors")
                fused[regime, task, variant] = model.eval()
    return Pipeline(config, knowledge, fused, *load_zero_shot(models, config))


def load_zero_shot(models: Path, config) -> tuple:
    """The zero-shot classifier and its class names (``classes``: one text embedding per class)."""
    path = models / "zeroshot.safetensors"
    tensors, meta = load_checkpoint(
        path, tensors={"classes": TensorSpec(("C", None))}, metadata={"class_names": list[str]}
    )
    classes = tensors.pop("classes")
    if len(meta["class_names"]) != len(classes):
        raise CheckpointError(
            f"checkpoint {path} names {len(meta['class_names'])} classes for {len(classes)} "
            f"class embeddings; {REDO}"
        )
    model = build_loaded(path, tensors, lambda: LabelEmbeddingClassifier(classes, width=config.width * 2))
    return model.eval(), meta["class_names"]
