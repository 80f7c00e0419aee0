"""Knowledge fusion's charts, each built once: the report saves them as PNG, the page draws them live.

The ablation charts read a run's metric values (``fusion/<variant>/<regime>/<score>`` and, for a
multi-seed run, ``...:std``, drawn as error bars); the probability chart one followed image's class
probabilities per variant. A variant keeps its colour in every chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from playground.core.charts import Chart, Panel, Trace
from playground.core.runs import STD
from playground.fusion.report import METRIC_OF
from playground.fusion.sources import VARIANT_SOURCES

COLOUR = {variant: index for index, variant in enumerate(VARIANT_SOURCES)}


def _bars(
    values: Mapping[str, float], config, task: str, variants: Sequence[str], suffix: str
) -> list[Trace]:
    """One bar series per variant over the regimes: ``fusion/<variant>/<regime>/<score><suffix>``."""
    traces = []
    for variant in variants:
        names = [f"fusion/{variant}/{regime}/{METRIC_OF[task]}{suffix}" for regime in config.regimes]
        spread = [values.get(name + STD) for name in names]
        error = None if None in spread else spread
        y = [values[name] for name in names]
        traces.append(Trace("bar", variant, list(config.regimes), y, error=error, color=COLOUR[variant]))
    return traces


def ablation_chart(values: Mapping[str, float], config) -> Chart:
    """One panel per task: every variant's score (accuracy, mIoU) in every regime."""
    panels = [
        Panel(
            _bars(values, config, task, config.methods, ""),
            title=task,
            x_label="regime",
            y_label=METRIC_OF[task],
            y_range=(0, 1),
        )
        for task in config.tasks
    ]
    return Chart("ablation", panels, title="Every variant in every regime", columns=len(panels))


def gain_chart(values: Mapping[str, float], config) -> Chart:
    """One panel per task: each fused variant's change of score against image-only, per regime."""
    fused = [variant for variant in config.methods if variant != "image_only"]
    panels = [
        Panel(
            _bars(values, config, task, fused, "_gain"),
            title=task,
            x_label="regime",
            y_label=f"Δ {METRIC_OF[task]}",
            hlines=[(0.0, "")],
        )
        for task in config.tasks
    ]
    return Chart("gains", panels, title="Gain over image-only", columns=len(panels))


def probability_chart(probabilities: Mapping[str, Sequence[float]], classes: Sequence[str]) -> Chart:
    """One image's class probabilities under image-only and every fused variant."""
    bars = [
        Trace("bar", variant, list(classes), [float(p) for p in values], color=COLOUR.get(variant))
        for variant, values in probabilities.items()
    ]
    panel = Panel(bars, x_label="shape", y_label="probability", y_range=(0, 1))
    title = "Shape probabilities: image-only against the fused variants"
    return Chart("probabilities", [panel], title=title, columns=1, height=320)


def charts(values: Mapping[str, float], config) -> list[Chart]:
    """The report's charts: the ablation (``ablation.png``) and the gains over image-only (``gains.png``)."""
    return [ablation_chart(values, config), gain_chart(values, config)]
