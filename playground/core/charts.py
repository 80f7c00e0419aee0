"""One source per chart: a chart is data, drawn twice by two generic renderers.

A technique builds each of its charts once, as a :class:`Chart` (panels of :class:`Trace`s holding
plain numbers), in its ``charts`` module. The report saves it as a PNG with :func:`save_png`
(matplotlib, here: headless, fast, no browser needed) and a page draws the same object live with
``apps.charts.plotly_figure``. Neither renderer knows any technique; a new kind of trace is added
to both renderers and to ``tests/core/test_charts.py``, which draws every kind with both.

Bands around a line are ``mean ± 1 sample std`` over seeds (:mod:`playground.core.seeds`), the one
band definition of the playground: :meth:`Trace.band_line` builds such a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from playground.core.seeds import Band

Kind = Literal["line", "scatter", "bar", "histogram", "heatmap", "contour", "image"]
KINDS: tuple[str, ...] = Kind.__args__
# Tableau 10: the same hue for the same series in the report and on the page.
PALETTE = (
    "#4C78A8",
    "#F58518",
    "#E45756",
    "#72B7B2",
    "#54A24B",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
)
GREY = "#7F7F7F"


@dataclass
class Trace:
    """One series of a panel; which fields count depends on ``kind``.

    - ``line`` / ``scatter``: ``x``, ``y``; optional band ``lower``/``upper`` (lines), point labels
      ``text`` and marker ``size`` (scatter); NaN in ``x``/``y`` breaks a line (outlines of several
      boxes in one trace).
    - ``bar``: categories or numbers ``x``, heights ``y``, optional error bars ``error``; several bar
      traces in a panel are grouped side by side.
    - ``histogram``: the raw values in ``x``, ``bins``, ``density`` (area 1) or counts.
    - ``heatmap`` / ``image``: ``z`` (rows top to bottom), optional axis labels ``x`` (columns) and
      ``y`` (rows), cell labels ``text`` (heatmap), ``colorscale``, ``zmin``/``zmax``; an image keeps
      square pixels and no colour bar; an image's ``z`` may be ``(rows, columns, 3)`` RGB in [0, 1].
    - ``contour``: ``z`` over the grid ``x`` (columns) by ``y`` (rows), contour ``levels``.
    """

    kind: Kind
    name: str = ""
    x: Sequence | None = None
    y: Sequence | None = None
    z: Sequence[Sequence[float]] | None = None
    lower: Sequence[float] | None = None
    upper: Sequence[float] | None = None
    error: Sequence[float] | None = None
    text: Sequence | None = None
    color: str | int | None = None  # a hex colour or an index into PALETTE; None: by trace order
    dash: bool = False
    markers: bool = False  # markers on a line
    width: float = 2.0
    opacity: float = 1.0
    bins: int = 30
    density: bool = True
    levels: Sequence[float] | None = None
    colorscale: str = "Blues"
    zmin: float | None = None
    zmax: float | None = None
    colorbar: str = ""  # the colour bar's title (heatmap)
    legend: bool = True  # listed in the legend (when it has a name)
    size: float | None = None  # a scatter's marker diameter, about pixels (None: the renderers' default)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown trace kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.kind in ("heatmap", "contour", "image"):
            if self.z is None:
                raise ValueError(f"a {self.kind} trace needs z")
            return
        if self.x is None or (self.kind != "histogram" and self.y is None):
            raise ValueError(f"a {self.kind} trace needs x{'' if self.kind == 'histogram' else ' and y'}")
        for name in ("y", "lower", "upper", "error", "text"):
            values = getattr(self, name)
            if values is not None and self.kind != "histogram" and len(values) != len(self.x):
                raise ValueError(f"trace {self.name!r}: {name} has {len(values)} values, x has {len(self.x)}")

    @classmethod
    def band_line(cls, name: str, x: Sequence, band: Band, **style) -> Trace:
        """The mean over seeds as a line, ``mean ± std`` as its band (no band for one seed)."""
        lower, upper = (None, None) if band.std is None else (list(band.low), list(band.high))
        return cls(
            "line", name, list(x)[: len(band.mean)], list(band.mean), lower=lower, upper=upper, **style
        )


@dataclass
class Panel:
    """One set of axes: its traces, labels, scales and reference lines."""

    traces: list[Trace]
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    log_x: bool = False
    log_y: bool = False
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    hlines: list[tuple[float, str]] = field(default_factory=list)  # (value, label) dashed grey
    vlines: list[tuple[float, str]] = field(default_factory=list)
    equal_aspect: bool = False
    integer_x: bool = False  # ticks only on whole numbers (epochs, rounds)


@dataclass
class Chart:
    """A figure: ``name`` is its file stem (``<name>.png`` in the run folder)."""

    name: str
    panels: list[Panel]
    title: str = ""
    columns: int = 2  # panels per row
    height: int = 360  # pixels per row on a page; the PNG keeps the same proportions

    def __post_init__(self) -> None:
        if not self.panels:
            raise ValueError(f"chart {self.name!r} has no panels")
        self.columns = max(1, min(self.columns, len(self.panels)))

    @property
    def rows(self) -> int:
        return math.ceil(len(self.panels) / self.columns)


def colour(trace: Trace, index: int) -> str:
    """The trace's colour: its own, a palette index, or the palette by trace order."""
    if isinstance(trace.color, str):
        return trace.color
    return PALETTE[(index if trace.color is None else trace.color) % len(PALETTE)]


