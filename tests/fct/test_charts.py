"""FCT's charts on hand-made numbers: panels, traces and values, and both renderers draw them."""

import numpy as np
import pytest

from apps.charts import plotly_figure
from playground.core.charts import save_png
from playground.fct.charts import VIEWS, compatibility_chart, projection_chart, size, tradeoff_chart

CASES = [
    {"case": "old-old", "top1": 0.40, "top5": 0.70, "mAP": 0.20},
    {"case": "new-new", "top1": 0.80, "top5": 0.95, "mAP": 0.60},
    {"case": "new-fct", "top1": 0.75, "top5": 0.90, "mAP": 0.55},
]
SWEEP = [  # not in byte order: the chart sorts
    {"dim": 32, "bytes": 64, "top1": 0.75, "top5": 0.9, "mAP": 0.55},
    {"dim": 0, "bytes": 0, "top1": 0.60, "top5": 0.8, "mAP": 0.40},
    {"dim": 8, "bytes": 16, "top1": 0.70, "top5": 0.85, "mAP": 0.50},
]


def drawn(chart, tmp_path):
    """The chart, after both renderers drew it without an error."""
    assert save_png(chart, tmp_path / f"{chart.name}.png").stat().st_size > 2000
    plotly_figure(chart)
    return chart


def test_compatibility_chart_groups_three_measures_by_case_in_percent(tmp_path):
    chart = drawn(compatibility_chart(CASES), tmp_path)
    (panel,) = chart.panels
    assert chart.name == "compatibility" and panel.y_range == (0, 105)
    assert [t.name for t in panel.traces] == ["top-1", "top-5", "mAP"]
    top1, _, mean_ap = panel.traces
    assert top1.x == ["old-old", "new-new", "new-fct"] and top1.y == pytest.approx([40, 80, 75])
    assert mean_ap.y == pytest.approx([20, 60, 55]) and top1.error is None  # one seed: no error bars


def test_compatibility_chart_of_several_seeds_has_error_bars(tmp_path):
    rows = [row | {"top1_std": 0.01, "top5_std": 0.0, "mAP_std": 0.02} for row in CASES]
    top1, top5, mean_ap = drawn(compatibility_chart(rows), tmp_path).panels[0].traces
    assert top1.error == pytest.approx([1, 1, 1]) and mean_ap.error == pytest.approx([2, 2, 2])
    assert top5.error is None


def test_tradeoff_chart_draws_retrieval_against_bytes_with_the_chosen_size_and_full_backfill(tmp_path):
    chart = drawn(tradeoff_chart(SWEEP, chosen=8, reference=0.6), tmp_path)
    (panel,) = chart.panels
    assert chart.name == "side_info_tradeoff" and panel.x_label == "side-info bytes per image"
    mean_ap, top1, sizes = panel.traces
    assert (mean_ap.name, top1.name) == ("new-fct mAP", "new-fct top-1") and top1.dash
    assert mean_ap.x == [0, 16, 64] and mean_ap.y == pytest.approx([40, 50, 55]) and mean_ap.lower is None
    assert top1.y == pytest.approx([60, 70, 75])
    assert sizes.kind == "scatter" and sizes.text == ["none", "8-d", "32-d"] and not sizes.legend
    assert panel.vlines == [(16, "chosen: 8-d")] and panel.hlines == [(60.0, "new-new mAP (full backfill)")]
    plain = tradeoff_chart(SWEEP).panels[0]
    assert plain.vlines == [] and plain.hlines == []


def test_tradeoff_chart_of_several_seeds_bands_each_line():
    rows = [row | {"mAP_std": 0.01, "top1_std": 0.02} for row in SWEEP]
    mean_ap, top1, _ = tradeoff_chart(rows).panels[0].traces
    assert mean_ap.lower == pytest.approx([39, 49, 54]) and top1.upper == pytest.approx([62, 72, 77])


def test_size_names_no_side_info_none():
    assert [size(d) for d in (0, 8, 128)] == ["none", "8-d", "128-d"]


def test_projection_chart_has_a_panel_per_gallery_a_trace_per_class_and_one_legend(tmp_path):
    rng = np.random.default_rng(0)
    labels = [0, 1, 2, 1, 0, 2]
    coords = {view: rng.normal(size=(6, 2)).tolist() for view in ("old", "fct", "new", "fct_noside")}
    coords["old"] = (100 + np.asarray(coords["old"])).tolist()  # far away: its own axes
    chart = drawn(projection_chart(coords, labels, ["a", "b", "c"]), tmp_path)
    assert chart.name == "projection" and chart.columns == 4
    assert [p.title for p in chart.panels] == list(VIEWS.values())  # new, FCT, FCT without side-info, old
    new, fct, _, old = chart.panels
    assert [t.name for t in new.traces] == ["a", "b", "c"] and [t.color for t in new.traces] == [0, 1, 2]
    assert all(t.legend for t in new.traces) and not any(t.legend for t in fct.traces)
    assert {t.size for t in new.traces} == {4}  # small markers: a gallery sample has 2000 points
    assert new.traces[1].x == [coords["new"][1][0], coords["new"][3][0]]
    assert new.x_range == fct.x_range and new.x_range[1] < 10  # new and FCT share their axes
    assert old.x_range is None and old.y_range is None


def test_projection_chart_draws_only_the_galleries_it_has(tmp_path):
    chart = drawn(projection_chart({"new": [[0.0, 1.0], [1.0, 0.0]]}, [3, 3], ["a", "b"]), tmp_path)
    (panel,) = chart.panels
    assert panel.title == "new model" and [t.name for t in panel.traces] == ["3"]  # a label without a name
