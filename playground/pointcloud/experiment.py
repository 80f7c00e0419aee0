"""Cuboid proposals on synthetic LiDAR scenes, scored against their exact ground truth.

``recipes/pointcloud_proposals.toml`` makes ``scenes`` frames as its ``[scene]`` section describes
(:mod:`playground.pointcloud.scenes`, seeds ``seed, seed + 1, ...``), runs the proposal pipeline with
its ``[proposals]`` section (:mod:`playground.pointcloud.proposals`: voxel grid, RANSAC ground,
DBSCAN, L-shape boxes, class default sizes) on each, and matches the
car and pedestrian proposals one-to-one with the ground truth at bird's-eye IoU >= ``iou_threshold``
(:mod:`playground.pointcloud.evaluation`; boxes with fewer than ``min_gt_points`` returns are
ignored, as KITTI's DontCare).

Timing: one warm-up call first (it imports open3d), then every frame is proposed
``timing_repeats`` times; a frame's time is the median, scaled to 100,000 points.

Metrics: ``proposals/recall_bev50``, ``proposals/precision_bev50`` (the number is the threshold
in percent), per class ``proposals/<label>/recall_bev50`` ..., ``proposals/mean_bev_iou``,
``proposals/recall_3d50``, ``proposals/seconds_per_100k_points`` (median over frames) and
``..._max``, per stage ``proposals/stage_seconds/<stage>``, and ``scenes/points_per_frame``.
Average precision as KITTI computes it (AP|R40 over the proposals' scores,
:mod:`playground.pointcloud.average_precision`): ``detect/geometric/<label>/ap_bev50``, ``ap_bev70``,
``ap_3d50`` and ``ap_3d70``. The annotators' number, ``edits/<start>/<kind>_per_frame``: the boxes
accepted, adjusted, added and deleted to reach the ground truth from ``nothing`` or from the
``geometric`` proposals (:func:`~playground.pointcloud.evaluation.annotator_edits`).
The run folder also holds ``bev.png`` (one frame, :mod:`playground.pointcloud.charts`), the proposals
and ground truth as nuScenes-style JSON, and the proposals as KITTI ``label_2`` files.

With a ``[detector]`` that trains (``steps > 0``) or loads (``checkpoint``) the learned detector
(:mod:`playground.pointcloud.learned`, ``recipes/pointcloud_detector.toml``), the run also scores
its boxes as proposer ``learned`` (``detect/learned/<label>/...``, ``edits/learned/...`` from its
boxes above ``prelabel_score``), repeats every AP and edit metric under ``other_sensor/`` for the same
scenes seen by ``[detector.other_sensor]``, times the detector in PyTorch and ONNX Runtime
(:mod:`playground.pointcloud.learned_report`), and saves ``detector.safetensors``, ``detector.onnx``,
``detections.json`` and ``detector_training.png``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import ClassVar

import numpy as np

from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress, report
from playground.core.runs import Metrics, Result, RunDir, format_number, markdown_table
from playground.errors import ConfigError
from playground.pointcloud import learned
from playground.pointcloud.average_precision import class_ap
from playground.pointcloud.charts import bev_chart, training_chart
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.detector import load_detector
from playground.pointcloud.evaluation import EDIT_KINDS, Matching, annotator_edits, match_frame
from playground.pointcloud.export import to_nuscenes, write_json, write_kitti
from playground.pointcloud.learned import DetectorConfig
from playground.pointcloud.learned_report import add_detector_metrics, detector_sections
from playground.pointcloud.proposals import ProposalParams, propose
from playground.pointcloud.scenes import Scene, SceneSpec, make_scene

EXPERIMENT = "pointcloud"
LABELS = ("car", "pedestrian")
STAGES = ("voxel", "ground", "cluster", "fit")
AP_SETTINGS = (("bev", 0.5), ("bev", 0.7), ("3d", 0.5), ("3d", 0.7))  # KITTI's IoU for pedestrians and cars
OLD_SCENE_KEYS = "target_points rings cars pedestrians poles walls object_range noise dropout".split()
OLD_PROPOSAL_KEYS = "voxel_size ground_threshold eps min_points min_cluster_points".split()


@dataclasses.dataclass
class Config(RunConfig):
    """``scenes`` frames as the ``[scene]`` section (:class:`SceneSpec`, ``--set scene.cars=20``)
    describes, proposed with the ``[proposals]`` section (:class:`ProposalParams`,
    ``--set proposals.eps=0.8``); both sections' ``seed`` comes from the run's ``seed``."""

    # the flat keys of runs and recipes made before the [scene] and [proposals] sections (read with a notice)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        **{key: f"scene.{key}" for key in OLD_SCENE_KEYS},
        **{key: f"proposals.{key}" for key in OLD_PROPOSAL_KEYS},
    }
    name: str = "pointcloud_proposals"
    scenes: int = 10
    scene: SceneSpec = dataclasses.field(default_factory=SceneSpec)
    min_gt_points: int = 20  # ground truth with fewer returns is ignored (DontCare)
    iou_threshold: float = 0.5
    proposals: ProposalParams = dataclasses.field(default_factory=ProposalParams)
    timing_repeats: int = 3
    plot_scene: int = 0  # which frame bev.png shows
    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)

    def __post_init__(self):
        super().__post_init__()
        for key in ("scenes", "timing_repeats"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if not 0 < self.iou_threshold <= 1:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if not 0 <= self.plot_scene < self.scenes:
            raise ConfigError(
                f"plot_scene must be a frame index below scenes = {self.scenes}, got {self.plot_scene}"
            )
        if self.min_gt_points < 0:
            raise ConfigError(f"min_gt_points must be >= 0, got {self.min_gt_points}")
        for section, how in (("scene", " (frame i: seed + i)"), ("proposals", "")):
            if getattr(self, section).seed:
                raise ConfigError(f"{section}.seed follows the run's seed{how}; set seed instead")

    @property
    def tag(self) -> str:
        """``50`` for a threshold of 0.5 (metric names read ``recall_bev50``)."""
        return f"{round(self.iou_threshold * 100)}"


@dataclasses.dataclass
class Frame:
    """One scene and what the proposals made of it."""

    name: str
    scene: Scene
    proposals: list[Cuboid]
    seconds: float  # median over the timing repeats
    stages: dict[str, float]  # seconds per stage, of the last repeat
    bev: dict[str, Matching]
    cube: dict[str, Matching]  # matched at 3D IoU
    learned: list[Cuboid] = dataclasses.field(default_factory=list)  # the learned detector's boxes

    def boxes(self, proposer: str) -> list[Cuboid]:
        """The ``geometric`` proposals or the ``learned`` detector's boxes."""
        return self.proposals if proposer == "geometric" else self.learned

    @property
    def seconds_per_100k(self) -> float:
        return self.seconds * 100_000 / max(len(self.scene), 1)


