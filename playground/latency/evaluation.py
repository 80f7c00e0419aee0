"""What every variant of a benchmarked model is measured on, and the quality and trust figures.

One :class:`EvalSet` serves both kinds of run: the project's CNN (the Fashion-MNIST test set, its
corrupted copy, digits as far OOD) and a team's own model (their ``--eval`` ImageFolder, or with no
labels the calibration images held out from int8 calibration; digits, noise or their folder as far
OOD). Per variant, against the reference variant's logits on the same images:

- **agreement**: the share of images whose argmax equals the reference's (what a team without
  labels can still check; the parity check beside it gives max and mean ``|Δ|`` of the logits);
- with labels, **accuracy** and **ECE** (15 equal-width confidence bins, Guo et al. 2017), and
  accuracy on the corrupted copy (``ood_accuracy``: blur, noise, low contrast);
- **far-OOD**: argmax agreement with the reference on far images (``far_agreement``), and how well
  the variant still tells them from in-distribution images: AUROC of the maximum softmax
  probability (``ood_auroc_msp``, Hendrycks & Gimpel 2017) and of the energy
  ``E(x) = -log Σ_c exp z_c`` (``ood_auroc_energy``, Liu et al. 2020). Compression that keeps
  accuracy can still move these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from playground.uncertainty.metrics import calibration, ood_metrics


@dataclass
class EvalSet:
    """The images a run measures every variant on (all normalised as the model expects)."""

    images: torch.Tensor  # quality is measured on these
    labels: torch.Tensor | None  # None: no labels, agreement with the reference only
    corrupted: torch.Tensor | None  # ``images`` corrupted (same labels), or None
    far: torch.Tensor  # far-OOD images
    calibration: torch.Tensor  # int8 calibration images (never the ones quality is measured on)
    description: str = ""  # one line for the report: where each set came from


@torch.no_grad()
def logits_of(run: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int = 64):
    """``run`` over ``images`` in batches, as float32 logits on the CPU (a CUDA variant's logits are moved:
    the quality figures compare them with CPU labels and reference logits, and sklearn reads them)."""
    parts = [run(images[i : i + batch]).float().cpu() for i in range(0, images.shape[0], batch)]
    return torch.cat(parts) if parts else torch.zeros(0)


@dataclass
class Reference:
    """The reference variant's logits on the quality and far images."""

    logits: torch.Tensor
    far_logits: torch.Tensor


def reference_of(run, data: EvalSet) -> Reference:
    return Reference(logits_of(run, data.images), logits_of(run, data.far))


def measure_quality(run, data: EvalSet, reference: Reference) -> dict[str, float]:
    """Agreement, accuracy, ECE, corrupted accuracy and far-OOD figures of one variant."""
    logits, far = logits_of(run, data.images), logits_of(run, data.far)
    out = {
        "agreement": _agreement(logits, reference.logits),
        "far_agreement": _agreement(far, reference.far_logits),
        **far_ood_auroc(logits, far),
    }
    if data.labels is not None:
        figures = calibration(logits.softmax(1), data.labels)
        out["accuracy"], out["ece"] = figures["accuracy"], figures["ece"]
        if data.corrupted is not None:
            corrupted = logits_of(run, data.corrupted)
            out["ood_accuracy"] = float((corrupted.argmax(1) == data.labels).float().mean())
    return out


def far_ood_auroc(logits_in: torch.Tensor, logits_far: torch.Tensor) -> dict[str, float]:
    """AUROC of MSP and energy at telling far images (positive) from in-distribution ones."""
    msp_in, msp_far = -logits_in.softmax(1).amax(1), -logits_far.softmax(1).amax(1)
    energy_in, energy_far = -logits_in.logsumexp(1), -logits_far.logsumexp(1)
    return {
        "ood_auroc_msp": ood_metrics(msp_in, msp_far)["auroc"],
        "ood_auroc_energy": ood_metrics(energy_in, energy_far)["auroc"],
    }


def _agreement(logits: torch.Tensor, reference: torch.Tensor) -> float:
    return float((logits.argmax(1) == reference.argmax(1)).float().mean())
