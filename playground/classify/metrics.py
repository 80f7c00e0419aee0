"""Classification metrics on tensors: accuracy, confusion matrix, per-class accuracy."""

from __future__ import annotations

import re

import torch


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy as a fraction in [0, 1]."""
    return (logits.argmax(1) == targets).float().mean().item()


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``M[t, p]`` counts images of true class ``t`` predicted as ``p``."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: torch.Tensor) -> torch.Tensor:
    """Recall of each true class (diagonal over row sums); NaN for classes with no images."""
    totals = matrix.sum(1).float()
    return torch.where(totals > 0, matrix.diag().float() / totals.clamp(min=1), torch.nan)


def slug(name: str) -> str:
    """A class name made safe for a slash-separated metric name: ``T-shirt/top`` -> ``t-shirt_top``."""
    return re.sub(r"[^a-z0-9\-]+", "_", name.lower()).strip("_")
