"""A learned bird's-eye-view 3D detector: PointPillars' encoder with a CenterPoint head.

PointPillars (Lang et al., CVPR 2019) groups the points into vertical columns ("pillars") on a
bird's-eye-view grid, decorates every point with its offset from the pillar's mean and centre,
runs a small shared network over the points of a pillar and keeps the maximum,

    f_p = max_{i in p} ReLU(BN(W [x_i, y_i, z_i, r_i, x_i - x̄_p, y_i - ȳ_p, z_i - z̄_p, x_i - x_p, y_i - y_p]))

and scatters the pillar features back to the grid as a pseudo-image for a 2D CNN. CenterPoint
(Yin et al., CVPR 2021) detects objects as the peaks of a per-class heatmap and regresses, at the
peak, the sub-cell offset, the height of the centre, the log size and the yaw. A box is the same
box turned by 180 degrees, so the yaw is regressed as (sin 2θ, cos 2θ) and read back as
θ = atan2(sin 2θ, cos 2θ) / 2: a heading θ and θ + π give one target, not two that average out.

Grouping the points into pillars (:func:`pillarize`) is NumPy, outside the network, as in the
deployed PointPillars: the network (:class:`PillarNet`) takes ``features`` (P, K, F), ``mask``
(P, K) and ``coords`` (P,), P the number of non-empty pillars, so it exports to ONNX with one
dynamic axis. :func:`decode` turns the head's maps into boxes with a confidence score.

``point_features`` is the layout of the raw point: ``("x", "y", "z", "intensity")`` or
``("x", "y", "z")`` for clouds without intensity. A checkpoint records it, and
:func:`check_layout` refuses a checkpoint for another layout.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from playground.core.checkpoint import (
    build_loaded,
    check_fields,
    load_checkpoint,
    reason,
    save_checkpoint,
    short,
)
from playground.errors import CheckpointError, ConfigError, DataFormatError
from playground.pointcloud.cuboid import Cuboid

CLASSES = ("car", "pedestrian")
LAYOUTS = (("x", "y", "z", "intensity"), ("x", "y", "z"))
DECORATIONS = 5  # offsets from the pillar mean (x, y, z) and from the pillar centre (x, y)
HEADS = {"heatmap": len(CLASSES), "offset": 2, "z": 1, "size": 3, "yaw": 2}


@dataclasses.dataclass(frozen=True)
class Grid:
    """The bird's-eye-view grid: ``extent`` metres each side of the sensor in x and y, square
    pillars of ``pillar`` metres, points with ``z_min <= z < z_max`` (metres above the ground
    under the sensor), at most ``max_points`` points per pillar and ``max_pillars`` pillars."""

    extent: float = 32.0
    pillar: float = 0.4
    z_min: float = -1.0
    z_max: float = 3.0
    max_points: int = 16
    max_pillars: int = 30000

    def __post_init__(self):
        if not (self.extent > 0 and self.pillar > 0 and self.z_min < self.z_max):
            raise ConfigError(f"the detector grid needs extent > 0, pillar > 0 and z_min < z_max, got {self}")
        cells = 2 * self.extent / self.pillar
        if abs(cells - round(cells)) > 1e-6 or round(cells) % 4:
            raise ConfigError(
                f"the detector grid needs 2 * extent / pillar to be a whole multiple of 4, got {cells:g}"
            )
        if self.max_points < 1 or self.max_pillars < 1:
            raise ConfigError("the detector grid needs max_points >= 1 and max_pillars >= 1")

    @property
    def cells(self) -> int:
        """Pillars along one side of the grid."""
        return round(2 * self.extent / self.pillar)


@dataclasses.dataclass
class Pillars:
    """One frame's P non-empty pillars as the network takes them (batch of one): ``features``
    (P, K, F) float32 (zero where a pillar has fewer than K points), ``mask`` (P, K) float32 (1 for a
    real point), ``coords`` (P,) int64 flat cell index ``row * cells + col``, and how many pillars
    and points were dropped."""

    features: np.ndarray
    mask: np.ndarray
    coords: np.ndarray
    dropped_pillars: int = 0
    dropped_points: int = 0

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.features), torch.from_numpy(self.mask), torch.from_numpy(self.coords)


def point_array(points: np.ndarray, intensity: np.ndarray | None, layout: tuple[str, ...]) -> np.ndarray:
    """(N, len(layout)) float32 raw point features: x, y, z and, where the layout has it, intensity
    (zeros where the cloud has none)."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise DataFormatError(f"points must be (N, 3), got shape {points.shape}")
    if "intensity" not in layout:
        return points
    values = np.zeros(len(points), np.float32) if intensity is None else np.asarray(intensity, np.float32)
    return np.column_stack([points, values.reshape(-1)]).astype(np.float32)


