"""Read active-learning runs back (single or multi-seed) for the page and for scripts."""

from __future__ import annotations

from pathlib import Path

from playground.core.runs import RunInfo, list_runs, read_json
from playground.core.seeds import seed_folders

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
