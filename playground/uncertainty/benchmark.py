"""Train every uncertainty method once, predict every set, and turn the predictions into
``ood/``, ``calib/``, ``test/`` and ``cost/`` metrics.

The single model, temperature scaling and MC dropout share one trained network (as in their
papers: the same net, read three ways); it is also the ensemble's first member. The BNN is
trained on its own by SVI. Mahalanobis and KNN score the single model's embeddings.

The config's ``methods`` picks some of the methods (empty: all of them): only those, and the
single model they are built on, are trained, and only their rows are reported. Every method is
seeded on its own, so a method's numbers do not depend on which others ran beside it. Each
method's own settings are :class:`MethodSettings`, the config's ``[bench]`` section.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from playground.core import config as core_config
from playground.core.progress import Progress, report
from playground.data.ood import OODData
from playground.errors import ConfigError
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
METHODS = PROBABILISTIC  # the names ``methods`` picks from
# what a method is built on: temperature scaling and MC dropout read the single model, whose network is
# also the ensemble's first member (the feature rows read its embeddings: they come with ``single``)
DEPENDS = {"temp_scaled": ("single",), "mc_dropout": ("single",), "ensemble": ("single",)}


def chosen_methods(methods=()) -> tuple[str, ...]:
    """The methods a run reports, in :data:`METHODS` order: ``methods`` (empty: all of them)."""
    return core_config.chosen_methods(methods, METHODS)


def trained_methods(methods=()) -> tuple[str, ...]:
    """The methods a run trains: the chosen ones and what they are built on (:data:`DEPENDS`)."""
    chosen = chosen_methods(methods)
    needed = {*chosen, *(d for name in chosen for d in DEPENDS.get(name, ()))}
    return tuple(name for name in METHODS if name in needed)


def method_rows(methods=()) -> list[str]:
    """The reported rows of the chosen methods in :data:`ROWS` order (feature rows come with ``single``)."""
    chosen = chosen_methods(methods)
    return [row for row, (method, _) in ROWS.items() if method in chosen]


@dataclass
class MethodSettings:
    """The uncertainty config's ``[bench]`` section (``--set bench.members=3``): each method's own
    settings, on top of the ``[net]`` section every network is built from."""

    members: int = 5  # deep ensemble size
    mc_samples: int = 10  # MC dropout passes
    bnn_layers: Literal["last", "head", "all"] = "head"  # which of the BNN's weights are random
    bnn_prior_scale: float = 0.05
    bnn_samples: int = 10  # BNN posterior samples
    bnn_epochs: int = 0  # 0: the same as net.epochs
    bnn_lr: float = 0.0  # 0: the same as net.lr
    knn_k: int = 50
    scores: dict[str, str] = field(default_factory=dict)  # row -> score, overriding ROWS

    def __post_init__(self):
        for key, least in (("members", 2), ("mc_samples", 2), ("bnn_samples", 2), ("knn_k", 1)):
            if getattr(self, key) < least:
                raise ConfigError(f"bench.{key} must be at least {least}, got {getattr(self, key)}")
        if self.bnn_prior_scale <= 0 or self.bnn_lr < 0:
            raise ConfigError("bench: bnn_prior_scale must be positive and bnn_lr non-negative (0: net.lr)")
        rows = [row for row in ROWS if row not in FEATURE_ROWS]
        for row, name in self.scores.items():
            if row not in rows or name not in SCORES:
                raise ConfigError(
                    f"bench.scores: {row} = {name!r} is not a method row with a known score "
                    f"(rows {', '.join(rows)}; scores {', '.join(SCORES)})"
                )


@dataclass
class Methods:
    """The methods of one run; a method that was not chosen (nor needed by a chosen one) is None."""

    single: SingleModel | None = None
    temp_scaled: TemperatureScaled | None = None
    mc_dropout: MCDropout | None = None
    ensemble: DeepEnsemble | None = None
    bnn: BayesianNet | None = None
    mahalanobis: Mahalanobis | None = None
    knn: KNNScore | None = None
    names: tuple[str, ...] = METHODS  # the chosen methods: the ones the run reports

    def get(self, name: str):
        return getattr(self, name)

    @property
    def trained(self) -> tuple[str, ...]:
        """The methods built (chosen or needed by a chosen one), in :data:`METHODS` order."""
        return tuple(name for name in METHODS if self.get(name) is not None)

    @property
    def rows(self) -> list[str]:
        """The reported rows, in :data:`ROWS` order."""
        return method_rows(self.names)


def build_methods(
    net: NetSpec, settings: MethodSettings, methods: Sequence[str], seed: int, device: str = "cpu"
) -> Methods:
    """The chosen ``methods`` (empty: all) and what they are built on, untrained, for ``device``."""
    needed = trained_methods(methods)
    single = SingleModel(net, seed=seed, device=device) if "single" in needed else None
    return Methods(
        single,
        TemperatureScaled(single) if "temp_scaled" in needed else None,
        MCDropout(single, settings.mc_samples, seed) if "mc_dropout" in needed else None,
        DeepEnsemble(net, settings.members, seed, first=single, device=device)
        if "ensemble" in needed
        else None,
        BayesianNet(
            net,
            settings.bnn_layers,
            settings.bnn_prior_scale,
            settings.bnn_samples,
            seed,
            epochs=settings.bnn_epochs or None,
            lr=settings.bnn_lr or None,
            device=device,
        )
        if "bnn" in needed
        else None,
        names=chosen_methods(methods),
    )


def train_methods(
    methods: Methods, data: OODData, settings: MethodSettings, progress: Progress = None
) -> None:
    """Fit every built method in turn, then (with ``single`` chosen) the feature-space scores on the
    single model's training embeddings."""
    stages = methods.trained
    for index, name in enumerate(stages):
        report(progress, "methods", index, len(stages), message=name)
        methods.get(name).fit(data.train, data.val, progress)
    if "single" in methods.names:
        single = methods.single
        _, embedding = forward_batches(single.model.eval(), data.train.images, single.device)
        methods.mahalanobis = Mahalanobis.fit(embedding, data.train.labels, data.train.num_classes)
        methods.knn = KNNScore.fit(embedding, settings.knn_k, seed=single.seed)
    report(progress, "methods", len(stages), len(stages))


