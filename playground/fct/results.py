"""Reading a finished FCT run back: numbers, sweep, cost, embeddings and nearest neighbours.

A run folder is either one run (``experiment.run``) or a multi-seed parent written by
``playground run recipes/fct_fashion.toml --seeds 0,1,2``. For a parent the numbers are the
parent's (mean as ``name``, standard deviation as ``name:std``) and the artifacts (gallery
embeddings, thumbnails, class names) come from the first seed folder that has them.

Pages and notebooks use this module; it never trains anything.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from playground.core.checkpoint import TensorSpec, check_fields, load_checkpoint
from playground.core.config import rename_keys
from playground.core.runs import Metrics, RunInfo, list_runs, load_run, read_result, read_run_config
from playground.core.seeds import seed_folders
from playground.errors import (
    CheckpointError,
    ConfigError,
    DataFormatError,
    DataNotFoundError,
    PlaygroundError,
)
from playground.fct.experiment import EXPERIMENT, Config
from playground.fct.report import ROWS, sweep_names
from playground.fct.retrieval import nearest
from playground.fct.upgrade_report import UPGRADE

EMBEDDINGS = "embeddings.safetensors"
# the results.json section of a run: description, classes, cases, sweep, cost, accuracy, transform_loss
SUMMARY = "summary"
SUMMARY_FIELDS = {"classes": list, "description": str, "sweep": list[dict]}  # the keys a page reads
LEGACY_SUMMARY = "fct_results.json"  # where runs made before results.json kept it
GALLERIES = ("new", "old", "fct", "fct_noside", "bct")
PROJECTIONS = ("new", "old", "fct", "fct_noside", "bct")
# what embeddings.safetensors holds: N gallery images of dimension D, P of them projected on a plane
EMBEDDING_TENSORS = {
    **{name: TensorSpec(("N", "D")) for name in GALLERIES},
    "labels": TensorSpec(("N",), "int"),
    "images": TensorSpec(("N", None, None, None), "number", optional=True),
    "projection_index": TensorSpec(("P",), "int", optional=True),
    **{f"projection_{name}": TensorSpec(("P", 2), optional=True) for name in PROJECTIONS},
}


@dataclass
class FCTRun:
    """One FCT run (or a multi-seed parent) as read from its folder."""

    path: Path
    metrics: dict[str, float]
    config: dict[str, Any]  # the ``[config]`` table of config.toml (old flat keys in their sections)
    seeds: list[Path] = field(default_factory=list)  # per-seed folders of a multi-seed parent
    artifact_dir: Path | None = None  # where embeddings.safetensors was found
    results: dict[str, Any] = field(default_factory=dict)  # the SUMMARY section, from artifact_dir if any
    measured: Metrics = field(default_factory=Metrics)  # the typed records (split and tags)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def multi_seed(self) -> bool:
        return bool(self.seeds)

    @property
    def distance(self) -> str:
        return self.config.get("distance", "l2")

    @property
    def side_info(self) -> dict[str, Any]:
        """The ``[config.side_info]`` table: ``method``, ``dim``, ..."""
        return self.config.get("side_info", {})

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.results.get("classes", [])]

    @property
    def description(self) -> str:
        return self.results.get("description", "")

    @property
    def has_embeddings(self) -> bool:
        return self.artifact_dir is not None

    @functools.cached_property
    def embeddings(self) -> dict[str, torch.Tensor]:
        """The tensors of ``embeddings.safetensors`` (gallery embeddings, labels, projections...)."""
        if self.artifact_dir is None:
            raise DataNotFoundError(
                f"FCT run {self.path} has no {EMBEDDINGS} (nor has any of its seed folders); "
                "re-run the experiment to get embeddings, projections and neighbours"
            )
        tensors, metadata = load_checkpoint(
            self.artifact_dir / EMBEDDINGS, tensors=EMBEDDING_TENSORS, optional_metadata={"classes": list}
        )
        self.results.setdefault("classes", metadata.get("classes", []))
        index = tensors.get("projection_index")
        if (
            index is not None
            and len(index)
            and not 0 <= int(index.min()) <= int(index.max()) < len(tensors["new"])
        ):
            raise CheckpointError(
                f"{self.artifact_dir / EMBEDDINGS}: projection_index points outside the gallery of "
                f"{len(tensors['new'])} images; re-run the experiment to write it again"
            )
        return tensors

    @property
    def has_images(self) -> bool:
        return "images" in self.embeddings

    @property
    def backfill_speedup(self) -> float | None:
        """How many times faster transforming the old gallery was than re-embedding it: the run's
        ``cost/backfill_speedup``, else (runs that did not record it) re-embed seconds over transform
        seconds; None when the run timed no backfill."""
        costs = cost_summary(self)
        if "backfill_speedup" in costs:
            return costs["backfill_speedup"]
        if "backfill_reembed_s" not in costs or "backfill_transform_s" not in costs:
            return None
        return costs["backfill_reembed_s"] / max(costs["backfill_transform_s"], 1e-12)

    @property
    def transformation_macs_share(self) -> float | None:
        """The transformation's multiply-accumulates as a share of the new model's (None when unrecorded)."""
        costs = cost_summary(self)
        if "transformation_macs" not in costs or "new_model_macs" not in costs:
            return None
        return costs["transformation_macs"] / max(costs["new_model_macs"], 1)

    @functools.cached_property
    def upgrade(self) -> dict[str, Any]:
        """The upgrade study (policies, paired-set sweep, backfilling curves) of this run or, for a
        multi-seed parent, of its first seed that has one; {} for runs made before it existed."""
        for folder in [self.path, *self.seeds]:
            try:
                return read_result(folder, UPGRADE)
            except PlaygroundError:
                continue
        return {}

    def label_name(self, label: int) -> str:
        classes = self.classes
        return classes[label] if 0 <= label < len(classes) else str(label)


def read_summary(folder: Path) -> dict[str, Any]:
    """The run's :data:`SUMMARY` section (from ``fct_results.json`` for older runs); {} when it has none.
    A section of the wrong shape is a :class:`DataFormatError` naming the folder and the key."""
    try:
        summary = read_result(folder, SUMMARY, legacy=LEGACY_SUMMARY)
    except PlaygroundError:
        return {}
    return check_fields(
        summary, f"the {SUMMARY} results of {folder}", optional=SUMMARY_FIELDS, error=DataFormatError
    )


def load_fct_run(path: str | Path) -> FCTRun:
    """Read an FCT run folder or a multi-seed parent; clear errors for anything else."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"run folder {path} does not exist; list runs with `playground runs`")
    data = read_run_config(path)
    experiment = data.get("experiment", "?")
    if experiment != EXPERIMENT:
        raise DataFormatError(
            f"{path.name} is a {experiment!r} run, not an FCT run; "
            "pick a run made by recipes/fct_fashion.toml or the FCT page"
        )
    measured = with_legacy_tags(load_run(path).measured)
    metrics = measured.values
    if not measured.select(case=...):
        raise DataNotFoundError(
            f"FCT run {path.name} has no retrieval metrics in metrics.json; "
            "it may still be running or was interrupted, so re-run it"
        )
    seeds = seed_folders(path)
    artifact_dir = next((f for f in [path, *seeds] if (f / EMBEDDINGS).is_file()), None)
    folders = [artifact_dir] if artifact_dir else [path, *seeds]
    summary = next((found for folder in folders if (found := read_summary(folder))), {})
    config = rename_keys(data.get("config", {}), str(path), Config.RENAMED_KEYS, notify=False)
    return FCTRun(path, metrics, config, seeds, artifact_dir, summary, measured)


