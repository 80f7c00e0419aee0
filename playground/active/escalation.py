"""Escalation with a guarantee: auto-label what the model is sure of, send the rest to people.

A sample is auto-labelled when its confidence ``max_c p̄_c`` reaches a threshold ``λ``. The
threshold is calibrated on a held-out labelled split so that the error among auto-labelled
samples (the selective risk) stays at or below a target ``α`` with probability ``1 - δ``:
selective classification with guaranteed risk (Geifman & El-Yaniv 2017) in the
Learn-then-Test form (Angelopoulos et al. 2021) with fixed-sequence testing. Candidate
thresholds ``λ_1 > λ_2 > ...`` are the confidences of the ``k_1 < k_2 < ...`` most confident
calibration samples (G counts, fixed before looking at correctness). For ``λ_j``, with ``n_j``
samples at or above it and ``e_j`` of them wrong, the Clopper-Pearson bound
``U_j = Beta⁻¹(1 - δ; e_j + 1, n_j - e_j)`` bounds the risk. The tests run in that order, each at
level δ, and stop at the first ``U_j > α``; the last ``λ_j`` that passed is chosen. Because the
order is fixed in advance, the family-wise error stays at δ without Bonferroni's ``δ/G`` (which
needs several times more labels to certify anything). The first count is ``2·k_min``, where
``k_min = ⌈log δ / log(1 - α)⌉`` is the fewest samples that could pass with no error at all, so
one early unlucky error does not end the sequence. On exchangeable new data,
``P(error | auto-labelled) ≤ α`` then holds with probability at least ``1 - δ``.

Routing: likely out-of-distribution samples (an OOD score above the in-distribution 95th
percentile) are flagged for review as such and never auto-labelled; confident ones are
auto-labelled; the uncertain rest are escalated, most uncertain first, up to the annotators'
budget per round, and the remainder is deferred to a later round.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from scipy.stats import beta

from playground.errors import ConfigError, DataFormatError

AUTO, ESCALATE, OOD, DEFER = 0, 1, 2, 3
ROUTE_NAMES = ("auto", "escalate", "ood", "defer")


@dataclasses.dataclass
class Threshold:
    """The calibrated confidence threshold and what calibration saw at it."""

    confidence: float  # auto-label at or above this (inf: auto-label nothing)
    alpha: float
    delta: float
    calibration_coverage: float  # fraction of the calibration split auto-labelled
    calibration_error: float  # error among those
    upper_bound: float  # the Clopper-Pearson bound on that error


def risk_upper_bound(errors: int, n: int, delta: float) -> float:
    """One-sided Clopper-Pearson upper bound on an error rate from ``errors`` of ``n``."""
    if n == 0:
        return 1.0
    if errors >= n:
        return 1.0
    return float(beta.ppf(1.0 - delta, errors + 1, n - errors))


def calibrate_threshold(
    confidence: torch.Tensor, correct: torch.Tensor, alpha: float, delta: float = 0.1, grid: int = 50
) -> Threshold:
    """The lowest threshold whose auto-label error is certified ``≤ alpha`` (see module doc)."""
    _check_calibration(confidence, correct, alpha, delta, grid)
    confidence, wrong = confidence.double(), (~correct.bool()).double()
    ranked = confidence.sort(descending=True).values
    best = Threshold(float("inf"), alpha, delta, 0.0, 0.0, 1.0)
    for count in sequence_counts(ranked.shape[0], alpha, delta, grid):
        lam = float(ranked[count - 1])
        chosen = confidence >= lam
        n, errors = int(chosen.sum()), int(wrong[chosen].sum())
        bound = risk_upper_bound(errors, n, delta)
        if bound > alpha:
            break  # fixed-sequence testing stops at the first threshold it cannot certify
        best = Threshold(lam, alpha, delta, n / confidence.shape[0], errors / n, bound)
    return best


def sequence_counts(total: int, alpha: float, delta: float, grid: int) -> list[int]:
    """How many of the most confident samples each candidate threshold keeps, in testing order."""
    fewest = math.ceil(math.log(delta) / math.log1p(-alpha))  # 0 errors in this many just pass
    first = 2 * fewest
    if first > total:
        return []
    return sorted(set(torch.linspace(first, total, grid).round().long().tolist()))


def _check_calibration(confidence, correct, alpha, delta, grid) -> None:
    if confidence.ndim != 1 or correct.shape != confidence.shape or confidence.shape[0] == 0:
        raise DataFormatError(
            f"calibration needs matching non-empty 1-D confidence and correctness, "
            f"got {tuple(confidence.shape)} and {tuple(correct.shape)}"
        )
    if not 0 < alpha < 1 or not 0 < delta < 1 or grid < 1:
        raise ConfigError(f"need 0 < alpha < 1, 0 < delta < 1 and grid >= 1; got {alpha}, {delta}, {grid}")


def ood_threshold(scores_in: torch.Tensor, tpr: float = 0.95) -> float:
    """The OOD score below which ``tpr`` of in-distribution samples fall."""
    if scores_in.numel() == 0:
        raise DataFormatError("the OOD threshold needs in-distribution calibration scores")
    return float(torch.quantile(scores_in.double(), tpr))


def route(
    confidence: torch.Tensor,
    uncertainty: torch.Tensor,
    ood_score: torch.Tensor,
    threshold: Threshold,
    ood_cut: float,
    budget: int,
) -> torch.Tensor:
    """A route code per sample: AUTO, ESCALATE (at most ``budget``, most uncertain first), OOD or DEFER."""
    routes = torch.full_like(confidence, DEFER, dtype=torch.long)
    flagged = ood_score > ood_cut
    routes[flagged] = OOD
    routes[~flagged & (confidence >= threshold.confidence)] = AUTO
    uncertain = (routes == DEFER).nonzero().squeeze(1)
    order = uncertainty[uncertain].argsort(descending=True)
    routes[uncertain[order[: max(budget, 0)]]] = ESCALATE
    return routes


def risk_coverage(
    confidence: torch.Tensor, correct: torch.Tensor, points: int = 50
) -> dict[str, list[float]]:
    """Auto-label accuracy against escalation rate as the threshold sweeps (for the plot)."""
    levels = torch.quantile(confidence.double(), torch.linspace(0.0, 0.99, points, dtype=torch.double))
    rate, acc = [], []
    for lam in levels.tolist():
        chosen = confidence >= lam
        rate.append(1.0 - chosen.float().mean().item())
        acc.append(correct[chosen].float().mean().item())
    return {"escalation_rate": rate, "auto_label_accuracy": acc}
