"""The progress callback protocol shared by the library, the CLI and the pages.

Long work calls ``progress(ProgressEvent(...))``; ``None`` means silent. The run template wraps
whatever callback it is given in a :class:`RunProgress`, which turns the stream of stage events
into one overall view of the run: stage k of N, percent done, elapsed and time left. N and the time
left come from the timeline of an earlier complete run of the same configuration (a reference run
or the user's own); the first run of a new configuration says its time left is unknown. The CLI
shows that view as one tqdm bar (:class:`TqdmProgress`); background jobs write it into the run's
``status.json`` and the job list, where pages read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tqdm.auto import tqdm


@dataclass
class ProgressEvent:
    """One step of some stage of work.

    ``stage`` names the work ("train", "evaluate", "load data"...), ``step`` of ``total``
    says how far it is (``total`` 0 when unknown), ``metrics`` carries running numbers.
    """

    stage: str
    step: int
    total: int
    epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


Progress = Callable[[ProgressEvent], None] | None


def report(progress: Progress, stage: str, step: int, total: int, **kwargs) -> None:
    """Send one event if anyone listens."""
    if progress is not None:
        progress(ProgressEvent(stage, step, total, **kwargs))


def staged(progress: Progress, label: str) -> Progress:
    """Prefix every event's stage with ``label`` so bars read "new model: train"."""
    if progress is None:
        return None
    return lambda event: progress(replace(event, stage=f"{label}: {event.stage}"))


def stage_key(event: ProgressEvent) -> str:
    """The stage an event belongs to, epoch included (each epoch of training is a stage of its own)."""
    return event.stage if event.epoch is None else f"{event.stage} · epoch {event.epoch}"


class RunProgress:
    """The overall progress of one run, built from its stage events (and passed on to ``listener``).

    ``timeline`` records when each stage first began (seconds from the start). ``profile`` is the
    timeline and wall time of an earlier complete run of the same configuration: with it, a stage's
    place in the profile gives stage k of N and the fraction done (time-weighted, so a long stage
    counts for more), and the time left is the profile's remaining time scaled by this run's pace.
    Without a profile, a stage with a known total still estimates its own time left from its pace
    since its first event (``stage_left``): a long sweep of trials is not "time left unknown" for an hour.
    """

    def __init__(self, listener: Progress = None, profile: tuple[list, float] | None = None) -> None:
        self.listener = listener
        self.started = time.monotonic()
        self.timeline: list[list] = []
        self._seen: set[str] = set()
        self._stage_origin: dict[str, tuple[float, int]] = {}  # stage -> (elapsed, step) at its first event
        self.run_dir = None  # the run folder, once the template has made it
        self.event: ProgressEvent | None = None
        self._profile_index = {key: i for i, (key, _) in enumerate(profile[0])} if profile else {}
        self._profile = profile
        self._position: float | None = 0.0 if profile else None  # seconds into the profile

    def __call__(self, event: ProgressEvent) -> None:
        key = stage_key(event)
        elapsed = time.monotonic() - self.started
        if key not in self._seen:
            self._seen.add(key)
            self.timeline.append([key, round(elapsed, 2)])
            self._stage_origin[key] = (elapsed, event.step)
        self.event = event
        if self._profile and key in self._profile_index:
            self._position = max(self._position or 0.0, self._profile_position(key, event.fraction))
        if self.listener is not None:
            self.listener(event)

    def _profile_position(self, key: str, fraction: float) -> float:
        stages, total = self._profile
        index = self._profile_index[key]
        begin = stages[index][1]
        end = stages[index + 1][1] if index + 1 < len(stages) else total
        return begin + (end - begin) * fraction

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _stage_left(self, event: ProgressEvent | None, elapsed: float) -> float | None:
        """The current stage's time left at its pace so far (None before its second step)."""
        if event is None or not event.total:
            return None
        began, first_step = self._stage_origin.get(stage_key(event), (elapsed, event.step))
        if event.step <= first_step:
            return None
        pace = (elapsed - began) / (event.step - first_step)  # seconds per step
        return round(max(0, event.total - event.step) * pace, 1)

    def snapshot(self) -> dict[str, Any]:
        """The run's progress now: stage, step of total, stage index of stages, fraction, elapsed, left."""
        event, elapsed = self.event, self.elapsed
        snapshot: dict[str, Any] = {
            "stage": stage_key(event) if event else "",
            "step": event.step if event else 0,
            "total": event.total if event else 0,
            "index": len(self.timeline),
            "stages": None,
            "fraction": None,
            "elapsed": round(elapsed, 1),
            "left": None,
            "stage_left": self._stage_left(event, elapsed),
        }
        if self._profile and event is not None:
            stages, total = self._profile
            key = stage_key(event)
            if key in self._profile_index:
                snapshot["index"] = self._profile_index[key] + 1
            snapshot["stages"] = len(stages)
            position = self._position or 0.0
            snapshot["fraction"] = round(min(1.0, position / total), 4) if total else None
            if position > 0 and total:
                pace = elapsed / position  # this run's seconds per profile second
                snapshot["left"] = round(max(0.0, (total - position) * pace), 1)
        return snapshot


class TqdmProgress:
    """The CLI's progress: one tqdm bar for the whole run (stage k of N, percent, elapsed, time left)
    when a :class:`RunProgress` is known, else one bar per stage."""

    def __init__(self, **tqdm_kwargs):
        self._bars: dict[str, tqdm] = {}
        self._kwargs = {"leave": False, "dynamic_ncols": True, **tqdm_kwargs}
        self.run: RunProgress | None = None  # set by the run template
        self._overall: tqdm | None = None
        self._drawn = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if self.run is not None:
            if time.monotonic() - self._drawn > 0.2 or (event.total and event.step >= event.total):
                self._drawn = time.monotonic()
                self._draw_overall()
            return
        self._draw_stage(event)

    def _draw_overall(self) -> None:
        from playground.core.status import describe_progress

        snapshot = self.run.snapshot()
        if self._overall is None:
            self._overall = tqdm(total=100, bar_format="{percentage:3.0f}%|{bar:20}| {desc}", **self._kwargs)
        fraction = snapshot["fraction"]
        if fraction is None and snapshot["total"]:
            fraction = snapshot["step"] / snapshot["total"]  # no profile: the current stage's own bar
        self._overall.n = round(100 * (fraction or 0))
        self._overall.set_description_str(describe_progress(snapshot), refresh=False)
        self._overall.refresh()

    def _draw_stage(self, event: ProgressEvent) -> None:
        bar = self._bars.get(event.stage)
        if bar is None or (event.total and bar.total != event.total) or event.step < bar.n:
            if bar is not None:
                bar.close()
            bar = self._bars[event.stage] = tqdm(total=event.total or None, desc=event.stage, **self._kwargs)
        bar.update(event.step - bar.n)
        postfix = {k: f"{v:.4g}" for k, v in event.metrics.items()}
        if event.epoch is not None:
            postfix = {"epoch": event.epoch, **postfix}
        if postfix:
            bar.set_postfix(postfix, refresh=False)
        if event.total and event.step >= event.total:
            bar.close()
            del self._bars[event.stage]

    def close(self) -> None:
        if self._overall is not None:
            self._overall.close()
            self._overall = None
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