def timed_proposals(
    points: np.ndarray, params: ProposalParams, repeats: int
) -> tuple[list[Cuboid], float, dict]:
    """The proposals, the median wall time over ``repeats`` runs and the last run's stage times."""
    times, stages, boxes = [], {}, []
    for _ in range(repeats):
        stages = {}
        began = time.perf_counter()
        boxes = propose(points, params, timings=stages)
        times.append(time.perf_counter() - began)
    return boxes, statistics.median(times), stages


def run_frame(config: Config, index: int, scene: Scene, repeats: int | None = None) -> Frame:
    """Propose on frame ``index`` (``scene``), timed, and match the proposals with its ground truth."""
    params = dataclasses.replace(config.proposals, seed=config.seed)
    boxes, seconds, stages = timed_proposals(scene.points, params, repeats or config.timing_repeats)
    truth = scene.ground_truth(LABELS)
    kwargs = dict(labels=LABELS, threshold=config.iou_threshold, min_points=config.min_gt_points)
    return Frame(
        f"{config.seed + index:06d}",
        scene,
        boxes,
        seconds,
        stages,
        match_frame(truth, boxes, kind="bev", **kwargs),
        match_frame(truth, boxes, kind="3d", **kwargs),
    )


def _total(frames: list[Frame], label: str | None = None, kind: str = "bev") -> Matching:
    out = Matching()
    for frame in frames:
        table = frame.bev if kind == "bev" else frame.cube
        for name, matching in table.items():
            if label is None or name == label:
                out = out + matching
    return out


