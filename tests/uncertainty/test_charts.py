"""The OOD charts on hand-made results: what each panel holds, and that both renderers draw them."""

import math

import pytest
import torch

from apps.charts import plotly_figure
from playground.core.charts import save_png
from playground.uncertainty.charts import (
    auroc_chart,
    charts,
    histogram_traces,
    reliability_chart,
    roc_chart,
    samples_chart,
    score_histograms_chart,
    spread_chart,
    step_outline,
    verdict_chart,
)
from playground.uncertainty.inspection import ImagePrediction
from playground.uncertainty.results import Evaluation

BINS = {"edges": [0.0, 0.5, 1.0], "confidence": [0.3, 0.8], "accuracy": [0.25, 0.9], "count": [4, 6]}
EMPTY_LOW = {**BINS, "count": [0, 6]}


@pytest.fixture
def evaluation() -> Evaluation:
    """Two rows (ensemble, bnn) on a near and a far set; reliability of the ensemble only."""
    return Evaluation(
        sets=["near", "shapes"],
        far=["shapes"],
        rows={"ensemble": ["ensemble", "mutual_information"], "bnn": ["bnn", "mutual_information"]},
        ood={
            "ensemble": {"near": {"auroc": 0.7}, "shapes": {"auroc": 0.9}, "far": {"auroc": 0.9}},
            "bnn": {"near": {"auroc": 0.6}, "shapes": {"auroc": 0.95}, "far": {"auroc": 0.95}},
        },
        calibration={"ensemble": {"test": {"ece": 0.031}, "corrupted": {"ece": 0.2}}},
        reliability={"ensemble": {"test": BINS, "corrupted": EMPTY_LOW}},
        roc={
            "ensemble": {"near": [[0.0, 0.2, 1.0], [0.0, 0.7, 1.0]], "shapes": [[0.0, 1.0], [0.0, 1.0]]},
            "bnn": {"near": [[0.0, 1.0], [0.0, 1.0]], "shapes": [[0.0, 0.1, 1.0], [0.0, 0.9, 1.0]]},
        },
    )


SCORES = {"ensemble": {"test": [0.1, 0.2, 0.2, 0.3], "near": [0.5, 0.6], "shapes": [0.9, 1.0]}}


def test_the_auroc_chart_is_sets_by_rows_labelled_with_each_auroc(evaluation):
    chart = auroc_chart(evaluation)
    cells = chart.panels[0].traces[0]
    assert chart.name == "auroc" and cells.kind == "heatmap"
    assert cells.x == ["ensemble", "bnn"] and cells.y == ["near", "shapes", "far"]
    assert cells.z == [[0.7, 0.6], [0.9, 0.95], [0.9, 0.95]] and cells.text[0] == ["0.700", "0.600"]
    evaluation.ood["bnn"].pop("near")  # a set a row has no number for: an empty cell, not an error
    cells = auroc_chart(evaluation).panels[0].traces[0]
    assert math.isnan(cells.z[0][1]) and cells.text[0][1] == "–"


def test_the_roc_chart_has_a_panel_per_set_and_one_legend(evaluation):
    chart = roc_chart(evaluation, read_with={"ensemble": "mutual_information", "bnn": "bnn"})
    assert chart.name == "roc" and [p.title for p in chart.panels] == [
        "in-distribution vs near",
        "in-distribution vs shapes",
    ]
    near, shapes = chart.panels
    assert [t.name for t in near.traces] == ["ensemble (mutual_information)", "bnn", "chance"]
    assert (near.traces[0].x, near.traces[0].y) == ([0.0, 0.2, 1.0], [0.0, 0.7, 1.0])
    assert [t.legend for t in near.traces] == [True, True, False]
    assert not any(t.legend for t in shapes.traces)  # the rows keep their colours: one legend is enough
    assert [t.color for t in shapes.traces[:2]] == [0, 1] and near.vlines == [(0.05, "95% of test kept")]
    assert near.x_range == (0, 1) and near.y_label == "true positive rate (OOD flagged)"


def test_the_roc_chart_of_one_set_gives_each_rows_auroc(evaluation):
    chart = roc_chart(evaluation, ["shapes"])
    assert chart.title == "In-distribution test against shapes (legend: AUROC)" and len(chart.panels) == 1
    assert [t.name for t in chart.panels[0].traces[:2]] == ["ensemble · 0.900", "bnn · 0.950"]


def test_the_reliability_chart_draws_filled_bins_with_each_splits_ece(evaluation):
    chart = reliability_chart(evaluation)
    assert chart.name == "reliability" and chart.title == "deep ensemble: accuracy against confidence"
    test, corrupted, diagonal = chart.panels[0].traces
    assert (test.name, test.x, test.y, test.markers) == ("test · ECE 0.031", [0.3, 0.8], [0.25, 0.9], True)
    assert (corrupted.name, corrupted.x, corrupted.y) == ("corrupted · ECE 0.200", [0.8], [0.9])
    assert (diagonal.x, diagonal.y) == ([0, 1], [0, 1])
    evaluation.reliability["bnn"] = {"test": BINS, "corrupted": BINS}  # no calibration figures: no ECE
    both = reliability_chart(evaluation)
    assert [p.title for p in both.panels] == ["deep ensemble", "Bayesian NN (pyro)"]
    assert both.panels[1].traces[0].name == "test"
    assert reliability_chart(evaluation, ["bnn"]).title.startswith("Bayesian NN (pyro)")


