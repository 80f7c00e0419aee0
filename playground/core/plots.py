"""Matplotlib figures shared by run reports (saved as PNG by :meth:`RunDir.save_figure`)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # reports are written headless; pages draw their own interactive plots

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix_figure(matrix: np.ndarray, classes: list[str], title: str = "Confusion matrix"):
    """Row-normalised confusion matrix (rows: true class, columns: predicted) with counts."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(classes) <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of true class")
    return fig


def training_curves_figure(step_loss: list[float], epochs: list[dict[str, float]]):
    """Left: training loss per step (raw and smoothed). Right: accuracy per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    if step_loss:
        steps = np.arange(1, len(step_loss) + 1)
        left.plot(steps, step_loss, color="tab:blue", alpha=0.3, lw=0.8, label="per step")
        left.plot(steps, moving_average(step_loss), color="tab:blue", label="smoothed")
        left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("training loss")
    left.legend()
    x = [e["epoch"] for e in epochs]
    for key, style in (("train/accuracy", "-o"), ("val/accuracy", "-s")):
        values = [e.get(key) for e in epochs]
        if all(v is not None for v in values) and values:
            right.plot(x, values, style, label=key)
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.set_xticks(x)
    right.legend()
    fig.tight_layout()
    return fig


def moving_average(values: list[float], window: int = 25) -> np.ndarray:
    """Trailing moving average; the first points average over what exists so far."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values) // 5 or 1))
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)
