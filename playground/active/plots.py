"""Matplotlib figures of an active-learning run: learning curves, policies, escalation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from playground.core.seeds import band  # noqa: E402


def _curve(ax, label: str, runs: list[dict], key: str, cumulative: bool = False) -> None:
    x = np.asarray(runs[0]["labels"])
    series = [np.cumsum(r[key]) if cumulative else r[key] for r in runs]
    spread = band(series)
    (line,) = ax.plot(x, spread.mean, label=label, lw=1.6)
    if spread.std is not None:
        ax.fill_between(x, spread.low, spread.high, color=line.get_color(), alpha=0.2, lw=0)


def learning_curve_figure(curves: dict[str, list[dict]], target: float):
    """Test accuracy against labels, one line per strategy (mean ± std over seeds)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for strategy, runs in curves.items():
        _curve(ax, strategy, runs, "accuracy")
    ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target:.0%}")
    seeds = len(next(iter(curves.values())))
    ax.set(
        xlabel="labelled samples",
        ylabel="test accuracy",
        title=f"Learning curves ({seeds} seed{'s' * (seeds > 1)}{', mean ± std' if seeds > 1 else ''})",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def policy_figure(curves: dict[str, list[dict]]):
    """Accuracy and cumulative training time against labels for each retraining policy."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for policy, runs in curves.items():
        _curve(left, policy, runs, "accuracy")
        _curve(right, policy, runs, "train_seconds", cumulative=True)
    left.set(xlabel="labelled samples", ylabel="test accuracy", title="Accuracy")
    right.set(xlabel="labelled samples", ylabel="cumulative training seconds", title="Compute")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def risk_coverage_figure(curve: dict, values: dict[str, float]):
    """Auto-label accuracy against escalation rate, with the target and the calibrated point."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(
        np.asarray(curve["escalation_rate"]) * 100,
        np.asarray(curve["auto_label_accuracy"]) * 100,
        lw=1.6,
        label="sweeping the threshold (stream)",
    )
    ax.axhline(
        100 * (1 - values["escalation/alpha"]),
        color="grey",
        ls="--",
        lw=1,
        label=f"1 - α = {1 - values['escalation/alpha']:.0%}",
    )
    ax.scatter(
        [100 * values["escalation/rate"]],
        [100 * (1 - values["escalation/auto_label_error"])],
        color="crimson",
        zorder=3,
        label="calibrated threshold",
    )
    ax.set(
        xlabel="escalation rate (%)",
        ylabel="auto-label accuracy (%)",
        title="Escalation: risk against coverage",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig
