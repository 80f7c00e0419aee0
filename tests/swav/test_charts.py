"""SwAV's charts on hand-made numbers: panels, traces and values, and both renderers draw them."""

import math

import numpy as np
import pytest

from apps.charts import plotly_figure
from playground.core.charts import save_png
from playground.swav.charts import loss_chart, probe_chart, prototype_chart, sinkhorn_chart
from playground.swav.results import probe_curves

SEEDS = [
    {
        "linear_probe": {"swav": {0.1: 0.6, 0.01: 0.4, 1.0: 0.8}, "random_init": {0.01: 0.3, 1.0: 0.5}},
        "lowshot": {"swav": {0.1: 0.7}},
    },
    {
        "linear_probe": {"swav": {0.1: 0.8, 0.01: 0.6, 1.0: 0.8}, "random_init": {0.01: 0.5, 1.0: 0.5}},
        "lowshot": {"swav": {0.1: 0.9}},
    },
]


def drawn(chart, tmp_path):
    """The chart, after both renderers drew it without an error."""
    assert save_png(chart, tmp_path / f"{chart.name}.png").stat().st_size > 2000
    plotly_figure(chart)
    return chart


def test_probe_chart_bands_the_linear_probe_over_seeds_and_dashes_fine_tuning(tmp_path):
    chart = drawn(probe_chart(probe_curves(SEEDS)), tmp_path)
    assert chart.name == "probe_accuracy" and "mean ± std over 2 seeds" in chart.title
    (panel,) = chart.panels
    assert panel.log_x and [t.name for t in panel.traces] == [
        "SwAV: linear probe",
        "SwAV: fine-tuned",
        "random init: linear probe",
    ]
    probe, tuned, random_init = panel.traces
    assert probe.x == [0.01, 0.1, 1.0] and probe.y == pytest.approx([0.5, 0.7, 0.8])
    spread = 0.1 * math.sqrt(2)  # the sample std of two seeds 0.2 apart
    assert probe.upper == pytest.approx([0.5 + spread, 0.7 + spread, 0.8])
    assert tuned.dash and tuned.x == [0.1] and tuned.y == pytest.approx([0.8]) and tuned.color == probe.color
    assert random_init.color != probe.color and not random_init.dash


def test_one_seed_probe_chart_has_no_band_and_no_seed_count(tmp_path):
    chart = drawn(probe_chart(probe_curves(SEEDS[:1])), tmp_path)
    assert "seeds" not in chart.title and chart.panels[0].traces[0].lower is None


def test_loss_chart_draws_the_mean_loss_per_epoch_against_log_k(tmp_path):
    chart = drawn(loss_chart([[3.0, 2.0, 1.0], [3.0, 2.4, 1.4, 0.9]], prototypes=30), tmp_path)
    (panel,) = chart.panels
    (line,) = panel.traces
    assert chart.name == "swav_loss" and line.x == [1, 2, 3]  # cut to the shortest seed
    assert line.y == pytest.approx([3.0, 2.2, 1.2]) and line.lower is not None
    ((value, label),) = panel.hlines
    assert value == pytest.approx(math.log(30)) and label.startswith("log K = 3.40")


def test_sinkhorn_chart_shows_the_chosen_steps_and_marks_them_on_the_errors(tmp_path):
    codes = [np.full((40, 5), step + 1.0).tolist() for step in range(11)]
    errors = [(10.0**-step, 0.0) for step in range(11)]
    chart = drawn(sinkhorn_chart(codes, errors), tmp_path)
    *heatmaps, deviations = chart.panels
    assert chart.name == "sinkhorn" and [p.title for p in heatmaps] == [
        "exp(scores / ε), normalised",
        "codes after 1 iteration",
        "codes after 3 iterations",
        "codes after 10 iterations",
    ]
    assert np.shape(heatmaps[0].traces[0].z) == (24, 5)  # the first 24 samples
    assert {p.traces[0].zmax for p in heatmaps} == {11.0}  # one colour scale for every step
    assert deviations.log_y and [v for v, _ in deviations.vlines] == [0, 1, 3, 10]
    assert [t.name for t in deviations.traces] == ["sample sums vs 1", "prototype sums vs B/K"]
    assert deviations.traces[1].y[0] == 1e-12  # zero drawn on the log axis
    live = sinkhorn_chart(codes, errors, steps=[20], samples=None)  # a page's slider: one step
    assert [p.title for p in live.panels][0] == "codes after 10 iterations"
    assert np.shape(live.panels[0].traces[0].z) == (40, 5) and live.panels[1].vlines == [(10, "")]


def test_prototype_chart_tiles_the_fullest_prototypes_examples(tmp_path):
    examples = np.zeros((3, 8, 1, 4, 4))
    examples[1] = 0.5
    examples[2, :3] = 1.0
    counts = np.array([[1, 0], [2, 6], [5, 0]])  # prototype 1 holds 8 images, 2 holds 5, 0 holds 1
    chart = drawn(prototype_chart(examples, counts, ["cat", "dog"], shown=2), tmp_path)
    assert chart.name == "prototypes" and [p.title for p in chart.panels] == [
        "#1: 8 images, 75% dog",
        "#2: 5 images, 100% cat",
    ]
    tile = np.asarray(chart.panels[0].traces[0].z)
    assert tile.shape == (2 * 5 - 1, 4 * 5 - 1) and tile[0, 0] == 0.5 and tile[4, 0] == 1.0  # a white gap
    fewer = np.asarray(chart.panels[1].traces[0].z)
    assert fewer[0, :4].tolist() == [1.0] * 4 and fewer[5:, :].min() == 1.0  # empty slots stay white


def test_prototype_chart_keeps_colour_images_in_colour(tmp_path):
    examples = np.zeros((1, 8, 3, 4, 4))
    examples[0, :, 0] = 1.0  # red
    chart = drawn(prototype_chart(examples, np.array([[8]]), ["red"]), tmp_path)
    tile = np.asarray(chart.panels[0].traces[0].z)
    assert tile.shape == (9, 19, 3) and tile[0, 0].tolist() == [1.0, 0.0, 0.0]
