"""The design-space study (Radosavovic et al., CVPR 2020) at toy size, through the sweep runner.

Each design space in ``spaces`` is sampled ``models_per_space`` times under a FLOP budget
(:mod:`.spaces`); every sample is one ``classify`` run of an AnyNet (``trial_recipe`` with
``trial_set``, trained briefly), run by :func:`~playground.sweep.run_sweep` on local processes or
Ray. The trials live in one folder under the runs root, so a rerun (or a larger study) reuses
every model already trained. The study then compares the spaces by their error EDFs
(``edf/<space>/error_p10``, ``edf/<space>/error_median``), plots the error against each
parameter and bootstraps the range where the best models' parameter lies.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress
from playground.core.runs import Metrics, Result, RunDir, playground_home
from playground.design_space.edf import bootstrap_range, edf_gap, edf_gap_range, edf_summary
from playground.design_space.spaces import SPACES, sample_space
from playground.errors import ConfigError
from playground.sweep.space import Trial
from playground.sweep.sweep import run_sweep

EXPERIMENT = "design_space"
SAMPLES = "samples"  # the results.json section: every sampled model, its parameters and its error
TRIALS_FOLDER = "design_space-trials"


@dataclasses.dataclass
class Config(RunConfig):
    name: str = "design_space"
    spaces: list[str] = dataclasses.field(default_factory=lambda: ["anynetxa", "anynetxe", "regnety"])
    models_per_space: int = 100
    flops_low: float = 1e6  # multiply-adds per 28x28 image
    flops_high: float = 4e6
    sample_seed: int = 0
    trial_recipe: str = "recipes/classify_fashion.toml"
    trial_preset: str = "quick"
    trial_set: list[str] = dataclasses.field(
        default_factory=lambda: ["epochs=1", "train_limit=10000", "save_models=false"]
    )
    jobs: int = 0  # trials at once (0: this machine's cores)
    backend: Literal["local", "ray"] = "local"
    address: str = ""  # a Ray cluster (backend ray)
    bootstrap_draws: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        unknown = [s for s in self.spaces if s not in SPACES]
        if unknown or not self.spaces:
            raise ConfigError(f"spaces must name one or more of {', '.join(SPACES)}, got {self.spaces}")
        if self.models_per_space < 4:
            raise ConfigError(
                f"models_per_space must be at least 4 (fewer make no EDF), got {self.models_per_space}"
            )
        if not 0 < self.flops_low < self.flops_high:
            raise ConfigError(
                f"the FLOP budget must be 0 < flops_low < flops_high, got {self.flops_low}, {self.flops_high}"
            )


def anynet_values(spec: dict) -> dict:
    """The classify config values that train the AnyNet ``spec`` (the fields of an AnyNetSpec)."""
    return {"model": "anynet", **{f"anynet.{key}": value for key, value in spec.items()}}


def trial_of(spec, seed: int) -> Trial:
    """The classify trial that trains one sampled AnyNet (lists as tuples: a hashable trial)."""
    values = anynet_values(dataclasses.asdict(spec))
    return Trial(tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items())), seed)


def load(config: Config, device=None, progress: Progress = None) -> dict[str, list]:
    """The sampled models of every space: bad budgets fail here, before a run folder exists."""
    budget = (config.flops_low, config.flops_high)
    return {
        space: sample_space(space, config.models_per_space, budget, config.sample_seed)
        for space in config.spaces
    }


def train_samples(config: Config, samples: dict[str, list], progress: Progress) -> dict[str, list[dict]]:
    """Train every sample through the sweep runner; each space's models with their error (None: failed)."""
    import os

    trials = {space: [trial_of(spec, config.seed) for spec, _ in models] for space, models in samples.items()}
    every = list(dict.fromkeys(t for space in trials.values() for t in space))
    result = run_sweep(
        config.trial_recipe,
        every,
        config.trial_preset,
        config.trial_set,
        out=Path(config.out or playground_home()) / TRIALS_FOLDER,
        jobs=config.jobs or os.cpu_count() or 1,
        backend=config.backend,
        address=config.address or None,
        metrics=["test/accuracy"],
        progress=progress,
    )
    by_trial = dict(zip(every, result.entries))  # the sweep's entries come in trial order
    out = {}
    for space, models in samples.items():
        out[space] = []
        for (spec, params), trial in zip(models, trials[space]):
            entry = by_trial[trial]
            accuracy = entry.get("metrics", {}).get("test/accuracy")
            error = None if accuracy is None else 1.0 - accuracy
            out[space].append(
                {"spec": dataclasses.asdict(spec), "params": params, "error": error, "trial": entry["key"]}
            )
    return out


def study_metrics(config: Config, trained: dict[str, list[dict]]) -> tuple[Metrics, dict]:
    """Each space's EDF summary, the paper's two claims and a bootstrap range per RegNet parameter."""
    metrics, ranges = Metrics(), {}
    errors = {
        space: [m["error"] for m in models if m["error"] is not None] for space, models in trained.items()
    }
    for space, values in errors.items():
        metrics.add(f"edf/{space}/failed", len(trained[space]) - len(values), "count")
        if len(values) < 4:
            continue
        for name, value in edf_summary(values).items():
            metrics.add(
                f"edf/{space}/{name}", value, "fraction" if name != "count" else "count", split="test"
            )
    for better, worse in (
        ("regnety", "anynetxa"),
        ("regnetx", "anynetxa"),
        ("anynetxc", "anynetxa"),
        ("anynetxe", "anynetxa"),
    ):
        if len(errors.get(better, [])) >= 4 and len(errors.get(worse, [])) >= 4:
            name = f"edf_gap/{better}-{worse}"
            metrics.add(name, edf_gap(errors[better], errors[worse]), "fraction")
            low, high = edf_gap_range(errors[better], errors[worse], config.bootstrap_draws, config.seed)
            metrics.add(f"{name}/ci_low", low, "fraction")
            metrics.add(f"{name}/ci_high", high, "fraction")
    for space in ("regnety", "regnetx"):
        models = [m for m in trained.get(space, []) if m["error"] is not None]
        if len(models) >= 4:
            for parameter in ("wm", "w0", "wa", "depth"):
                found = bootstrap_range(
                    parameter,
                    [m["params"][parameter] for m in models],
                    [m["error"] for m in models],
                    config.bootstrap_draws,
                    seed=config.seed,
                )
                ranges[f"{space}/{parameter}"] = dataclasses.asdict(found)
                metrics.add(f"bootstrap/{space}/{parameter}/best", found.best)
    return metrics, ranges


def steps(run: Run[Config], samples: dict[str, list]) -> Finished:
    from playground.design_space import report as text

    trained = train_samples(run.config, samples, run.progress)
    metrics, ranges = study_metrics(run.config, trained)
    run.dir.write_result(SAMPLES, {"spaces": trained, "bootstrap": ranges})
    for chart in text.charts(trained, ranges):
        run.dir.save_chart(chart)
    return Finished(metrics, text.report(run.config, metrics, trained, ranges), trained)


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Sample every design space, train each sample briefly through the sweep runner, compare the EDFs."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)