def _add(metrics: Metrics, name: str, value: float, measure: str, **tags) -> None:
    """A score (a fraction) against the ground truth, unless NaN; every frame is evaluation: ``test``."""
    if not math.isnan(value):
        metrics.add(name, value, "fraction", "test", **tags, measure=measure)


def metrics_of(config: Config, frames: list[Frame], other: list[Frame] = ()) -> Metrics:
    """Scores tagged ``iou`` (``bev`` or ``3d``), ``iou_threshold``, ``measure`` and per class
    ``class_name``; timings (per ``stage``) and counts are about no split."""
    metrics, tag = Metrics(), config.tag
    bev, cube = (dict(iou=kind, iou_threshold=config.iou_threshold) for kind in ("bev", "3d"))
    overall = _total(frames)
    _add(metrics, f"proposals/recall_bev{tag}", overall.recall, "recall", **bev)
    _add(metrics, f"proposals/precision_bev{tag}", overall.precision, "precision", **bev)
    _add(metrics, "proposals/mean_bev_iou", overall.mean_iou, "mean_iou", **bev)
    _add(metrics, f"proposals/recall_3d{tag}", _total(frames, kind="3d").recall, "recall", **cube)
    for label in LABELS:
        part, of = _total(frames, label), dict(bev, class_name=label)
        _add(metrics, f"proposals/{label}/recall_bev{tag}", part.recall, "recall", **of)
        _add(metrics, f"proposals/{label}/precision_bev{tag}", part.precision, "precision", **of)
        truth = dict(class_name=label, measure="ground_truth")
        metrics.add(f"proposals/{label}/ground_truth", part.ground_truth, "count", "test", **truth)
    proposers = ("geometric", "learned") if config.detector.enabled else ("geometric",)
    for prefix, group in (("", frames), ("other_sensor/", other)):
        if not group:
            continue
        for proposer in proposers:
            add_average_precision(metrics, proposer, group, config.min_gt_points, prefix)
        starts = {
            "nothing": [[] for _ in group],
            **{p: [prelabels(f, p, config) for f in group] for p in proposers},
        }
        add_edits(metrics, starts, group, config, prefix)
    per_100k = [f.seconds_per_100k for f in frames]
    name = "proposals/seconds_per_100k_points"
    metrics.add(name, statistics.median(per_100k), "s", measure="seconds_per_100k_points")
    metrics.add(f"{name}_max", max(per_100k), "s", measure="seconds_per_100k_points_max")
    for stage in STAGES:
        median = statistics.median(f.stages.get(stage, 0.0) for f in frames)
        metrics.add(f"proposals/stage_seconds/{stage}", median, "s", stage=stage, measure="stage_seconds")
    per_frame = statistics.fmean(len(f.proposals) for f in frames)
    metrics.add("proposals/per_frame", per_frame, "count", measure="proposals_per_frame")
    points = statistics.fmean(len(f.scene) for f in frames)
    metrics.add("scenes/points_per_frame", points, "count", measure="points_per_frame")
    metrics.add("scenes/frames", len(frames), "count", measure="frames")
    return metrics


def prelabels(frame: Frame, proposer: str, config: Config) -> list[Cuboid]:
    """What an annotator starts from: every geometric proposal, or the learned boxes at or above
    ``detector.prelabel_score``."""
    if proposer == "geometric":
        return frame.proposals
    return [box for box in frame.learned if box.score >= config.detector.prelabel_score]


def add_average_precision(
    metrics: Metrics, proposer: str, frames: list[Frame], min_points: int, prefix: str = ""
) -> None:
    """``<prefix>detect/<proposer>/<label>/ap_<bev|3d><50|70>``: AP|R40 over every frame, per class."""
    pairs = [(frame.scene.ground_truth(LABELS), frame.boxes(proposer)) for frame in frames]
    for label in LABELS:
        for kind, threshold in AP_SETTINGS:
            value = class_ap(pairs, label, threshold, kind, min_points)
            tags = dict(iou=kind, iou_threshold=threshold, class_name=label, proposer=proposer)
            name = f"{prefix}detect/{proposer}/{label}/ap_{kind}{round(100 * threshold)}"
            _add(metrics, name, value, "ap", **tags, sensor=prefix.rstrip("/") or "run")