def pillarize(raw: np.ndarray, grid: Grid, rng: np.random.Generator | None = None) -> Pillars:
    """Group (N, F) raw points into the grid's pillars, decorate every point (:data:`DECORATIONS`).

    A pillar with more than ``max_points`` points keeps a random ``max_points`` of them (``rng``;
    the first ones in the given order when None); beyond ``max_pillars``, the pillars with the
    fewest points are dropped."""
    cells = grid.cells
    xy = np.floor((raw[:, :2] + grid.extent) / grid.pillar).astype(np.int64)
    inside = (xy >= 0).all(axis=1) & (xy < cells).all(axis=1)
    inside &= (raw[:, 2] >= grid.z_min) & (raw[:, 2] < grid.z_max)
    raw, xy = raw[inside], xy[inside]
    if rng is not None:
        order = rng.permutation(len(raw))
        raw, xy = raw[order], xy[order]
    flat = xy[:, 1] * cells + xy[:, 0]
    order = np.argsort(flat, kind="stable")
    raw, flat = raw[order], flat[order]
    cell_ids, starts, sizes = np.unique(flat, return_index=True, return_counts=True)
    slot = np.arange(len(flat)) - np.repeat(starts, sizes)
    pillar = np.repeat(np.arange(len(cell_ids)), sizes)
    kept_points = int(np.minimum(sizes, grid.max_points).sum())
    keep_pillars = np.arange(len(cell_ids))
    if len(cell_ids) > grid.max_pillars:
        keep_pillars = np.sort(np.argsort(-sizes, kind="stable")[: grid.max_pillars])
    remap = np.full(len(cell_ids), -1)
    remap[keep_pillars] = np.arange(len(keep_pillars))
    use = (slot < grid.max_points) & (remap[pillar] >= 0)
    count, width = len(keep_pillars), raw.shape[1]
    rows, cols, points = remap[pillar[use]], slot[use], raw[use]
    counts = np.maximum(np.bincount(rows, minlength=count), 1)
    means = np.stack([np.bincount(rows, points[:, k], count) / counts for k in range(3)], axis=1)
    coords = cell_ids[keep_pillars]
    centres = (np.stack([coords % cells, coords // cells], axis=1) + 0.5) * grid.pillar - grid.extent
    features = np.zeros((count, grid.max_points, width + DECORATIONS), np.float32)
    features[rows, cols, :width] = points
    features[rows, cols, width : width + 3] = points[:, :3] - means[rows]
    features[rows, cols, width + 3 :] = points[:, :2] - centres[rows]
    mask = np.zeros((count, grid.max_points), np.float32)
    mask[rows, cols] = 1.0
    return Pillars(
        features, mask, coords.astype(np.int64), len(cell_ids) - count, kept_points - int(use.sum())
    )


def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class PillarNet(nn.Module):
    """Pillar feature net, a two-scale BEV backbone and CenterPoint heads at half the pillar grid.

    ``forward(features, mask, coords)`` -> one tensor (1, sum(HEADS), cells / 2, cells / 2):
    heatmap logits, offset, z, log size and (sin 2θ, cos 2θ) of the yaw, in the order of :data:`HEADS`."""

    def __init__(self, grid: Grid, layout: tuple[str, ...] = LAYOUTS[0], width: int = 32) -> None:
        super().__init__()
        if tuple(layout) not in LAYOUTS:
            raise ConfigError(
                f"point_features must be one of {[list(x) for x in LAYOUTS]}, got {list(layout)}"
            )
        self.grid, self.layout, self.width = grid, tuple(layout), width
        self.encoder = nn.Linear(len(layout) + DECORATIONS, width, bias=False)
        self.encoder_norm = nn.BatchNorm1d(width)
        self.down1 = nn.Sequential(conv_block(width, 2 * width, 2), conv_block(2 * width, 2 * width))
        self.down2 = nn.Sequential(conv_block(2 * width, 4 * width, 2), conv_block(4 * width, 4 * width))
        self.up2 = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 2, 2, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
        )
        self.neck = conv_block(4 * width, 2 * width)
        self.head = nn.Conv2d(2 * width, sum(HEADS.values()), 1)
        nn.init.constant_(self.head.bias[: HEADS["heatmap"]], -2.19)  # CenterNet's prior: sigmoid = 0.1

    def encode(
        self, features: torch.Tensor, mask: torch.Tensor, coords: torch.Tensor, batch: int = 1
    ) -> torch.Tensor:
        """The pillars' max-pooled point features scattered onto the grid: (batch, width, cells, cells).
        For a batch, frame b's ``coords`` are offset by ``b * cells**2``."""
        pillars, points, _ = features.shape
        x = self.encoder(features).reshape(pillars * points, self.width)
        x = F.relu(self.encoder_norm(x)).reshape(pillars, points, self.width) * mask.unsqueeze(-1)
        x = x.max(dim=1).values
        cells = self.grid.cells
        canvas = x.new_zeros(batch * cells * cells, self.width).index_copy(0, coords, x)
        return canvas.reshape(batch, cells, cells, self.width).permute(0, 3, 1, 2)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, coords: torch.Tensor, batch: int = 1
    ) -> torch.Tensor:
        fine = self.down1(self.encode(features, mask, coords, batch))
        coarse = self.up2(self.down2(fine))
        return self.head(self.neck(torch.cat([fine, coarse], dim=1)))


def split_heads(maps: torch.Tensor) -> dict[str, torch.Tensor]:
    """The head tensor (B, C, H, W) split by :data:`HEADS`."""
    return dict(zip(HEADS, torch.split(maps, list(HEADS.values()), dim=1)))


def decode(
    maps: torch.Tensor | np.ndarray, grid: Grid, min_score: float = 0.1, top_k: int = 100
) -> list[Cuboid]:
    """The boxes at the heatmap's local maxima (3 x 3) above ``min_score``, at most ``top_k``,
    each with its class, its peak's sigmoid as ``score`` and its regressed geometry."""
    maps = torch.as_tensor(maps)[:1].float()
    heads = split_heads(maps)
    heat = torch.sigmoid(heads["heatmap"])[0]
    peaks = heat * (F.max_pool2d(heat[None], 3, 1, 1)[0] == heat)
    scores, index = peaks.reshape(-1).topk(min(top_k, peaks.numel()))
    keep = scores >= min_score
    scores, index = scores[keep].numpy(), index[keep].numpy()
    size, cell = grid.cells // 2, 2 * grid.pillar
    label, rest = np.divmod(index, size * size)
    row, col = np.divmod(rest, size)
    at = {name: heads[name][0][:, row, col].numpy().astype(np.float64) for name in HEADS if name != "heatmap"}
    x = (col + at["offset"][0]) * cell - grid.extent
    y = (row + at["offset"][1]) * cell - grid.extent
    sizes = np.exp(np.clip(at["size"], -5, 5)).T
    yaws = np.arctan2(at["yaw"][0], at["yaw"][1]) / 2
    return [
        Cuboid((x[i], y[i], at["z"][0, i]), sizes[i], yaws[i], CLASSES[label[i]], float(scores[i]))
        for i in range(len(scores))
    ]


def check_layout(saved: tuple[str, ...], wanted: tuple[str, ...], source: str = "the detector") -> None:
    """Refuse a detector trained on another point-feature layout than the caller's points have."""
    if tuple(saved) != tuple(wanted):
        raise DataFormatError(
            f"{source} was trained on point features {list(saved)}, but these points have "
            f"{list(wanted)}; use a detector trained for {list(wanted)} (--set detector.point_features=...)"
        )


FORMAT = "playground.pointcloud.detector/1"


def save_detector(path, model: PillarNet) -> Path:
    """The detector's weights as safetensors, with what rebuilds it (grid, width, point features)."""
    metadata = dict(
        format=FORMAT,
        classes=list(CLASSES),
        point_features=list(model.layout),
        width=model.width,
        grid=dataclasses.asdict(model.grid),
    )
    return save_checkpoint(path, model, metadata)


# what a detector checkpoint's metadata must hold (:func:`~playground.core.checkpoint.check_fields`)
DETECTOR_METADATA = {
    "format": str,
    "classes": list[str],
    "point_features": list[str],
    "width": range(1, 257),
    "grid": dict,
}
GRID_FIELDS = {
    **dict.fromkeys(("extent", "pillar", "z_min", "z_max"), float),
    "max_points": range(1, 1 << 12),
    "max_pillars": range(1, 1 << 20),
}
MAX_CELLS = 2048  # pillars along one side of a loaded detector's grid (a canvas of cells^2 x width)


def load_detector(path, layout: tuple[str, ...] | None = None) -> PillarNet:
    """The detector saved at ``path`` (eval mode). With ``layout``, a detector trained on other
    point features is refused (:func:`check_layout`)."""
    path = Path(path)
    state, meta = load_checkpoint(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path.name} is not a playground 3D detector (its metadata has no format {FORMAT})"
        )
    check_fields(meta, f"the detector metadata of {path}", DETECTOR_METADATA)
    check_fields(meta["grid"], f"the detector grid in {path}", GRID_FIELDS)
    try:
        grid = Grid(**meta["grid"])
    except (TypeError, OverflowError, ConfigError) as err:
        raise CheckpointError(f"{path.name}: the detector's metadata is damaged ({reason(err)})") from None
    if grid.cells > MAX_CELLS:
        raise CheckpointError(f"{path.name}: its grid has {grid.cells} cells a side, more than {MAX_CELLS}")
    saved, classes = tuple(meta["point_features"]), tuple(meta["classes"])
    if classes != CLASSES:
        raise CheckpointError(f"{path.name} detects {short(classes)}; this playground reads {list(CLASSES)}")
    if saved not in LAYOUTS:
        raise CheckpointError(f"{path.name}: unknown point features {short(saved)}")
    if layout is not None:
        check_layout(saved, layout, f"detector {path.name}")
    detector = build_loaded(
        path, state, lambda: PillarNet(grid, saved, meta["width"]), "the detector its metadata describes"
    )
    return detector.eval()
