"""Experiment registry: maps a recipe's ``experiment`` name to its technique's module.

Modules are imported only when asked, so ``playground --help`` answers at once.
Each module defines ``Config`` (a :class:`~playground.core.config.RunConfig` subclass)
and ``run(config, progress=None, run_dir=None) -> Result``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from playground.errors import ConfigError

EXPERIMENTS: dict[str, str] = {
    "active": "playground.active.experiment",
    "classify": "playground.classify.experiment",
    "cuboids": "playground.pointcloud.experiment",
    "fct": "playground.fct.experiment",
    "fusion": "playground.fusion.experiment",
    "ood": "playground.uncertainty.experiment",
    "latency": "playground.optimize.experiment",
    "optimizers": "playground.optimizers.experiment",
    "swav": "playground.ssl.experiment",
}


def get_experiment(name: str) -> ModuleType:
    """The experiment module registered as ``name``."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    return importlib.import_module(EXPERIMENTS[name])
