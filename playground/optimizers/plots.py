"""Matplotlib figures for optimizers runs: training curves and trajectories over contours."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")  # reports are written headless (until this module becomes charts)
import matplotlib.pyplot as plt  # noqa: E402

from playground.optimizers.curves import Curves
from playground.optimizers.functions import TestFunction, Trajectory
from playground.optimizers.optimizers import COLORS, LABELS


def _band(ax, x, mean, std, name: str, marker: str = "") -> None:
    ax.plot(x, mean, marker or "-", color=COLORS[name], label=LABELS[name], ms=3)
    if std is not None:
        low, high = np.asarray(mean) - np.asarray(std), np.asarray(mean) + np.asarray(std)
        ax.fill_between(x, low, high, color=COLORS[name], alpha=0.18, lw=0)


def curves_figure(curves: dict[str, Curves]):
    """Training loss per bin, validation loss and accuracy per epoch (bands: ± std over seeds)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for name, c in curves.items():
        _band(axes[0], c.train_x, c.train_loss, c.train_loss_std, name)
        _band(axes[1], c.epochs, c.val_loss, c.val_loss_std, name, "-o")
        _band(axes[2], c.epochs, c.val_accuracy, c.val_accuracy_std, name, "-o")
    seeds = max((c.seeds for c in curves.values()), default=1)
    suffix = f" (mean ± std, {seeds} seeds)" if seeds > 1 else ""
    for ax, title in zip(axes, ("training loss", "validation loss", "validation accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(title + suffix, fontsize=10)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    passes = [c.epochs[-1] for c in curves.values()]
    if passes and max(passes) >= 4 * max(1, min(passes)):  # gd's many passes would squash the others
        for ax in axes:
            ax.set_xscale("symlog", linthresh=1, linscale=1.5)
            ax.set_xlim(left=0)
            ax.set_xlabel("epoch (linear to 1, log beyond)")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def contour_levels(fn: TestFunction, values: np.ndarray, count: int = 30) -> np.ndarray:
    """Levels spaced evenly in ``log(f - f_min + 1)`` (or in ``f`` for ``log_scale=False``)."""
    if not fn.log_scale:
        return np.linspace(values.min(), np.quantile(values, 0.95), count)
    low = fn.minimum_value
    return low - 1 + np.exp(np.linspace(0, np.log(np.quantile(values, 0.95) - low + 1), count))


def trajectory_figure(fn: TestFunction, paths: list[Trajectory]):
    """The paths over the function's contours; stars mark minima, crosses saddle points."""
    xs, ys, values = (t.numpy() for t in fn.grid(240))
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    ax.contour(xs, ys, values, levels=contour_levels(fn, values), cmap="Greys", linewidths=0.6)
    for x, y in fn.minima:
        ax.plot(x, y, "*", color="gold", mec="black", ms=13, zorder=5)
    for x, y in fn.saddles:
        ax.plot(x, y, "X", color="black", ms=8, zorder=5)
    for path in paths:
        points = path.points[: path.last + 1].numpy()
        label = f"{LABELS[path.optimizer]} (lr {path.lr:g})" + (" diverged" if path.diverged_at else "")
        ax.plot(points[:, 0], points[:, 1], "-", color=COLORS[path.optimizer], lw=1.4, label=label)
        ax.plot(points[-1, 0], points[-1, 1], "o", color=COLORS[path.optimizer], ms=4)
    if paths:
        ax.plot(*paths[0].points[0].tolist(), "s", color="black", ms=6, label="start")
    ax.set_xlim(fn.x_range)
    ax.set_ylim(fn.y_range)
    ax.set_title(f"{fn.name}: ${fn.formula}$", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