def test_histograms_are_step_outlines_over_shared_bins():
    x, y = step_outline([0.0, 1.0, 2.0], [3.0, 5.0])
    assert x == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0] and y == [0.0, 3.0, 3.0, 5.0, 5.0, 0.0]
    reference = {"test": [0.0, 0.0, 1.0, 3.0], "near": [3.0, 4.0], "corrupted": [1.0]}
    traces, top = histogram_traces(reference, ["test", "near", "corrupted"], bins=4, percent=True)
    assert [t.name for t in traces] == ["test (in distribution)", "near (held-out classes)", "corrupted"]
    assert [t.x for t in traces[1:]] == [traces[0].x] * 2  # bins over 0..4 shared by every set
    assert traces[0].y[1::2] == [50.0, 25.0, 0.0, 25.0, 0.0]  # percent of the set
    assert top == 100.0  # the highest bar of any set: the one corrupted image
    assert traces[2].dash and not traces[0].dash
    density, _ = histogram_traces(reference, ["test"], bins=4, percent=False)
    edges, heights = density[0].x[::2], density[0].y[1::2][:4]
    assert sum(h * (b - a) for h, a, b in zip(heights, edges, edges[1:])) == pytest.approx(1.0)  # area 1


def test_the_report_histograms_read_the_chosen_rows(evaluation):
    chart = score_histograms_chart(SCORES, evaluation.sets)
    assert chart.name == "score_histograms" and [p.title for p in chart.panels] == ["ensemble"]
    assert [t.name for t in chart.panels[0].traces] == [
        "test (in distribution)",
        "near (held-out classes)",
        "shapes",
    ]


def test_the_verdict_chart_marks_the_image_and_the_threshold():
    reference = {"test": torch.tensor([0.0, 0.5, 1.0]), "near": torch.tensor([2.0, 3.0])}
    chart = verdict_chart(reference, ["test", "near"], value=2.5, threshold=1.2, score="energy")
    *sets, image, threshold = chart.panels[0].traces
    assert chart.title == "Where this image falls: energy by set" and len(sets) == 2
    top = max(max(t.y) for t in sets)
    assert (image.name, image.x, image.y) == ("this image 2.5", [2.5, 2.5], [0, top])
    assert (threshold.name, threshold.x, threshold.dash) == ("threshold 1.2", [1.2, 1.2], True)
    assert all(isinstance(v, float) for t in sets for v in t.x + t.y)  # plain numbers, no tensors


def test_one_images_spread_and_samples():
    prediction = ImagePrediction({"entropy": 0.5}, torch.tensor([[0.6, 0.4], [0.8, 0.2], [0.1, 0.9]]))
    bars = spread_chart(prediction, ["cat", "dog"], "ensemble").panels[0].traces[0]
    assert bars.x == ["cat", "dog"] and bars.y == pytest.approx([0.5, 0.5])
    assert bars.error == pytest.approx(prediction.spreads.tolist()) and bars.error[0] == pytest.approx(
        (0.26 / 3) ** 0.5
    )
    single = ImagePrediction({}, torch.tensor([[0.3, 0.7]]))
    assert spread_chart(single, ["cat", "dog"], "single").panels[0].traces[0].error is None
    chart = samples_chart(prediction, ["cat", "dog"], "ensemble: 3 members", "member")
    cells = chart.panels[0].traces[0]
    assert cells.y == ["member 1", "member 2", "member 3", "mean"] and cells.z[-1] == pytest.approx(
        [0.5, 0.5]
    )
    assert cells.text[0] == ["0.60", "0.40"] and (cells.zmin, cells.zmax) == (0, 1)


def test_every_chart_draws_with_both_renderers(evaluation, tmp_path):
    prediction = ImagePrediction({}, torch.tensor([[0.6, 0.4], [0.8, 0.2]]))
    drawn = [
        *charts(evaluation, SCORES, {"ensemble": "mutual_information"}),
        roc_chart(evaluation, ["near"]),
        verdict_chart(SCORES["ensemble"], ["test", "near", "shapes"], 0.4, 0.25, "msp"),
        spread_chart(prediction, ["a", "b"], "spread"),
        samples_chart(prediction, ["a", "b"], "samples", "member"),
    ]
    assert [c.name for c in drawn[:4]] == ["auroc", "roc", "reliability", "score_histograms"]
    for chart in drawn:
        assert save_png(chart, tmp_path / f"{chart.name}.png").stat().st_size > 2000
        assert plotly_figure(chart).layout.title.text == chart.title != ""
