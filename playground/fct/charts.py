"""FCT's charts, each built once from plain numbers: the report saves them as PNG, the page draws them live.

- :func:`compatibility_chart`: CMC top-1, top-5 and mAP of every query/gallery case;
- :func:`tradeoff_chart`: new-fct retrieval against the side-info bytes stored per image;
- :func:`projection_chart`: the gallery on the new model's principal plane, one panel per gallery;
- :func:`backfill_chart`: the backfilling curves, mAP against the share re-embedded, per order;
- :func:`paired_chart`: post-hoc adapters' share of full re-embedding against their paired images;
- :func:`edges_chart`: edge galleries' mAP while they upgrade one after another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from playground.core.charts import Chart, Panel, Trace

MEASURES = (("top1", "top-1"), ("top5", "top-5"), ("mAP", "mAP"))
VIEWS = {  # gallery -> panel title, in the order drawn; the old panel has its own axes
    "new": "new model",
    "fct": "FCT: h(old, side-info)",
    "fct_noside": "FCT without side-info",
    "old": "old, untransformed",
}


def compatibility_chart(rows: Sequence[Mapping[str, Any]]) -> Chart:
    """CMC top-1, top-5 and mAP (%) of each case, grouped by case; error bars: ± std over seeds.

    ``rows``: one per case, ``{"case", "top1", "top5", "mAP"}`` fractions, with ``"<key>_std"`` for
    a multi-seed run (:func:`playground.fct.results.compatibility_rows`)."""
    cases = [row["case"] for row in rows]
    bars = []
    for key, label in MEASURES:
        spread = [100 * row.get(f"{key}_std", 0.0) for row in rows]
        heights = [100 * row[key] for row in rows]
        bars.append(Trace("bar", label, cases, heights, error=spread if any(spread) else None))
    panel = Panel(
        bars,
        title="Retrieval by case (CMC top-1, top-5, mAP)",
        x_label="query model - gallery model",
        y_label="%",
        y_range=(0, 105),
    )
    return Chart("compatibility", [panel], columns=1, height=380)


def tradeoff_chart(
    rows: Sequence[Mapping[str, Any]], chosen: int | None = None, reference: float | None = None
) -> Chart:
    """new-fct mAP and top-1 (%) against the side-info bytes per image, one point per size (0: none).

    ``rows``: ``{"dim", "bytes", "top1", "mAP"}`` per size, ``"<key>_std"`` for a multi-seed run (a
    band of ± std); ``chosen`` marks one size with a dotted line, ``reference`` (new-new mAP, a
    fraction) is a dashed one.
    """
    rows = sorted(rows, key=lambda row: row["bytes"])
    x = [row["bytes"] for row in rows]
    traces = [
        _measure_line(rows, "mAP", "new-fct mAP", color=0, markers=True),
        _measure_line(rows, "top1", "new-fct top-1", color=1, dash=True, markers=True),
        Trace(  # each mAP point labelled with its size
            "scatter",
            "",
            x,
            [100 * row["mAP"] for row in rows],
            text=[size(row["dim"]) for row in rows],
            color=0,
            legend=False,
        ),
    ]
    marks = [(row["bytes"], f"chosen: {size(chosen)}") for row in rows if row["dim"] == chosen]
    lines = [] if reference is None else [(100 * reference, "new-new mAP (full backfill)")]
    panel = Panel(
        traces,
        title="Side-info bytes per image against retrieval",
        x_label="side-info bytes per image",
        y_label="new-fct (%)",
        hlines=lines,
        vlines=marks[:1],
    )
    return Chart("side_info_tradeoff", [panel], columns=1)


def size(dim: int) -> str:
    """A side-info size as the page's slider and the chart name it: ``none`` or ``32-d``."""
    return "none" if dim == 0 else f"{dim}-d"


def _measure_line(rows: Sequence[Mapping[str, Any]], key: str, name: str, **style) -> Trace:
    values = [100 * row[key] for row in rows]
    spread = [100 * row.get(f"{key}_std", 0.0) for row in rows]
    band = {}
    if any(spread):
        band = dict(
            lower=[v - s for v, s in zip(values, spread)], upper=[v + s for v, s in zip(values, spread)]
        )
    return Trace("line", name, [row["bytes"] for row in rows], values, **band, **style)