def add_edits(
    metrics: Metrics, starts: dict[str, list[list[Cuboid]]], frames: list[Frame], config, prefix: str = ""
) -> None:
    """``<prefix>edits/<start>/<kind>_per_frame`` and ``.../edits_per_frame`` (all but accepted)."""
    for start, boxes in starts.items():
        per_frame = [
            annotator_edits(f.scene.ground_truth(LABELS), b, LABELS, config.min_gt_points)
            for f, b in zip(frames, boxes)
        ]
        for kind in (*EDIT_KINDS, "edits"):
            values = [sum(c[k] for k in EDIT_KINDS[1:]) if kind == "edits" else c[kind] for c in per_frame]
            name = f"{prefix}edits/{start}/{kind}_per_frame"
            tags = dict(start=start, measure=f"{kind}_per_frame", sensor=prefix.rstrip("/") or "run")
            metrics.add(name, statistics.fmean(values), "count", "test", **tags)


def write_outputs(run_dir: RunDir, config: Config, frames: list[Frame], trained=None) -> None:
    """bev.png, proposals.json and ground_truth.json (nuScenes-style), label_2/ (KITTI) of the proposals;
    with a trained detector its boxes in bev.png, ``detections.json`` and ``detector_training.png``."""
    shown = frames[config.plot_scene]
    chart = bev_chart(
        shown.scene.points,
        shown.scene.ground_truth(LABELS + ("pole",)),
        shown.proposals,
        extent=config.scene.object_range + 5,
        title=f"frame {shown.name}: truth (solid), proposals (dashed red)"
        + (f", learned ≥ {config.detector.prelabel_score:g} (dashed green)" if trained else ""),
        learned=prelabels(shown, "learned", config),
    )
    run_dir.save_chart(chart)
    if trained is not None:
        write_json(run_dir.path / "detections.json", to_nuscenes({f.name: f.learned for f in frames}))
    if trained is not None and trained.log is not None:
        run_dir.save_chart(training_chart(trained.log.losses, trained.log.heatmap, trained.log.regression))
    write_json(run_dir.path / "proposals.json", to_nuscenes({f.name: f.proposals for f in frames}))
    write_json(run_dir.path / "ground_truth.json", to_nuscenes({f.name: f.scene.cuboids for f in frames}))
    write_kitti(run_dir.path / "label_2", {f.name: f.proposals for f in frames})