def heatmap_cells(trace: Trace) -> np.ndarray:
    return np.asarray(trace.z, dtype=float)


def save_png(chart: Chart, path: str | Path, dpi: int = 110) -> Path:
    """Draw ``chart`` with matplotlib into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # reports are written headless
    import matplotlib.pyplot as plt

    width = 5.0 * chart.columns
    figure, axes = plt.subplots(
        chart.rows, chart.columns, figsize=(width, chart.height / 100 * chart.rows), squeeze=False
    )
    for ax, panel in zip(axes.flat, chart.panels):
        _draw_panel(figure, ax, panel)
    for ax in list(axes.flat)[len(chart.panels) :]:
        ax.set_visible(False)
    if chart.title:
        figure.suptitle(chart.title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return path


def _draw_panel(figure, ax, panel: Panel) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    bars = [t for t in panel.traces if t.kind == "bar"]
    for index, trace in enumerate(panel.traces):
        DRAW[trace.kind](figure, ax, trace, colour(trace, index), bars)
    for value, label in panel.hlines:
        ax.axhline(value, color=GREY, linestyle="--", linewidth=1, label=label or None)
    for value, label in panel.vlines:
        ax.axvline(value, color=GREY, linestyle=":", linewidth=1, label=label or None)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    for log, axis, scale in ((panel.log_x, ax.xaxis, ax.set_xscale), (panel.log_y, ax.yaxis, ax.set_yscale)):
        if log:
            scale("log")
            axis.set_major_formatter(FuncFormatter(_log_label))
            axis.set_minor_formatter(FuncFormatter(lambda value, _: _log_label(value, _, minor=True)))
    if panel.x_range:
        ax.set_xlim(*panel.x_range)
    if panel.y_range:
        ax.set_ylim(*panel.y_range)
    if panel.equal_aspect:
        ax.set_aspect("equal", adjustable="datalim")
    if panel.integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if any(t.name and t.legend for t in panel.traces if t.kind not in ("heatmap", "image", "contour")):
        ax.legend(fontsize=8)


def _line(figure, ax, trace: Trace, color: str, bars) -> None:
    style = "--" if trace.dash else "-"
    marker = "o" if trace.markers else None
    label = trace.name if trace.legend and trace.name else None
    x = np.asarray(trace.x, dtype=float) if _numeric(trace.x) else list(trace.x)
    ax.plot(
        x, trace.y, style, color=color, lw=trace.width, alpha=trace.opacity, marker=marker, ms=4, label=label
    )
    if trace.lower is not None and trace.upper is not None:
        ax.fill_between(x, trace.lower, trace.upper, color=color, alpha=0.2, linewidth=0)


def _scatter(figure, ax, trace: Trace, color: str, bars) -> None:
    label = trace.name if trace.legend and trace.name else None
    sized = dict(s=14) if trace.size is None else dict(s=trace.size**2, linewidths=0)
    ax.scatter(trace.x, trace.y, **sized, color=color, alpha=trace.opacity, label=label)
    for x, y, text in zip(trace.x, trace.y, trace.text or []):
        ax.annotate(str(text), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")


def _bar(figure, ax, trace: Trace, color: str, bars) -> None:
    slot, count = bars.index(trace), len(bars)
    width = 0.8 / count
    positions = np.arange(len(trace.x)) + (slot - (count - 1) / 2) * width
    label = trace.name if trace.legend and trace.name else None
    ax.bar(
        positions, trace.y, width, yerr=trace.error, color=color, alpha=trace.opacity, label=label, capsize=2
    )
    ax.set_xticks(np.arange(len(trace.x)), [str(x) for x in trace.x], rotation=30 if len(trace.x) > 6 else 0)


def _histogram(figure, ax, trace: Trace, color: str, bars) -> None:
    label = trace.name if trace.legend and trace.name else None
    opacity = trace.opacity if trace.opacity < 1 else 0.5
    ax.hist(trace.x, bins=trace.bins, density=trace.density, color=color, alpha=opacity, label=label)


def _heatmap(figure, ax, trace: Trace, color: str, bars) -> None:
    cells = heatmap_cells(trace)
    image = ax.imshow(
        cells, cmap=_colormap(trace.colorscale), vmin=trace.zmin, vmax=trace.zmax, aspect="auto"
    )
    if trace.x is not None:
        long = sum(len(str(x)) for x in trace.x) > 40
        ax.set_xticks(
            range(len(trace.x)),
            [str(x) for x in trace.x],
            rotation=45 if long else 0,
            ha="right" if long else "center",
        )
    if trace.y is not None:
        ax.set_yticks(range(len(trace.y)), [str(y) for y in trace.y])
    if trace.text is not None and cells.size <= 400:
        middle = np.nanmean(cells) if trace.zmax is None else (trace.zmax + (trace.zmin or 0)) / 2
        for (i, j), text in np.ndenumerate(np.asarray(trace.text, dtype=object)):
            tone = "white" if cells[i, j] > middle else "black"
            ax.text(j, i, str(text), ha="center", va="center", fontsize=7, color=tone)
    figure.colorbar(image, ax=ax, fraction=0.046, label=trace.colorbar)


def _image(figure, ax, trace: Trace, color: str, bars) -> None:
    ax.imshow(heatmap_cells(trace), cmap=_colormap(trace.colorscale), vmin=trace.zmin, vmax=trace.zmax)
    ax.set_xticks([])
    ax.set_yticks([])


def _contour(figure, ax, trace: Trace, color: str, bars) -> None:
    levels = list(trace.levels) if trace.levels is not None else 20
    ax.contour(
        trace.x,
        trace.y,
        heatmap_cells(trace),
        levels=levels,
        cmap=_colormap(trace.colorscale),
        linewidths=0.7,
    )


def _colormap(name: str) -> str:
    """Plotly's colour-scale names in matplotlib's spelling ("Viridis" -> "viridis")."""
    import matplotlib

    return name if name in matplotlib.colormaps else name.lower()


def _log_label(value: float, position=None, minor: bool = False) -> str:
    """Plain numbers on a log axis (0.1, 0.2, 0.5, 1, ...): powers of ten, and 2 and 5 between them."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if not minor or mantissa in (2, 5) else ""


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)


