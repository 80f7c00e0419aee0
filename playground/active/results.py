"""Read active-learning runs back (single or multi-seed) for the page, the reports and scripts.

A run keeps its learning curves, policy curves and escalation sweep as the :data:`CURVES` section of
its ``results.json`` (runs made before that file kept them in ``curves.json``, still read), and what it
sent to the annotation queue as the :data:`QUEUE` section (:class:`QueueFill`; for runs made before
that section, worked out from the config's ``queue`` and the escalation's routes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from playground.core.config import rename_keys
from playground.core.runs import RunInfo, list_runs, read_result, read_run_config
from playground.core.seeds import Band, band, seed_folders
from playground.errors import DataFormatError, DataNotFoundError

# the results.json section of a run: {"strategies": {s: curve}, "policies": {p: curve}, "escalation": sweep}
CURVES = "curves"
LEGACY_CURVES = "curves.json"  # where runs made before results.json kept it
# the results.json section of what a run sent to the annotation queue (a QueueFill)
QUEUE = "queue"


def find_active_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The active-learning runs under ``root``, newest first."""
    from playground.active.experiment import EXPERIMENT  # the experiment imports this module

    return list_runs(root, EXPERIMENT)


def read_active_config(path: str | Path) -> dict[str, Any]:
    """The ``[config]`` table of a run's config.toml, the flat keys of runs made before the
    ``[data]``, ``[loop]``, ``[train]`` and ``[escalation]`` sections moved into them and
    ``strategies`` under its new name ``methods``."""
    from playground.active.experiment import Config  # the experiment imports this module

    raw = read_run_config(Path(path)).get("config", {})
    return rename_keys(raw, str(path), Config.RENAMED_KEYS, notify=False)


def read_curves(path: str | Path) -> dict:
    """One run folder's curves: the :data:`CURVES` section (or an old run's ``curves.json``); a
    DataFormatError naming the folder when it is not ``{"strategies", "policies", "escalation"}`` of
    curves (series of numbers)."""
    saved = read_result(path, CURVES, legacy=LEGACY_CURVES)
    problem = _curves_problem(saved, ("strategies", "policies"))
    if problem:
        raise DataFormatError(f"{path} holds damaged active-learning curves: {problem}")
    return saved


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _curves_problem(saved, parts: tuple[str, ...]) -> str:
    """What is wrong with a curves section ("" when nothing): its ``parts`` and its escalation."""
    if not isinstance(saved, dict):
        return f"a {type(saved).__name__}, not an object"
    for part in parts:
        curves = saved.get(part)
        if not isinstance(curves, dict) or not all(isinstance(c, dict) for c in curves.values()):
            return f"{part!r} is not an object of curves"
        for name, curve in curves.items():
            for key, series in curve.items():
                if not isinstance(series, list) or not all(v is None or _is_number(v) for v in series):
                    return f"{part} {str(name)[:40]!r}: {str(key)[:40]!r} is not a list of numbers"
    escalation = saved.get("escalation")
    if not isinstance(escalation, dict):
        return "'escalation' is not an object"
    routes = escalation.get("routes", {})
    if not isinstance(routes, dict) or not all(_is_number(v) for v in routes.values()):
        return "the escalation's 'routes' is not an object of counts"
    return ""


def per_seed(seeds: list[dict]) -> dict:
    """Several seeds' curves (as :func:`read_curves` gives them) as one dict of per-seed lists."""

    def lists(part: str) -> dict:
        if any(set(s[part]) != set(seeds[0][part]) for s in seeds):
            raise DataFormatError(f"the seeds' curves name different {part}; were they run with one config?")
        return {name: [s[part][name] for s in seeds] for name in seeds[0][part]}

    return {
        "strategies": lists("strategies"),
        "policies": lists("policies"),
        "escalation": [s["escalation"] for s in seeds],
    }


def load_curves(path: str | Path) -> dict:
    """``{"strategies": {s: [curve per seed]}, "policies": {p: [...]}, "escalation": [per seed]}``."""
    path = Path(path)
    return per_seed([read_curves(p) for p in seed_folders(path)] or [read_curves(path)])


@dataclass(frozen=True)
class SeedCurve:
    """One strategy's or policy's curve over seeds: the labelled-set sizes and the mean ± std band."""

    labels: list[float]  # x: labelled samples, as the first seed recorded them
    band: Band  # over seeds (no std for one seed), cut to the shortest seed


