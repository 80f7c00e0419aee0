"""The OOD run's charts, each built once as a :class:`~playground.core.charts.Chart`: the report saves
them as PNG (``auroc``, ``roc``, ``reliability``, ``score_histograms``) and the uncertainty page draws
the same functions live, its knobs (which OOD set, which method, which image) passed as parameters.

Everything here reads typed results (an :class:`~playground.uncertainty.results.Evaluation`, per-image
scores, an :class:`~playground.uncertainty.inspection.ImagePrediction`) and holds plain numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from playground.core.charts import GREY, Chart, Panel, Trace

if TYPE_CHECKING:
    from playground.uncertainty.inspection import ImagePrediction
    from playground.uncertainty.results import Evaluation

METHOD_LABELS = {
    "single": "single model",
    "temp_scaled": "temperature scaled",
    "mc_dropout": "MC dropout",
    "ensemble": "deep ensemble",
    "bnn": "Bayesian NN (pyro)",
    "feature": "feature space",
}
SAMPLE_NOUNS = {"ensemble": "member", "mc_dropout": "dropout sample", "bnn": "posterior sample"}
SCORE_LABELS = {
    "msp": "MSP (−max p̄)",
    "max_logit": "max logit (−)",
    "entropy": "entropy",
    "energy": "energy",
    "mutual_information": "mutual information (BALD)",
    "variance": "member variance",
    "disagreement": "disagreement",
    "mahalanobis": "Mahalanobis",
    "knn": "KNN distance",
}
HISTOGRAM_ROWS = ("single_msp", "ensemble", "bnn", "mahalanobis")  # the score distributions a report draws
FPR95 = 0.05  # the ROC curves' operating point: 95% of the in-distribution test images kept
BLACK, RED = "#000000", "#D62728"


def set_label(name: str) -> str:
    """A set's name with what it is, for legends and tables."""
    return {"test": "test (in distribution)", "near": "near (held-out classes)"}.get(name, name)


def auroc_chart(evaluation: Evaluation) -> Chart:
    """The AUROC of every reported row (columns) on every OOD set and ``far``, their mean (rows), each
    cell labelled; the colour runs from chance (0.5) to perfect (1)."""
    sets = evaluation.sets + (["far"] if any("far" in by_set for by_set in evaluation.ood.values()) else [])
    rows = list(evaluation.ood)
    values = [[evaluation.ood[row].get(s, {}).get("auroc", math.nan) for row in rows] for s in sets]
    text = [["–" if math.isnan(v) else f"{v:.3f}" for v in line] for line in values]
    cells = Trace("heatmap", x=rows, y=sets, z=values, text=text, zmin=0.5, zmax=1.0, colorbar="AUROC")
    panel = Panel([cells], x_label="method row", y_label="OOD set")
    height = max(320, 30 * len(sets) + 200)
    return Chart(
        "auroc", [panel], title="OOD detection (AUROC) by method and OOD set", columns=1, height=height
    )


def roc_chart(
    evaluation: Evaluation, sets: Sequence[str] = (), read_with: Mapping[str, str] | None = None
) -> Chart:
    """ROC curves of every reported row (OOD is the positive class), one panel per OOD set in ``sets``
    (empty: all of the run's). ``read_with`` names the score each row reads (shown in the legend); with
    one set the legend also gives each row's AUROC."""
    sets = list(sets) or evaluation.sets
    panels = [_roc_panel(evaluation, name, read_with or {}, with_auroc=len(sets) == 1) for name in sets]
    for panel in panels[1:]:  # one legend: the rows keep their colour in every panel
        for trace in panel.traces:
            trace.legend = False
    if len(sets) == 1:
        panels[0].title = ""
        title = f"In-distribution test against {sets[0]} (legend: AUROC)"
    else:
        title = "ROC curves: in-distribution test against each OOD set"
    return Chart("roc", panels, title=title, columns=3, height=460 if len(sets) == 1 else 380)


