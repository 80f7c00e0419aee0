"""SwAV's charts, each built once from plain numbers: the report saves them as PNG, the page draws them live.

- :func:`probe_chart`: test accuracy against the fraction of labels, per initialisation;
- :func:`loss_chart`: the swapped-prediction loss per epoch against log K;
- :func:`sinkhorn_chart`: a batch's codes after some Sinkhorn-Knopp iterations, and the errors;
- :func:`prototype_chart`: the fullest prototypes with test images assigned to them.

Several seeds draw as ``mean ± 1 sample std`` bands (:func:`playground.core.seeds.band`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from playground.core.charts import Chart, Panel, Trace
from playground.core.seeds import band

if TYPE_CHECKING:
    from playground.swav.results import ProbeCurve

LABELS = {"swav": "SwAV", "random_init": "random init", "supervised": "supervised (all labels)"}
SAMPLES = 24  # rows of the codes a run's Sinkhorn chart shows
TILES = (2, 4)  # a prototype's example images: rows, columns


def probe_chart(curves: Sequence[ProbeCurve]) -> Chart:
    """Test accuracy against the fraction of labels (log scale): linear probe (solid, with its band
    over seeds) and fine-tuned (dashed), one colour per initialisation."""
    traces = []
    for index, curve in enumerate(curves):
        label = LABELS.get(curve.init, curve.init)
        traces.append(
            Trace.band_line(f"{label}: linear probe", curve.fractions, curve.probe, color=index, markers=True)
        )
        if curve.shots:
            tuned = [float(v) for v in curve.tuned]
            traces.append(
                Trace(
                    "line", f"{label}: fine-tuned", curve.shots, tuned, color=index, dash=True, markers=True
                )
            )
    seeds = max((curve.probe.seeds for curve in curves), default=1)
    spread = f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""
    panel = Panel(traces, x_label="fraction of training labels", y_label="test accuracy", log_x=True)
    return Chart(
        "probe_accuracy",
        [panel],
        title="Test accuracy against the fraction of labels" + spread,
        columns=1,
        height=430,
    )


def loss_chart(losses: Sequence[Sequence[float]], prototypes: int) -> Chart:
    """The swapped-prediction loss per epoch (one list per seed: mean ± std) against log K, the loss
    of uniform codes and predictions."""
    curve = band(losses)
    epochs = list(range(1, len(curve.mean) + 1))
    uniform = math.log(max(prototypes, 1))
    panel = Panel(
        [Trace.band_line("swapped-prediction loss", epochs, curve, markers=True)],
        title="SwAV loss per epoch",
        x_label="epoch",
        y_label="loss (nats)",
        hlines=[(uniform, f"log K = {uniform:.2f} (uniform)")],
        integer_x=True,
    )
    return Chart("swav_loss", [panel], columns=1, height=350)


def sinkhorn_chart(
    codes: Sequence[Sequence[Sequence[float]]],
    errors: Sequence[Sequence[float]],
    steps: Sequence[int] | None = None,
    samples: int | None = SAMPLES,
) -> Chart:
    """The codes ``(B, K)`` of one batch after each of ``steps`` Sinkhorn-Knopp iterations (default 0,
    1, 3 and the last; the first ``samples`` rows, None: all), then the largest deviation of the
    sample sums from 1 and of the prototype sums from B/K per iteration, the shown steps marked.

    ``codes``: one ``(B, K)`` table per iteration, the scores alone first; ``errors``: per iteration
    ``(sample-sum error, prototype-sum error)`` (:func:`playground.swav.sinkhorn.equipartition_error`).
    """
    last = len(codes) - 1
    steps = sorted({min(max(int(s), 0), last) for s in (steps if steps is not None else (0, 1, 3, last))})
    shown = {step: np.asarray(codes[step], dtype=float)[:samples] for step in steps}
    top = max(float(table.max()) for table in shown.values())
    panels = [
        Panel(
            [Trace("heatmap", z=table.tolist(), colorscale="Viridis", zmin=0, zmax=top, colorbar="q")],
            title=_step_title(step),
            x_label="prototype",
            y_label="sample",
        )
        for step, table in shown.items()
    ]
    iterations = list(range(len(errors)))
    deviations = [
        Trace("line", name, iterations, [max(float(e[i]), 1e-12) for e in errors], markers=True)
        for i, name in enumerate(("sample sums vs 1", "prototype sums vs B/K"))
    ]
    panels.append(
        Panel(
            deviations,
            title="Largest deviation from equipartition",
            x_label="Sinkhorn iteration",
            log_y=True,
            hlines=[(1e-3, "1e-3")],
            vlines=[(step, "") for step in steps],
            integer_x=True,
        )
    )
    return Chart("sinkhorn", panels, columns=min(3, len(panels)), height=420)


def _step_title(step: int) -> str:
    return "exp(scores / ε), normalised" if step == 0 else f"codes after {step} iteration{'s' * (step > 1)}"


def prototype_chart(examples, counts, classes: Sequence[str], shown: int = 12) -> Chart:
    """The ``shown`` fullest prototypes: a tile of the test images assigned to each, titled with how
    many images it holds and its most common class.

    ``examples``: ``(K, m, C, H, W)`` images in [0, 1], all-zero where a prototype holds fewer than
    ``m``; ``counts``: ``(K, classes)`` test images of each class per prototype."""
    examples, counts = np.asarray(examples, dtype=float), np.asarray(counts)
    order = np.argsort(-counts.sum(1), kind="stable")[:shown]
    panels = []
    for k in order.tolist():
        total, top = int(counts[k].sum()), int(counts[k].argmax())
        share = counts[k, top] / max(total, 1)
        name = classes[top] if top < len(classes) else str(top)
        image = Trace("image", z=_tile(examples[k]).tolist(), colorscale="gray", zmin=0, zmax=1)
        panels.append(Panel([image], title=f"#{k}: {total} images, {share:.0%} {name}"))
    return Chart("prototypes", panels, title="The fullest prototypes", columns=4, height=200)


def _tile(images: np.ndarray) -> np.ndarray:
    """``(m, C, H, W)`` images on a :data:`TILES` grid, white between them and in empty slots:
    ``(H', W')`` for one channel, ``(H', W', 3)`` RGB for three."""
    rows, columns = TILES
    count, channels, height, width = images.shape
    grid = np.ones((rows * (height + 1) - 1, columns * (width + 1) - 1, channels))
    for index in range(min(count, rows * columns)):
        if not images[index].any():  # an empty slot: the prototype holds fewer images
            continue
        row, column = divmod(index, columns)
        top, left = row * (height + 1), column * (width + 1)
        grid[top : top + height, left : left + width] = images[index].transpose(1, 2, 0)
    return grid[..., 0] if channels == 1 else grid
