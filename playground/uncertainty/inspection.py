"""One image through every method of a run, and a threshold on one OOD score.

:func:`inspect_image` gives, per method, an :class:`ImagePrediction` (probability samples and every
score); :func:`image_summary` is its table; :func:`operating_point` and :func:`flagged_rates` place a
threshold over a run's per-set scores (FPR95: the threshold keeps 95% of the in-distribution test
images). Pages draw these; they never compute them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground.errors import DataFormatError
from playground.uncertainty.benchmark import Methods
from playground.uncertainty.charts import METHOD_LABELS, SCORE_LABELS
from playground.uncertainty.scores import SAMPLE_SCORES, SCORES, score

METHOD_SCORES = {
    "single": ("msp", "max_logit", "entropy", "energy"),
    "temp_scaled": ("msp", "max_logit", "entropy", "energy"),
    "mc_dropout": tuple(SCORES),
    "ensemble": tuple(SCORES),
    "bnn": tuple(SCORES),
}


@dataclass(frozen=True)
class ImagePrediction:
    """One method's view of one image: its probability samples and every OOD score (higher: more OOD).

    ``probs`` is ``(S, C)``: one row per ensemble member or posterior sample (one row for a single
    model); None for the feature-space scores, which read the single model's embedding and predict nothing.
    """

    scores: dict[str, float]
    probs: torch.Tensor | None = None

    @property
    def samples(self) -> int | None:
        """How many members or posterior samples predicted (None without probabilities)."""
        return None if self.probs is None else int(self.probs.shape[0])

    @property
    def mean(self) -> torch.Tensor | None:
        """The mean probability over samples ``(C,)``."""
        return None if self.probs is None else self.probs.mean(0)

    @property
    def predicted(self) -> int | None:
        """The class of the highest mean probability."""
        return None if self.probs is None else int(self.mean.argmax())

    @property
    def confidence(self) -> float | None:
        """The mean probability of the predicted class, p̄(prediction)."""
        return None if self.probs is None else float(self.mean[self.predicted])

    @property
    def spreads(self) -> torch.Tensor | None:
        """Per class, the standard deviation over samples (population, ``ddof=0``) of its probability."""
        return None if self.probs is None else self.probs.std(0, unbiased=False)

    @property
    def spread(self) -> float | None:
        """The standard deviation over samples (population, ``ddof=0``) of the predicted class's
        probability: 0 for a single model or samples that all agree."""
        return None if self.probs is None else float(self.probs[:, self.predicted].std(unbiased=False))


SUMMARY_ROWS = (
    "samples",
    "prediction",
    "p̄(prediction)",
    "spread: std of p(prediction)",
    *SCORE_LABELS.values(),
)


def image_summary(inspected: dict[str, ImagePrediction], classes: list[str]) -> dict[str, dict[str, str]]:
    """Per method (its label), one image's prediction as text by :data:`SUMMARY_ROWS`: the samples, the
    predicted class, its mean probability and spread, and every score the method has."""
    columns = {}
    for method in (m for m in METHOD_LABELS if m in inspected):
        entry, column = inspected[method], {}
        if entry.probs is not None:
            prediction = (
                entry.samples,
                classes[entry.predicted],
                f"{entry.confidence:.3f}",
                f"{entry.spread:.3f}",
            )
            column = {row: str(value) for row, value in zip(SUMMARY_ROWS, prediction)}
        column.update({SCORE_LABELS.get(name, name): f"{value:.4g}" for name, value in entry.scores.items()})
        columns[METHOD_LABELS[method]] = column
    return columns


def inspect_image(methods: Methods, image: torch.Tensor) -> dict[str, ImagePrediction]:
    """For one image ``(C, H, W)``: per method the run reported its :class:`ImagePrediction`, the probability
    samples ``(S, C)`` and every score (``feature``: Mahalanobis and KNN, with the single model)."""
    if image.ndim != 3:
        raise DataFormatError(f"inspect_image needs one image (C, H, W), got shape {tuple(image.shape)}")
    batch = image[None].float()
    report: dict[str, ImagePrediction] = {}
    for name, score_names in METHOD_SCORES.items():
        if name not in methods.names:
            continue
        prediction = methods.get(name).predict(batch)
        report[name] = ImagePrediction(
            scores={
                s: float(score(prediction, s)[0])
                for s in score_names
                if s not in SAMPLE_SCORES or prediction.samples > 1
            },
            probs=prediction.probs[:, 0],
        )
        if name == "single" and methods.mahalanobis is not None:
            report["feature"] = ImagePrediction(
                scores={
                    "mahalanobis": float(methods.mahalanobis.score(prediction.embedding)[0]),
                    "knn": float(methods.knn.score(prediction.embedding)[0]),
                }
            )
    return report


# --------------------------------------------------------------------- a threshold on one score

IN_DISTRIBUTION = "test"  # the set whose scores set the operating point
FPR95_QUANTILE = 0.95  # the threshold keeps this share of the in-distribution images


@dataclass(frozen=True)
class ScoreRange:
    """Where one score's values lie over every set, and its FPR95 operating point inside that range."""

    low: float
    high: float  # above ``low`` (low + 1 when every score is equal), so a slider over it is never empty
    fpr95_threshold: float  # keeps 95% of the in-distribution test images (clamped into [low, high])


def operating_point(reference: dict[str, torch.Tensor]) -> ScoreRange:
    """The range of every set's scores and the FPR95 threshold: the 95% quantile of the in-distribution
    ``test`` scores, so that 95% of test images score at or below it and are kept."""
    if IN_DISTRIBUTION not in reference:
        raise DataFormatError(
            f"operating_point needs the {IN_DISTRIBUTION!r} scores, got {', '.join(reference)}"
        )
    test = reference[IN_DISTRIBUTION].double()
    everything = torch.cat([values.double() for values in reference.values()])
    low, high = float(everything.min()), float(everything.max())
    high = high if high > low else low + 1.0
    threshold = min(max(float(torch.quantile(test, FPR95_QUANTILE)), low), high)
    return ScoreRange(low, high, threshold)


def flagged_rates(reference: dict[str, torch.Tensor], threshold: float) -> dict[str, float]:
    """Per set, the share of its images scoring above ``threshold`` (flagged as OOD); on the test set
    these are the false alarms."""
    return {name: float((values > threshold).double().mean()) for name, values in reference.items()}
