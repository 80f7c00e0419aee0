"""Route a stream of new data through the escalation policy and measure what it costs and risks.

The stream is the held-out in-distribution data plus OOD images, split into rounds. In each
round the model auto-labels confident samples, flags likely-OOD ones, escalates the most
uncertain up to the annotators' budget and defers the rest (see :mod:`.escalation`).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from playground.active.data import ActiveData
from playground.active.escalation import (
    AUTO,
    DEFER,
    ESCALATE,
    OOD,
    Threshold,
    calibrate_threshold,
    ood_threshold,
    risk_coverage,
    route,
)
from playground.active.learner import Learner, embed
from playground.errors import ConfigError
from playground.uncertainty.features import KNNScore
from playground.uncertainty.scores import Prediction, disagreement, entropy_of


@dataclasses.dataclass
class EscalationSpec:
    """The ``[escalation]`` section: the certified auto-label error ``alpha`` (with probability
    ``1 - delta``), the annotators' budget, the stream's rounds and the KNN OOD score."""

    alpha: float = 0.05
    delta: float = 0.1
    annotator_budget: int = 200  # escalations per round
    stream_rounds: int = 5
    knn_k: int = 10
    knn_bank: int = 5000  # pool images whose embeddings the KNN OOD score compares against

    def __post_init__(self):
        if not 0 < self.alpha < 1 or not 0 < self.delta < 1:
            raise ConfigError(
                f"escalation.alpha and escalation.delta must lie in (0, 1), got {self.alpha} and {self.delta}"
            )
        if self.stream_rounds < 1:
            raise ConfigError(f"escalation.stream_rounds must be at least 1, got {self.stream_rounds}")


@dataclasses.dataclass
class View:
    """What the model says about a batch of images."""

    probs: torch.Tensor  # (S, N, C) MC-dropout samples
    confidence: torch.Tensor
    uncertainty: torch.Tensor  # predictive entropy
    ood_score: torch.Tensor  # KNN distance in the embedding

    @property
    def disagreement(self) -> torch.Tensor:
        return disagreement(Prediction(self.probs))


def look(learner: Learner, knn: KNNScore, images: torch.Tensor, mc_samples: int, seed: int) -> View:
    probs = learner.probs(images, mc_samples, seed)
    mean = probs.mean(0)
    return View(probs, mean.max(1).values, entropy_of(mean), knn.score(embed(learner.model, images)))


@dataclasses.dataclass
class EscalationOutcome:
    threshold: Threshold
    ood_cut: float
    routes: torch.Tensor  # per stream sample, then per OOD image
    is_ood: torch.Tensor
    correct: torch.Tensor  # model correct, per stream sample (False for OOD images)
    view: View
    curve: dict[str, list[float]]
    images: torch.Tensor
    labels: torch.Tensor  # true labels, -1 for OOD images

    def metrics(self) -> dict[str, float]:
        ind, auto = ~self.is_ood, self.routes == AUTO
        auto_in = auto & ind
        certified = math.isfinite(self.threshold.confidence)
        threshold = {"escalation/threshold": self.threshold.confidence} if certified else {}
        return {
            **threshold,
            "escalation/alpha": self.threshold.alpha,
            "escalation/auto_label_error": 1.0 - self.correct[auto_in].float().mean().item()
            if auto_in.any()
            else 0.0,
            "escalation/rate": 1.0 - auto_in.sum().item() / max(int(ind.sum()), 1),
            "escalation/escalated": (self.routes[ind] == ESCALATE).float().mean().item(),
            "escalation/deferred": (self.routes[ind] == DEFER).float().mean().item(),
            "escalation/certified": float(certified),
            "escalation/calibration_bound": self.threshold.upper_bound,
            "escalation/ood_flagged": (self.routes[self.is_ood] == OOD).float().mean().item(),
            "escalation/ood_auto_labelled": auto[self.is_ood].float().mean().item(),
            "escalation/id_flagged": (self.routes[ind] == OOD).float().mean().item(),
        }


def simulate(
    learner: Learner, data: ActiveData, spec: EscalationSpec, mc_samples: int = 20, seed: int = 0
) -> EscalationOutcome:
    """Calibrate on ``data.calibration``, then route the stream (in-distribution + OOD) round by round;
    the model's scores average ``mc_samples`` MC-dropout passes (the loop's).

    The KNN OOD score's bank is (a random part of) the unlabelled pool: in-distribution by
    construction, and it needs no labels (Sun et al. 2022)."""
    bank = data.pool.images[
        torch.randperm(len(data.pool), generator=torch.Generator().manual_seed(seed))[: spec.knn_bank]
    ]
    knn = KNNScore.fit(embed(learner.model, bank), k=spec.knn_k)
    cal = look(learner, knn, data.calibration.images, mc_samples, seed)
    cal_correct = cal.probs.mean(0).argmax(1) == data.calibration.labels
    threshold = calibrate_threshold(cal.confidence, cal_correct, spec.alpha, spec.delta)
    ood_cut = ood_threshold(cal.ood_score)
    ood_images = torch.cat(list(data.ood.values())) if data.ood else data.stream.images[:0]
    images = torch.cat([data.stream.images, ood_images])
    labels = torch.cat([data.stream.labels, torch.full((ood_images.shape[0],), -1)])
    view = look(learner, knn, images, mc_samples, seed)
    correct = view.probs.mean(0).argmax(1) == labels
    routes = _route_rounds(view, threshold, ood_cut, spec, seed)
    curve = risk_coverage(view.confidence[labels >= 0], correct[labels >= 0])
    return EscalationOutcome(threshold, ood_cut, routes, labels < 0, correct, view, curve, images, labels)


def _route_rounds(
    view: View, threshold: Threshold, ood_cut: float, spec: EscalationSpec, seed: int
) -> torch.Tensor:
    """The stream arrives in ``stream_rounds`` shuffled batches, each routed within the budget."""
    n = view.confidence.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    routes = torch.empty(n, dtype=torch.long)
    for chunk in order.chunk(max(1, spec.stream_rounds)):
        routes[chunk] = route(
            view.confidence[chunk],
            view.uncertainty[chunk],
            view.ood_score[chunk],
            threshold,
            ood_cut,
            spec.annotator_budget,
        )
    return routes
