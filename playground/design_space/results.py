"""Reading a design-space study back: its metrics and every sampled model with its error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playground.core.runs import Metrics, RunInfo, list_runs, load_run, read_result
from playground.design_space.experiment import EXPERIMENT, SAMPLES, anynet_values
from playground.errors import DataFormatError
from playground.models.anynet import AnyNetSpec
from playground.sweep.runner import value_arg


def find_design_space_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The design-space studies under ``root`` (default the playground home), newest first."""
    return list_runs(root, EXPERIMENT)


def load_design_space_run(path: str | Path) -> tuple[Metrics, dict[str, list[dict]], dict[str, Any]]:
    """``(metrics, spaces, bootstrap)``: each space's sampled models (``spec``, ``params``, ``error``)."""
    path = Path(path)
    samples = read_result(path, SAMPLES)
    try:
        spaces, ranges = samples["spaces"], samples["bootstrap"]
        for models in spaces.values():
            for model in models:
                AnyNetSpec(**model["spec"])
                float(model["params"]["flops"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataFormatError(f"{path}/results.json does not hold a design-space study ({err})") from None
    return load_run(path).measured, spaces, ranges


def full_training_overrides(spec: dict) -> list[str]:
    """The ``--set`` values that train a sampled model with the classify recipe (``model=anynet``)."""
    return [value_arg(key, value) for key, value in anynet_values(spec).items()]
