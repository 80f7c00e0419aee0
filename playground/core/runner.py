"""Run a recipe (one seed or several) the same way for the CLI, pages and tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from playground.core.config import apply_overrides, build_config, load_recipe, rename_keys, renamed_keys_of
from playground.core.experiment import keep_status, track
from playground.core.progress import Progress
from playground.core.registry import get_experiment
from playground.core.runs import Metrics, Result, RunDir, check_run_target, metrics_table
from playground.core.seeds import aggregate_scalars
from playground.errors import ConfigError


def config_from_recipe(path: str | Path, preset: str | None = "quick", overrides: Sequence[str] = ()):
    """Load a recipe and build its experiment's checked ``Config``: ``(module, config)``."""
    recipe = load_recipe(path)
    module = get_experiment(recipe.experiment)
    source = f"recipe {recipe.path}" + (f" [presets.{preset}]" if preset else "")
    renamed = renamed_keys_of(module.Config)
    values = rename_keys({"name": recipe.name, **recipe.values(preset)}, source, renamed)
    build_config(module.Config, values, source)  # report recipe mistakes against the recipe
    values = apply_overrides(values, list(overrides), module.Config)
    config = build_config(module.Config, values, f"{source} with --set" if overrides else source)
    return module, config


def run_recipe(
    path: str | Path,
    preset: str | None = "quick",
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    progress: Progress = None,
    jobs: int = 1,
) -> Result:
    """Run a recipe; with several ``seeds``, aggregate their metrics as mean and ``:std``
    (``jobs`` seeds at a time, each in its own process). An empty or repeated seed list is refused:
    it would silently run the recipe's own seed, or count one seed twice in the spread."""
    if seeds is not None and (not len(seeds) or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"seeds must be one or more different seeds, got {list(seeds)}")
    module, config = config_from_recipe(path, preset, overrides)
    if not seeds or len(seeds) == 1:
        if seeds:
            config = dataclasses.replace(config, seed=seeds[0])
        return module.run(config, progress=progress)
    return run_seeds(module, config, list(seeds), progress, jobs)


def _run_detached(module_name: str, config) -> Result:
    """Run one seed in a worker process; return what the parent needs (no models or tensors)."""
    import importlib

    result = importlib.import_module(module_name).run(config)
    return Result(result.metrics, result.report, result.run_dir)


def _run_each(module, configs: list, progress: Progress, jobs: int) -> list[Result]:
    if jobs <= 1 or len(configs) == 1:
        return [module.run(c, progress=progress) for c in configs]
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # safe with CUDA and threads
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(configs)), mp_context=context) as pool:
        return list(pool.map(_run_detached, [module.__name__] * len(configs), configs))


def run_seeds(module, config, seeds: list[int], progress: Progress = None, jobs: int = 1) -> Result:
    """Run ``config`` once per seed under one parent run directory and aggregate."""
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    check_run_target(config.name, config.out or None)
    key = getattr(module, "EXPERIMENT", module.__name__.split(".")[-2])
    tracker = track(progress, key, config)
    parent = RunDir.create(config.name, config.out or None)
    parent.write_config(config, key)
    seeded = [
        dataclasses.replace(config, seed=seed, name=f"seed{seed}", out=str(parent.path)) for seed in seeds
    ]
    with keep_status(parent, tracker):
        return _run_and_aggregate(module, config, seeds, seeded, parent, tracker, jobs)


def _run_and_aggregate(module, config, seeds, seeded, parent: RunDir, progress, jobs: int) -> Result:
    results = _run_each(module, seeded, progress, jobs)
    metrics: Metrics = aggregate_scalars([r.metrics for r in results])
    parent.write_metrics(metrics)
    if hasattr(module, "aggregate_report"):  # an experiment may lay out its own multi-seed report
        report = module.aggregate_report(config, metrics, results)
    else:
        links = "\n".join(
            f"- seed {s}: [{r.run_dir.name}]({r.run_dir.name}/report.md)" for s, r in zip(seeds, results)
        )
        report = (
            f"# {config.name}: {len(seeds)} seeds\n\nMean ± standard deviation over seeds {seeds}.\n\n"
            f"{metrics_table(metrics)}\n\n## Runs\n{links}\n"
        )
    parent.write_metrics(metrics)  # again: a multi-seed report may add records (active's mean curve)
    parent.write_report(report)
    return Result(metrics, report, parent.path, seeds=results)