def report_text(config: Config, metrics: Metrics, frames: list[Frame], other: list[Frame] = ()) -> str:
    values, tag, scene = metrics.values, config.tag, config.scene

    def cell(name: str, scale: float = 1.0) -> str:
        return format_number(values[name] * scale) if name in values else "n/a"

    rows = [
        [
            label,
            int(_total(frames, label).ground_truth),
            _total(frames, label).matched,
            cell(f"proposals/{label}/recall_bev{tag}"),
            cell(f"proposals/{label}/precision_bev{tag}"),
        ]
        for label in LABELS
    ]
    rows.append(
        [
            "all",
            _total(frames).ground_truth,
            _total(frames).matched,
            cell(f"proposals/recall_bev{tag}"),
            cell(f"proposals/precision_bev{tag}"),
        ]
    )
    timing = [[stage, cell(f"proposals/stage_seconds/{stage}", 1000)] for stage in STAGES]
    ap_rows = [
        [label, *(cell(f"detect/geometric/{label}/ap_{k}{round(100 * t)}", 100) for k, t in AP_SETTINGS)]
        for label in LABELS
    ]
    ap_header = ["class", *(f"AP {k.upper()} IoU {t:g} (%)" for k, t in AP_SETTINGS)]
    edit_rows = [
        [start, *(cell(f"edits/{start}/{kind}_per_frame") for kind in (*EDIT_KINDS, "edits"))]
        for start in ("nothing", "geometric")
    ]
    per_frame = [
        [
            f.name,
            len(f.scene),
            len(f.proposals),
            format_number(f.seconds * 1000),
            format_number(f.seconds_per_100k),
        ]
        for f in frames
    ]
    return (
        "\n\n".join(
            [
                f"# Cuboid proposals on synthetic LiDAR scenes: {config.name}",
                f"{len(frames)} frames of about {scene.target_points:,} points ({scene.rings} rings), "
                f"{scene.cars} cars, {scene.pedestrians} pedestrians, {scene.poles} poles "
                f"and {scene.walls} walls each. "
                "A proposal counts when it has the ground truth's label and bird's-eye IoU >= "
                f"{config.iou_threshold}; "
                f"ground truth with fewer than {config.min_gt_points} returns is ignored.",
                markdown_table(
                    [
                        "class",
                        "ground truth",
                        "matched",
                        f"recall (BEV IoU ≥ {config.iou_threshold:g})",
                        f"precision (BEV IoU ≥ {config.iou_threshold:g})",
                    ],
                    rows,
                ),
                f"Matched pairs: mean BEV IoU {cell('proposals/mean_bev_iou')}, "
                f"recall at 3D IoU {config.iou_threshold}: {cell(f'proposals/recall_3d{tag}')}.",
                "## Average precision (KITTI's AP|R40, over the proposals' scores)",
                markdown_table(ap_header, ap_rows),
                "## The annotators' edits per frame, to reach the ground truth",
                "Accepted: 3D IoU at least 0.7 (cars) or 0.5 (pedestrians); adjusted: a looser match; "
                "added: a box drawn from scratch; deleted: a pre-label with nothing under it.",
                markdown_table(["starting from", *EDIT_KINDS, "edits (all but accepted)"], edit_rows),
                f"**Time per 100k points: {cell('proposals/seconds_per_100k_points')} s** "
                f"(median over frames; slowest {cell('proposals/seconds_per_100k_points_max')} s; "
                f"after one warm-up call, median of {config.timing_repeats} repeats per frame).",
                "## Stages (median ms per frame)",
                markdown_table(["stage", "ms"], timing),
                "## Frames",
                markdown_table(["frame", "points", "proposals", "ms", "s per 100k points"], per_frame),
                f"## Bird's-eye view of frame {frames[config.plot_scene].name}",
                "![bird's-eye view](bev.png)",
                "Proposals: `proposals.json` (nuScenes-style), `label_2/` (KITTI, identity calibration); "
                "ground truth: `ground_truth.json`.",
                *(
                    detector_sections(values, LABELS, AP_SETTINGS, config.detector.other_sensor, len(other))
                    if config.detector.enabled
                    else []
                ),
            ]
        )
        + "\n"
    )


@dataclasses.dataclass
class PointcloudResults:
    """What one run made, in memory: every frame with its scene, proposals, timings and matchings."""

    frames: list[Frame]
    other_sensor: list[Frame] = dataclasses.field(default_factory=list)


def load(config: Config, device=None, progress: Progress = None) -> list[Scene]:
    """The ``scenes`` synthetic frames (seeds ``seed, seed + 1, ...``), each from its own generator;
    a detector checkpoint to evaluate is checked first, so a bad one fails before any work."""
    if config.detector.checkpoint:
        load_detector(config.detector.checkpoint, tuple(config.detector.point_features))
    scenes = []
    for index in range(config.scenes):
        report(progress, "make scenes", index, config.scenes)
        scenes.append(make_scene(dataclasses.replace(config.scene, seed=config.seed + index)))
    report(progress, "make scenes", config.scenes, config.scenes)
    return scenes


def steps(run: Run[Config], scenes: list[Scene]) -> Finished:
    """Propose on every frame (timed), score against the ground truth, write the plot and the boxes."""
    config, progress = run.config, run.progress
    propose(
        make_scene(SceneSpec(seed=config.seed, target_points=2000, rings=16)).points
    )  # warm-up: imports open3d
    frames = []
    for index, scene in enumerate(scenes):
        report(progress, "scenes", index, config.scenes)
        frames.append(run_frame(config, index, scene))
    report(progress, "scenes", config.scenes, config.scenes)
    other, trained, timing = ([], None, None)
    if config.detector.enabled:
        other, trained, timing = learned.evaluate(run, frames, run_frame)
    metrics = metrics_of(config, frames, other)
    if trained is not None:
        add_detector_metrics(metrics, timing, trained.seconds, trained.log and trained.log.losses)
    write_outputs(run.dir, config, frames, trained)
    return Finished(metrics, report_text(config, metrics, frames, other), PointcloudResults(frames, other))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Generate the scenes, propose, score, and write the run folder."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)
