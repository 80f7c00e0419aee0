"""OOD scores from probability samples: higher always means "more likely out of distribution".

Every score takes a :class:`Prediction`: ``probs`` of shape ``(S, N, C)`` (S ensemble members
or posterior / dropout samples; S = 1 for a single deterministic model) and, where the model
has them, the matching ``logits``.

- MSP (Hendrycks & Gimpel 2017): ``-max_c p̄(c|x)`` with ``p̄`` the mean over samples.
- Max-logit (Hendrycks et al. 2022): ``-max_c z_c`` (logits averaged over samples).
- Predictive entropy: ``H[p̄] = -Σ_c p̄_c log p̄_c``.
- Energy (Liu et al. 2020): ``E(x) = -T log Σ_c exp(z_c / T)``.
- Mutual information / BALD (Houlsby et al. 2011; Gal et al. 2017):
  ``I[y; w | x] = H[p̄] - (1/S) Σ_s H[p_s]``, the part of the entropy that comes from the
  members disagreeing (epistemic), not from the data being ambiguous (aleatoric).
- Member variance: ``(1/C) Σ_c Var_s[p_s(c|x)]``.
- Disagreement: the fraction of samples whose argmax differs from the argmax of ``p̄``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from playground.errors import ConfigError, DataFormatError

EPS = 1e-12


@dataclass
class Prediction:
    """Per-sample predictive samples: ``probs (S, N, C)``, ``logits (S, N, C)`` or None,
    ``embedding (N, D)`` or None.
    """

    probs: torch.Tensor
    logits: torch.Tensor | None = None
    embedding: torch.Tensor | None = None

    def __post_init__(self):
        if self.probs.ndim != 3:
            raise DataFormatError(f"probs must be (samples, N, classes), got shape {tuple(self.probs.shape)}")
        if self.logits is not None and self.logits.shape != self.probs.shape:
            raise DataFormatError(
                f"logits {tuple(self.logits.shape)} do not match probs {tuple(self.probs.shape)}"
            )

    @property
    def mean(self) -> torch.Tensor:
        """The predictive distribution ``p̄ (N, C)``: the mean over samples."""
        return self.probs.mean(0)

    @property
    def samples(self) -> int:
        return self.probs.shape[0]

    def subset(self, index: torch.Tensor) -> Prediction:
        take = lambda t: None if t is None else t[:, index]
        return Prediction(
            self.probs[:, index], take(self.logits), None if self.embedding is None else self.embedding[index]
        )


def entropy_of(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats over the last dimension."""
    return -(probs * probs.clamp_min(EPS).log()).sum(-1)


def msp(p: Prediction) -> torch.Tensor:
    return -p.mean.max(1).values


def max_logit(p: Prediction) -> torch.Tensor:
    return -_logits(p, "max_logit").mean(0).max(1).values


def entropy(p: Prediction) -> torch.Tensor:
    return entropy_of(p.mean)


def energy(p: Prediction, temperature: float = 1.0) -> torch.Tensor:
    """``-T logsumexp(z / T)``, averaged over samples: low energy means in distribution."""
    return (-temperature * torch.logsumexp(_logits(p, "energy") / temperature, dim=-1)).mean(0)


def mutual_information(p: Prediction) -> torch.Tensor:
    """BALD: total predictive entropy minus the expected entropy of the samples (>= 0)."""
    return (entropy_of(p.mean) - entropy_of(p.probs).mean(0)).clamp_min(0.0)


def member_variance(p: Prediction) -> torch.Tensor:
    if p.samples < 2:
        return torch.zeros(p.probs.shape[1])
    return p.probs.var(0, unbiased=False).mean(-1)


def disagreement(p: Prediction) -> torch.Tensor:
    vote = p.mean.argmax(1)
    return (p.probs.argmax(-1) != vote).float().mean(0)


def _logits(p: Prediction, score: str) -> torch.Tensor:
    if p.logits is None:
        raise DataFormatError(f"the {score} score needs logits, and this method gives probabilities only")
    return p.logits


SCORES: dict[str, Callable[[Prediction], torch.Tensor]] = {
    "msp": msp,
    "max_logit": max_logit,
    "entropy": entropy,
    "energy": energy,
    "mutual_information": mutual_information,
    "variance": member_variance,
    "disagreement": disagreement,
}
SAMPLE_SCORES = ("mutual_information", "variance", "disagreement")  # zero for a single deterministic model


def score(p: Prediction, name: str) -> torch.Tensor:
    """The OOD score ``name`` (a key of ``SCORES``) per input, shape ``(N,)``."""
    if name not in SCORES:
        raise ConfigError(f"unknown OOD score {name!r}; known: {', '.join(SCORES)}")
    return SCORES[name](p)
