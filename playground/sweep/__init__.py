"""Sweeps over any recipe: a grid or samples, seeds, local processes or Ray (see :mod:`.sweep`)."""

from playground.sweep.space import Trial, check_ranges, grid_trials, parse_grid, sample_trials
from playground.sweep.sweep import SweepResult, run_sweep, sweep_folder

__all__ = [
    "SweepResult",
    "Trial",
    "check_ranges",
    "grid_trials",
    "parse_grid",
    "run_sweep",
    "sample_trials",
    "sweep_folder",
]
