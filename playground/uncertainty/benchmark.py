"""Train every uncertainty method once, predict every set, and turn the predictions into
``ood/``, ``calib/``, ``test/`` and ``cost/`` metrics.

The single model, temperature scaling and MC dropout share one trained network (as in their
papers: the same net, read three ways); it is also the ensemble's first member. The BNN is
trained on its own by SVI. Mahalanobis and KNN score the single model's embeddings.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from playground.core.progress import Progress, report
from playground.uncertainty.bnn import BayesianNet
from playground.uncertainty.features import KNNScore, Mahalanobis
from playground.uncertainty.methods import (
    DeepEnsemble,
    MCDropout,
    NetSpec,
    SingleModel,
    TemperatureScaled,
    forward_batches,
)
from playground.uncertainty.metrics import calibration, ood_metrics, reliability_bins, roc_points
from playground.uncertainty.ood_data import OODData
from playground.uncertainty.scores import SAMPLE_SCORES, SCORES, score

# the reported rows: row name -> (method that predicts, OOD score it is read with)
ROWS = {
    "single_msp": ("single", "msp"),
    "single_energy": ("single", "energy"),
    "temp_scaled": ("temp_scaled", "msp"),
    "mc_dropout": ("mc_dropout", "entropy"),
    "ensemble": ("ensemble", "mutual_information"),
    "bnn": ("bnn", "mutual_information"),
    "mahalanobis": ("single", "mahalanobis"),
    "knn": ("single", "knn"),
}
FEATURE_ROWS = ("mahalanobis", "knn")
PROBABILISTIC = ("single", "temp_scaled", "mc_dropout", "ensemble", "bnn")


@dataclass
class MethodSettings:
    members: int = 5
    mc_samples: int = 10
    bnn_layers: str = "head"
    bnn_prior_scale: float = 0.05
    bnn_samples: int = 10
    bnn_epochs: int = 0
    bnn_lr: float = 0.0
    knn_k: int = 50
    scores: dict[str, str] = field(default_factory=dict)  # row -> score, overriding ROWS


@dataclass
class Methods:
    single: SingleModel
    temp_scaled: TemperatureScaled
    mc_dropout: MCDropout
    ensemble: DeepEnsemble
    bnn: BayesianNet
    mahalanobis: Mahalanobis | None = None
    knn: KNNScore | None = None

    def get(self, name: str):
        return getattr(self, name)


def build_methods(spec: NetSpec, settings: MethodSettings, seed: int) -> Methods:
    single = SingleModel(spec, seed=seed)
    return Methods(
        single,
        TemperatureScaled(single),
        MCDropout(single, settings.mc_samples, seed),
        DeepEnsemble(spec, settings.members, seed, first=single),
        BayesianNet(
            spec,
            settings.bnn_layers,
            settings.bnn_prior_scale,
            settings.bnn_samples,
            seed,
            epochs=settings.bnn_epochs or None,
            lr=settings.bnn_lr or None,
        ),
    )


def train_methods(
    methods: Methods, data: OODData, settings: MethodSettings, progress: Progress = None
) -> None:
    """Fit every method in turn, then the feature-space scores on the single model's training embeddings."""
    stages = ("single", "temp_scaled", "mc_dropout", "ensemble", "bnn")
    for index, name in enumerate(stages):
        report(progress, "methods", index, len(stages), message=name)
        methods.get(name).fit(data.train, data.val, progress)
    _, embedding = forward_batches(methods.single.model.eval(), data.train.images, methods.single.spec.device)
    methods.mahalanobis = Mahalanobis.fit(embedding, data.train.labels, data.train.num_classes)
    methods.knn = KNNScore.fit(embedding, settings.knn_k, seed=methods.single.seed)
    report(progress, "methods", len(stages), len(stages))


def evaluation_sets(data: OODData) -> dict[str, torch.Tensor]:
    return {"test": data.test.images, **data.ood, "corrupted": data.corrupted.images}


def predict_sets(methods: Methods, data: OODData, progress: Progress = None) -> tuple[dict, dict]:
    """Per method and set, the :class:`Prediction`; per method the latency per test image in ms."""
    predictions, latency = {}, {}
    sets = evaluation_sets(data)
    for index, name in enumerate(PROBABILISTIC):
        method, predictions[name] = methods.get(name), {}
        for set_name, images in sets.items():
            report(
                progress,
                "predict",
                index * len(sets) + len(predictions[name]),
                len(PROBABILISTIC) * len(sets),
                message=f"{name} on {set_name}",
            )
            start = time.perf_counter()
            predictions[name][set_name] = method.predict(images)
            if set_name == "test":
                latency[name] = 1000 * (time.perf_counter() - start) / images.shape[0]
    report(progress, "predict", len(PROBABILISTIC) * len(sets), len(PROBABILISTIC) * len(sets))
    return predictions, latency


def row_scores(
    row: str, methods: Methods, predictions: dict, settings: MethodSettings
) -> dict[str, torch.Tensor]:
    """The OOD score of row ``row`` for every evaluated set."""
    method, score_name = ROWS[row]
    score_name = settings.scores.get(row, score_name)
    if row in FEATURE_ROWS:
        scorer = methods.get(row)
        return {s: scorer.score(p.embedding) for s, p in predictions["single"].items()}
    return {s: score(p, score_name) for s, p in predictions[method].items()}


