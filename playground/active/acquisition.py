"""Acquisition functions: which unlabelled samples to label next.

Each takes probability samples ``probs (S, N, C)`` (S stochastic passes: MC dropout masks or
ensemble members; S = 1 for a deterministic model) and returns one score per sample, higher
meaning "label this first". With ``p̄ = mean_s p_s`` the predictive distribution:

- ``random``: uniform scores (the baseline every strategy must beat);
- ``least_confidence``: ``1 - max_c p̄_c``;
- ``margin``: ``1 - (p̄_(1) - p̄_(2))``, one minus the gap between the two most likely classes
  (Scheffer et al. 2001);
- ``entropy``: ``H[p̄] = -Σ_c p̄_c log p̄_c`` (Shannon 1948; Settles 2009's survey);
- ``bald``: the mutual information between the label and the weights,
  ``I[y; w | x] = H[p̄] - mean_s H[p_s]`` (Houlsby et al. 2011, "Bayesian Active Learning for
  Classification and Preference Learning"; with MC dropout, Gal, Islam & Ghahramani 2017,
  "Deep Bayesian Active Learning with Image Data"). It needs S > 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from playground.errors import ConfigError, DataFormatError
from playground.uncertainty.scores import Prediction, entropy_of, mutual_information

Acquisition = Callable[..., torch.Tensor]


def _check(probs: torch.Tensor) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor) or probs.ndim != 3 or probs.shape[1] == 0:
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise DataFormatError(f"acquisition needs probability samples (S, N, C) with N > 0, got {shape}")
    return probs.float()


def random_scores(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(_check(probs).shape[1], generator=generator)


def least_confidence(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return 1.0 - _check(probs).mean(0).max(-1).values


def margin(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    top2 = _check(probs).mean(0).topk(2, dim=-1).values
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return entropy_of(_check(probs).mean(0))


def bald(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    probs = _check(probs)
    if probs.shape[0] < 2:
        raise ConfigError("BALD needs several probability samples (MC dropout or an ensemble), got S = 1")
    return mutual_information(Prediction(probs))


ACQUISITIONS: dict[str, Acquisition] = {
    "random": random_scores,
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
    "bald": bald,
}


def acquisition(name: str) -> Acquisition:
    """The acquisition function called ``name``."""
    if name not in ACQUISITIONS:
        raise ConfigError(f"unknown acquisition {name!r}; choose one of {', '.join(ACQUISITIONS)}")
    return ACQUISITIONS[name]


SELECTIONS = ("top", "power")


def select(
    scores: torch.Tensor,
    k: int,
    how: str = "top",
    generator: torch.Generator | None = None,
    power: float = 1.0,
) -> torch.Tensor:
    """``k`` indices to label, best first.

    ``top`` takes the ``k`` highest scores. ``power`` samples ``k`` without replacement with
    probability ``∝ score^power`` (stochastic batch acquisition, Kirsch et al. 2023, "Stochastic
    Batch Acquisition: A Simple Baseline for Deep Active Learning"), through the Gumbel-top-k
    trick: the top ``k`` of ``power · log score + Gumbel noise``. Taking the top k of a batch
    piles up near-duplicates of the most uncertain region; sampling spreads the batch out.
    """
    if k < 1:
        raise ConfigError(f"query size must be at least 1, got {k}")
    if how not in SELECTIONS:
        raise ConfigError(f"unknown selection {how!r}; choose one of {', '.join(SELECTIONS)}")
    k = min(k, scores.shape[0])
    if how == "power":
        scores = power_priority(scores, generator, power)
    return torch.topk(scores, k, sorted=True).indices


def power_priority(scores: torch.Tensor, generator: torch.Generator | None = None, power: float = 1.0):
    """``power · log score + Gumbel noise``: its top k is a sample of k without replacement with
    probability ``∝ score^power`` (the Gumbel-top-k trick)."""
    uniform = torch.rand(scores.shape[0], generator=generator).clamp(1e-12, 1 - 1e-12)
    return power * scores.clamp_min(1e-12).log() - (-uniform.log()).log()
