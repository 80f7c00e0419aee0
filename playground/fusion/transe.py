"""TransE knowledge-graph embeddings.

Bordes, Usunier, Garcia-Duran, Weston, Yakhnenko (2013), "Translating Embeddings for
Modeling Multi-relational Data", NeurIPS. A relation is a translation in embedding
space: for a true triple ``(h, r, t)``, ``e_h + e_r ≈ e_t``. The score is

    f(h, r, t) = −d(h, r, t),    d(h, r, t) = ‖e_h + e_r − e_t‖  (L1 or L2 norm),

and training minimises the margin ranking loss over corrupted triples

    L = Σ_{(h,r,t)} [γ + d(h, r, t) − d(h', r, t')]_+ ,

where ``(h', r, t')`` replaces the head or the tail (a fair coin) by an entity drawn
uniformly. Entity embeddings are renormalised to unit L2 norm after every step, so the
loss cannot be lowered by simply growing them; relations are normalised once at
initialisation. Embeddings start uniform in ``[−6/√k, 6/√k]`` as in the paper (Adam is
used instead of plain SGD so small graphs train in a few hundred steps).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from playground.core.progress import Progress, report
from playground.errors import ConfigError
from playground.fusion.knowledge_graph import KnowledgeGraph


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


class TransE(nn.Module):
    """Entity and relation embeddings scored by ``d(h, r, t) = ‖e_h + e_r − e_t‖_norm``."""

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int = 32,
        norm: int = 1,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        _positive_int("num_entities", num_entities)
        _positive_int("num_relations", num_relations)
        _positive_int("dim", dim)
        if norm not in (1, 2):
            raise ConfigError(f"norm must be 1 (L1) or 2 (L2), got {norm!r}")
        self.norm = norm
        self.entities = nn.Embedding(num_entities, dim)
        self.relations = nn.Embedding(num_relations, dim)
        self.loss_history: list[float] = []  # mean loss per epoch, filled by train_transe
        bound = 6.0 / math.sqrt(dim)
        with torch.no_grad():
            self.entities.weight.uniform_(-bound, bound, generator=generator)
            self.relations.weight.uniform_(-bound, bound, generator=generator)
            self.relations.weight.div_(self.relations.weight.norm(dim=1, keepdim=True))
        self.normalise_entities()

    def distance(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``‖e_h + e_r − e_t‖`` for index tensors of one shape (broadcasting allowed)."""
        translated = self.entities(h) + self.relations(r) - self.entities(t)
        return translated.norm(p=self.norm, dim=-1)

    def forward(self, triples: torch.Tensor) -> torch.Tensor:
        """The score ``f = −d`` of ``(T, 3)`` index triples; higher is more plausible."""
        return -self.distance(triples[:, 0], triples[:, 1], triples[:, 2])

    @torch.no_grad()
    def normalise_entities(self) -> None:
        """Project every entity embedding back onto the unit L2 sphere."""
        weight = self.entities.weight
        weight.div_(weight.norm(dim=1, keepdim=True).clamp_min(1e-12))

    @property
    def entity_embeddings(self) -> torch.Tensor:
        """A detached copy of the ``(E, dim)`` entity embeddings."""
        return self.entities.weight.detach().clone()

    @property
    def relation_embeddings(self) -> torch.Tensor:
        """A detached copy of the ``(R, dim)`` relation embeddings."""
        return self.relations.weight.detach().clone()


def corrupt(triples: torch.Tensor, num_entities: int, generator: torch.Generator) -> torch.Tensor:
    """Copies of ``triples`` with the head or the tail (fair coin) replaced uniformly."""
    corrupted = triples.clone()
    replace_head = torch.rand(len(triples), generator=generator) < 0.5
    random_entities = torch.randint(num_entities, (len(triples),), generator=generator)
    corrupted[:, 0] = torch.where(replace_head, random_entities, triples[:, 0])
    corrupted[:, 2] = torch.where(replace_head, triples[:, 2], random_entities)
    return corrupted