def seed_curve(runs: list[dict], key: str, cumulative: bool = False) -> SeedCurve:
    """The band over seeds of series ``key`` (``accuracy``, ``train_seconds``...) of one strategy's or
    policy's per-seed curves (as :func:`load_curves` returns them); ``cumulative``: the running sum of
    each seed's series first (compute spent so far rather than per round)."""
    series = [np.cumsum(run[key]) if cumulative else run[key] for run in runs]
    return SeedCurve(list(runs[0]["labels"]), band(series))


def mean_route_counts(escalation: list[dict]) -> dict[str, float]:
    """Per route (auto-labelled, escalated, deferred, OOD...), the number of samples sent there, averaged
    over the seeds that report the route; routes in the order they first appear."""
    counts: dict[str, list[float]] = {}
    for seed in escalation:
        for route, count in seed["routes"].items():
            counts.setdefault(route, []).append(count)
    return {route: float(np.mean(values)) for route, values in counts.items()}


def _queue_fill(saved: Any, path: Path) -> QueueFill:
    """A :data:`QUEUE` section as a :class:`QueueFill`, its fields checked (counts are whole numbers)."""
    if not isinstance(saved, dict):
        raise DataFormatError(f"{path}: its {QUEUE!r} results are a {type(saved).__name__}, not an object")
    known = {field.name for field in dataclasses.fields(QueueFill)}
    values = {key: value for key, value in saved.items() if key in known}
    counts = ("uncertain", "ood", "added", "seeds")
    wrong = [
        key
        for key in counts
        if key in values
        and not (values[key] is None and key == "added")
        and not (isinstance(values[key], int) and not isinstance(values[key], bool) and values[key] >= 0)
    ]
    wrong += [key for key in ("queue", "database") if key in values and not isinstance(values[key], str)]
    if wrong or not {"queue", "uncertain", "ood"} <= set(values):
        raise DataFormatError(
            f"{path}: its {QUEUE!r} results need a queue name and whole-number counts"
            + (f" ({', '.join(wrong)} are not)" if wrong else "")
        )
    return QueueFill(**values)


@dataclass(frozen=True)
class QueueFill:
    """What a run (all its seeds together) sent to an annotation queue: the stream samples its escalation
    policy escalated as uncertain and those it flagged as likely OOD, when ``queue`` names one."""

    queue: str  # the annotation queue ("": none, escalation to annotators was off)
    uncertain: int  # stream samples escalated as uncertain
    ood: int  # stream samples flagged as likely out of distribution
    added: int | None = None  # new items in the queue (an item already there is not added twice); None:
    # not recorded (a run made before the QUEUE section)
    database: str = ""  # the database holding the queue (password hidden); "": not recorded
    seeds: int = 1

    @property
    def sent(self) -> int:
        """How many samples went to the queue (none without one)."""
        return self.uncertain + self.ood if self.queue else 0

    @property
    def why_empty(self) -> str:
        """Why the run filled no queue ("" when it did)."""
        if not self.queue:
            return 'escalation to annotators is off in its config (`queue = ""`)'
        if not self.sent:
            return (
                "its escalation policy escalated nothing: every stream sample was auto-labelled or deferred"
            )
        return ""

    def counts(self) -> str:
        """``"12 uncertain, 3 likely OOD"`` (over every seed)."""
        over = f" over {self.seeds} seeds" if self.seeds > 1 else ""
        return f"{self.uncertain:,} uncertain, {self.ood:,} likely OOD{over}"


def read_queue_fill(path: str | Path) -> QueueFill:
    """What the run at ``path`` sent to its annotation queue; a multi-seed run's seeds added up."""
    path = Path(path)
    fills = [_seed_queue_fill(p) for p in seed_folders(path)] or [_seed_queue_fill(path)]
    if len(fills) == 1:
        return fills[0]
    added = [f.added for f in fills]
    return QueueFill(
        fills[0].queue,
        sum(f.uncertain for f in fills),
        sum(f.ood for f in fills),
        None if None in added else sum(added),
        next((f.database for f in fills if f.database), ""),
        len(fills),
    )


def _seed_queue_fill(path: Path) -> QueueFill:
    """One run folder's :data:`QUEUE` section, or (a run made before it) its config and routes."""
    try:
        saved = read_result(path, QUEUE)
    except DataNotFoundError:
        saved = None
    if saved is not None:
        return _queue_fill(saved, path)
    saved = read_result(path, CURVES, legacy=LEGACY_CURVES)
    problem = _curves_problem(saved, ())  # only the escalation's routes are read here
    if problem:
        raise DataFormatError(f"{path} holds damaged active-learning curves: {problem}")
    routes = saved["escalation"].get("routes", {})
    queue = str(read_active_config(path).get("queue", ""))
    return QueueFill(queue, int(routes.get("escalate", 0)), int(routes.get("ood", 0)))
