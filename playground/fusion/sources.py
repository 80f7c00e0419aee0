"""Context sources for fusion: what each variant adds to the image, as token sets.

Everything here is trained once per seed and shared by every variant (:class:`Knowledge`):
the captioner (its own captioned pool), the text encoder, the knowledge graph with its TransE
embeddings and the retrieval index over the labelled training set. :func:`context_for` turns
images into ``(tokens, mask)`` pairs per source, in the order a :class:`FusionNet` expects:

- ``text``: the predicted caption's sentence embedding (one token);
- ``kg``: the TransE embeddings of the entities named in the caption (up to ``max_entities``);
- ``retrieval``: one token [c ; p], the similarity-weighted mean of the k nearest labelled
  embeddings and their label distribution (a training image never retrieves itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from playground.errors import ConfigError
from playground.fusion.captioner import SlotCaptioner, describe
from playground.fusion.entities import entity_tokens, extract_entities
from playground.fusion.knowledge_graph import KnowledgeGraph
from playground.retrieval.context import retrieve

SOURCES = ("text", "kg", "retrieval")
VARIANT_SOURCES = {
    "image_only": (),
    "text": ("text",),
    "kg": ("kg",),
    "retrieval": ("retrieval",),
    "all": SOURCES,
}


@dataclasses.dataclass
class Knowledge:
    """The trained pieces every fused variant draws on."""

    captioner: SlotCaptioner
    encode_text: Callable[[list[str]], torch.Tensor]
    graph: KnowledgeGraph
    entity_embeddings: torch.Tensor  # (entities, dim), TransE
    index: object  # playground.retrieval.index ExactIndex / FaissIndex over the labelled set
    num_classes: int
    k: int = 8
    temperature: float = 0.1
    max_entities: int = 4

    def source_dims(self, sources) -> dict[str, int]:
        text_dim = self.encode_text(["a"]).shape[1]
        dims = {
            "text": text_dim,
            "kg": self.entity_embeddings.shape[1],
            "retrieval": self.captioner.embedding_dim + self.num_classes,
        }
        return {name: dims[name] for name in sources}


def sources_of(variant: str) -> tuple[str, ...]:
    if variant not in VARIANT_SOURCES:
        raise ConfigError(f"unknown fusion variant {variant!r}; choose from {', '.join(VARIANT_SOURCES)}")
    return VARIANT_SOURCES[variant]


@torch.no_grad()
def context_for(knowledge: Knowledge, images: torch.Tensor, sources, exclude_self: bool = False) -> tuple:
    """``(flat [tokens, mask, ...] in ``sources`` order, details)``; details hold the captions,
    entities and retrieved neighbours for display."""
    captions, embeddings = describe(knowledge.captioner, images)
    n, flat, details = images.shape[0], [], {"captions": captions}
    ones = torch.ones(n, 1, dtype=torch.bool)
    for source in sources:
        if source == "text":
            flat += [knowledge.encode_text(captions)[:, None, :], ones]
        elif source == "kg":
            entities = [extract_entities(caption, knowledge.graph) for caption in captions]
            indices, mask = entity_tokens(entities, knowledge.graph, knowledge.max_entities)
            flat += [knowledge.entity_embeddings[indices] * mask[..., None], mask]
            details["entities"] = entities
        elif source == "retrieval":
            exclude = torch.arange(n) if exclude_self else None
            found = retrieve(knowledge.index, embeddings, knowledge.k, knowledge.temperature, exclude=exclude)
            flat += [torch.cat([found.embedding, found.label_distribution], 1)[:, None, :], ones]
            details["retrieved"] = found
        else:
            raise ConfigError(f"unknown context source {source!r}; choose from {', '.join(SOURCES)}")
    return flat, details
