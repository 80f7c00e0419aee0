"""Reading a finished OOD run back, and scoring a single new image with its saved models.

A run folder is one run or a multi-seed parent (``--seeds 0,1,2``): the numbers are the
folder's own (means and ``:std`` for a parent) and the artifacts (the :class:`Evaluation` in the
``results.json`` section :data:`EVALUATION`, per-image scores, models) come from the first folder
that has them. Pages and notebooks use this module; it never trains.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from playground.core.checkpoint import (
    REDO,
    TensorSpec,
    check_fields,
    check_tensors,
    load_checkpoint,
    load_into,
    short,
)
from playground.core.config import build_config, rename_keys, renamed_keys_of
from playground.core.registry import canonical_key
from playground.core.runs import Metrics, RunInfo, list_runs, load_run, read_result, read_run_config
from playground.core.seeds import seed_folders
from playground.errors import CheckpointError, DataFormatError, DataNotFoundError
from playground.uncertainty import report
from playground.uncertainty.benchmark import (
    FEATURE_ROWS,
    ROWS,
    Methods,
    Outcome,
    build_methods,
    chosen_methods,
    trained_methods,
)
from playground.uncertainty.charts import METHOD_LABELS
from playground.uncertainty.experiment import EXPERIMENT, Config
from playground.uncertainty.features import KNNScore, Mahalanobis
from playground.uncertainty.scores import score

EVALUATION = "evaluation"  # the results.json section holding a run's Evaluation
LEGACY_RESULTS = "ood_results.json"  # where runs made before results.json kept it
SCORES_FILE = "scores.safetensors"


def feature_specs(dim: int) -> dict[str, TensorSpec]:
    """features.safetensors: class means (C, dim), their shared precision (dim, dim), a KNN bank (M, dim)."""
    return {
        "mahalanobis.means": TensorSpec(("C", dim)),
        "mahalanobis.precision": TensorSpec((dim, dim)),
        "knn.bank": TensorSpec((None, dim)),
    }


TEMPERATURE = {"temperature": float}  # member0 metadata: temperature scaling's T


@dataclass
class Evaluation:
    """What a run measured beyond its metrics, for the charts and the page: the ``results.json`` section
    :data:`EVALUATION` (``ood_results.json`` in runs made before). Rows are the reported method rows
    (:data:`~playground.uncertainty.benchmark.ROWS`), sets the OOD sets."""

    sets: list[str] = field(default_factory=list)  # the OOD sets in the run's order (near first)
    far: list[str] = field(default_factory=list)  # the far sets, whose mean is the set ``far``
    heldout: list[str] = field(default_factory=list)  # the classes held out as the near set
    classes: list[str] = field(default_factory=list)  # the in-distribution classes
    rows: dict[str, list[str]] = field(default_factory=dict)  # row -> [method, score] (ROWS' defaults)
    # row -> set -> auroc, fpr95, aupr_in, aupr_out
    ood: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # method -> test / corrupted -> accuracy, ece, nll, brier
    calibration: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # method -> score -> near / far AUROC
    matrix: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)  # row -> ms per test image
    # method -> test / corrupted -> per confidence bin: confidence, accuracy, count; and the bin edges
    reliability: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    roc: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)  # row -> set -> [fpr, tpr]

    @classmethod
    def of(cls, outcome: Outcome, data) -> Evaluation:
        """The evaluation of a run's :class:`~playground.uncertainty.benchmark.Outcome` on ``data``."""
        return cls(
            sets=list(data.ood),
            far=list(data.far),
            heldout=list(data.heldout),
            classes=list(data.test.classes),
            rows={row: list(ROWS[row]) for row in outcome.ood},
            ood=outcome.ood,
            calibration=outcome.calibration,
            matrix=outcome.matrix,
            latency=outcome.latency,
            reliability=outcome.reliability,
            roc=outcome.roc,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        """Read back what :meth:`RunDir.write_result` stored; keys an older run lacks stay empty."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def read_evaluation(path: str | Path) -> Evaluation:
    """The :class:`Evaluation` of the run folder ``path`` (its ``ood_results.json`` for older runs); a
    section of the wrong shape is a :class:`DataFormatError` naming the key."""
    data = read_result(path, EVALUATION, legacy=LEGACY_RESULTS)
    kinds = {f.name: list[str] if f.type.startswith("list") else dict for f in fields(Evaluation)}
    check_fields(data, f"the {EVALUATION} results of {path}", optional=kinds, error=DataFormatError)
    return Evaluation.from_json(data)


@dataclass
class OODRun:
    """One OOD run (or a multi-seed parent) as read from its folder."""

    path: Path
    metrics: dict[str, float]
    config: Config
    seeds: list[Path] = field(default_factory=list)
    artifact_dir: Path | None = None
    results: Evaluation = field(default_factory=Evaluation)
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
        return list(self.results.classes)

    @property
    def sets(self) -> list[str]:
        return list(self.results.sets)

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
        for row, (row_method, row_score) in (self.results.rows or ROWS).items():
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

    def reference_scores(
        self, method: str, score_name: str, predictions: Callable[[], dict]
    ) -> dict[str, torch.Tensor]:
        """Per set, ``method``'s score ``score_name`` of every image: the run's own where it stored them,
        else computed from ``predictions()`` (every set predicted by the run's saved ``method``)."""
        row = self.stored_row(method, score_name)
        if row is not None:
            return self.scores[row]
        return {name: score(p, score_name) for name, p in predictions().items()}

    def describe(self) -> str:
        """One line: the data and sets, the methods run and their sizes, where a multi-seed run's
        images, scores and models come from."""
        c, ran = self.config, self.methods
        parts = [
            f"in distribution: {c.dataset} without {', '.join(self.results.heldout) or c.heldout_classes}",
            f"far sets: {', '.join(c.far_sets)}",
        ]
        if c.methods:
            parts.append(f"methods run: {', '.join(METHOD_LABELS.get(m, m) for m in ran)}")
        layers = f"{c.bench.bnn_layers} layer{'s' if c.bench.bnn_layers == 'all' else ''}"
        sizes = {
            "ensemble": f"{c.bench.members}-member ensemble",
            "mc_dropout": f"MC dropout {c.bench.mc_samples} samples",
            "bnn": f"BNN ({layers}) {c.bench.bnn_samples} samples",
        }
        parts += [text for method, text in sizes.items() if method in ran]
        if self.seeds:
            source = self.artifact_dir.name if self.artifact_dir else "none"
            parts.append(
                f"numbers: mean ± std over {len(self.seeds)} seeds; images, scores and models from {source}"
            )
        return " · ".join(parts)

    @functools.cached_property
    def scores(self) -> dict[str, dict[str, torch.Tensor]]:
        """Row -> set -> the OOD score of every image, as the run computed them."""
        if self.artifact_dir is None:
            raise DataNotFoundError(f"OOD run {self.path.name} has no {SCORES_FILE}; re-run it")
        file = self.artifact_dir / SCORES_FILE
        tensors, _ = load_checkpoint(file)
        check_tensors(file, tensors, {key: TensorSpec((None,), "number") for key in tensors})
        table: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            row, slash, set_name = key.partition("/")
            if not slash:
                raise CheckpointError(f"{file} holds {short(key)}, not a score named row/set; {REDO}")
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
    artifact_dir, results = _artifacts([path, *seeds])
    if artifact_dir not in (None, path):  # the seed folder's own config: its seed regenerates its data
        data = read_run_config(artifact_dir)
    source = f"{(artifact_dir or path) / 'config.toml'}"
    # runs made before the [net] and [bench] sections have flat keys: moved in without a notice
    values = rename_keys(data.get("config", {}), source, renamed_keys_of(Config), notify=False)
    config = build_config(Config, values, source)
    return OODRun(path, metrics, config, seeds, artifact_dir, results, measured)


def _artifacts(folders: list[Path]) -> tuple[Path | None, Evaluation]:
    """The first of ``folders`` (the run, then its seeds) holding per-image scores and an evaluation."""
    for folder in folders:
        if (folder / SCORES_FILE).is_file():
            try:
                return folder, read_evaluation(folder)
            except DataNotFoundError:
                continue
    return None, Evaluation()


def find_ood_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The OOD runs (single or multi-seed) under ``root``, newest first."""
    return list_runs(root, EXPERIMENT)


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
            model, path = config.net.build(in_channels, num_classes), folder / f"member{index}.safetensors"
            metadata = check_fields(load_into(model, path), f"the metadata of {path}", optional=TEMPERATURE)
            models.append(model.eval())
        methods.single.model = models[0]
        if methods.ensemble is not None:
            methods.ensemble.models = models
        if methods.temp_scaled is not None:
            methods.temp_scaled.temperature = float(metadata.get("temperature", 1.0))
    if methods.bnn is not None:
        _load_bnn(methods, folder / "bnn.safetensors", in_channels, num_classes)
    if "single" in methods.names:
        features, meta = load_checkpoint(
            folder / "features.safetensors",
            tensors=feature_specs(config.net.embedding_dim),
            optional_metadata={"knn_k": range(1, 1 << 16)},
        )
        bank = features["knn.bank"]
        if len(bank) == 0:
            raise CheckpointError(f"{folder / 'features.safetensors'} holds an empty KNN bank; {REDO}")
        methods.mahalanobis = Mahalanobis(features["mahalanobis.means"], features["mahalanobis.precision"])
        methods.knn = KNNScore(bank, min(meta.get("knn_k", config.bench.knn_k), len(bank)))
    return methods


def _in_channels(run: OODRun) -> int:
    """The image channels the run's networks take: saved with the models, else (runs made before
    ``in_channels`` was saved, which always have ``member0``) read off member0's first convolution."""
    folder = run.artifact_dir / "models"
    saved = [
        folder / name for name in ("member0.safetensors", "bnn.safetensors") if (folder / name).is_file()
    ]
    state, meta = load_checkpoint(
        saved[0] if saved else folder / "member0.safetensors", optional_metadata={"in_channels": range(1, 65)}
    )
    if "in_channels" in meta:
        return meta["in_channels"]
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
