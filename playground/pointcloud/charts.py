"""The point-cloud run's chart, built once: the bird's-eye view of one frame (``bev.png`` in the report).

Points are coloured by height in a few bands (dark: the ground, yellow: above 2.5 m), ground-truth
cuboids are solid outlines coloured by class, proposals dashed red; every box has a heading tick from
its centre to the middle of its front face, and the sensor sits at the origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from playground.core.charts import Chart, Panel, Trace
from playground.pointcloud.cuboid import Cuboid

CLASS_COLOURS = {"car": "#1F77B4", "pedestrian": "#FF7F0E", "pole": "#7F7F7F", "cyclist": "#9467BD"}
PROPOSAL_COLOUR = "#D62728"
LEARNED_COLOUR = "#2CA02C"
# (upper bound in metres, colour): viridis from the ground up
HEIGHT_BANDS = (
    (0.25, "#440154"),
    (1.0, "#3B528B"),
    (1.75, "#21918C"),
    (2.5, "#5EC962"),
    (math.inf, "#FDE725"),
)


def outlines(boxes: Sequence[Cuboid]) -> tuple[list[float], list[float]]:
    """The footprints of ``boxes`` and their heading ticks as one line, NaN between the pieces."""
    x, y = [], []
    for box in boxes:
        corners = box.bev_corners()
        front = corners[[0, 3]].mean(axis=0)  # the heading: centre to the middle of the front face
        loop = [*corners.tolist(), corners[0].tolist()]
        for piece in (loop, [list(box.center[:2]), front.tolist()]):
            x += [float(p[0]) for p in piece] + [math.nan]
            y += [float(p[1]) for p in piece] + [math.nan]
    return x, y


def _height_bands(points: np.ndarray) -> list[Trace]:
    traces, low = [], -math.inf
    for high, colour in HEIGHT_BANDS:
        band = points[(points[:, 2] >= low) & (points[:, 2] < high)]
        if len(band):
            x, y = band[:, 0].tolist(), band[:, 1].tolist()
            name = f"z < {high:g} m" if math.isfinite(high) else f"z ≥ {low:g} m"
            traces.append(Trace("scatter", name, x, y, color=colour, size=1.0, legend=False))
        low = high
    return traces


def bev_chart(
    points: np.ndarray,
    truth: Sequence[Cuboid],
    proposals: Sequence[Cuboid],
    extent: float = 35.0,
    title: str = "",
    max_points: int = 60_000,
    learned: Sequence[Cuboid] = (),
) -> Chart:
    """Points within ``extent`` metres (subsampled to ``max_points``) coloured by height, ground truth as
    solid outlines per class, proposals dashed red and the learned detector's boxes dashed green, all
    with a heading tick; the sensor at the origin."""
    points = np.asarray(points, dtype=float)
    near = points[(np.abs(points[:, 0]) <= extent) & (np.abs(points[:, 1]) <= extent)]
    if len(near) > max_points:
        near = near[np.linspace(0, len(near) - 1, max_points).astype(int)]
    traces = _height_bands(near)
    for label, colour in CLASS_COLOURS.items():
        boxes = [box for box in truth if box.label == label]
        if boxes:
            traces.append(Trace("line", f"truth: {label}", *outlines(boxes), color=colour, width=1.6))
    others = [box for box in truth if box.label not in CLASS_COLOURS]
    if others:
        traces.append(Trace("line", "truth: other", *outlines(others), color="#000000", width=1.6))
    traces.append(
        Trace("line", "proposal", *outlines(proposals), color=PROPOSAL_COLOUR, width=1.0, dash=True)
    )
    if learned:
        traces.append(
            Trace("line", "learned", *outlines(learned), color=LEARNED_COLOUR, width=1.0, dash=True)
        )
    traces.append(Trace("scatter", "sensor", [0.0], [0.0], color="#000000", size=6.0))
    # equal axes around the points (all within ``extent``); fixed limits would fight the equal aspect
    panel = Panel(traces, x_label="x (m, forward)", y_label="y (m, left)", equal_aspect=True)
    return Chart("bev", [panel], title=title or "bird's-eye view", columns=1, height=520)


def training_chart(losses: Sequence[float], heatmap: Sequence[float], regression: Sequence[float]) -> Chart:
    """The detector's training losses per step (``detector_training.png``), smoothed over 20 steps."""

    def smooth(values: Sequence[float]) -> list[float]:
        values = np.asarray(values, dtype=float)
        window = max(1, min(20, len(values)))
        return np.convolve(values, np.ones(window) / window, mode="valid").tolist()

    steps = list(range(1, len(losses) + 1))
    traces = [
        Trace("line", name, steps[len(steps) - len(smooth(v)) :], smooth(v))
        for name, v in (("total", losses), ("heatmap (focal)", heatmap), ("regression (L1)", regression))
    ]
    panel = Panel(traces, x_label="step", y_label="loss (mean of the last 20 steps)", log_y=True)
    return Chart("detector_training", [panel], title="the learned detector's training", columns=1)
