"""Figures of an OOD run (matplotlib, saved as PNG beside report.md; the page redraws them in plotly)."""

from __future__ import annotations

import numpy as np


def roc_figure(roc: dict[str, dict[str, list]], rows: list[str], sets: list[str]):
    """One panel per OOD set, one ROC curve per method row (OOD is the positive class)."""
    import matplotlib.pyplot as plt

    columns = min(3, len(sets))
    lines = -(-len(sets) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.8 * lines), squeeze=False)
    for ax, set_name in zip(axes.flat, sets):
        for row in rows:
            fpr, tpr = roc[row][set_name]
            ax.plot(fpr, tpr, label=row, linewidth=1.4)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"in-distribution vs {set_name}")
        ax.set_xlabel("false positive rate (in-dist. flagged)")
        ax.set_ylabel("true positive rate (OOD flagged)")
    for ax in list(axes.flat)[len(sets) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def reliability_figure(reliability: dict[str, dict], methods: list[str]):
    """Accuracy against confidence per method, on the test set and the corrupted test set."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(methods), figsize=(3.0 * len(methods), 3.2), sharey=True, squeeze=False
    )
    for ax, method in zip(axes[0], methods):
        for split, colour in (("test", "tab:blue"), ("corrupted", "tab:orange")):
            bins = reliability[method][split]
            edges, count = np.asarray(bins["edges"]), np.asarray(bins["count"])
            shown = count > 0
            centres = (edges[:-1] + edges[1:]) / 2
            ax.bar(
                centres[shown],
                np.asarray(bins["accuracy"])[shown],
                width=np.diff(edges)[shown],
                alpha=0.45,
                color=colour,
                edgecolor=colour,
                label=split,
            )
        ax.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=1)
        ax.set_title(method)
        ax.set_xlabel("confidence")
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


def auroc_figure(values: dict[str, float], rows: list[str], sets: list[str]):
    """Grouped bars: AUROC of every method row on every OOD set."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(10, 3.6))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        heights = [values.get(f"ood/{row}/{s}/auroc", np.nan) for s in sets]
        ax.bar(np.arange(len(sets)) + (i - (len(rows) - 1) / 2) * width, heights, width, label=row)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(sets)), sets)
    ax.set_ylim(0.3, 1.12)
    ax.set_ylabel("AUROC")
    ax.legend(ncol=4, fontsize=7, loc="upper center")
    ax.set_title("OOD detection by method and OOD set")
    return figure


def histogram_figure(scores: dict[str, dict], rows: list[str], sets: list[str]):
    """Per method row, the score distribution of the test set against each OOD set."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(rows), figsize=(3.4 * len(rows), 3.0), squeeze=False)
    for ax, row in zip(axes[0], rows):
        everything = np.concatenate([np.asarray(scores[row][s]) for s in ["test", *sets]])
        edges = np.histogram_bin_edges(everything, bins=40)
        for set_name in ["test", *sets]:
            ax.hist(
                np.asarray(scores[row][set_name]), bins=edges, density=True, histtype="step", label=set_name
            )
        ax.set_title(row)
        ax.set_xlabel("OOD score")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    return figure
