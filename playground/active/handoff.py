"""The hand-off between active-learning runs and the Annotate page, seen from the queue's side.

An active-learning run sends what its escalation policy escalated (uncertain) or flagged as likely
OOD to the annotation queue its config names (``queue``; :func:`playground.active.report.hand_off`),
recording the run folder's name as the model of each prediction. From a queue's side this module
answers: which recipe and preset fill which queue (:func:`queue_recipes`, :func:`describe_recipes`,
:func:`fill_command`), which background jobs are filling one now (:func:`filling_jobs`), and which
runs filled it (:func:`source_runs`, from :func:`queue_sources` and :func:`find_source_run`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from playground.core.config import load_recipe, parse_override
from playground.core.registry import REPO
from playground.errors import PlaygroundError

EXPERIMENT = "active"  # the experiment that fills annotation queues (playground.active.experiment)


def active_recipes() -> list[Path]:
    """The shipped active-learning recipes (``recipes/active_*.toml``)."""
    return sorted((REPO / "recipes").glob(f"{EXPERIMENT}_*.toml"))


def shown_path(path: str | Path) -> str:
    """``path`` relative to the checkout when it lies inside it (as the README's commands write it)."""
    path = Path(path)
    return str(path.relative_to(REPO)) if path.is_absolute() and path.is_relative_to(REPO) else str(path)


@dataclass(frozen=True)
class QueueRecipe:
    """A recipe preset whose run sends its escalations to annotation queue ``queue``."""

    recipe: Path
    preset: str
    queue: str

    @property
    def command(self) -> str:
        return shlex.join(["playground", "run", shown_path(self.recipe), "--preset", self.preset])


def queue_recipes(recipes: list[Path] | None = None) -> list[QueueRecipe]:
    """Each preset of each active-learning recipe (default :func:`active_recipes`) that fills a queue,
    in file order (``quick`` first in the shipped recipe); unreadable recipes are left out."""
    found = []
    for path in active_recipes() if recipes is None else recipes:
        try:
            recipe = load_recipe(path)
        except PlaygroundError:
            continue
        for preset in recipe.presets:
            queue = str(recipe.values(preset).get("queue", ""))
            if recipe.experiment == EXPERIMENT and queue:
                found.append(QueueRecipe(Path(path), preset, queue))
    return found


def describe_recipes(recipes: list[QueueRecipe]) -> str:
    """Which presets fill which queue, in words ("the quick and full presets of recipes/active_fashion.toml
    fill queue fashion", markdown), one clause per recipe and queue; "" when there is none."""
    groups: dict[tuple[str, str], list[str]] = {}
    for found in recipes:
        groups.setdefault((shown_path(found.recipe), found.queue), []).append(f"**{found.preset}**")
    clauses = []
    for (recipe, queue), presets in groups.items():
        names = presets[0] if len(presets) == 1 else f"{', '.join(presets[:-1])} and {presets[-1]}"
        clauses.append(
            f"the {names} preset{'s' if len(presets) > 1 else ''} of `{recipe}` "
            f"fill{'' if len(presets) > 1 else 's'} queue **{queue}**"
        )
    return "; ".join(clauses)


def fill_command(queue: str, recipes: list[QueueRecipe]) -> str:
    """The ``playground run`` line that sends escalations to ``queue``: a preset that names it, else the
    first preset with ``--set queue=...``; "" without an active-learning recipe."""
    for found in recipes:
        if found.queue == queue:
            return found.command
    if not recipes:
        return ""
    return f"{recipes[0].command} --set {shlex.quote(f'queue={queue}')}"


def job_queue(args: list[str]) -> str | None:
    """The queue a ``playground run ARGS`` job fills ("" none); None when it is no active-learning run
    (or its recipe cannot be read)."""
    preset, queue = None, None
    for flag, value in zip(args[1:], args[2:]):
        if flag == "--preset":
            preset = value
        elif flag == "--set" and value.partition("=")[0].strip() == "queue":
            queue = value
    try:
        recipe = load_recipe(args[0]) if args else None
        if recipe is None or recipe.experiment != EXPERIMENT:
            return None
        return str(parse_override(queue)[1] if queue else recipe.values(preset).get("queue", ""))
    except PlaygroundError:
        return None


def filling_jobs(jobs: list, queue: str | None = None) -> list:
    """The queued or running jobs (:class:`playground.jobs.Job`) of active-learning recipes that fill
    ``queue`` (any queue when None), oldest first."""
    found = []
    for job in jobs:
        fills = job_queue(job.args) if job.active else None
        if fills and (queue is None or fills == queue):
            found.append(job)
    return sorted(found, key=lambda job: job.id)


@dataclass(frozen=True)
class QueueSource:
    """A model (an active-learning run's folder name) whose predictions are in a queue."""

    model: str  # "" when the items were enqueued without one
    items: int
    last_added: float  # seconds since the epoch


def queue_sources(store, queue: str) -> list[QueueSource]:
    """Who filled ``queue`` of :class:`~playground.store.Store` ``store``: each model, newest first."""
    from playground.store_schema import predictions, queues, samples

    query = (
        select(predictions.c.model, func.count().label("items"), func.max(predictions.c.created_at))
        .join(samples, samples.c.id == predictions.c.sample_id)
        .join(queues, queues.c.id == samples.c.queue_id)
        .where(queues.c.name == queue)
        .group_by(predictions.c.model)
        .order_by(func.max(predictions.c.created_at).desc(), predictions.c.model)
    )
    rows = store.read(lambda conn: conn.execute(query).all())
    return [QueueSource(model, int(items), float(last)) for model, items, last in rows]


def find_source_run(root: str | Path, model: str) -> Path | None:
    """The active-learning run under ``root`` whose predictions carry ``model``: the run folder of that
    name, or the multi-seed run holding a seed folder of that name; None when there is none. Looks only
    at those two places (the Annotate page asks on every decision)."""
    from playground.core.runs import read_run_config

    if not model or model in (".", "..") or any(c in model for c in "/\\*?[]"):
        return None  # not a folder name a run gives its predictions
    root = Path(root).expanduser()
    folders = [root / model, *sorted(p.parent for p in root.glob(f"*/{model}/config.toml"))]
    for folder in folders:
        try:
            if read_run_config(folder).get("experiment") == EXPERIMENT:
                return folder if folder.parent == root else folder.parent
        except PlaygroundError:
            continue
    return None


@dataclass(frozen=True)
class SourceRun:
    """A run whose escalations are in a queue (a multi-seed run's seeds together)."""

    name: str  # the run folder's name; the model name when no run of that name is under the runs root
    path: Path | None  # None: not found under the runs root
    items: int


def source_runs(store, queue: str, root: str | Path) -> list[SourceRun]:
    """The runs under ``root`` that filled ``queue``, newest first: each named model of
    :func:`queue_sources` resolved by :func:`find_source_run`, the seeds of one run added up."""
    found: dict[str, SourceRun] = {}
    for source in queue_sources(store, queue):
        if not source.model:
            continue
        path = find_source_run(root, source.model)
        name = path.name if path is not None else source.model
        items = source.items + (found[name].items if name in found else 0)
        found[name] = SourceRun(name, path, items)  # dicts keep the first (newest) position
    return list(found.values())
