"""Reading a finished OOD run back, and scoring a single new image with its saved models.

A run folder is one run or a multi-seed parent (``--seeds 0,1,2``): the numbers are the
folder's own (means and ``:std`` for a parent) and the artifacts (curves, scores, models) come
from the first folder that has them. Pages and notebooks use this module; it never trains.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from playground.core.checkpoint import load_checkpoint, load_into
from playground.core.config import build_config, rename_keys, renamed_keys_of
from playground.core.registry import canonical_key
from playground.core.runs import Metrics, RunInfo, list_runs, load_run, read_run_config
from playground.core.seeds import seed_folders
from playground.errors import CheckpointError, DataFormatError, DataNotFoundError
from playground.uncertainty import report
from playground.uncertainty.benchmark import (
    FEATURE_ROWS,
    ROWS,
    Methods,
    build_methods,
    chosen_methods,
    trained_methods,
)
from playground.uncertainty.experiment import EXPERIMENT, Config
from playground.uncertainty.features import KNNScore, Mahalanobis
from playground.uncertainty.scores import SAMPLE_SCORES, SCORES, score

RESULTS = "ood_results.json"
SCORES_FILE = "scores.safetensors"


@dataclass
class OODRun:
    """One OOD run (or a multi-seed parent) as read from its folder."""

    path: Path
    metrics: dict[str, float]
    config: Config
    seeds: list[Path] = field(default_factory=list)
    artifact_dir: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)
    measured: Metrics = field(default_factory=Metrics)  # the typed records (split and tags)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ood_sets(self) -> list[str]:
        """The OOD sets the tables show, near first and their mean ``far`` last."""
        if self.measured.tags:
            return report.ood_sets(self.measured)
        # runs made before metrics carried tags: the reader for that old layout (ood/<row>/<set>/auroc)
        old = {
            n.split("/")[2]
            for n in self.metrics
            if n.startswith("ood/") and n.endswith("/auroc") and n.count("/") == 3
        }
        return report.order_sets(old)

    @property
    def classes(self) -> list[str]:
        return list(self.results.get("classes", []))

    @property
    def sets(self) -> list[str]:
        return list(self.results.get("sets", []))

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods the run trained and reported (its config's ``methods``; empty there: all)."""
        return chosen_methods(self.config.methods)

    @property
    def has_models(self) -> bool:
        """Whether the run saved its networks: ``member0`` (the single model) or, for a run without
        the single model, ``bnn``."""
        if self.artifact_dir is None:
            return False
        first = "member0" if trained_methods(self.config.methods)[0] == "single" else "bnn"
        return (self.artifact_dir / "models" / f"{first}.safetensors").is_file()

    def stored_row(self, method: str, score: str) -> str | None:
        """The run's reported row for (``method``, ``score``), whose per-image scores it saved; None when
        the run reported ``method`` with other scores (``feature``: the rows ``mahalanobis`` and ``knn``)."""
        for row, (row_method, row_score) in self.results.get("rows", ROWS).items():
            if row in FEATURE_ROWS:
                if method == "feature" and score == row:
                    return row
            elif row_method == method and self.config.bench.scores.get(row, row_score) == score:
                return row
        return None

    def row_score(self, row: str) -> str:
        """The score a reported row reads (the config's ``bench.scores`` override, else the row's own)."""
        return self.config.bench.scores.get(row, ROWS.get(row, ("", row))[1])

    def default_score(self, method: str, options: list[str]) -> str:
        """The first of ``options`` the run reported ``method`` with (its saved scores), else the first."""
        return next((score for score in options if self.stored_row(method, score)), options[0])

    @functools.cached_property
    def scores(self) -> dict[str, dict[str, torch.Tensor]]:
        """Row -> set -> the OOD score of every image, as the run computed them."""
        if self.artifact_dir is None:
            raise DataNotFoundError(f"OOD run {self.path.name} has no {SCORES_FILE}; re-run it")
        tensors, _ = load_checkpoint(self.artifact_dir / SCORES_FILE)
        table: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            row, set_name = key.split("/", 1)
            table.setdefault(row, {})[set_name] = value
        return table


