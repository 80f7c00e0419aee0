"""The progress callback protocol shared by the library, the CLI and the pages.

Long work calls ``progress(ProgressEvent(...))``. The CLI passes a :class:`TqdmProgress`;
a Streamlit page passes its own callback that drives ``st.progress`` (pages live in
``apps/``, so the library never imports streamlit). ``None`` means silent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

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


class TqdmProgress:
    """Progress callback that keeps one tqdm bar per stage (used by the CLI)."""

    def __init__(self, **tqdm_kwargs):
        self._bars: dict[str, tqdm] = {}
        self._kwargs = {"leave": False, "dynamic_ncols": True, **tqdm_kwargs}

    def __call__(self, event: ProgressEvent) -> None:
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
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