DRAW = {
    "line": _line,
    "scatter": _scatter,
    "bar": _bar,
    "histogram": _histogram,
    "heatmap": _heatmap,
    "image": _image,
    "contour": _contour,
}


# ------------------------------------------------------------------ charts several techniques draw


def confusion_chart(matrix, classes: Sequence[str], title: str = "Confusion matrix") -> Chart:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), cells labelled with counts."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [str(c) for c in classes]
    cells = Trace("heatmap", x=names, y=names, z=rates.tolist(), text=counts.tolist(), zmin=0, zmax=1)
    cells.colorbar = "fraction of true class"
    panel = Panel([cells], title=title, x_label="predicted", y_label="true")
    return Chart("confusion_matrix", [panel], columns=1, height=max(360, 28 * len(names) + 120))


def training_chart(step_loss: Sequence[float], epochs: Sequence[dict[str, float]]) -> Chart:
    """Left: training loss per step (raw, faint, and smoothed). Right: accuracy per epoch."""
    steps = list(range(1, len(step_loss) + 1))
    loss = [
        Trace("line", "per step", steps, list(step_loss), width=0.8, opacity=0.35, color=0),
        Trace("line", "smoothed", steps, moving_average(step_loss).tolist(), color=0),
    ]
    accuracy = []
    for index, key in enumerate(("train/accuracy", "val/accuracy")):
        points = [(e["epoch"], e[key]) for e in epochs if e.get(key) is not None]
        if points:
            x, y = zip(*points)
            accuracy.append(Trace("line", key, list(x), list(y), markers=True, color=index + 1))
    return Chart(
        "training_curves",
        [
            Panel(loss if steps else [], title="Training loss", x_label="step", y_label="loss", log_y=True),
            Panel(accuracy, title="Accuracy per epoch", x_label="epoch", y_label="accuracy", integer_x=True),
        ],
    )


def moving_average(values: Sequence[float], window: int = 25) -> np.ndarray:
    """Trailing moving average; the first points average over what exists so far."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values) // 5 or 1))
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)
