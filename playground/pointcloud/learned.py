"""The learned detector inside a pointcloud run: its config section, training or loading it,
detecting on frames, timing it in PyTorch and ONNX Runtime, and exporting it.

``[detector]`` with ``steps > 0`` trains a :class:`~playground.pointcloud.detector.PillarNet` on
``training_scenes`` domain-randomised scenes (seeds far from the evaluation frames'); with
``checkpoint`` it loads a trained one instead. Either way the run saves ``detector.safetensors``
and ``detector.onnx`` and evaluates the learned boxes beside the geometric proposals, on the run's
frames and on the same scenes seen by ``[detector.other_sensor]`` (fewer rings, more noise).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from playground.core.progress import Progress, report
from playground.errors import ConfigError, PlaygroundError
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.detector import (
    LAYOUTS,
    Grid,
    PillarNet,
    decode,
    load_detector,
    pillarize,
    point_array,
    save_detector,
)
from playground.pointcloud.detector_training import (
    Randomisation,
    TrainingLog,
    train_detector,
    training_scenes,
)
from playground.pointcloud.scenes import Scene, SceneSpec, make_scene

TRAINING_SEED_OFFSET = 1_000_000  # training scenes never share a seed with evaluation frames


@dataclasses.dataclass
class Sensor:
    """The other sensor the detector is tested on: the run's scenes seen with ``rings`` rings,
    range noise ``noise`` and ``dropout``."""

    rings: int = 32
    noise: float = 0.05
    dropout: float = 0.05

    def spec(self, base: SceneSpec) -> SceneSpec:
        return dataclasses.replace(base, rings=self.rings, noise=self.noise, dropout=self.dropout)


@dataclasses.dataclass
class DetectorConfig:
    """The ``[detector]`` section: ``steps = 0`` and no ``checkpoint`` leave the learned detector out."""

    steps: int = 0  # training steps (batches); 0 trains nothing
    checkpoint: str = ""  # a trained detector.safetensors to evaluate instead of training one
    training_scenes: int = 200
    batch_size: int = 2
    lr: float = 3e-3
    width: int = 32  # pillar feature channels; the backbone has 2x and 4x that
    extent: float = 32.0  # metres each side of the sensor
    pillar: float = 0.4  # metres (the heads see cells twice as wide)
    max_points: int = 16  # per pillar
    max_pillars: int = 30000
    point_features: list[str] = dataclasses.field(default_factory=lambda: list(LAYOUTS[0]))
    min_points: int = 5  # training targets: objects with at least this many returns
    min_score: float = 0.1  # boxes below this confidence are not kept (average precision sees the rest)
    prelabel_score: float = 0.3  # annotators are shown the boxes at or above this confidence
    other_scenes: int = 0  # frames seen by the other sensor (0: as many as the run's scenes)
    timing_repeats: int = 3
    workers: int = 0  # processes that make training batches (0: the training process itself)
    randomise: Randomisation = dataclasses.field(default_factory=Randomisation)
    other_sensor: Sensor = dataclasses.field(default_factory=Sensor)

    def __post_init__(self):
        for key in ("steps", "other_scenes", "workers"):
            if getattr(self, key) < 0:
                raise ConfigError(f"detector.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("training_scenes", "batch_size", "width", "timing_repeats"):
            if getattr(self, key) < 1:
                raise ConfigError(f"detector.{key} must be at least 1, got {getattr(self, key)}")
        if tuple(self.point_features) not in LAYOUTS:
            known = [list(x) for x in LAYOUTS]
            raise ConfigError(f"detector.point_features must be one of {known}, got {self.point_features}")
        if not (self.lr > 0 and 0 <= self.min_score <= self.prelabel_score < 1):
            raise ConfigError("detector.lr must be > 0 and 0 <= detector.min_score <= prelabel_score < 1")
        _ = self.grid  # checks the grid's numbers

    @property
    def enabled(self) -> bool:
        return self.steps > 0 or bool(self.checkpoint)

    @property
    def grid(self) -> Grid:
        return Grid(self.extent, self.pillar, max_points=self.max_points, max_pillars=self.max_pillars)


def detector_workers(wanted: int) -> int:
    """``wanted`` batch-making processes, at most one fewer than this machine's cores."""
    return max(0, min(wanted, (os.cpu_count() or 1) - 1))


@dataclasses.dataclass
class Trained:
    """The detector a run evaluates, and its training log (None when loaded from a checkpoint)."""

    model: PillarNet
    log: TrainingLog | None
    seconds: float


def obtain(
    config: DetectorConfig,
    scene: SceneSpec,
    seed: int,
    progress: Progress,
    device: str | torch.device = "cpu",
) -> Trained:
    """Train the detector as ``config`` says (on ``device``), or load ``config.checkpoint``. Either way
    the detector comes back on the CPU, where it is evaluated and timed."""
    began = time.perf_counter()
    if config.checkpoint:
        model = load_detector(config.checkpoint, tuple(config.point_features))
        return Trained(model, None, time.perf_counter() - began)
    workers = detector_workers(config.workers)
    scenes = training_scenes(
        scene, config.randomise, config.training_scenes, seed + TRAINING_SEED_OFFSET, progress, workers
    )
    torch.manual_seed(seed)
    model = PillarNet(config.grid, tuple(config.point_features), config.width)
    log = train_detector(
        model,
        scenes,
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
        min_points=config.min_points,
        progress=progress,
        device=device,
        workers=workers,
    )
    return Trained(model, log, time.perf_counter() - began)


