"""The active-learning charts on hand-made curves: what each panel holds, one seed and several."""

import pytest

from playground.active.charts import charts, escalation_chart, learning_curve_chart, policy_chart
from playground.core.charts import save_png


def curve(accuracy, seconds=(1.0, 2.0, 3.0)) -> dict:
    return {"labels": [20, 40, 60], "accuracy": list(accuracy), "train_seconds": list(seconds)}


ESCALATION = {"escalation_rate": [0.0, 0.2, 0.5], "auto_label_accuracy": [0.9, 0.95, 1.0]}
VALUES = {"escalation/alpha": 0.05, "escalation/rate": 0.2, "escalation/auto_label_error": 0.04}


def test_learning_curves_are_one_line_per_strategy_with_the_target_and_a_band_over_seeds():
    one = learning_curve_chart({"random": [curve([0.5, 0.6, 0.7])], "bald": [curve([0.5, 0.7, 0.9])]}, 0.8)
    assert one.name == "learning_curves" and one.title == "Learning curves"
    (panel,) = one.panels
    assert [t.name for t in panel.traces] == ["random", "bald"] and panel.hlines == [(0.8, "target 80%")]
    assert panel.traces[1].x == [20, 40, 60] and panel.traces[1].y == pytest.approx([0.5, 0.7, 0.9])
    assert panel.traces[0].lower is None  # one seed: no band
    two = learning_curve_chart({"random": [curve([0.5, 0.6, 0.7]), curve([0.7, 0.8, 0.9])]}, 0.8)
    line = two.panels[0].traces[0]
    assert "mean ± std over 2 seeds" in two.title and line.y == pytest.approx([0.6, 0.7, 0.8])
    assert list(line.upper) == pytest.approx([0.6 + 0.1 * 2**0.5, 0.7 + 0.1 * 2**0.5, 0.8 + 0.1 * 2**0.5])


def test_policies_show_accuracy_and_the_training_time_spent_so_far():
    chart = policy_chart(
        {"scratch": [curve([0.5, 0.6, 0.7], (1, 2, 3))], "finetune_replay": [curve([0.5] * 3)]}
    )
    accuracy, compute = chart.panels
    assert chart.name == "policies" and [t.name for t in compute.traces] == ["scratch", "finetune_replay"]
    assert accuracy.traces[0].y == pytest.approx([0.5, 0.6, 0.7])
    assert (
        compute.traces[0].y == pytest.approx([1, 3, 6]) and compute.y_label == "cumulative training seconds"
    )


def test_escalation_sweeps_the_threshold_and_marks_the_calibrated_point():
    chart = escalation_chart(ESCALATION, VALUES)
    sweep, point = chart.panels[0].traces
    assert (
        chart.name == "escalation"
        and sweep.x == [0.0, 20.0, 50.0]
        and sweep.y == pytest.approx([90, 95, 100])
    )
    assert point.kind == "scatter" and point.x == [20.0] and point.y == pytest.approx([96.0])
    assert chart.panels[0].hlines == [(pytest.approx(95.0), "1 - α = 95%")]


def test_a_run_saves_its_three_charts_under_the_names_the_report_links(tmp_path):
    curves = {
        "strategies": {"random": [curve([0.5, 0.6, 0.7])]},
        "policies": {"scratch": [curve([0.5, 0.6, 0.7])]},
        "escalation": [ESCALATION],
    }
    saved = [save_png(c, tmp_path / f"{c.name}.png") for c in charts(curves, VALUES, 0.8)]
    assert [p.name for p in saved] == ["learning_curves.png", "policies.png", "escalation.png"]
    assert all(p.stat().st_size > 1000 for p in saved)