def with_legacy_tags(measured: Metrics) -> Metrics:
    """Runs made before metrics carried tags: the reader for that old layout, the one place that reads
    a parameter out of an old name (``side_info/dim_32/top1``, ``cost/...``, ``retrieval/<case>/...``)."""
    if measured.tags:
        return measured
    for name in measured.values:
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "side_info" and (dim := re.fullmatch(r"dim_(\d+)", parts[1])):
            measured.tags[name] = {"side_info_dim": int(dim[1]), "measure": parts[2]}
        elif len(parts) == 2 and parts[0] == "cost":
            measured.tags[name] = {"cost": parts[1]}
        elif len(parts) == 3 and parts[0] == "retrieval":
            measured.tags[name] = {"case": parts[1], "measure": parts[2]}
    return measured


def find_fct_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The FCT runs (single or multi-seed) under ``root`` (default the playground home), newest first."""
    return list_runs(root, EXPERIMENT)


# --------------------------------------------------------------------- what the charts draw


def _with_std(metrics: dict[str, float], name: str, key: str) -> dict[str, float]:
    """``{key: value}`` plus ``{key_std: std}`` when the run aggregated seeds."""
    row = {key: metrics[name]}
    if f"{name}:std" in metrics:
        row[f"{key}_std"] = metrics[f"{name}:std"]
    return row


def compatibility_rows(run: FCTRun) -> list[dict[str, Any]]:
    """One row per case (paper order): case, method, query, gallery, top1, top5, mAP (+ ``_std``)."""
    rows = []
    for case, method, query, gallery in ROWS:
        names = {key: f"retrieval/{case}/{key}" for key in ("top1", "top5", "mAP")}
        if not all(name in run.metrics for name in names.values()):
            continue
        row = {"case": case, "method": method, "query": query, "gallery": gallery}
        for key, name in names.items():
            row |= _with_std(run.metrics, name, key)
        rows.append(row)
    return rows


def tradeoff_rows(run: FCTRun) -> list[dict[str, Any]]:
    """The side-info sweep, by size: dim (0 = no side-info), bytes, top1, mAP (+ ``_std``); top5 if known."""
    sweep = run.results.get("sweep", [])
    top5 = {
        r["dim"]: r["top5"]
        for r in sweep
        if isinstance(r.get("dim"), int) and isinstance(r.get("top5"), (int, float))
    }
    rows = []
    for dim, names in sweep_names(run.measured).items():
        if "bytes" not in names:
            continue
        row = {"dim": dim, "bytes": run.metrics[names["bytes"]]}
        for key in ("top1", "mAP"):
            if key in names:
                row |= _with_std(run.metrics, names[key], key)
        if dim in top5 and not run.multi_seed:  # a seed's top-5 is not the parent's mean
            row["top5"] = top5[dim]
        rows.append(row)
    return rows


def cost_summary(run: FCTRun) -> dict[str, float]:
    """The ``cost/...`` metrics without the prefix (means for a multi-seed run)."""
    return {record.tags["cost"]: record.value for record in run.measured.select(cost=...)}


def projection_points(
    run: FCTRun, views: tuple[str, ...] = ("new", "old", "fct", "fct_noside")
) -> tuple[dict[str, list[list[float]]], list[int]]:
    """The gallery on the new model's PCA plane: ``({view: [[x, y], ...]}, labels)``, the points of
    every view in the same order (the run's ``projection_index`` sample of the test set)."""
    tensors = run.embeddings
    missing = [v for v in views if f"projection_{v}" not in tensors]
    if missing or "projection_index" not in tensors:
        raise DataFormatError(
            f"{run.artifact_dir / EMBEDDINGS} has no 2-D projection for "
            f"{', '.join(missing) or 'its index'}; re-run the experiment to write one"
        )
    labels = tensors["labels"][tensors["projection_index"]].tolist()
    return {view: tensors[f"projection_{view}"].float().tolist() for view in views}, labels


# --------------------------------------------------------------------- neighbours


@dataclass
class Neighbours:
    """The k nearest gallery items of one query, nearest first."""

    query_index: int
    query_label: int
    gallery: str
    indices: list[int]
    labels: list[int]
    distances: list[float]

    @property
    def same_class(self) -> list[bool]:
        return [label == self.query_label for label in self.labels]


def gallery_size(run: FCTRun) -> int:
    return int(run.embeddings["labels"].shape[0])


def neighbours(run: FCTRun, query_index: int, gallery: str, k: int = 5) -> Neighbours:
    """The ``k`` nearest items of ``gallery`` to the new model's embedding of image ``query_index``.

    ``gallery`` is ``"new"`` (full backfill), ``"old"`` (the raw old gallery, incompatible),
    ``"fct"`` (transformed with side-info), ``"fct_noside"`` or ``"bct"``. The query's own
    gallery entry is left out, as in the retrieval evaluation; the run's distance is used.
    """
    if gallery not in GALLERIES:
        raise ConfigError(f"unknown gallery {gallery!r}; choose one of {', '.join(GALLERIES)}")
    size = gallery_size(run)
    if not 0 <= query_index < size:
        raise ConfigError(
            f"query index {query_index} is out of range; the gallery has {size} images (0-{size - 1})"
        )
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    tensors = run.embeddings
    query = tensors["new"][query_index : query_index + 1]
    indices, dist = nearest(
        query,
        tensors[gallery],
        k=min(k, size - 1),
        distance=run.distance,
        exclude=torch.tensor([query_index]),
    )
    labels = tensors["labels"]
    return Neighbours(
        query_index,
        int(labels[query_index]),
        gallery,
        indices[0].tolist(),
        labels[indices[0]].tolist(),
        dist[0].tolist(),
    )


def image(run: FCTRun, index: int) -> torch.Tensor:
    """Test image ``index`` as a float ``(C, H, W)`` tensor in [0, 1] (the run kept thumbnails)."""
    images = run.embeddings.get("images")
    if images is None:
        raise DataNotFoundError(f"FCT run {run.name} kept no images (the test set was too large to store)")
    return images[index].float() / 255.0
