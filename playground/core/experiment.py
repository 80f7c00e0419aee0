"""The run template: what every experiment does the same way, written once.

An experiment supplies only what is its own: a typed ``Config`` (a :class:`RunConfig`), a
``load`` step that reads its data, and a ``steps`` function that trains, evaluates, writes its
own artifacts (plots, side files, models when ``run.save_models``) and returns a
:class:`Finished` (metrics, report text, typed results). :func:`run_experiment` does the rest,
in this order:

0. check the run's name and runs root (:func:`~playground.core.runs.check_run_target`): a ``--out``
   that is a file or read-only fails here, before any work;
1. seed every generator (:func:`~playground.core.device.seed_everything`), set the CPU threads
   (``config.threads``, else ``$PLAYGROUND_THREADS``) and pick the device;
2. ``load(config)``: bad data fails here, before a run folder exists;
3. create the run folder and write ``config.toml``;
4. ``steps(run, data)``;
5. write ``metrics.json`` and ``report.md``.

From step 3 on, ``status.json`` says the run is running (with a heartbeat and the overall progress,
:mod:`playground.core.status`), then complete, failed (with the error) or interrupted. Progress
events go through a :class:`~playground.core.progress.RunProgress`, which knows the stage k of N and
the time left from an earlier complete run of the same work.

Several seeds, ``--jobs`` and the multi-seed report live in :mod:`playground.core.runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from playground.core.config import RunConfig
from playground.core.device import choose_device, configure_threads, seed_everything
from playground.core.progress import Progress, RunProgress
from playground.core.runs import Metrics, Result, RunDir, check_run_target, run_roots
from playground.core.status import StatusKeeper, find_profile

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
    if run_dir is None:
        check_run_target(config.name, config.out or None)
    seed_everything(config.seed)
    configure_threads(config.threads)
    device = choose_device(config.device)
    tracker = track(progress, key, config)
    data = load(config, device, tracker)  # bad data fails before a run folder exists
    run_dir = run_dir or RunDir.create(config.name, config.out or None)
    run_dir.write_config(config, key)
    with keep_status(run_dir, tracker):
        finished = steps(Run(key, config, device, run_dir, tracker), data)
        run_dir.write_metrics(finished.metrics)
        run_dir.write_report(finished.report)
    return Result(finished.metrics, finished.report, run_dir.path, finished.results)


def track(progress: Progress, key: str, config: RunConfig) -> RunProgress:
    """``progress`` wrapped in a :class:`RunProgress` that knows this work's earlier timeline (a
    caller that made its own tracker, such as a background job, keeps it)."""
    if isinstance(progress, RunProgress):
        return progress
    tracker = RunProgress(progress, find_profile(key, config, run_roots(config.out or None)))
    if hasattr(progress, "run"):  # the CLI's bar draws the whole run
        progress.run = tracker
    return tracker


@contextmanager
def keep_status(run_dir: RunDir, tracker: RunProgress):
    """``status.json`` for the work inside: running with a heartbeat, then complete, failed or interrupted."""
    keeper = StatusKeeper(run_dir.path, tracker)
    tracker.run_dir = run_dir.path
    try:
        yield
    except Exception as err:
        keeper.finish("failed", one_line(err))
        raise
    except BaseException as err:  # Ctrl-C, a cancelled job (SystemExit from SIGTERM)
        keeper.finish("interrupted", "cancelled" if isinstance(err, SystemExit) else "stopped by the user")
        raise
    keeper.finish("complete")


def one_line(err: BaseException) -> str:
    """An error as the one line a page or the job list shows."""
    from playground.errors import PlaygroundError

    text = " ".join(str(err).split())
    if not isinstance(err, PlaygroundError):  # an unexpected error: say which kind it was
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= 500 else text[:497] + "..."