def evaluation_sets(data: OODData) -> dict[str, torch.Tensor]:
    return {"test": data.test.images, **data.ood, "corrupted": data.corrupted.images}


def predict_sets(methods: Methods, data: OODData, progress: Progress = None) -> tuple[dict, dict]:
    """Per chosen method and set, the :class:`Prediction`; per method the latency per test image in ms."""
    predictions, latency = {}, {}
    sets, names = evaluation_sets(data), methods.names
    for index, name in enumerate(names):
        method, predictions[name] = methods.get(name), {}
        for set_name, images in sets.items():
            report(
                progress,
                "predict",
                index * len(sets) + len(predictions[name]),
                len(names) * len(sets),
                message=f"{name} on {set_name}",
            )
            start = time.perf_counter()
            predictions[name][set_name] = method.predict(images)
            if set_name == "test":
                latency[name] = 1000 * (time.perf_counter() - start) / images.shape[0]
    report(progress, "predict", len(names) * len(sets), len(names) * len(sets))
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
    """AUROC of every (predicted method, score) pair on the near set and averaged over the far sets."""
    matrix = {}
    for method in predictions:
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
    """Everything a run measured, before it becomes metrics, charts and the report."""

    scores: dict[str, dict[str, torch.Tensor]]  # row -> set -> OOD score per image (the reported rows)
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
                    tags = dict(method=row, ood_set=set_name, measure=key)
                    metrics.add(f"ood/{row}/{set_name}/{key}", value, "fraction", "test", **tags)
        for row in self.ood:
            method = ROWS[row][0]
            if row not in FEATURE_ROWS:
                self._calibration_metrics(metrics, row, method)
            model = methods.get(method)
            metrics.add(f"cost/{row}/parameters", model.parameters, "count", method=row, cost="parameters")
            metrics.add(
                f"cost/{row}/train_seconds", model.train_seconds, "s", method=row, cost="train_seconds"
            )
            metrics.add(f"cost/{row}/latency_ms", self.latency[row], "ms", method=row, cost="latency_ms")
        for method, by_score in self.matrix.items():
            for name, values in by_score.items():
                for set_name, value in values.items():
                    tags = dict(method=method, score=name, ood_set=set_name, measure="auroc")
                    metrics.add(
                        f"ood_scores/{method}/{name}/{set_name}/auroc", value, "fraction", "test", **tags
                    )
        return metrics

    def _calibration_metrics(self, metrics, row: str, method: str) -> None:
        test, corrupted = self.calibration[method]["test"], self.calibration[method]["corrupted"]
        metrics.add(
            f"test/{row}/accuracy", test["accuracy"], "fraction", "test", method=row, measure="accuracy"
        )
        name, value = f"test/{row}/corrupted/accuracy", corrupted["accuracy"]
        metrics.add(name, value, "fraction", "test_corrupted", method=row, measure="accuracy")
        for key in ("ece", "nll", "brier"):
            unit = "nats" if key == "nll" else ""
            metrics.add(f"calib/{row}/{key}", test[key], unit, "test", method=row, measure=key)
            metrics.add(
                f"calib/{row}/corrupted/{key}",
                corrupted[key],
                unit,
                "test_corrupted",
                method=row,
                measure=key,
            )


def evaluate(methods: Methods, data: OODData, settings: MethodSettings, progress: Progress = None) -> Outcome:
    """Predict every set with every chosen method and compute every score and metric of their rows."""
    predictions, latency = predict_sets(methods, data, progress)
    rows = methods.rows
    scores = {row: row_scores(row, methods, predictions, settings) for row in rows}
    latency = {row: latency[ROWS[row][0]] for row in rows}
    for row in (r for r in FEATURE_ROWS if r in rows):  # add the scoring cost to the network's forward pass
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
