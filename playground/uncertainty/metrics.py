"""OOD-detection and calibration metrics (scikit-learn and torchmetrics underneath).

OOD detection treats OOD as the positive class and the score as "more OOD is higher":
- AUROC: the probability that a random OOD input scores above a random in-distribution one;
- AUPR-in / AUPR-out: average precision with in-distribution (scores negated) or OOD as positive;
- FPR95: the fraction of OOD inputs accepted as in-distribution at the threshold that keeps
  95% of in-distribution inputs (TPR 95% with in-distribution as positive, as in Liang et al. 2018).

Calibration of the predictive distribution ``p̄``:
- ECE (Guo et al. 2017): ``Σ_b |B_b|/N · |acc(B_b) - conf(B_b)|`` over 15 equal-width confidence bins;
- NLL: ``-mean log p̄(y|x)``;
- Brier: ``mean Σ_c (p̄_c - 1[y=c])²``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torchmetrics.functional.classification import multiclass_calibration_error

from playground.errors import DataFormatError

ECE_BINS = 15


def _labelled(score_in: torch.Tensor, score_out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if score_in.numel() == 0 or score_out.numel() == 0:
        raise DataFormatError("OOD metrics need at least one in-distribution and one OOD score")
    scores = torch.cat([score_in, score_out]).double().numpy()
    if not np.isfinite(scores).all():
        raise DataFormatError("OOD scores contain NaN or infinity")
    labels = np.concatenate([np.zeros(score_in.numel()), np.ones(score_out.numel())])
    return scores, labels


def fpr_at_tpr(score_in: torch.Tensor, score_out: torch.Tensor, tpr: float = 0.95) -> float:
    """Fraction of OOD scores at or below the ``tpr`` quantile of in-distribution scores."""
    threshold = torch.quantile(score_in.double(), tpr).item()
    return float((score_out.double() <= threshold).float().mean())


def ood_metrics(score_in: torch.Tensor, score_out: torch.Tensor) -> dict[str, float]:
    """``auroc``, ``aupr_in``, ``aupr_out`` and ``fpr95`` for scores where OOD is higher."""
    scores, labels = _labelled(score_in, score_out)
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr_in": float(average_precision_score(1 - labels, -scores)),
        "aupr_out": float(average_precision_score(labels, scores)),
        "fpr95": fpr_at_tpr(score_in, score_out),
    }


def roc_points(
    score_in: torch.Tensor, score_out: torch.Tensor, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of the ROC curve (OOD positive), thinned to about ``points`` points for plotting."""
    scores, labels = _labelled(score_in, score_out)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=True)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return fpr[keep], tpr[keep]


def _check_probs(probs: torch.Tensor, targets: torch.Tensor) -> None:
    if probs.ndim != 2 or targets.shape != (probs.shape[0],):
        raise DataFormatError(
            f"need probabilities (N, C) and targets (N,), got {tuple(probs.shape)} and {tuple(targets.shape)}"
        )


def calibration(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """``accuracy``, ``ece``, ``nll`` and ``brier`` of the predictive distribution ``probs (N, C)``."""
    _check_probs(probs, targets)
    probs = probs.double().clamp_min(0)
    probs = probs / probs.sum(1, keepdim=True)
    onehot = torch.nn.functional.one_hot(targets, probs.shape[1]).double()
    return {
        "accuracy": float((probs.argmax(1) == targets).double().mean()),
        "ece": float(
            multiclass_calibration_error(probs.float(), targets, probs.shape[1], n_bins=ECE_BINS, norm="l1")
        ),
        "nll": float(-probs.gather(1, targets[:, None]).clamp_min(1e-12).log().mean()),
        "brier": float(((probs - onehot) ** 2).sum(1).mean()),
    }


def reliability_bins(
    probs: torch.Tensor, targets: torch.Tensor, bins: int = ECE_BINS
) -> dict[str, np.ndarray]:
    """Per confidence bin: ``confidence`` (mean), ``accuracy`` and ``count``, for a reliability diagram."""
    _check_probs(probs, targets)
    confidence, predicted = probs.max(1)
    index = (confidence * bins).long().clamp(max=bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    correct = torch.bincount(index, weights=(predicted == targets).double(), minlength=bins)
    summed = torch.bincount(index, weights=confidence.double(), minlength=bins)
    safe = count.clamp_min(1)
    return {
        "confidence": (summed / safe).numpy(),
        "accuracy": (correct / safe).numpy(),
        "count": count.numpy(),
        "edges": np.linspace(0, 1, bins + 1),
    }