def evaluate(run, frames: list, run_frame: Callable) -> tuple[list, Trained, dict]:
    """Train (or load) the detector, detect on the run's frames and on the same scenes seen by the
    other sensor (proposed on too, by ``run_frame(config, index, scene, repeats)``), save it as
    safetensors and ONNX, and time it in both backends: ``(other sensor's frames, detector, timings)``."""
    config, progress, detector = run.config, run.progress, run.config.detector
    trained = obtain(detector, config.scene, config.seed, progress, run.device)
    count, spec = detector.other_scenes or config.scenes, detector.other_sensor.spec(config.scene)
    other = []
    for index in range(count):
        report(progress, "other sensor", index, count)
        other.append(
            run_frame(config, index, make_scene(dataclasses.replace(spec, seed=config.seed + index)), 1)
        )
    report(progress, "other sensor", count, count)
    for group, stage in ((frames, "detect"), (other, "detect on the other sensor")):
        found = detect_all(trained.model, [f.scene for f in group], detector.min_score, progress, stage)
        for frame, boxes in zip(group, found):
            frame.learned = boxes
    _, onnx_path = save(run.dir.path, trained.model, frames[0].scene)
    report(progress, "time the detector", 0, 1)
    timing = time_detector(
        trained.model,
        ort_session(onnx_path),
        [f.scene for f in frames[:3]],
        detector.timing_repeats,
        detector.min_score,
    )
    report(progress, "time the detector", 1, 1)
    return other, trained, timing


def detect(model: PillarNet, scene: Scene, min_score: float) -> list[Cuboid]:
    """The model's boxes on one frame, each with its confidence (none for a frame with no points
    inside the detector's grid)."""
    pillars = pillarize(point_array(scene.points, scene.intensity, model.layout), model.grid)
    if not len(pillars.coords):
        return []
    with torch.no_grad():
        return decode(model(*pillars.tensors()), model.grid, min_score)


def detect_all(
    model: PillarNet, scenes: list[Scene], min_score: float, progress: Progress, stage: str
) -> list[list[Cuboid]]:
    out = []
    for index, scene in enumerate(scenes):
        report(progress, stage, index, len(scenes))
        out.append(detect(model, scene, min_score))
    report(progress, stage, len(scenes), len(scenes))
    return out


def export_detector(model: PillarNet, scene: Scene, path: Path) -> Path:
    """``model`` as ONNX (opset 18) with the pillar count P as a dynamic axis."""
    pillars = pillarize(point_array(scene.points, scene.intensity, model.layout), model.grid)
    example = pillars.tensors()
    names = ["features", "mask", "coords"]
    pillars_axis = torch.export.Dim("pillars", min=2, max=max(model.grid.max_pillars, 3))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.eval(),
                example,
                str(path),
                dynamo=True,
                external_data=False,
                input_names=names,
                output_names=["maps"],
                opset_version=18,
                dynamic_shapes={name: {0: pillars_axis} for name in names},
                verbose=False,
            )
    except Exception as err:  # noqa: BLE001 - the exporter raises many kinds; report one line
        raise PlaygroundError(f"the detector did not export to ONNX: {str(err).splitlines()[0]}") from None
    return path


def ort_session(path: Path):
    """A CPU session on ``path`` with as many threads as torch uses, so the two compare fairly."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_detector(
    model: PillarNet, session, scenes: list[Scene], repeats: int, min_score: float
) -> dict[str, dict[str, float]]:
    """Median milliseconds per 100k points, per backend (``torch``, ``onnxruntime``) and stage
    (``pillarize``, ``network``, ``decode``, ``total``), after two warm-up calls; and the largest
    score difference between the two backends' maps."""
    grid, layout = model.grid, model.layout
    runs = {"torch": lambda t: model(*t), "onnxruntime": lambda t: torch.from_numpy(_ort_run(session, t)[0])}
    times = {backend: {s: [] for s in ("pillarize", "network", "decode", "total")} for backend in runs}
    worst = 0.0
    with torch.no_grad():
        warm = pillarize(point_array(scenes[0].points, scenes[0].intensity, layout), grid).tensors()
        for run in [*runs.values()] * 2:
            run(warm)
        for scene in scenes:
            scale = 100_000 / max(len(scene), 1)
            for backend, run in runs.items():
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    tensors = pillarize(point_array(scene.points, scene.intensity, layout), grid).tensors()
                    t1 = time.perf_counter()
                    maps = run(tensors)
                    t2 = time.perf_counter()
                    decode(maps, grid, min_score)
                    t3 = time.perf_counter()
                    for stage, value in zip(
                        ("pillarize", "network", "decode", "total"), (t1 - t0, t2 - t1, t3 - t2, t3 - t0)
                    ):
                        times[backend][stage].append(1000 * value * scale)
            ours = model(*tensors)
            worst = max(worst, float((ours - torch.from_numpy(_ort_run(session, tensors)[0])).abs().max()))
    out = {b: {s: statistics.median(v) for s, v in stages.items()} for b, stages in times.items()}
    out["parity"] = {"max_abs_difference": worst}
    return out


def _ort_run(session, tensors) -> list[np.ndarray]:
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {name: t.numpy() for name, t in zip(names, tensors)})


def save(run_path: Path, model: PillarNet, scene: Scene) -> tuple[Path, Path]:
    """``detector.safetensors`` and ``detector.onnx`` in the run folder."""
    weights = save_detector(run_path / "detector.safetensors", model)
    return weights, export_detector(model, scene, run_path / "detector.onnx")
