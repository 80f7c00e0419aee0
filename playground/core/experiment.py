"""The run template: what every experiment does the same way, written once.

An experiment supplies only what is its own: a typed ``Config`` (a :class:`RunConfig`), a
``load`` step that reads its data, and a ``steps`` function that trains, evaluates, writes its
own artifacts (plots, side files, models when ``run.save_models``) and returns a
:class:`Finished` (metrics, report text, typed results). :func:`run_experiment` does the rest,
in this order:

1. seed every generator (:func:`~playground.core.device.seed_everything`), set the CPU threads
   (``config.threads``, else ``$PLAYGROUND_THREADS``) and pick the device;
2. ``load(config)``: bad data fails here, before a run folder exists;
3. create the run folder and write ``config.toml``;
4. ``steps(run, data)``;
5. write ``metrics.json`` and ``report.md`` (``metrics.json`` last but one, so a folder with a
   report is a finished run).

Several seeds, ``--jobs`` and the multi-seed report live in :mod:`playground.core.runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from playground.core.config import RunConfig
from playground.core.device import choose_device, configure_threads, seed_everything
from playground.core.progress import Progress
from playground.core.runs import Metrics, Result, RunDir

C = TypeVar("C", bound=RunConfig)
D = TypeVar("D")


@dataclass
class Run(Generic[C]):
    """One run in progress, as the experiment's steps see it."""

    key: str  # the technique's key (playground.core.registry)
    config: C
    device: torch.device
    dir: RunDir
    progress: Progress = None

    @property
    def save_models(self) -> bool:
        """Whether to write the trained models (the one save flag every experiment honours)."""
        return self.config.save_models


@dataclass
class Finished:
    """What an experiment's steps hand back to the template."""

    metrics: Metrics
    report: str
    results: Any = None  # the typed results object of this technique (kept in memory for callers)


def run_experiment(
    key: str,
    config: C,
    load: Callable[[C, torch.device, Progress], D],
    steps: Callable[[Run[C], D], Finished],
    progress: Progress = None,
    run_dir: RunDir | None = None,
) -> Result:
    """Run one experiment through the template (see the module docstring for the order)."""
    seed_everything(config.seed)
    configure_threads(config.threads)
    device = choose_device(config.device)
    data = load(config, device, progress)  # bad data fails before a run folder exists
    run_dir = run_dir or RunDir.create(config.name, config.out or None)
    run_dir.write_config(config, key)
    finished = steps(Run(key, config, device, run_dir, progress), data)
    run_dir.write_metrics(finished.metrics)
    run_dir.write_report(finished.report)
    return Result(finished.metrics, finished.report, run_dir.path, finished.results)
