"""Read active-learning runs back (single or multi-seed) for the page and for scripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from playground.core.runs import RunInfo, list_runs, read_json, seed_folders

EXPERIMENT = "active"


def find_active_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The active-learning runs under ``root``, newest first."""
    return [info for info in list_runs(root) if info.experiment == EXPERIMENT]


def _read(path: Path) -> dict:
    return read_json(path / "curves.json")


def load_curves(path: str | Path) -> dict:
    """``{"strategies": {s: [curve per seed]}, "policies": {p: [...]}, "escalation": [per seed]}``."""
    path = Path(path)
    seeds = [_read(p) for p in seed_folders(path)] or [_read(path)]

    def per_seed(part: str) -> dict:
        return {name: [s[part][name] for s in seeds] for name in seeds[0][part]}

    return {
        "strategies": per_seed("strategies"),
        "policies": per_seed("policies"),
        "escalation": [s["escalation"] for s in seeds],
    }


def mean_band(runs: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds and the half-width of its 95% confidence interval (0 for one seed)."""
    values = np.asarray(runs, dtype=float)
    mean = values.mean(0)
    if values.shape[0] < 2:
        return mean, np.zeros_like(mean)
    half = student_t.ppf(0.975, values.shape[0] - 1) * values.std(0, ddof=1) / np.sqrt(values.shape[0])
    return mean, half
