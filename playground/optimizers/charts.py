"""The optimizers charts, each built once: the report saves them as PNG, the page draws them live.

:func:`curves_chart` draws the training curves of a run (mean ± std over seeds when several ran),
:func:`trajectory_chart` the optimizers' paths over a 2-D test function up to a given step (the
page's step slider and its ▶ Play frames, built from :func:`path_traces`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from playground.core.charts import Chart, Panel, Trace
from playground.core.seeds import Band
from playground.optimizers.catalog import COLORS, LABELS
from playground.optimizers.curves import Curves
from playground.optimizers.functions import TestFunction, Trajectory

MINIMUM, SADDLE, START = "#B8860B", "#000000", "#7F7F7F"  # dark gold, black, grey


def log_epochs_by_default(curves: dict[str, Curves]) -> bool:
    """Whether the epoch axis should be logarithmic: GD's many passes would squash the others."""
    passes = [c.epochs[-1] for c in curves.values()]
    return bool(passes) and max(passes) >= 4 * max(1, min(passes))


def _series(
    name: str, x: Sequence[float], mean: Sequence[float], std, seeds: int, log_x: bool, markers: bool
) -> Trace:
    """One optimizer's curve with its mean ± std band; on a log axis the points at epoch <= 0 go."""
    keep = [i for i, value in enumerate(x) if value > 0 or not log_x]
    spread = Band(
        np.asarray(mean, dtype=float)[keep],
        None if std is None else np.asarray(std, dtype=float)[keep],
        seeds,
    )
    label, color = LABELS[name], COLORS[name]
    return Trace.band_line(label, [x[i] for i in keep], spread, color=color, markers=markers)


def curves_chart(curves: dict[str, Curves], log_epochs: bool | None = None) -> Chart:
    """Training loss per bin, validation loss and validation accuracy per epoch, one line per optimizer
    (bands: ± std over seeds). ``log_epochs``: a log epoch axis (None: :func:`log_epochs_by_default`)."""
    log_x = log_epochs_by_default(curves) if log_epochs is None else log_epochs
    train, val_loss, val_accuracy = [], [], []
    for name, c in curves.items():
        train.append(_series(name, c.train_x, c.train_loss, c.train_loss_std, c.seeds, log_x, False))
        val_loss.append(_series(name, c.epochs, c.val_loss, c.val_loss_std, c.seeds, log_x, True))
        val_accuracy.append(_series(name, c.epochs, c.val_accuracy, c.val_accuracy_std, c.seeds, log_x, True))
    x_label = "epoch (log; the initial model at epoch 0 is left out)" if log_x else "epoch"
    axes = dict(x_label=x_label, log_x=log_x)
    panels = [
        Panel(train, title="Training loss", y_label="loss", log_y=True, **axes),
        Panel(val_loss, title="Validation loss", y_label="loss", log_y=True, **axes),
        Panel(val_accuracy, title="Validation accuracy", y_label="accuracy", **axes),
    ]
    seeds = max((c.seeds for c in curves.values()), default=1)
    title = f"Training curves (mean ± std over {seeds} seeds)" if seeds > 1 else "Training curves"
    return Chart("curves", panels, title=title, columns=3)


def contour_levels(fn: TestFunction, values: np.ndarray, count: int = 30) -> np.ndarray:
    """Levels spaced evenly in ``log(f - f_min + 1)`` (or in ``f`` for ``log_scale=False``)."""
    if not fn.log_scale:
        return np.linspace(values.min(), np.quantile(values, 0.95), count)
    low = fn.minimum_value
    return low - 1 + np.exp(np.linspace(0, np.log(np.quantile(values, 0.95) - low + 1), count))


def path_traces(paths: list[Trajectory], step: int | None = None) -> list[Trace]:
    """For each optimizer its path up to ``step`` (None: the whole path) and where it is then; these are
    the last traces of :func:`trajectory_chart`'s panel, one plotted series each."""
    traces = []
    for path in paths:
        end = path.last if step is None else min(step, path.last)
        points = path.points[: end + 1].tolist()
        x, y = [p[0] for p in points], [p[1] for p in points]
        label = f"{LABELS[path.optimizer]} (lr {path.lr:g})" + (" diverged" if path.diverged_at else "")
        color = COLORS[path.optimizer]
        traces.append(Trace("line", label, x, y, color=color, width=1.4))
        traces.append(Trace("scatter", label, x[-1:], y[-1:], color=color, legend=False))
    return traces


def trajectory_chart(
    fn: TestFunction, paths: list[Trajectory], step: int | None = None, grid: int = 200
) -> Chart:
    """The paths over the function's contours up to ``step`` (None: all of it), with the minima, the
    saddle points and the start; ``trajectory_<function>`` in a run folder."""
    xs, ys, values = (t.numpy() for t in fn.grid(grid))
    levels = contour_levels(fn, values).tolist()
    traces = [
        Trace("contour", x=xs.tolist(), y=ys.tolist(), z=values.tolist(), levels=levels, colorscale="Greys")
    ]
    landmarks = [("minimum", fn.minima, MINIMUM), ("saddle point", fn.saddles, SADDLE)]
    if paths:
        landmarks.append(("start", [tuple(paths[0].points[0].tolist())], START))
    for name, points, color in landmarks:
        if points:
            traces.append(Trace("scatter", name, [p[0] for p in points], [p[1] for p in points], color=color))
    panel = Panel(
        traces + path_traces(paths, step), x_label="x", y_label="y", x_range=fn.x_range, y_range=fn.y_range
    )
    return Chart(f"trajectory_{fn.name}", [panel], title=fn.name, columns=1, height=520)