def ood_results(scores: dict[str, torch.Tensor], data: OODData) -> dict[str, dict[str, float]]:
    """Per OOD set (and ``far``, the mean over the far sets) the detection metrics against the test set."""
    results = {name: ood_metrics(scores["test"], scores[name]) for name in data.ood}
    far = [results[name] for name in data.far if name in results]
    if far:
        results["far"] = {key: statistics.fmean(r[key] for r in far) for key in far[0]}
    return results


def score_matrix(predictions: dict, data: OODData) -> dict[str, dict[str, dict[str, float]]]:
    """AUROC of every (method, score) pair on the near set and averaged over the far sets."""
    matrix = {}
    for method in PROBABILISTIC:
        matrix[method] = {}
        for name in SCORES:
            if name in SAMPLE_SCORES and predictions[method]["test"].samples < 2:
                continue
            scores = {s: score(p, name) for s, p in predictions[method].items()}
            results = ood_results(scores, data)
            matrix[method][name] = {k: results[k]["auroc"] for k in ("near", "far") if k in results}
    return matrix


def calibration_results(predictions: dict, data: OODData) -> dict[str, dict[str, dict[str, float]]]:
    """Accuracy, ECE, NLL and Brier of every probabilistic method on the test and corrupted sets."""
    return {
        method: {
            "test": calibration(by_set["test"].mean, data.test.labels),
            "corrupted": calibration(by_set["corrupted"].mean, data.corrupted.labels),
        }
        for method, by_set in predictions.items()
    }


def reliability(predictions: dict, data: OODData) -> dict[str, dict]:
    return {
        method: {
            "test": {
                k: v.tolist() for k, v in reliability_bins(by_set["test"].mean, data.test.labels).items()
            },
            "corrupted": {
                k: v.tolist()
                for k, v in reliability_bins(by_set["corrupted"].mean, data.corrupted.labels).items()
            },
        }
        for method, by_set in predictions.items()
    }


def roc_curves(scores: dict[str, dict[str, torch.Tensor]], data: OODData) -> dict[str, dict[str, list]]:
    """Per row and OOD set, the ROC curve's ``[fpr, tpr]`` points."""
    return {
        row: {
            name: [values.tolist() for values in roc_points(by_set["test"], by_set[name])]
            for name in data.ood
        }
        for row, by_set in scores.items()
    }


@dataclass
class Outcome:
    """Everything a run measured, before it becomes metrics, plots and the report."""

    scores: dict[str, dict[str, torch.Tensor]]  # row -> set -> OOD score per image
    ood: dict[str, dict[str, dict[str, float]]]  # row -> set -> auroc/fpr95/aupr_in/aupr_out
    calibration: dict[str, dict[str, dict[str, float]]]  # method -> test/corrupted -> accuracy/ece/nll/brier
    matrix: dict[str, dict[str, dict[str, float]]]  # method -> score -> near/far AUROC
    latency: dict[str, float]  # row -> ms per test image
    reliability: dict[str, dict] = field(default_factory=dict)
    roc: dict[str, dict] = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)

    def metrics(self, methods: Methods):
        from playground.core.runs import Metrics

        metrics = Metrics()
        for row, by_set in self.ood.items():
            for set_name, values in by_set.items():
                for key, value in values.items():
                    metrics.add(f"ood/{row}/{set_name}/{key}", value, "fraction")
        for row, (method, _) in ROWS.items():
            if row not in FEATURE_ROWS:
                self._calibration_metrics(metrics, row, method)
            model = methods.get(method)
            metrics.add(f"cost/{row}/parameters", model.parameters, "count")
            metrics.add(f"cost/{row}/train_seconds", model.train_seconds, "s")
            metrics.add(f"cost/{row}/latency_ms", self.latency[row], "ms")
        for method, by_score in self.matrix.items():
            for name, values in by_score.items():
                for set_name, value in values.items():
                    metrics.add(f"ood_scores/{method}/{name}/{set_name}/auroc", value, "fraction")
        return metrics

    def _calibration_metrics(self, metrics, row: str, method: str) -> None:
        test, corrupted = self.calibration[method]["test"], self.calibration[method]["corrupted"]
        metrics.add(f"test/{row}/accuracy", test["accuracy"], "fraction")
        metrics.add(f"test/{row}/corrupted/accuracy", corrupted["accuracy"], "fraction")
        for key in ("ece", "nll", "brier"):
            metrics.add(f"calib/{row}/{key}", test[key], "nats" if key == "nll" else "")
            metrics.add(f"calib/{row}/corrupted/{key}", corrupted[key], "nats" if key == "nll" else "")


def evaluate(methods: Methods, data: OODData, settings: MethodSettings, progress: Progress = None) -> Outcome:
    """Predict every set with every method and compute every score and metric."""
    predictions, latency = predict_sets(methods, data, progress)
    scores = {row: row_scores(row, methods, predictions, settings) for row in ROWS}
    latency = {row: latency[method] for row, (method, _) in ROWS.items()}
    for row in FEATURE_ROWS:  # add the scoring cost to the network's forward pass
        start = time.perf_counter()
        methods.get(row).score(predictions["single"]["test"].embedding)
        latency[row] += 1000 * (time.perf_counter() - start) / data.test.images.shape[0]
    return Outcome(
        scores,
        {row: ood_results(s, data) for row, s in scores.items()},
        calibration_results(predictions, data),
        score_matrix(predictions, data),
        latency,
        reliability(predictions, data),
        roc_curves(scores, data),
        predictions,
    )
