"""Run a sweep's trials: in local processes (``jobs`` at a time) or on Ray, local or a cluster.

Each trial is a normal run of the recipe (``module.run(config)``) with its values laid over the
recipe and its own run folder under the sweep folder. The driver keeps one ledger,
``trials.json``, written whole after every trial: a trial that finished is skipped by a rerun, a
trial that failed is recorded with its error (and tried again by a rerun) and the sweep goes on.

**Ray** (``pip install 'playground[sweep]'``): ``backend="ray"`` starts Ray on this machine's cores
(``ray.init()``); ``address="host:6379"`` (or ``ray://host:10001``) joins a running cluster, whose
nodes need this project installed. An address that does not answer is refused within seconds,
before Ray is started. Each trial asks Ray for one CPU (Ray then gives it one thread).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.core.checkpoint import write_json_whole
from playground.errors import ConfigError

CONNECT_SECONDS = 3.0


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to run one trial (plain values: it crosses process boundaries)."""

    key: str
    recipe: str
    preset: str | None
    overrides: tuple[str, ...]  # the base --set values, then the trial's own
    seed: int
    out: str
    threads: int = 0


def value_arg(key: str, value: Any) -> str:
    """``key=value`` as ``--set`` reads it back."""
    from playground.core.config import toml_value

    return f"{key}={toml_value(value)}"


def run_trial(job: TrialJob) -> dict[str, Any]:
    """Run one trial; any failure is returned as ``{"status": "failed", "error": ...}``, not raised."""
    from playground.core.runner import config_from_recipe

    try:
        module, config = config_from_recipe(job.recipe, job.preset, list(job.overrides))
        config = dataclasses.replace(
            config, seed=job.seed, name=f"trial-{job.key}", out=job.out, threads=job.threads or config.threads
        )
        result = module.run(config)
    except Exception as err:  # a trial's failure is data: the sweep records it and goes on
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return {"status": "failed", "error": f"{type(err).__name__}: {reason}"[:400]}
    values = {name: v for name, v in result.metrics.values.items() if math.isfinite(v)}
    return {"status": "done", "run_dir": str(result.run_dir), "metrics": values}


class Ledger:
    """``trials.json`` in the sweep folder: each trial's key, values, seed, status and numbers."""

    def __init__(self, folder: Path):
        self.path = folder / "trials.json"
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                data = None
            if not isinstance(data, dict):
                raise ConfigError(f"{self.path} is not a sweep ledger; move it away or pick another --out")
            self.entries = data

    def finished(self, key: str) -> bool:
        entry = self.entries.get(key, {})
        return entry.get("status") == "done" and Path(entry.get("run_dir", "")).is_dir()

    def record(self, key: str, entry: dict[str, Any]) -> None:
        self.entries[key] = entry
        write_json_whole(self.path, self.entries)


@dataclass(frozen=True)
class SweepSummary:
    """A sweep folder as ``playground runs`` lists it: its trials done and failed, and whether its
    report is newer than its ledger (else the sweep stopped or is still running)."""

    path: Path
    done: int
    failed: int
    complete: bool

    def counts(self) -> str:
        return f"{self.done} trial{'s' * (self.done != 1)} done, {self.failed} failed"


def list_sweeps(root: Path) -> list[SweepSummary]:
    """The sweep folders (those with a ledger) directly under ``root``, newest first."""
    found = []
    for ledger_path in Path(root).glob("*/trials.json"):
        try:
            entries = Ledger(ledger_path.parent).entries
        except ConfigError:  # a damaged ledger: a sweep with nothing known
            entries = {}
        states = [e.get("status") if isinstance(e, dict) else None for e in entries.values()]
        report = ledger_path.with_name("report.md")
        complete = report.is_file() and report.stat().st_mtime >= ledger_path.stat().st_mtime
        done = states.count("done")
        found.append(SweepSummary(ledger_path.parent, done, len(states) - done, complete))
    return sorted(found, key=lambda s: (s.path.stat().st_mtime, s.path.name), reverse=True)


def local_outcomes(
    jobs: list[TrialJob], workers: int, trial: Callable[[TrialJob], dict] | None = None
) -> Iterator[tuple[TrialJob, dict]]:
    """Each job's outcome as it finishes (``trial``, default :func:`run_trial`, runs one): in this
    process for one worker, else in spawned processes. Stopped early (Ctrl-C, an error), the trials
    not yet started are cancelled, not run to the end."""
    trial = trial or run_trial
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, trial(job)
        return
    context = multiprocessing.get_context("spawn")  # safe with threads and CUDA
    pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context)
    try:
        futures = {pool.submit(trial, job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                outcome = future.result()
            except Exception as err:  # the worker process died (killed, out of memory)
                outcome = {
                    "status": "failed",
                    "error": f"worker process died: {type(err).__name__}: {err}"[:400],
                }
            yield futures[future], outcome
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_address(address: str) -> None:
    """Refuse a Ray address that does not answer, in seconds (``ray.init`` would keep retrying)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} must look like host:6379 or ray://host:10001")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as err:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({err.strerror or err}); start one there with "
            "`ray start --head`, or leave out --address to run on this machine"
        ) from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed: pip install 'playground[sweep]' (or run without --backend ray: "
            "--jobs N runs trials in local processes)"
        ) from None
    return ray


def ray_outcomes(jobs: list[TrialJob], workers: int, address: str | None) -> Iterator[tuple[TrialJob, dict]]:
    """Each job's outcome as it finishes, each job a Ray task of one CPU."""
    ray = _import_ray()
    if address:
        check_address(address)
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": workers or os.cpu_count()}
        ray.init(**options, include_dashboard=False, log_to_driver=False, configure_logging=False)
    pending = {}
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_trial)
        pending = {remote.remote(job): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except Exception as err:  # the task's worker died
                outcome = {"status": "failed", "error": f"Ray task failed: {type(err).__name__}"[:400]}
            yield job, outcome
    finally:
        for ref in pending:  # stopped early: the trials not finished are cancelled (a cluster keeps none)
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
