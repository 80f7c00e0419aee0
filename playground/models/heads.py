"""Heads that turn backbone features into an embedding and class logits.

``EmbeddingClassifier`` is the one model class of the playground: backbone -> embedding
head (Linear + BatchNorm1d) -> classifier head (Linear on the embedding). With
``num_classes == 0`` it is an embedding-only model and its logits are ``None``.
"""

from __future__ import annotations

import torch
from torch import nn

from playground.models.outputs import ModelOutput


class EmbeddingHead(nn.Module):
    """Project features ``(N, feature_dim)`` to an embedding ``(N, embedding_dim)``."""

    def __init__(self, feature_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(feature_dim, embedding_dim, bias=False)
        self.norm = nn.BatchNorm1d(embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(features))


class ClassifierHead(nn.Module):
    """Map an embedding ``(N, embedding_dim)`` to logits ``(N, num_classes)``."""

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding_dim, num_classes)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(embedding)


class EmbeddingClassifier(nn.Module):
    """Backbone + embedding head + optional classifier head; returns a ``ModelOutput``."""

    def __init__(self, backbone: nn.Module, feature_dim: int, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.embedding_head = EmbeddingHead(feature_dim, embedding_dim)
        self.classifier = ClassifierHead(embedding_dim, num_classes) if num_classes > 0 else None
        self.feature_dim = feature_dim
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` -> un-normalised embeddings ``(N, embedding_dim)``."""
        return self.embedding_head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        embedding = self.embed(x)
        logits = self.classifier(embedding) if self.classifier is not None else None
        return ModelOutput(embedding=embedding, logits=logits)
