"""What a sweep runs: trials from a grid (``--grid key=v1,v2``) or sampled from a recipe's ranges.

A **trial** is one run of the recipe: a set of config values laid over it (``lr=0.01``,
``model.width=32``) and a seed. Its :meth:`Trial.key` hashes the recipe, the preset, the base
``--set`` values, its own values and its seed, so a rerun of the same sweep finds the trials it
already finished.

Ranges to sample from live in the recipe's ``[sweep.ranges]`` table, one entry per config key::

    [sweep.ranges]
    "train.lr" = { low = 1e-4, high = 0.1, log = true }   # log-uniform
    epochs = { low = 1, high = 5, integer = true }         # a whole number, both ends included
    width = [16, 32, 64]                                   # one of these

Every key and value is checked against the experiment's ``Config`` before any trial runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from playground.core.config import coerce, field_type, parse_override, renamed_key, renamed_keys_of
from playground.errors import ConfigError

RANGE_KEYS = {"low", "high", "log", "integer"}


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: ``values`` ((key, value) pairs, sorted by key) and a ``seed``."""

    values: tuple[tuple[str, Any], ...]
    seed: int

    def key(self, context: str) -> str:
        """A stable id for this trial of the sweep described by ``context``."""
        text = json.dumps([context, [list(pair) for pair in self.values], self.seed], default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def label(self) -> str:
        """``lr=0.01 width=32 seed=1``: how tables and bars name the trial."""
        return " ".join([*(f"{k}={_short(v)}" for k, v in self.values), f"seed={self.seed}"])

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _checked(config_cls: type, key: str, value: Any, source: str) -> tuple[str, Any]:
    """``key`` (a renamed key under its new name) and ``value`` coerced to its config type."""
    key = renamed_key(key.strip(), source, renamed_keys_of(config_cls))
    return key, coerce(value, field_type(config_cls, key, source), key, source)


def parse_grid(texts: list[str], config_cls: type) -> dict[str, list[Any]]:
    """``["lr=0.1,0.01", "width=[16, 32]"]`` as ``{"lr": [0.1, 0.01], "width": [16, 32]}``.

    Values are split at commas (or given as one TOML list) and each is read as TOML, else as a
    string, then checked against ``config_cls``.
    """
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        source = f"--grid {text}"
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"{source}: a grid entry looks like key=v1,v2, e.g. --grid lr=0.1,0.01")
        raw = raw.strip()
        listed = parse_override(f"v={raw}")[1] if raw.startswith("[") else None
        items = listed if isinstance(listed, list) else [parse_override(f"v={r}")[1] for r in raw.split(",")]
        if not items or any(item == "" for item in items):
            raise ConfigError(f"{source}: an empty value; give one or more values, e.g. lr=0.1,0.01")
        checked = [_checked(config_cls, key, item, source) for item in items]
        name = checked[0][0]
        if name in grid:
            raise ConfigError(f"{source}: {name} is in the grid twice; give all its values in one --grid")
        grid[name] = list(dict.fromkeys(value for _, value in checked))  # a repeated value runs once
    return grid


def grid_trials(grid: dict[str, list[Any]], seeds: list[int]) -> list[Trial]:
    """Every combination of the grid's values, once per seed (the grid's last key varies fastest)."""
    if not grid:
        raise ConfigError("the sweep is empty: give --grid key=v1,v2 or --sample N with [sweep.ranges]")
    keys = sorted(grid)
    combos = itertools.product(*(grid[k] for k in keys))
    return [Trial(tuple(zip(keys, combo)), seed) for combo in combos for seed in seeds]


def check_ranges(ranges: Any, config_cls: type, source: str) -> dict[str, Any]:
    """The recipe's ``[sweep.ranges]``, each key checked against ``config_cls`` and each range's shape."""
    if not isinstance(ranges, dict) or not ranges:
        raise ConfigError(f"{source}: --sample needs a [sweep.ranges] table with one or more keys")
    checked = {}
    for key, spec in ranges.items():
        where = f"{source} [sweep.ranges] {key}"
        if isinstance(spec, list):
            if not spec:
                raise ConfigError(f"{where}: a list of choices must not be empty")
            pairs = [_checked(config_cls, key, value, where) for value in spec]
            checked[pairs[0][0]] = [value for _, value in pairs]
            continue
        if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - RANGE_KEYS:
            raise ConfigError(
                f"{where}: give a list of choices or {{ low = ..., high = ... [, log, integer] }}"
            )
        low, high = spec["low"], spec["high"]
        finite = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)
        )
        if not finite or low > high or (spec.get("log") and low <= 0):
            raise ConfigError(f"{where}: low and high must be finite numbers, low ≤ high (and > 0 with log)")
        name, _ = _checked(config_cls, key, int(low) if spec.get("integer") else low, where)
        checked[name] = dict(spec)
    return checked


def sample_trials(ranges: dict[str, Any], count: int, seeds: list[int], sample_seed: int = 0) -> list[Trial]:
    """``count`` points drawn from ``ranges`` (a fixed ``sample_seed``: the same points every time),
    each run once per seed."""
    if count < 1:
        raise ConfigError(f"--sample must be at least 1, got {count}")
    rng = np.random.default_rng(sample_seed)
    keys = sorted(ranges)
    points = [tuple((k, _draw(ranges[k], rng)) for k in keys) for _ in range(count)]
    return [Trial(point, seed) for point in points for seed in seeds]


def _draw(spec: Any, rng: np.random.Generator) -> Any:
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    low, high = spec["low"], spec["high"]
    if spec.get("integer"):
        return int(rng.integers(int(low), int(high) + 1))
    if spec.get("log"):
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return float(rng.uniform(low, high))