def projection_chart(
    coords: Mapping[str, Sequence[Sequence[float]]], labels: Sequence[int], classes: Sequence[str]
) -> Chart:
    """The gallery on the new model's two principal directions: one panel per gallery of :data:`VIEWS`
    found in ``coords`` (gallery -> ``[x, y]`` per point), points coloured by class.

    Transformed galleries should land where the new model puts the same images, so the new and FCT
    panels share their axes; raw old embeddings land anywhere and get their own."""
    labels = np.asarray(labels, dtype=int)
    views = [view for view in VIEWS if view in coords]
    points = {view: np.asarray(coords[view], dtype=float).reshape(-1, 2) for view in views}
    shared = _limits([points[view] for view in views if view != "old"])
    panels = []
    for number, view in enumerate(views):
        traces = [
            Trace(
                "scatter",
                classes[label] if label < len(classes) else str(label),
                points[view][labels == label, 0].tolist(),
                points[view][labels == label, 1].tolist(),
                color=int(label),
                opacity=0.7,
                size=4,  # up to 2000 points a panel
                legend=number == 0,  # one legend entry per class
            )
            for label in np.unique(labels).tolist()
        ]
        x_range, y_range = (None, None) if view == "old" or shared is None else shared
        panels.append(Panel(traces, title=VIEWS[view], x_range=x_range, y_range=y_range))
    return Chart(
        "projection",
        panels,
        title="Gallery embeddings on the new model's principal plane (the old panel has its own axes)",
        columns=len(panels),
        height=400,
    )


def _limits(point_sets: list[np.ndarray]) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """x and y ranges holding every point of ``point_sets``, with a 5% margin (None without points)."""
    points = np.concatenate([p for p in point_sets if len(p)] or [np.empty((0, 2))])
    if not len(points):
        return None
    low, high = points.min(0), points.max(0)
    margin = 0.05 * np.maximum(high - low, 1e-6)
    return (float(low[0] - margin[0]), float(high[0] + margin[0])), (
        float(low[1] - margin[1]),
        float(high[1] + margin[1]),
    )


ORDER_NAMES = {
    "random": "random",
    "fastfill": "FastFill (learned variance)",
    "ensemble": "ensemble disagreement",
    "knn": "kNN distance",
    "mahalanobis": "Mahalanobis",
    "oracle": "oracle (h's true error)",
}
TRANSFORMATIONS = {"side": "h(old, side-info)", "noside": "h(old, old): without side-info"}


def backfill_chart(
    fractions: Sequence[float],
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    areas: Mapping[str, Mapping[str, float]],
    mark: float | None = None,
) -> Chart:
    """mAP (%) against the share of the gallery re-embedded, one line per order, one panel per
    transformation (``curves[transformation][order]``); each legend entry carries its curve's area.
    ``mark`` (a share in [0, 1]) draws a vertical line there: where a user's own gallery stands."""
    x = [100 * f for f in fractions]
    panels = []
    for transformation, by_order in curves.items():
        marker = []
        if mark is not None:
            values = [v for curve in by_order.values() for v in curve]
            marker = [
                Trace(
                    "line", f"your gallery ({100 * mark:.0f}%)", [100 * mark] * 2, [min(values), max(values)]
                )
            ]
        traces = [
            Trace(
                "line",
                f"{ORDER_NAMES.get(order, order)} (area {areas[transformation][order]:.2f})",
                x,
                list(values),
                color=index,
                dash=order in ("random", "oracle"),
                markers=True,
            )
            for index, (order, values) in enumerate(by_order.items())
        ] + marker
        panels.append(
            Panel(
                traces,
                title=TRANSFORMATIONS.get(transformation, transformation),
                x_label="gallery re-embedded (%)",
                y_label="mAP (%)",
            )
        )
    return Chart("backfill_curves", panels, title="Backfilling curves: partial re-embedding in each order")


def paired_chart(rows: Sequence[Mapping[str, Any]], fct_share: float | None = None) -> Chart:
    """Each post-hoc adapter's mAP as a share of full re-embedding's, against the paired images it
    was fitted on; ``fct_share`` (FCT's share, fitted on every training image) is a dashed line."""
    policies = list(dict.fromkeys(row["policy"] for row in rows))
    kinds = list(dict.fromkeys(policy.rsplit("_", 1)[0] for policy in policies))
    traces = []
    for policy in policies:
        mine = sorted((row for row in rows if row["policy"] == policy), key=lambda row: row["paired_images"])
        traces.append(
            Trace(
                "line",
                policy,
                [row["paired_images"] for row in mine],
                [100 * row["share_of_reembed"] for row in mine],
                color=kinds.index(policy.rsplit("_", 1)[0]),
                dash=policy.endswith("_query"),
                markers=True,
            )
        )
    lines = [] if fct_share is None else [(100 * fct_share, "FCT (every training image)")]
    panel = Panel(
        traces,
        title="Post-hoc adapters: paired images against share of full re-embedding",
        x_label="paired images",
        y_label="mAP / re-embedding mAP (%)",
        hlines=lines,
        log_x=True,
    )
    return Chart("adapters_paired", [panel], columns=1)


def edges_chart(maps: Mapping[str, Sequence[float]]) -> Chart:
    """mAP (%) of every edge-transition policy against the number of edges upgraded."""
    traces = [
        Trace("line", policy, list(range(len(values))), [100 * v for v in values], color=i, markers=True)
        for i, (policy, values) in enumerate(maps.items())
    ]
    panel = Panel(
        traces, title="Edge galleries upgrading one by one", x_label="edges upgraded", y_label="mAP (%)"
    )
    return Chart("edges", [panel], columns=1)
