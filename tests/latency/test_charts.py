"""The latency charts on hand-made rows: what each panel holds, and that both draw to a PNG."""

from __future__ import annotations

import pytest

from playground.core.charts import GREY, save_png
from playground.latency.charts import charts, latency_chart, pareto_chart, pareto_front
from tests.latency.test_results import RESULTS

ROWS = RESULTS["rows"]


def test_pareto_chart_plots_each_backend_and_joins_the_front():
    chart = pareto_chart(ROWS, 16)
    assert chart.name == "pareto" and "batch 16" in chart.title and chart.columns == 1
    test, corrupted = chart.panels
    assert test.log_x and corrupted.log_x and "batch 16" in test.x_label
    torch, ort, front = test.traces
    assert (torch.name, torch.kind, list(torch.text)) == ("PyTorch", "scatter", ["torch_fp32", "student_kd"])
    assert (list(torch.x), list(torch.y)) == ([20.0, 4.0], [0.90, 0.80])
    assert (ort.name, list(ort.text), list(ort.x)) == (
        "ONNX Runtime",
        ["ort_fp32", "ort_int8_static"],
        [15.0, 10.0],
    )
    assert front.kind == "line" and front.dash and front.color == GREY
    assert (list(front.x), list(front.y)) == ([4.0, 10.0, 15.0], [0.80, 0.89, 0.90])
    assert [t.name for t in corrupted.traces] == ["PyTorch", "ONNX Runtime"]
    assert list(corrupted.traces[1].y) == pytest.approx([0.70, 0.69])  # ood_accuracy


def test_a_batch_with_one_backend_has_one_series():
    only_torch = [row for row in ROWS if row["backend"] == "torch"]
    test, _ = pareto_chart(only_torch, 1).panels
    assert [t.name for t in test.traces] == ["PyTorch", "Pareto front"]


def test_latency_chart_shows_p50_and_p99_per_variant():
    chart = latency_chart(ROWS, 1)
    assert chart.name == "latency" and "batch 1" in chart.title
    p50, p99 = chart.panels[0].traces
    assert list(p50.x) == ["torch_fp32", "ort_fp32", "ort_int8_static"] and list(p50.y) == [1.5, 2.0, 2.5]
    assert p99.name == "p99" and list(p99.y) == pytest.approx([1.8, 2.4, 3.0])


def test_front_ties_keep_the_more_accurate_and_both_charts_draw(tmp_path):
    rows = [
        {"variant": "a", "p50_ms": 1.0, "accuracy": 0.5},
        {"variant": "b", "p50_ms": 1.0, "accuracy": 0.7},
        {"variant": "c", "p50_ms": 2.0, "accuracy": 0.6},
    ]
    assert pareto_front(rows) == ["b"]
    for chart in charts(ROWS, 16):
        assert save_png(chart, tmp_path / f"{chart.name}.png").stat().st_size > 2000
