"""Figures of an FCT run (matplotlib, saved as PNG beside report.md)."""

from __future__ import annotations

import torch


def pca_basis(reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and the top-2 principal directions ``(D, 2)`` of ``reference`` rows."""
    mean = reference.float().mean(0)
    _, _, v = torch.linalg.svd(reference.float() - mean, full_matrices=False)
    return mean, v[:2].T


def project_2d(embeddings: dict[str, torch.Tensor], reference: str = "new") -> dict[str, torch.Tensor]:
    """Every embedding set projected onto the principal plane of ``embeddings[reference]``.

    One shared plane shows whether transformed gallery points land where the new model
    puts the same images (they should) and where raw old embeddings land (anywhere).
    """
    mean, basis = pca_basis(embeddings[reference])
    return {name: (x.float() - mean) @ basis for name, x in embeddings.items()}


def compatibility_figure(values: dict[str, float], cases: list[str]):
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.27
    for i, key in enumerate(("top1", "top5", "mAP")):
        heights = [100 * values[f"retrieval/{case}/{key}"] for case in cases]
        ax.bar([c + (i - 1) * width for c in range(len(cases))], heights, width, label=key)
    ax.set_xticks(range(len(cases)), cases, rotation=20)
    ax.set_ylabel("%")
    ax.set_ylim(0, 118)  # room above 100% for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.legend(ncol=3, loc="upper center")
    ax.set_title("Retrieval by case (query model - gallery model)")
    return figure


def projection_figure(coords: dict[str, torch.Tensor], labels: torch.Tensor, classes: list[str]):
    import matplotlib.pyplot as plt

    panels = [
        ("new", "new model"),
        ("old", "old embeddings, untransformed"),
        ("fct", "FCT: h(old, side-info)"),
        ("fct_noside", "FCT without side-info"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(16, 4), sharex=True, sharey=True)
    for ax, (name, title) in zip(axes, panels):
        points = coords[name].numpy()
        scatter = ax.scatter(
            points[:, 0],
            points[:, 1],
            c=labels.numpy(),
            cmap="tab10" if len(classes) <= 10 else "tab20",
            s=4,
            alpha=0.7,
        )
        ax.set_title(title, fontsize=10)
    handles = scatter.legend_elements(num=len(classes))[0]
    figure.legend(
        handles, classes[: len(handles)], loc="lower center", ncol=min(10, len(classes)), fontsize=8
    )
    figure.suptitle("Gallery embeddings on the new model's principal plane")
    return figure


def tradeoff_figure(sweep: list[dict[str, float]]):
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5, 3.4))
    rows = sorted(sweep, key=lambda r: r["bytes"])
    ax.plot([r["bytes"] for r in rows], [100 * r["mAP"] for r in rows], "o-", label="mAP")
    ax.plot([r["bytes"] for r in rows], [100 * r["top1"] for r in rows], "s--", label="top-1")
    for r in rows:
        ax.annotate(
            f"{r['dim']}-d",
            (r["bytes"], 100 * r["mAP"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=8,
        )
    ax.set_xlabel("side-info bytes per image")
    ax.set_ylabel("new-fct (%)")
    ax.legend()
    ax.set_title("Side-info size against accuracy")
    return figure
