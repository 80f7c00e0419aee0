"""Deterministic synthetic shapes: coloured shapes on textured grey backgrounds.

``make_shapes(n, seed)`` draws ``n`` images of shapes that vary in shape, colour, size,
position, rotation and background texture. Every image comes with its attributes, a
pixel mask of the shape, a caption and (via :func:`facts`) knowledge-graph triples, so
one generator serves classification, captioning, segmentation and knowledge fusion.
Out-of-distribution variants use shapes or colours never seen in distribution, or
pure noise. The same arguments always give bit-identical tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from playground.errors import ConfigError

SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon")
OOD_SHAPES = ("heart", "crescent")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 140, 30),
}
OOD_COLOURS = {
    "pink": (250, 140, 200),
    "cyan": (40, 210, 220),
    "brown": (120, 70, 30),
}
SIZES = ("small", "medium", "large")
TEXTURES = ("plain", "striped", "dotted", "checkered")
VARIANTS = ("in_distribution", "unseen_shapes", "unseen_colours", "noise")
LABEL_BY = ("shape", "colour", "size", "texture")
NOISE = "noise"

SIZE_RADIUS = {"small": 0.15, "medium": 0.25, "large": 0.35}  # fraction of image width
RADIUS_JITTER = 0.08  # the radius varies by up to +-8% inside its band
MAX_ROTATION = 20.0  # degrees either way, so shapes keep their upright look
PIXEL_NOISE = 0.015  # std of the Gaussian pixel noise, in [0, 1] units

_POLYGON, _CONVEX, _CONCAVE = ("is_a", "polygon"), ("is_convex", "yes"), ("is_convex", "no")
_SHAPE_KNOWLEDGE = {
    "circle": (("is_a", "round_shape"), ("has_corners", "0"), _CONVEX),
    "square": (_POLYGON, ("has_corners", "4"), ("has_sides", "4"), _CONVEX),
    "triangle": (_POLYGON, ("has_corners", "3"), ("has_sides", "3"), _CONVEX),
    "star": (_POLYGON, ("has_points", "5"), ("has_corners", "10"), _CONCAVE),
    "cross": (_POLYGON, ("has_arms", "4"), ("has_corners", "12"), _CONCAVE),
    "hexagon": (_POLYGON, ("has_corners", "6"), ("has_sides", "6"), _CONVEX),
    "heart": (("is_a", "curved_shape"), ("has_points", "1"), ("has_corners", "2"), _CONCAVE),
    "crescent": (("is_a", "curved_shape"), ("has_points", "2"), ("has_corners", "2"), _CONCAVE),
}
_COLOUR_KNOWLEDGE = {
    "red": ("warm_colour", "primary_colour"),
    "yellow": ("warm_colour", "primary_colour"),
    "blue": ("cool_colour", "primary_colour"),
    "green": ("cool_colour", "secondary_colour"),
    "orange": ("warm_colour", "secondary_colour"),
    "purple": ("cool_colour", "secondary_colour"),
    "pink": ("warm_colour", "tint"),
    "cyan": ("cool_colour", "secondary_colour"),
    "brown": ("warm_colour", "earth_colour"),
}
_OTHER_KNOWLEDGE = (
    ("polygon", "is_a", "shape"),
    ("round_shape", "is_a", "shape"),
    ("curved_shape", "is_a", "shape"),
    ("warm_colour", "is_a", "colour"),
    ("cool_colour", "is_a", "colour"),
    ("small", "smaller_than", "medium"),
    ("medium", "smaller_than", "large"),
    ("plain", "has_pattern", "none"),
    ("striped", "has_pattern", "lines"),
    ("dotted", "has_pattern", "dots"),
    ("checkered", "has_pattern", "squares"),
)


@dataclass(frozen=True)
class ShapeAttributes:
    """What one image shows. ``x``, ``y``: shape centre in [0, 1] (y grows downwards)."""

    shape: str
    colour: str
    size: str
    texture: str
    x: float
    y: float
    rotation: float  # degrees, counter-clockwise as seen on screen


@dataclass(eq=False)
class ShapesDataset(torch.utils.data.Dataset):
    """Images with masks, attributes and captions; items are ``(image, label)``."""

    images: torch.Tensor = field(repr=False)  # float32 (N, 3, H, W) in [0, 1]
    masks: torch.Tensor = field(repr=False)  # bool (N, H, W), True on the shape
    attributes: list[ShapeAttributes] = field(repr=False)
    captions: list[str] = field(repr=False)
    labels: torch.Tensor = field(repr=False)  # int64 (N,), index into ``classes``
    classes: list[str]
    label_by: str

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


# --------------------------------------------------------------------- geometry


def _regular_polygon(corners: int, start_degrees: float = -90.0) -> np.ndarray:
    angles = np.deg2rad(start_degrees + 360.0 * np.arange(corners) / corners)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    angles = np.deg2rad(-90.0 + 180.0 * np.arange(2 * points) / points)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _cross(arm: float = 0.94, half_width: float = 0.34) -> np.ndarray:
    a, w = arm, half_width
    return np.array(
        [
            (-w, -a),
            (w, -a),
            (w, -w),
            (a, -w),
            (a, w),
            (w, w),
            (w, a),
            (-w, a),
            (-w, w),
            (-a, w),
            (-a, -w),
            (-w, -w),
        ]
    )


def _heart(points: int = 48) -> np.ndarray:
    """The classic parametric heart, lobes up, scaled to fit the unit circle."""
    t = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    x = 16.0 * np.sin(t) ** 3
    y = -(13.0 * np.cos(t) - 5.0 * np.cos(2 * t) - 2.0 * np.cos(3 * t) - np.cos(4 * t))
    y -= (y.max() + y.min()) / 2.0
    vertices = np.stack([x, y], axis=1)
    return vertices / np.hypot(x, y).max()


_POLYGONS = {
    "square": _regular_polygon(4, start_degrees=45.0),
    "triangle": _regular_polygon(3),
    "hexagon": _regular_polygon(6, start_degrees=0.0),
    "star": _star(),
    "cross": _cross(),
    "heart": _heart(),
}


def _inside_polygon(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd ray casting, vectorised over the points ``(u, v)``."""
    inside = np.zeros(u.shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > v) != (y2 > v)
        x_at_v = x1 + (v - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (u < x_at_v)
    return inside


def _unit_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of ``shape`` in unit coordinates: centre at 0, fits in the unit circle."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "crescent":
        return (u * u + v * v <= 1.0) & ((u - 0.4) ** 2 + v * v > 0.85**2)
    return _inside_polygon(u, v, _POLYGONS[shape])


def shape_mask(attrs: ShapeAttributes, image_size: int, radius: float) -> np.ndarray:
    """Bool (H, W) mask of the shape; ``radius`` is a fraction of the image width."""
    centres = (np.arange(image_size) + 0.5) / image_size
    dx = centres[None, :] - attrs.x
    dy = centres[:, None] - attrs.y
    theta = np.deg2rad(attrs.rotation)
    u = (np.cos(theta) * dx - np.sin(theta) * dy) / radius
    v = (np.sin(theta) * dx + np.cos(theta) * dy) / radius
    return _unit_mask(attrs.shape, u, v)


# --------------------------------------------------------------------- rendering


def _background(texture: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Grey (H, W) background in [0, 1] with a low-contrast texture."""
    base, contrast = rng.uniform(0.35, 0.65), rng.uniform(0.1, 0.16)
    period = max(4, int(round(rng.integers(5, 8) * size / 32)))
    rows, cols = np.mgrid[0:size, 0:size] + rng.integers(0, period, size=2)[:, None, None]
    if texture == "plain":
        pattern = np.zeros((size, size))
    elif texture == "striped":
        along = (rows, cols, rows + cols)[rng.integers(0, 3)]
        pattern = ((along // (period / 2)) % 2) * 2 - 1.0
    elif texture == "dotted":
        dr, dc = rows % period - period / 2, cols % period - period / 2
        pattern = np.where(dr**2 + dc**2 <= (period / 3.5) ** 2, 1.0, -0.3)
    elif texture == "checkered":
        half = period // 2 + 1
        pattern = ((rows // half + cols // half) % 2) * 2 - 1.0
    else:
        raise ConfigError(f"unknown texture {texture!r}; choose one of: {', '.join(TEXTURES)}")
    return base + contrast / 2 * pattern


def _rgb(colour: str) -> np.ndarray:
    rgb = COLOURS.get(colour) or OOD_COLOURS.get(colour)
    if rgb is None:
        valid = ", ".join([*COLOURS, *OOD_COLOURS])
        raise ConfigError(f"unknown colour {colour!r}; choose one of: {valid}")
    return np.array(rgb, dtype=np.float64) / 255.0


def render(
    attrs: ShapeAttributes, image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one image: ``(uint8 (H, W, 3) image, bool (H, W) mask)``.

    The shape is painted in its flat colour exactly where the mask is True, over a grey
    textured background; small pixel noise is added everywhere. ``rng`` drives the
    radius jitter, the texture details and the noise. ``shape="noise"`` gives uniform
    noise and an empty mask.
    """
    if attrs.shape == NOISE:
        image = rng.integers(0, 256, size=(image_size, image_size, 3), dtype=np.uint8)
        return image, np.zeros((image_size, image_size), dtype=bool)
    if attrs.shape not in SHAPES + OOD_SHAPES:
        valid = ", ".join(SHAPES + OOD_SHAPES)
        raise ConfigError(f"unknown shape {attrs.shape!r}; choose one of: {valid}")
    if attrs.size not in SIZE_RADIUS:
        raise ConfigError(f"unknown size {attrs.size!r}; choose one of: {', '.join(SIZES)}")
    radius = SIZE_RADIUS[attrs.size] * rng.uniform(1 - RADIUS_JITTER, 1 + RADIUS_JITTER)
    mask = shape_mask(attrs, image_size, radius)
    image = np.repeat(_background(attrs.texture, image_size, rng)[:, :, None], 3, axis=2)
    image[mask] = _rgb(attrs.colour)
    image += rng.normal(0.0, PIXEL_NOISE, size=image.shape)
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8), mask


# --------------------------------------------------------------------- language


def position_word(attrs: ShapeAttributes) -> str:
    """Coarse position in a 3x3 grid: "top left", "top", ..., "centre", ..."""
    row = ("top", "", "bottom")[min(int(attrs.y * 3), 2)]
    col = ("left", "", "right")[min(int(attrs.x * 3), 2)]
    return " ".join(word for word in (row, col) if word) or "centre"


def caption(attrs: ShapeAttributes) -> str:
    """E.g. "a small red triangle on a striped background"; "pure noise" for noise."""
    if attrs.shape == NOISE:
        return "pure noise"
    return f"a {attrs.size} {attrs.colour} {attrs.shape} on a {attrs.texture} background"


def knowledge_facts() -> list[tuple[str, str, str]]:
    """General (subject, relation, object) triples over the whole vocabulary, OOD included."""
    triples = [(s, r, o) for s, pairs in _SHAPE_KNOWLEDGE.items() for r, o in pairs]
    triples += [(c, "is_a", kind) for c, kinds in _COLOUR_KNOWLEDGE.items() for kind in kinds]
    return triples + list(_OTHER_KNOWLEDGE)


def facts(attrs: ShapeAttributes) -> list[tuple[str, str, str]]:
    """Per-image triples (what the image shows) plus knowledge about its shape and colour."""
    if attrs.shape == NOISE:
        return [("image", "shows", NOISE)]
    seen = [
        ("image", "shows", attrs.shape),
        ("image", "has_colour", attrs.colour),
        ("image", "has_size", attrs.size),
        ("image", "on_background", attrs.texture),
    ]
    known = [t for t in knowledge_facts() if t[0] in (attrs.shape, attrs.colour)]
    return seen + known


# --------------------------------------------------------------------- datasets


def _check_arguments(n: int, image_size: int, label_by: str, variant: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    if not isinstance(image_size, int) or image_size < 16:
        raise ConfigError(f"image_size must be an integer >= 16, got {image_size!r}")
    if label_by not in LABEL_BY:
        raise ConfigError(f"unknown label_by {label_by!r}; choose one of: {', '.join(LABEL_BY)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)}")


def _subset(kind: str, chosen, pool: tuple[str, ...], variant: str) -> tuple[str, ...]:
    """``chosen`` (a name or names) checked against ``pool``; ``None`` means all of it."""
    if chosen is None:
        return pool
    chosen = tuple(dict.fromkeys([chosen] if isinstance(chosen, str) else chosen))
    unknown = [name for name in chosen if name not in pool]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown {kind}s {unknown} for variant {variant!r}; choose from: {', '.join(pool)}"
        )
    return chosen


def _vocabulary(variant: str, shapes, colours) -> dict[str, tuple[str, ...]]:
    """The values each attribute can take in ``variant``, keyed like ``LABEL_BY``."""
    if variant == NOISE:
        if shapes is not None or colours is not None:
            raise ConfigError("variant 'noise' has no shapes or colours; leave shapes and colours unset")
        return {kind: (NOISE,) for kind in LABEL_BY}
    shape_pool = OOD_SHAPES if variant == "unseen_shapes" else SHAPES
    colour_pool = tuple(OOD_COLOURS if variant == "unseen_colours" else COLOURS)
    return {
        "shape": _subset("shape", shapes, shape_pool, variant),
        "colour": _subset("colour", colours, colour_pool, variant),
        "size": SIZES,
        "texture": TEXTURES,
    }


def _draw(pool: tuple[str, ...], n: int, balanced: bool, rng: np.random.Generator) -> list[str]:
    """``n`` values from ``pool``: cycled then shuffled if ``balanced``, else uniform."""
    if balanced:
        indices = np.arange(n) % len(pool)
        rng.shuffle(indices)
    else:
        indices = rng.integers(0, len(pool), size=n)
    return [pool[i] for i in indices]


def _sample_attributes(
    n: int, vocab: dict, label_by: str, image_size: int, rng: np.random.Generator
) -> list[ShapeAttributes]:
    """Attributes for ``n`` images; the ``label_by`` attribute is class-balanced."""
    picks = {kind: _draw(vocab[kind], n, kind == label_by, rng) for kind in LABEL_BY}
    if vocab["shape"] == (NOISE,):
        return [ShapeAttributes(NOISE, NOISE, NOISE, NOISE, 0.5, 0.5, 0.0) for _ in range(n)]
    reach = np.array([SIZE_RADIUS[s] for s in picks["size"]]) * (1 + RADIUS_JITTER)
    half = reach + 1.0 / image_size  # keep a one-pixel margin around the shape
    xs, ys = half + rng.random((2, n)) * (1.0 - 2.0 * half)
    rotations = rng.uniform(-MAX_ROTATION, MAX_ROTATION, size=n)
    return [
        ShapeAttributes(
            picks["shape"][i],
            picks["colour"][i],
            picks["size"][i],
            picks["texture"][i],
            float(xs[i]),
            float(ys[i]),
            float(rotations[i]),
        )
        for i in range(n)
    ]


def make_shapes(
    n: int,
    seed: int = 0,
    image_size: int = 32,
    label_by: str = "shape",
    variant: str = "in_distribution",
    shapes=None,
    colours=None,
) -> ShapesDataset:
    """Generate ``n`` shape images deterministically from ``seed``.

    ``variant``: "in_distribution", "unseen_shapes" (OOD_SHAPES), "unseen_colours"
    (OOD_COLOURS) or "noise" (uniform noise, empty masks, every attribute "noise").
    ``shapes`` / ``colours`` restrict the variant's vocabulary. ``classes`` is the
    variant's vocabulary for ``label_by``, and labels are balanced over it.
    """
    _check_arguments(n, image_size, label_by, variant)
    vocab = _vocabulary(variant, shapes, colours)
    rng = np.random.default_rng(seed)
    attributes = _sample_attributes(n, vocab, label_by, image_size, rng)
    drawn = [render(attrs, image_size, rng) for attrs in attributes]
    images = np.stack([image for image, _ in drawn])
    classes = list(vocab[label_by])
    labels = [classes.index(getattr(attrs, label_by)) for attrs in attributes]
    return ShapesDataset(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).contiguous(),
        masks=torch.from_numpy(np.stack([mask for _, mask in drawn])),
        attributes=attributes,
        captions=[caption(attrs) for attrs in attributes],
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=classes,
        label_by=label_by,
    )