def margin_loss(model: TransE, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of ``[γ + d(positive) − d(negative)]_+`` over the batch."""
    positive_distance = -model(positive)
    negative_distance = -model(negative)
    return torch.relu(margin + positive_distance - negative_distance).mean()


def _check_training(graph: KnowledgeGraph, epochs, margin, lr, batch_size) -> None:
    if len(graph) == 0:
        raise ConfigError("the knowledge graph has no triples; TransE needs at least one to train")
    _positive_int("epochs", epochs)
    _positive_int("batch_size", batch_size)
    if not margin > 0 or not lr > 0:
        raise ConfigError(f"margin and lr must be positive, got margin={margin!r}, lr={lr!r}")


def _train_epoch(model, optimiser, graph: KnowledgeGraph, margin: float, batch_size: int, generator) -> float:
    """One pass over the shuffled triples; returns the mean loss."""
    order = torch.randperm(len(graph), generator=generator)
    total = 0.0
    for batch in graph.triples[order].split(batch_size):
        negative = corrupt(batch, graph.num_entities, generator)
        loss = margin_loss(model, batch, negative, margin)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        model.normalise_entities()
        total += loss.item() * len(batch)
    return total / len(graph)


def train_transe(
    graph: KnowledgeGraph,
    dim: int = 32,
    epochs: int = 200,
    margin: float = 1.0,
    lr: float = 0.01,
    batch_size: int = 128,
    seed: int = 0,
    norm: int = 1,
    progress: Progress = None,
) -> TransE:
    """Train TransE on ``graph``; the same ``seed`` gives identical embeddings.

    Mini-batches of ``batch_size`` triples (the whole graph when it is smaller), each
    with one corrupted triple per true one. ``model.loss_history`` holds the mean loss
    of every epoch, also reported to ``progress`` as the ``loss`` metric.
    """
    _check_training(graph, epochs, margin, lr, batch_size)
    generator = torch.Generator().manual_seed(seed)
    model = TransE(graph.num_entities, graph.num_relations, dim=dim, norm=norm, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(1, epochs + 1):
        loss = _train_epoch(model, optimiser, graph, margin, batch_size, generator)
        model.loss_history.append(loss)
        report(progress, "TransE", epoch, epochs, epoch=epoch, metrics={"loss": loss})
    return model.eval()


@torch.no_grad()
def link_prediction(model: TransE, graph: KnowledgeGraph) -> dict[str, float]:
    """Raw tail prediction: rank every entity as the tail of each ``(h, r, ?)``.

    Returns ``mean_rank`` (1 is perfect, about E/2 is chance), ``hits_at_1``,
    ``hits_at_3``, ``hits_at_10`` (fraction of triples whose true tail ranks in the top
    k) and ``mean_reciprocal_rank``. Ties count against the true tail. Not filtered:
    other true tails of the same ``(h, r)`` may rank above it.
    """
    if len(graph) == 0:
        raise ConfigError("the knowledge graph has no triples to evaluate")
    heads, relations, tails = graph.triples.unbind(dim=1)
    query = model.entities(heads) + model.relations(relations)  # (T, dim)
    all_entities = model.entities.weight  # (E, dim)
    distances = (query[:, None, :] - all_entities[None, :, :]).norm(p=model.norm, dim=-1)  # (T, E)
    true_distance = distances.gather(1, tails[:, None])
    ranks = (distances < true_distance).sum(dim=1) + (distances == true_distance).sum(dim=1)
    ranks = ranks.double()
    return {
        "mean_rank": ranks.mean().item(),
        "mean_reciprocal_rank": (1.0 / ranks).mean().item(),
        "hits_at_1": (ranks <= 1).double().mean().item(),
        "hits_at_3": (ranks <= 3).double().mean().item(),
        "hits_at_10": (ranks <= 10).double().mean().item(),
        "num_entities": float(graph.num_entities),
    }
