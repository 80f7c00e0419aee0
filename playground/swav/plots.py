"""Figures of a SwAV run: probe accuracy against labels, the loss, Sinkhorn, the prototypes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

LABELS = {"swav": "SwAV", "random_init": "random init", "supervised": "supervised (all labels)"}


def probe_figure(
    probes: dict[str, dict[float, float]],
    stds: dict[str, dict[float, float]] | None = None,
    lowshot: dict[str, dict[float, float]] | None = None,
):
    """Test accuracy against the fraction of labels: linear probe (solid), fine-tuned (dashed)."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for i, (init, curve) in enumerate(probes.items()):
        colour = f"C{i}"
        fractions = sorted(curve)
        values = np.array([curve[f] for f in fractions])
        axis.plot(fractions, values, "o-", color=colour, label=f"{LABELS.get(init, init)}: linear probe")
        if stds and init in stds:
            spread = np.array([stds[init].get(f, 0.0) for f in fractions])
            axis.fill_between(fractions, values - spread, values + spread, color=colour, alpha=0.15)
        if lowshot and init in lowshot:
            shots = sorted(lowshot[init])
            axis.plot(
                shots,
                [lowshot[init][f] for f in shots],
                "s--",
                color=colour,
                label=f"{LABELS.get(init, init)}: fine-tuned",
            )
    axis.set_xscale("log")
    axis.set_xlabel("fraction of training labels")
    axis.set_ylabel("test accuracy")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def loss_figure(losses: list[float], prototypes: int):
    """SwAV loss per epoch against log K, the loss of flat codes and flat predictions."""
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(range(1, len(losses) + 1), losses, "o-", label="swapped-prediction loss")
    axis.axhline(
        np.log(prototypes), color="grey", linestyle=":", label=f"log K = {np.log(prototypes):.2f} (uniform)"
    )
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss (nats)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def sinkhorn_figure(
    trace: list[torch.Tensor],
    errors: list[tuple[float, float]],
    samples: int = 24,
    shown: tuple[int, ...] = (0, 1, 3),
):
    """Codes of the first ``samples`` images before and after some iterations, and the errors."""
    steps = [s for s in shown if s < len(trace)] + [len(trace) - 1]
    steps = sorted(set(steps))
    figure, axes = plt.subplots(1, len(steps) + 1, figsize=(3.2 * (len(steps) + 1), 3.4))
    top = max(float(trace[s][:samples].max()) for s in steps)
    for axis, step in zip(axes, steps):
        image = axis.imshow(trace[step][:samples].numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=top)
        axis.set_title(
            "scores only" if step == 0 else f"after {step} iteration{'s' * (step > 1)}", fontsize=9
        )
        axis.set_xlabel("prototype")
    axes[0].set_ylabel("sample")
    figure.colorbar(image, ax=axes[len(steps) - 1], fraction=0.05)
    axis = axes[-1]
    iterations = range(len(errors))
    axis.semilogy(iterations, [max(e[0], 1e-12) for e in errors], "o-", label="sample sums vs 1")
    axis.semilogy(iterations, [max(e[1], 1e-12) for e in errors], "s-", label="prototype sums vs B/K")
    axis.set_xlabel("Sinkhorn iteration")
    axis.set_title("largest deviation", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def prototype_figure(examples: torch.Tensor, counts: torch.Tensor, classes: list[str], rows: int = 12):
    """The ``rows`` fullest prototypes: example images, size and most common class."""
    order = counts.sum(1).argsort(descending=True)[:rows]
    columns = examples.shape[1]
    figure, axes = plt.subplots(
        len(order), columns, figsize=(columns * 0.9, len(order) * 0.95), squeeze=False
    )
    for row, k in enumerate(order.tolist()):
        total = int(counts[k].sum())
        top = int(counts[k].argmax())
        share = counts[k, top] / max(total, 1)
        for col in range(columns):
            axis = axes[row, col]
            axis.axis("off")
            if col < examples.shape[1] and examples[k, col].abs().sum() > 0:
                image = examples[k, col].permute(1, 2, 0).numpy()
                axis.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        axes[row, 0].set_title(f"#{k}: {total} images, {share:.0%} {classes[top]}", fontsize=7, loc="left")
    figure.tight_layout()
    return figure