def _roc_panel(
    evaluation: Evaluation, set_name: str, read_with: Mapping[str, str], with_auroc: bool
) -> Panel:
    traces = []
    for index, (row, curves) in enumerate(evaluation.roc.items()):
        if set_name not in curves:
            continue
        score = read_with.get(row, row)
        name = row + (f" ({score})" if score != row else "")
        auroc = evaluation.ood.get(row, {}).get(set_name, {}).get("auroc")
        if with_auroc and auroc is not None:
            name += f" · {auroc:.3f}"
        fpr, tpr = curves[set_name]
        traces.append(Trace("line", name, list(fpr), list(tpr), color=index, width=1.4))
    traces.append(_diagonal("chance", legend=False))
    return Panel(
        traces,
        title=f"in-distribution vs {set_name}",
        x_label="false positive rate (in-distribution flagged)",
        y_label="true positive rate (OOD flagged)",
        x_range=(0, 1),
        y_range=(0, 1.02),
        vlines=[(FPR95, "95% of test kept")],
    )


def reliability_chart(evaluation: Evaluation, methods: Sequence[str] = ()) -> Chart:
    """Accuracy against mean confidence per confidence bin, on the test and the corrupted test set, one
    panel per method in ``methods`` (empty: every method the run reported); the legend gives each ECE."""
    methods = list(methods) or list(evaluation.reliability)
    panels = [_reliability_panel(evaluation, method) for method in methods]
    if len(methods) == 1:
        panels[0].title = ""
        title = f"{METHOD_LABELS.get(methods[0], methods[0])}: accuracy against confidence"
    else:
        title = "Reliability: accuracy against confidence"
    return Chart("reliability", panels, title=title, columns=3, height=460 if len(methods) == 1 else 340)


def _reliability_panel(evaluation: Evaluation, method: str) -> Panel:
    traces = []
    for index, split in enumerate(("test", "corrupted")):
        bins = evaluation.reliability[method][split]
        shown = [i for i, count in enumerate(bins["count"]) if count > 0]
        ece = evaluation.calibration.get(method, {}).get(split, {}).get("ece")
        name = split + (f" · ECE {ece:.3f}" if ece is not None else "")
        confidence, accuracy = ([bins[key][i] for i in shown] for key in ("confidence", "accuracy"))
        traces.append(Trace("line", name, confidence, accuracy, color=index, markers=True))
    traces.append(_diagonal("perfect calibration"))
    return Panel(
        traces,
        title=METHOD_LABELS.get(method, method),
        x_label="confidence (max p̄)",
        y_label="accuracy",
        x_range=(0, 1),
        y_range=(0, 1.02),
    )


def _diagonal(name: str, legend: bool = True) -> Trace:
    return Trace("line", name, [0, 1], [0, 1], color=GREY, dash=True, width=1, legend=legend)


def score_histograms_chart(
    scores: Mapping[str, Mapping[str, Sequence[float]]], sets: Sequence[str], rows: Sequence[str] = ()
) -> Chart:
    """Per row (``rows``, default :data:`HISTOGRAM_ROWS` the run has, else its first four), the density of
    the OOD score on the in-distribution test set and on each OOD set, over shared bins."""
    rows = list(rows) or [r for r in HISTOGRAM_ROWS if r in scores] or list(scores)[:4]
    panels = [
        Panel(
            histogram_traces(scores[row], ["test", *sets], bins=40, percent=False)[0],
            title=row,
            x_label="OOD score",
            y_label="density",
        )
        for row in rows
    ]
    return Chart("score_histograms", panels, title="Score distributions by set", columns=4, height=320)


