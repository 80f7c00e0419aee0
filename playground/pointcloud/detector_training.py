"""Training the pillar detector on synthetic scenes with domain randomisation.

Domain randomisation (Tobin et al., IROS 2017): train on scenes whose sensor and objects vary
widely, so that a real sensor looks like one more variation. Each training scene draws its ring
count, range noise, dropout and object-size jitter from :class:`Randomisation`'s ranges, and every
step augments its frames as OpenPCDet does (a global turn about z, a flip across x, a global
scale). Targets follow CenterPoint: per class a heatmap with a Gaussian of radius
``max(2, r(l, w))`` (CornerNet's radius for IoU 0.1) at each centre, and at the centre cell the
sub-cell offset, z, log size and (sin 2θ, cos 2θ). The loss is CenterNet's focal loss on the
heatmap plus 0.25 times the L1 loss of the regressions at the centres:

    L_heat = -1/N Σ { (1 - p)^2 log p              where y = 1
                    { (1 - y)^4 p^2 log(1 - p)      otherwise
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing

import numpy as np
import torch

from playground.core.progress import Progress, report
from playground.errors import ConfigError
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.detector import CLASSES, Grid, PillarNet, Pillars, pillarize, point_array
from playground.pointcloud.scenes import Scene, SceneSpec, make_scene

REGRESSION_WEIGHT = 0.25


@dataclasses.dataclass
class Randomisation:
    """The ranges each training scene's sensor and objects are drawn from (uniform; ``rings`` is a
    list to choose from)."""

    rings: list[int] = dataclasses.field(default_factory=lambda: [48, 64])
    noise: list[float] = dataclasses.field(default_factory=lambda: [0.01, 0.03])
    dropout: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.1])
    size_jitter: float = 0.1  # object sizes scaled by U(1 - j, 1 + j)

    def __post_init__(self):
        if not self.rings or min(self.rings) < 1:
            raise ConfigError(f"train.rings must list ring counts >= 1, got {self.rings}")
        for key in ("noise", "dropout"):
            low, high = _pair(getattr(self, key), f"train.{key}")
            if low < 0 or (key == "dropout" and high >= 1):
                raise ConfigError(f"train.{key} must lie in [0, 1) for dropout and >= 0 for noise")
        if not 0 <= self.size_jitter < 1:
            raise ConfigError(f"train.size_jitter must be in [0, 1), got {self.size_jitter}")

    def spec(self, base: SceneSpec, seed: int) -> SceneSpec:
        """``base`` with this scene's sensor and object sizes drawn from the ranges (seeded)."""
        rng = np.random.default_rng([seed, 1])
        return dataclasses.replace(
            base,
            seed=seed,
            rings=int(rng.choice(self.rings)),
            noise=float(rng.uniform(*self.noise)),
            dropout=float(rng.uniform(*self.dropout)),
            size_jitter=self.size_jitter,
        )


def _pair(values, name: str) -> tuple[float, float]:
    if len(values) != 2 or not values[0] <= values[1]:
        raise ConfigError(f"{name} must be [low, high] with low <= high, got {values}")
    return float(values[0]), float(values[1])


def training_scenes(
    base: SceneSpec,
    randomise: Randomisation,
    count: int,
    seed: int,
    progress: Progress = None,
    workers: int = 0,
) -> list[Scene]:
    """``count`` randomised scenes, scene i from seed ``seed + i`` (made by ``workers`` processes)."""
    specs = [randomise.spec(base, seed + index) for index in range(count)]
    scenes = []
    with contextlib.ExitStack() as stack:
        made = map(make_scene, specs)
        if workers:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            made = pool.imap(make_scene, specs, chunksize=4)
        for index, scene in enumerate(made):
            report(progress, "make training scenes", index, count)
            scenes.append(scene)
    report(progress, "make training scenes", count, count)
    return scenes


def augment(
    raw: np.ndarray, boxes: list[Cuboid], rng: np.random.Generator
) -> tuple[np.ndarray, list[Cuboid]]:
    """A global turn about z in [-π, π), a flip across the x axis half the time, a scale in [0.95, 1.05]."""
    angle, flip, scale = rng.uniform(-np.pi, np.pi), rng.random() < 0.5, rng.uniform(0.95, 1.05)
    cos, sin = math.cos(angle), math.sin(angle)
    turn = np.array([[cos, -sin], [sin, cos]], np.float32)
    out = raw.copy()
    out[:, :2] = raw[:, :2] @ turn.T
    if flip:
        out[:, 1] *= -1
    out[:, :3] *= scale
    moved = []
    for box in boxes:
        x, y = turn @ np.array(box.center[:2], np.float32)
        yaw = box.yaw + angle
        if flip:
            y, yaw = -y, -yaw
        centre = (x * scale, y * scale, box.center[2] * scale)
        moved.append(box.with_(center=centre, size=tuple(v * scale for v in box.size), yaw=yaw))
    return out, moved


