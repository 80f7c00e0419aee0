"""Segmentation and classification scores for the fusion ablation."""

from __future__ import annotations

import torch


def confusion_matrix(predicted: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` counts, rows the true class, columns the predicted one, over every element."""
    flat = target.reshape(-1).long() * num_classes + predicted.reshape(-1).long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean over classes present (in truth or prediction) of TP / (TP + FP + FN)."""
    true_positive = confusion.diag().float()
    union = confusion.sum(0).float() + confusion.sum(1).float() - true_positive
    present = union > 0
    return (true_positive[present] / union[present]).mean().item() if present.any() else 0.0
