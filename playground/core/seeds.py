"""Seeds, aggregated in one place: scalars, curves, the one band, the one cell format, seed order.

A multi-seed run (``--seeds 0,1,2``) writes one child folder per seed, ``seed<N>-<timestamp>``,
under a parent run folder. Everything that summarises those seeds goes through this module:

- :func:`aggregate_scalars`: each metric's mean over seeds as ``name`` and its sample standard
  deviation as ``name:std`` (the layout ``metrics.json`` has always used);
- :func:`band`: the **one band definition** for curves, *mean ± one sample standard deviation
  over seeds* (``ddof=1``), the same spread the tables print. A single seed has no band;
- :func:`mean_std_cell`: the one way to print a number with its spread, ``0.912 ± 0.004``;
  counts every seed shares (a data size, a step count) print without ``± 0``;
- :func:`seed_folders`: the child folders in **numeric** seed order (seed2 before seed10).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from playground.core.runs import STD, Metrics

SEED_FOLDER = re.compile(r"^seed(\d+)-")


def seed_of(folder: Path) -> int | None:
    """The seed a ``seed<N>-...`` folder holds, or None for any other folder."""
    match = SEED_FOLDER.match(folder.name)
    return int(match[1]) if match else None


def seed_folders(path: Path) -> list[Path]:
    """Child run folders ``seed<N>-...`` of ``path`` in numeric seed order."""
    if not path.is_dir():
        return []
    folders = [
        p for p in path.iterdir() if p.is_dir() and seed_of(p) is not None and (p / "config.toml").is_file()
    ]
    return sorted(folders, key=lambda p: (seed_of(p), p.name))


def first_seed(path: str | Path) -> Path:
    """The run folder itself, or the first seed folder of a multi-seed parent (where models are)."""
    path = Path(path)
    folders = seed_folders(path) if path.is_dir() else []
    return folders[0] if folders else path


def runs_root_of(run_path: Path) -> Path:
    """The runs root a run folder lives under (a seed folder sits one level deeper, in its parent run)."""
    return run_path.parent.parent if seed_of(run_path) is not None else run_path.parent


def aggregate_scalars(per_seed: Sequence[Metrics]) -> Metrics:
    """Mean over seeds as ``name`` and sample standard deviation as ``name:std`` (0 for one seed)."""
    merged, first = Metrics(), per_seed[0]
    for name in first.values:
        values = [m.values[name] for m in per_seed if name in m.values]
        unit, split, tags = first.units.get(name, ""), first.splits.get(name, ""), first.tags.get(name, {})
        merged.add(name, statistics.fmean(values), unit, split, **tags)
        merged.add(name + STD, statistics.stdev(values) if len(values) > 1 else 0.0, unit, split, **tags)
    return merged


@dataclass
class Band:
    """A curve over seeds: its mean and the band ``mean ± std`` (``std`` is None for one seed)."""

    mean: np.ndarray
    std: np.ndarray | None
    seeds: int

    @property
    def low(self) -> np.ndarray:
        return self.mean if self.std is None else self.mean - self.std

    @property
    def high(self) -> np.ndarray:
        return self.mean if self.std is None else self.mean + self.std


def band(curves: Sequence[Sequence[float]]) -> Band:
    """Mean and sample standard deviation over seeds, point by point (curves cut to the shortest)."""
    if not curves:
        raise ValueError("band() needs at least one curve")
    length = min(len(c) for c in curves)
    values = np.asarray([list(c)[:length] for c in curves], dtype=float)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else None
    return Band(values.mean(axis=0), std, len(values))


def mean_std_cell(
    mean: float | None,
    std: float | None = None,
    digits: int | str = 3,
    scale: float = 1.0,
    shared: bool = False,
) -> str:
    """``mean`` (times ``scale``), then `` ± std`` when seeds were aggregated, both printed alike:
    ``digits`` decimals with thousands separators, or a format spec such as ``".4g"``.

    ``shared``: the number is the same in every seed by construction (a count), so no ``± 0``.
    A missing number prints as "–".
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    spec = digits if isinstance(digits, str) else f",.{digits}f"
    text = f"{scale * mean:{spec}}"
    if std is None or (shared and std == 0):
        return text
    return f"{text} ± {scale * std:{spec}}"


def metric_cell(values: dict[str, float], name: str, digits: int = 3, scale: float = 1.0) -> str:
    """Metric ``name`` from a metrics dict as :func:`mean_std_cell` prints it; "–" when absent."""
    if name not in values:
        return "–"
    return mean_std_cell(values[name], values.get(name + STD), digits, scale)
