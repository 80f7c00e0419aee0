"""Retrieval-augmented context: what the k nearest training entries say about a query.

In the spirit of kNN-augmented models (kNN-LM, Khandelwal et al. 2020; retrieval-augmented
classification, e.g. Long et al. 2022), a query q is looked up in an index of training
embeddings e_j with labels y_j, and its k nearest neighbours (cosine similarities s_j) are
weighted by a temperature softmax:

    w_j = softmax_j(s_j / τ)                      (neighbour weights, Σ_j w_j = 1)
    c   = Σ_j w_j · e_j                           (contextual embedding, e_j L2-normalised)
    p   = Σ_j w_j · onehot(y_j)                   (neighbour label distribution, Σ_c p_c = 1)

Small τ concentrates the weight on the nearest neighbour (τ → 0 gives 1-NN); large τ tends to
a plain k-NN vote. ``argmax p`` is a pure k-NN classifier (:func:`knn_predict`), and
:class:`RetrievalFusion` learns to combine the query's own embedding with ``c`` and ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from playground.errors import ConfigError, DataFormatError


@dataclass
class RetrievalContext:
    """The retrieved neighbourhood of Q queries (k neighbours, D-dim index, C classes)."""

    embedding: torch.Tensor  # (Q, D) similarity-weighted mean of the neighbours' unit embeddings
    label_distribution: torch.Tensor  # (Q, C) weighted one-hot labels of the neighbours, rows sum to 1
    neighbours: torch.Tensor  # (Q, k) database indices, most similar first
    similarities: torch.Tensor  # (Q, k) cosine similarities, descending
    weights: torch.Tensor  # (Q, k) softmax(similarities / temperature), rows sum to 1


def retrieve(
    index, queries: torch.Tensor, k: int = 8, temperature: float = 0.1, exclude: torch.Tensor | None = None
) -> RetrievalContext:
    """Search ``index`` for the ``k`` nearest entries of each query and summarise them.

    ``index`` is an :class:`~playground.retrieval.index.ExactIndex` or ``FaissIndex``;
    ``exclude[i]`` is a database index query ``i`` must not retrieve (-1: none), e.g.
    ``torch.arange(N)`` when the queries are the training set itself.
    """
    if not temperature > 0:
        raise ConfigError(f"retrieval temperature must be > 0, got {temperature}")
    similarities, neighbours = index.search(queries, k, exclude=exclude)
    weights = torch.softmax(similarities / temperature, dim=1)
    neighbour_embeddings = index.embeddings[neighbours].to(weights.dtype)  # (Q, k, D)
    embedding = torch.einsum("qk,qkd->qd", weights, neighbour_embeddings)
    neighbour_labels = index.labels[neighbours]  # (Q, k)
    label_distribution = weights.new_zeros(weights.shape[0], index.num_classes)
    label_distribution = label_distribution.scatter_add(1, neighbour_labels, weights)
    return RetrievalContext(
        embedding=embedding,
        label_distribution=label_distribution,
        neighbours=neighbours,
        similarities=similarities,
        weights=weights,
    )


def knn_predict(context: RetrievalContext) -> torch.Tensor:
    """The k-NN classifier baseline: the class with the most neighbour weight, ``(Q,)`` int64."""
    return context.label_distribution.argmax(dim=1)


class RetrievalFusion(nn.Module):
    """Fuse a query embedding with its retrieval context: [q, c, p] -> Linear -> ReLU -> Linear.

    ``query_dim`` is the size of the query's own embedding, ``index_dim`` of the index
    embeddings (``c``), ``num_classes`` of ``p``; the output has ``out_dim`` features (e.g. class
    logits). ``hidden_dim`` is the width of the hidden layer.
    """

    def __init__(
        self, query_dim: int, index_dim: int, num_classes: int, out_dim: int, hidden_dim: int = 128
    ) -> None:
        super().__init__()
        for name, value in (
            ("query_dim", query_dim),
            ("index_dim", index_dim),
            ("num_classes", num_classes),
            ("out_dim", out_dim),
            ("hidden_dim", hidden_dim),
        ):
            if value < 1:
                raise ConfigError(f"RetrievalFusion {name} must be >= 1, got {value}")
        self.query_dim, self.index_dim, self.num_classes = query_dim, index_dim, num_classes
        self.net = nn.Sequential(
            nn.Linear(query_dim + index_dim + num_classes, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, query_embedding: torch.Tensor, context: RetrievalContext) -> torch.Tensor:
        """Return ``(Q, out_dim)`` from the query embedding ``(Q, query_dim)`` and its context."""
        expected = (
            (query_embedding, self.query_dim, "query_embedding"),
            (context.embedding, self.index_dim, "context.embedding"),
            (context.label_distribution, self.num_classes, "context.label_distribution"),
        )
        for tensor, width, name in expected:
            if tensor.dim() != 2 or tensor.shape[1] != width or tensor.shape[0] != query_embedding.shape[0]:
                raise DataFormatError(
                    f"RetrievalFusion expects {name} of shape ({query_embedding.shape[0]}, "
                    f"{width}), got {tuple(tensor.shape)}"
                )
        fused = torch.cat(
            [
                query_embedding,
                context.embedding.to(query_embedding.dtype),
                context.label_distribution.to(query_embedding.dtype),
            ],
            dim=1,
        )
        return self.net(fused)
