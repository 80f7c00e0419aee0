"""The fusion charts on hand-made metric values: panels per task, bars per variant, error bars from seeds."""

from __future__ import annotations

import pytest
import torch

from playground.core.charts import save_png
from playground.fusion.charts import ablation_chart, charts, gain_chart, probability_chart
from playground.fusion.experiment import Config

CONFIG = Config(
    methods=["image_only", "kg", "all"], tasks=["classify", "segment"], regimes=["full", "lowlabel"]
)


def values(std: bool = False) -> dict[str, float]:
    """``fusion/<variant>/<regime>/<score>`` (and ``_gain``) as a run writes them; ``:std`` for seeds."""
    out = {}
    for index, variant in enumerate(CONFIG.methods):
        for regime in CONFIG.regimes:
            for score in ("accuracy", "miou"):
                name = f"fusion/{variant}/{regime}/{score}"
                out[name] = 0.5 + 0.1 * index
                out[name + "_gain"] = 0.1 * index
                if std:
                    out[name + ":std"], out[name + "_gain:std"] = 0.01, 0.02
    return out


def test_ablation_chart_has_a_panel_per_task_and_a_bar_series_per_variant():
    chart = ablation_chart(values(), CONFIG)
    assert chart.name == "ablation" and [p.title for p in chart.panels] == ["classify", "segment"]
    classify, segment = chart.panels
    assert [t.name for t in classify.traces] == ["image_only", "kg", "all"]
    assert list(classify.traces[1].x) == ["full", "lowlabel"] and list(classify.traces[1].y) == [0.6, 0.6]
    assert classify.y_label == "accuracy" and segment.y_label == "miou" and classify.y_range == (0, 1)
    assert all(t.error is None for t in classify.traces)  # one seed: no spread


def test_gain_chart_leaves_out_image_only_and_draws_the_spread_over_seeds():
    chart = gain_chart(values(std=True), CONFIG)
    classify, _ = chart.panels
    assert chart.name == "gains" and [t.name for t in classify.traces] == ["kg", "all"]
    assert (
        list(classify.traces[1].y) == pytest.approx([0.2, 0.2])
        and list(classify.traces[1].error) == [0.02] * 2
    )
    assert classify.hlines == [(0.0, "")] and classify.y_label == "Δ accuracy"
    ablation = ablation_chart(values(std=True), CONFIG)
    kg = ablation.panels[0].traces[1]
    assert kg.color == classify.traces[0].color  # a variant keeps its colour in every chart


def test_probability_chart_takes_tensors_and_holds_plain_numbers(tmp_path):
    probabilities = {"image_only": torch.tensor([0.7, 0.3]), "all": torch.tensor([0.1, 0.9])}
    chart = probability_chart(probabilities, ["circle", "square"])
    image_only, fused = chart.panels[0].traces
    assert (image_only.name, fused.name) == ("image_only", "all") and list(fused.x) == ["circle", "square"]
    assert all(type(v) is float for v in fused.y) and fused.y == pytest.approx([0.1, 0.9])
    for each in [chart, *charts(values(std=True), CONFIG)]:
        assert save_png(each, tmp_path / f"{each.name}.png").stat().st_size > 2000
