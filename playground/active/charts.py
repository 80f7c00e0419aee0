"""The active-learning charts, each built once: the report saves them as PNG, the page draws them live.

Every chart takes the curves as :func:`playground.active.results.load_curves` gives them, one list
entry per seed (a single run is a list of one), so the one-seed report, the multi-seed report and
the page draw the very same lines; several seeds give a mean ± std band.
"""

from __future__ import annotations

from playground.active.results import seed_curve
from playground.core.charts import Chart, Panel, Trace

CALIBRATED = "#DC143C"  # crimson: the calibrated threshold's point


def _seeds_title(title: str, curves: dict[str, list[dict]]) -> str:
    seeds = len(next(iter(curves.values()), []))
    return f"{title} (mean ± std over {seeds} seeds)" if seeds > 1 else title


def _band_lines(curves: dict[str, list[dict]], key: str, cumulative: bool = False) -> list[Trace]:
    """One line per strategy or policy: series ``key`` against labels, mean ± std over seeds."""
    lines = []
    for name, runs in curves.items():
        curve = seed_curve(runs, key, cumulative)
        lines.append(Trace.band_line(name, curve.labels, curve.band))
    return lines


def learning_curve_chart(strategies: dict[str, list[dict]], target: float) -> Chart:
    """Test accuracy against labelled samples, one line per strategy, with the target accuracy."""
    panel = Panel(
        _band_lines(strategies, "accuracy"),
        x_label="labelled samples",
        y_label="test accuracy",
        hlines=[(target, f"target {target:.0%}")],
    )
    return Chart("learning_curves", [panel], title=_seeds_title("Learning curves", strategies), columns=1)


def policy_chart(policies: dict[str, list[dict]]) -> Chart:
    """Per retraining policy: test accuracy and the training time spent so far, against labels."""
    accuracy = Panel(
        _band_lines(policies, "accuracy"),
        title="Accuracy",
        x_label="labelled samples",
        y_label="test accuracy",
    )
    compute = Panel(
        _band_lines(policies, "train_seconds", cumulative=True),
        title="Compute",
        x_label="labelled samples",
        y_label="cumulative training seconds",
    )
    return Chart("policies", [accuracy, compute], title=_seeds_title("Retraining policies", policies))


def escalation_chart(escalation: dict, values: dict[str, float]) -> Chart:
    """Auto-label accuracy against escalation rate while sweeping the threshold over one seed's stream,
    with ``1 - α`` and the calibrated threshold's point (``values``: the run's metrics)."""
    alpha = values["escalation/alpha"]
    sweep = Trace(
        "line",
        "sweeping the threshold",
        [100 * r for r in escalation["escalation_rate"]],
        [100 * a for a in escalation["auto_label_accuracy"]],
    )
    calibrated = Trace(
        "scatter",
        "calibrated threshold",
        [100 * values["escalation/rate"]],
        [100 * (1 - values["escalation/auto_label_error"])],
        color=CALIBRATED,
    )
    panel = Panel(
        [sweep, calibrated],
        x_label="escalation rate (%)",
        y_label="auto-label accuracy (%)",
        hlines=[(100 * (1 - alpha), f"1 - α = {1 - alpha:.0%}")],
    )
    return Chart("escalation", [panel], title="Escalation: risk against coverage (the stream)", columns=1)


def charts(curves: dict, values: dict[str, float], target: float) -> list[Chart]:
    """The learning curves, the policies and (from the first seed) the escalation of one run."""
    return [
        learning_curve_chart(curves["strategies"], target),
        policy_chart(curves["policies"]),
        escalation_chart(curves["escalation"][0], values),
    ]
