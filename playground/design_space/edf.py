"""Comparing design spaces by their error distributions (Radosavovic et al. 2019, 2020).

The **error EDF** of n models with errors e_i is F(e) = (1/n) Σ_i 1[e_i < e]: the fraction of
models with error below e. A space whose EDF lies above another's holds more good models; its
10th percentile and median summarise it (``edf/<space>/error_p10``, ``error_median``).

The **empirical bootstrap** of a good range for a parameter: draw 25% of the (parameter, error)
pairs with replacement, keep the parameter of the pair with the lowest error, repeat many times;
the 2.5th–97.5th percentiles of the kept values are the 95% range where the best models lie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from playground.errors import ConfigError


def edf(errors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(e, F)``: the sorted errors and the fraction of models at or below each, for a step plot."""
    values = np.sort(np.asarray(errors, dtype=np.float64))
    if not len(values) or not np.isfinite(values).all():
        raise ConfigError("an error EDF needs one or more finite errors")
    return values, np.arange(1, len(values) + 1) / len(values)


def edf_steps(errors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The EDF as a staircase to draw with straight lines: it rises by 1/n at each error, flat between
    (a line through the sorted points would show models between two errors that are not there)."""
    values, fractions = edf(errors)
    x = np.repeat(values, 2)
    y = np.concatenate([[0.0], np.repeat(fractions, 2)[:-1]])
    return x, y


def edf_summary(errors: Sequence[float]) -> dict[str, float]:
    """``error_p10`` and ``error_median`` of the errors, and their ``count``."""
    values, _ = edf(errors)
    return {
        "error_p10": float(np.percentile(values, 10)),
        "error_median": float(np.median(values)),
        "count": float(len(values)),
    }


def edf_gap(errors_a: Sequence[float], errors_b: Sequence[float]) -> float:
    """The mean of F_a(e) − F_b(e) over the pooled errors: > 0 when space a's EDF lies above b's."""
    a, b = np.sort(np.asarray(errors_a, float)), np.sort(np.asarray(errors_b, float))
    grid = np.union1d(a, b)
    return float(
        np.mean(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))
    )


def edf_gap_range(
    errors_a: Sequence[float], errors_b: Sequence[float], draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The 95% bootstrap interval of :func:`edf_gap` (each space's models resampled with replacement):
    how far the gap could move with another draw of the same number of models."""
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    rng = np.random.default_rng(seed)
    gaps = [edf_gap(rng.choice(a, len(a)), rng.choice(b, len(b))) for _ in range(draws)]
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(low), float(high)


@dataclass
class BootstrapRange:
    """The best models' ``parameter`` lies in ``[low, high]`` with 95% confidence; ``best`` is the median."""

    parameter: str
    low: float
    best: float
    high: float


def bootstrap_range(
    parameter: str,
    values: Sequence[float],
    errors: Sequence[float],
    draws: int = 10_000,
    fraction: float = 0.25,
    seed: int = 0,
) -> BootstrapRange:
    """The paper's empirical bootstrap of where the best models' ``parameter`` lies."""
    values, errors = np.asarray(values, float), np.asarray(errors, float)
    if len(values) != len(errors) or len(values) < 4:
        raise ConfigError(f"a bootstrap needs four or more (value, error) pairs, got {len(values)}")
    rng = np.random.default_rng(seed)
    size = max(1, round(fraction * len(values)))
    picks = rng.integers(0, len(values), size=(draws, size))
    best = values[picks[np.arange(draws), np.argmin(errors[picks], axis=1)]]
    low, mid, high = np.percentile(best, [2.5, 50, 97.5])
    return BootstrapRange(parameter, float(low), float(mid), float(high))