def load_ood_run(path: str | Path) -> OODRun:
    """Read an OOD run folder or a multi-seed parent; clear errors for anything else."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"run folder {path} does not exist; list runs with `playground runs`")
    data = read_run_config(path)
    if canonical_key(str(data.get("experiment", ""))) != EXPERIMENT:  # runs made before the rename: "ood"
        raise DataFormatError(
            f"{path.name} is a {data.get('experiment', '?')!r} run, not an OOD run; "
            "pick a run made by recipes/uncertainty_fashion.toml or the uncertainty page"
        )
    measured = load_run(path).measured
    metrics = measured.values
    if not any(name.startswith("ood/") for name in metrics):
        raise DataNotFoundError(
            f"OOD run {path.name} has no ood/ metrics yet; it may still be running or was interrupted"
        )
    seeds = seed_folders(path)
    artifact_dir = next(
        (f for f in [path, *seeds] if (f / RESULTS).is_file() and (f / SCORES_FILE).is_file()), None
    )
    if artifact_dir not in (None, path):  # the seed folder's own config: its seed regenerates its data
        data = read_run_config(artifact_dir)
    source = f"{(artifact_dir or path) / 'config.toml'}"
    # runs made before the [net] and [bench] sections have flat keys: moved in without a notice
    values = rename_keys(data.get("config", {}), source, renamed_keys_of(Config), notify=False)
    config = build_config(Config, values, source)
    results = json.loads((artifact_dir / RESULTS).read_text(encoding="utf-8")) if artifact_dir else {}
    return OODRun(path, metrics, config, seeds, artifact_dir, results, measured)


def find_ood_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The OOD runs (single or multi-seed) under ``root``, newest first."""
    return [info for info in list_runs(root) if info.experiment == EXPERIMENT]


def load_methods(run: OODRun, device: str = "cpu") -> Methods:
    """Every method of ``run`` (the ones it trained) rebuilt from its saved networks, ready to ``predict``."""
    if not run.has_models:
        raise DataNotFoundError(
            f"OOD run {run.name} saved no models (save_models = false); re-run it to score new images"
        )
    folder, config = run.artifact_dir / "models", run.config
    num_classes, in_channels = len(run.classes), _in_channels(run)
    methods = build_methods(config.net, config.bench, config.methods, config.seed, device)
    if methods.single is not None:  # member0 is the single model, also the ensemble's first member
        models, metadata = [], {}
        for index in range(config.bench.members if methods.ensemble is not None else 1):
            model = config.net.build(in_channels, num_classes)
            metadata = load_into(model, folder / f"member{index}.safetensors")
            models.append(model.eval())
        methods.single.model = models[0]
        if methods.ensemble is not None:
            methods.ensemble.models = models
        if methods.temp_scaled is not None:
            methods.temp_scaled.temperature = float(metadata.get("temperature", 1.0))
    if methods.bnn is not None:
        _load_bnn(methods, folder / "bnn.safetensors", in_channels, num_classes)
    if "single" in methods.names:
        features, meta = load_checkpoint(folder / "features.safetensors")
        methods.mahalanobis = Mahalanobis(features["mahalanobis.means"], features["mahalanobis.precision"])
        methods.knn = KNNScore(features["knn.bank"], int(meta.get("knn_k", config.bench.knn_k)))
    return methods


def _in_channels(run: OODRun) -> int:
    """The image channels the run's networks take: saved with the models, else (runs made before
    ``in_channels`` was saved, which always have ``member0``) read off member0's first convolution."""
    folder = run.artifact_dir / "models"
    saved = [
        folder / name for name in ("member0.safetensors", "bnn.safetensors") if (folder / name).is_file()
    ]
    state, meta = load_checkpoint(saved[0] if saved else folder / "member0.safetensors")
    if "in_channels" in meta:
        return int(meta["in_channels"])
    first = next((v for k, v in state.items() if k.endswith("weight") and v.ndim == 4), None)
    if first is None:
        raise CheckpointError(f"{folder} holds no convolutional network")
    return int(first.shape[1])


def _load_bnn(methods: Methods, path: Path, in_channels: int, num_classes: int) -> None:
    import pyro

    state, _ = load_checkpoint(path)
    bnn = methods.bnn
    bnn.build(in_channels, num_classes)
    with pyro.settings.context(module_local_params=True):
        try:
            bnn.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
            bnn.guide.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("guide.")})
        except RuntimeError as err:
            raise CheckpointError(f"{path} does not fit this BNN ({str(err).splitlines()[0]})") from None
    bnn.model.eval()


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
    def spread(self) -> float | None:
        """The standard deviation over samples (population, ``ddof=0``) of the predicted class's
        probability: 0 for a single model or samples that all agree."""
        return None if self.probs is None else float(self.probs[:, self.predicted].std(unbiased=False))


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