def verdict_chart(
    reference: Mapping[str, Sequence[float]], sets: Sequence[str], value: float, threshold: float, score: str
) -> Chart:
    """The score ``score`` of every image of ``sets`` (percent of each set over shared bins), with one
    image's ``value`` and the ``threshold`` above which it is flagged as OOD."""
    traces, top = histogram_traces(reference, sets, bins=60, percent=True)
    traces += [
        Trace("line", f"this image {value:.3g}", [value, value], [0, top], color=BLACK, width=3),
        Trace("line", f"threshold {threshold:.3g}", [threshold] * 2, [0, top], color=RED, dash=True),
    ]
    panel = Panel(traces, x_label="OOD score (higher: more OOD)", y_label="% of the set")
    title = f"Where this image falls: {SCORE_LABELS.get(score, score)} by set"
    return Chart("score_verdict", [panel], title=title, columns=1, height=380)


def histogram_traces(
    reference: Mapping[str, Sequence[float]], sets: Sequence[str], bins: int, percent: bool
) -> tuple[list[Trace], float]:
    """Each set's histogram as a step outline over bins shared by all of them (the corrupted test set
    dashed), density or percent of the set; and the highest bar."""
    values = {name: np.asarray(reference[name], dtype=float) for name in sets}
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=bins)
    traces, top = [], 0.0
    for index, name in enumerate(sets):
        counts, _ = np.histogram(values[name], bins=edges, density=not percent)
        heights = 100 * counts / max(len(values[name]), 1) if percent else counts
        x, y = step_outline(edges, heights)
        traces.append(Trace("line", set_label(name), x, y, color=index, width=1.4, dash=name == "corrupted"))
        top = max(top, float(heights.max(initial=0)))
    return traces, top


def step_outline(edges: np.ndarray, heights: np.ndarray) -> tuple[list[float], list[float]]:
    """The outline of a histogram (``edges`` has one more value than ``heights``), from 0 back to 0."""
    x = np.repeat(np.asarray(edges, dtype=float), 2)
    y = np.concatenate([[0.0], np.repeat(np.asarray(heights, dtype=float), 2), [0.0]])
    return x.tolist(), y.tolist()


def spread_chart(prediction: ImagePrediction, classes: Sequence[str], title: str) -> Chart:
    """One image: the mean probability of every class over samples, ± its std over samples."""
    error = prediction.spreads.tolist() if prediction.samples > 1 else None
    names = [str(c) for c in classes]
    bars = Trace("bar", "p̄", names, prediction.mean.tolist(), error=error, legend=False)
    panel = Panel([bars], y_label="probability", y_range=(0, 1.05))
    return Chart("prediction_spread", [panel], title=title, columns=1, height=250)


def samples_chart(prediction: ImagePrediction, classes: Sequence[str], title: str, noun: str) -> Chart:
    """One image: the probabilities of every sample (member, dropout or posterior sample) by class, and
    their mean as the last row."""
    rows = [*prediction.probs.tolist(), prediction.mean.tolist()]
    labels = [f"{noun} {i + 1}" for i in range(len(rows) - 1)] + ["mean"]
    names = [str(c) for c in classes]
    text = [[f"{p:.2f}" for p in row] for row in rows] if len(rows) * len(names) <= 130 else None
    cells = Trace("heatmap", x=names, y=labels, z=rows, text=text, zmin=0, zmax=1, colorbar="p")
    longest = max(len(name) for name in names)
    height = 100 + 22 * len(labels) + 6 * min(longest, 12)
    return Chart("prediction_samples", [Panel([cells])], title=title, columns=1, height=height)


def charts(
    evaluation: Evaluation,
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    read_with: Mapping[str, str] | None = None,
) -> list[Chart]:
    """The report's charts: AUROC bars, ROC curves, reliability and score distributions (``scores``: row ->
    set -> the OOD score of every image; ``read_with``: row -> the score it reads)."""
    return [
        auroc_chart(evaluation),
        roc_chart(evaluation, read_with=read_with),
        reliability_chart(evaluation),
        score_histograms_chart(scores, evaluation.sets),
    ]