def gaussian_radius(length: float, width: float, min_overlap: float = 0.1) -> float:
    """CornerNet's radius (in cells): the largest centre shift that keeps IoU >= ``min_overlap``
    for a box of ``length`` x ``width`` cells (the smallest of its three cases)."""
    b1, c1 = length + width, length * width * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2, c2 = 2 * (length + width), (1 - min_overlap) * length * width
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3, c3 = -2 * min_overlap * (length + width), (min_overlap - 1) * length * width
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def targets(boxes: list[Cuboid], grid: Grid) -> dict[str, np.ndarray]:
    """CenterPoint targets on the output grid (half the pillar grid): ``heatmap`` (classes, S, S),
    ``regression`` (8, S, S) (offset x, y; z; log l, w, h; sin 2θ, cos 2θ) and ``centre`` (S, S),
    1 at the cells that carry a regression target."""
    size, cell = grid.cells // 2, 2 * grid.pillar
    heatmap = np.zeros((len(CLASSES), size, size), np.float32)
    regression = np.zeros((8, size, size), np.float32)
    centre = np.zeros((size, size), np.float32)
    rows, cols = np.mgrid[0:size, 0:size]
    for box in boxes:
        u, v = (box.center[0] + grid.extent) / cell, (box.center[1] + grid.extent) / cell
        col, row = int(math.floor(u)), int(math.floor(v))
        if box.label not in CLASSES or not (0 <= col < size and 0 <= row < size):
            continue
        radius = max(2.0, gaussian_radius(box.size[0] / cell, box.size[1] / cell))
        sigma = (2 * radius + 1) / 6
        bump = np.exp(-((cols - col) ** 2 + (rows - row) ** 2) / (2 * sigma**2))
        bump[np.abs(cols - col) > radius] = 0
        bump[np.abs(rows - row) > radius] = 0
        which = CLASSES.index(box.label)
        heatmap[which] = np.maximum(heatmap[which], bump)
        regression[:, row, col] = (
            u - col,
            v - row,
            box.center[2],
            *np.log(box.size),
            math.sin(2 * box.yaw),
            math.cos(2 * box.yaw),
        )
        centre[row, col] = 1.0
    return dict(heatmap=heatmap, regression=regression, centre=centre)


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), summed over cells / centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    pos = -(torch.log(p) * (1 - p) ** 2 * positive).sum()
    neg = -(torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - positive)).sum()
    return (pos + neg) / positive.sum().clamp(min=1)


def detection_loss(maps: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """The focal heatmap loss plus :data:`REGRESSION_WEIGHT` times the L1 of the regressions at
    the centres; also the two parts as floats."""
    classes = len(CLASSES)
    heat = focal_loss(maps[:, :classes], batch["heatmap"])
    centre = batch["centre"].unsqueeze(1)
    error = (maps[:, classes:] - batch["regression"]).abs() * centre
    regress = error.sum() / centre.sum().clamp(min=1)
    return heat + REGRESSION_WEIGHT * regress, dict(heatmap=heat.item(), regression=regress.item())


def collate(frames: list[tuple[Pillars, dict]], grid: Grid) -> tuple[tuple, dict[str, torch.Tensor]]:
    """A batch: every frame's pillars, frame b's coordinates offset by ``b * cells**2``."""
    features = np.concatenate([p.features for p, _ in frames])
    mask = np.concatenate([p.mask for p, _ in frames])
    coords = [pillars.coords + index * grid.cells**2 for index, (pillars, _) in enumerate(frames)]
    inputs = (torch.from_numpy(features), torch.from_numpy(mask), torch.from_numpy(np.concatenate(coords)))
    target = {k: torch.from_numpy(np.stack([t[k] for _, t in frames])) for k in frames[0][1]}
    return inputs, target


def training_frame(
    scene: Scene, grid: Grid, layout: tuple[str, ...], rng: np.random.Generator, min_points: int
) -> tuple[Pillars, dict]:
    """One augmented, pillarized scene and its targets (objects with at least ``min_points`` returns)."""
    raw = point_array(scene.points, scene.intensity, layout)
    raw, boxes = augment(raw, scene.ground_truth(CLASSES, min_points), rng)
    return pillarize(raw, grid, rng), targets(boxes, grid)


@dataclasses.dataclass
class TrainingLog:
    losses: list[float] = dataclasses.field(default_factory=list)
    heatmap: list[float] = dataclasses.field(default_factory=list)
    regression: list[float] = dataclasses.field(default_factory=list)


class TrainingBatches(torch.utils.data.Dataset):
    """Step ``i``'s batch: ``batch_size`` scenes chosen, augmented and pillarized from a generator
    seeded by ``(seed, i)``, so a batch is the same whichever worker process makes it."""

    def __init__(self, scenes, model: PillarNet, steps: int, batch_size: int, seed: int, min_points: int):
        self.scenes, self.grid, self.layout = scenes, model.grid, model.layout
        self.steps, self.batch_size, self.seed, self.min_points = steps, batch_size, seed, min_points

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        rng = np.random.default_rng([self.seed, 2, step])
        count = len(self.scenes)
        chosen = rng.choice(count, size=self.batch_size, replace=count < self.batch_size)
        frames = [
            training_frame(self.scenes[i], self.grid, self.layout, rng, self.min_points) for i in chosen
        ]
        return collate(frames, self.grid)


def train_detector(
    model: PillarNet,
    scenes: list[Scene],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    min_points: int,
    progress: Progress = None,
    device: str | torch.device = "cpu",
    workers: int = 0,
) -> TrainingLog:
    """AdamW with a one-cycle learning rate for ``steps`` steps of ``batch_size`` augmented scenes, on
    ``device``. ``workers`` processes make the batches (pillars on the CPU) while the model trains;
    0 makes them in this process. The model comes back on the CPU in eval mode."""
    torch.manual_seed(seed)
    batches = torch.utils.data.DataLoader(
        TrainingBatches(scenes, model, steps, batch_size, seed, min_points),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.3)
    log = TrainingLog()
    model.to(device).train()
    for step, (inputs, target) in enumerate(batches):
        report(progress, "train detector", step, steps)
        inputs = tuple(t.to(device, non_blocking=True) for t in inputs)
        target = {k: v.to(device, non_blocking=True) for k, v in target.items()}
        loss, parts = detection_loss(model(*inputs, batch=batch_size), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        schedule.step()
        log.losses.append(loss.item())
        log.heatmap.append(parts["heatmap"])
        log.regression.append(parts["regression"])
    report(progress, "train detector", steps, steps)
    model.cpu().eval()
    return log
