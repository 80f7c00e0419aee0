"""Models: backbones, embedding/classifier heads and a name -> model registry.

Every model returns a ``ModelOutput(embedding, logits)``; build one with ``build_model``.
"""

from playground.models.cnn import SmallCNN
from playground.models.heads import ClassifierHead, EmbeddingClassifier, EmbeddingHead
from playground.models.outputs import ModelOutput
from playground.models.registry import MODEL_NAMES, build_model, count_macs, count_parameters

__all__ = [
    "MODEL_NAMES",
    "ClassifierHead",
    "EmbeddingClassifier",
    "EmbeddingHead",
    "ModelOutput",
    "SmallCNN",
    "build_model",
    "count_macs",
    "count_parameters",
]
