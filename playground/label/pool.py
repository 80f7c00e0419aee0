"""The labelling pool: a user's own image folder read one file at a time, and a diverse seed set.

:func:`scan_images` walks a folder of unlabelled images (recursively, sorted, hidden files and
folders left out) and yields, per file, a :class:`PoolImage` (relative path, SHA-256 of the
bytes, original size and a model-sized ``uint8`` copy) or a :class:`Skipped` with the reason:
empty, too many bytes, not an image suffix, undecodable (corrupt or truncated), too many pixels
(read from the header before decoding) or an exact duplicate of an earlier file. Only one file is
decoded at a time, so the pool is never held in memory. :func:`read_labelled` reads a labelled
``DIR/<class>/<image>`` tree the same way, to seed a project with labels people already gave.

With no model yet, the first round asks people to label a diverse seed set:
:func:`thumbnail_features` describes each image by an 8x8 greyscale thumbnail and a coarse colour
histogram, and :func:`diverse_seed` picks the seed by k-center greedy (Sener & Savarese 2018,
"Active Learning for Convolutional Neural Networks: A Core-Set Approach"), which approximately
minimises the covering radius ``max_i min_{c in S} ||x_i - x_c||`` of the chosen set ``S``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from playground.data.folder import IMAGE_SUFFIXES, list_image_folder
from playground.data.image_file import UnreadableImageError, max_image_pixels, open_image
from playground.errors import DataFormatError, DataNotFoundError

Progress = Callable[[int, int], None]

#: Background that transparent pixels are composited onto (as most viewers show them).
ALPHA_BACKGROUND = (255, 255, 255)
#: Value of the bars that pad a non-square image to a square (letterbox).
PAD_VALUE = 0
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


@dataclass(frozen=True)
class PoolImage:
    """One readable image: where it is, what it hashes to, its size, and its model-sized copy.

    ``width`` and ``height`` are the original size as displayed (after EXIF orientation).
    ``image`` is ``uint8`` of shape ``(image_size, image_size, channels)``.
    """

    path: str
    sha256: str
    width: int
    height: int
    image: np.ndarray


@dataclass(frozen=True)
class LabelledImage(PoolImage):
    """A :class:`PoolImage` from a labelled folder, with its index in the project's class names."""

    label: int


@dataclass(frozen=True)
class Skipped:
    """A file left out of the pool, and why."""

    path: str
    reason: str


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def candidate_files(folder: Path) -> list[str]:
    """Every non-hidden file under ``folder`` as a posix path relative to it, in sorted order.

    Hidden files and folders (names starting with ``.``) are left out; symlinked folders are
    not followed (no loops).
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
        rel_dir = Path(dirpath).relative_to(folder)
        found += [(rel_dir / name).as_posix() for name in filenames if not _is_hidden(name)]
    return sorted(found, key=lambda p: p.split("/"))


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a malformed EXIF block must not lose an otherwise good image
        return 1


def _to_rgb_or_l(image: Image.Image) -> Image.Image:
    """An ``RGB`` or ``L`` image: 16-bit scaled to 8, alpha composited on white, palette/CMYK to RGB."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = values * 255.0 if np.nanmax(values) <= 1.0 else values
        return Image.fromarray(np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("RGB")


def _letterbox(image: Image.Image, size: int) -> Image.Image:
    """Resize the longer side to ``size`` (Lanczos) and pad the shorter one symmetrically."""
    width, height = image.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if new_size == (size, size):
        return resized
    fill = PAD_VALUE if image.mode == "L" else (PAD_VALUE,) * 3
    canvas = Image.new(image.mode, (size, size), fill)
    canvas.paste(resized, ((size - new_size[0]) // 2, (size - new_size[1]) // 2))
    return canvas


def _decode(data: bytes, image_size: int, channels: int, max_pixels: int) -> tuple[np.ndarray, int, int]:
    """The model-sized copy and the displayed width and height of one encoded image."""
    with open_image(data, max_pixels=max_pixels) as image:  # reads the header only
        width, height = image.size
        if _orientation(image) in (5, 6, 7, 8):
            width, height = height, width
        image.draft(None, (2 * image_size, 2 * image_size))  # JPEG: decode at a reduced scale
        image = ImageOps.exif_transpose(image)  # loads the first frame; a truncated file raises here
        image = _letterbox(_to_rgb_or_l(image), image_size).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.uint8).reshape(image_size, image_size, channels)
    return array, width, height


def read_pool_image(
    path: Path, rel_path: str, image_size: int, channels: int, max_bytes: int, max_pixels: int
) -> PoolImage | Skipped:
    """Read one file into a :class:`PoolImage`, or say why it is :class:`Skipped` (no duplicate check)."""
    if Path(rel_path).suffix.lower() not in IMAGE_SUFFIXES:
        return Skipped(rel_path, "not an image")
    try:
        size = path.stat().st_size
        if size == 0:
            return Skipped(rel_path, "empty file")
        if size > max_bytes:
            return Skipped(rel_path, f"{size} bytes, more than max_bytes={max_bytes}")
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(rel_path, f"cannot be read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        array, width, height = _decode(data, image_size, channels, max_pixels)
    except UnreadableImageError as exc:  # over max_pixels, a bomb, corrupt or truncated
        return Skipped(rel_path, exc.problem)
    return PoolImage(rel_path, digest, width, height, array)


def _check_options(image_size: int, channels: int) -> None:
    if channels not in (1, 3):
        raise DataFormatError(f"channels must be 1 (greyscale) or 3 (RGB), not {channels}")
    if image_size < 1:
        raise DataFormatError(f"image_size must be a positive number of pixels, not {image_size}")


def _read_files(
    folder: Path,
    rel_paths: Sequence[str],
    options: tuple[int, int, int, int],
    progress: Progress | None,
    known: dict[str, str],
    labels: Sequence[int] | None = None,
) -> Iterator[PoolImage | Skipped]:
    total = len(rel_paths)
    if progress is not None:
        progress(0, total)
    for done, rel_path in enumerate(rel_paths, start=1):
        item = read_pool_image(folder / rel_path, rel_path, *options)
        if isinstance(item, PoolImage):
            if item.sha256 in known:
                item = Skipped(rel_path, f"duplicate of {known[item.sha256]}")
            else:
                known[item.sha256] = rel_path
                if labels is not None:
                    item = LabelledImage(**vars(item), label=labels[done - 1])
        yield item
        if progress is not None:
            progress(done, total)


def scan_images(
    folder: str | Path,
    image_size: int = 64,
    channels: int = 3,
    max_bytes: int = 50_000_000,
    max_pixels: int | None = None,
    progress: Progress | None = None,
    known: dict[str, str] | None = None,
) -> Iterator[PoolImage | Skipped]:
    """Yield a :class:`PoolImage` or :class:`Skipped` for every non-hidden file under ``folder``.

    Files come in sorted order of their relative paths, one at a time. The copy keeps the aspect
    ratio: the longer side is resized to ``image_size`` with a Lanczos filter and the shorter one
    padded symmetrically with black (letterbox), so nothing of the image is cut off. It is ``RGB``
    (``channels=3``) or greyscale (``channels=1``); EXIF orientation is applied, animated GIFs and
    multi-page TIFFs give their first frame, 16-bit images are scaled to 8 bits, palette and CMYK
    images are converted to RGB, and transparent pixels are composited on white.

    Skip reasons: ``"not an image"`` (suffix not in ``IMAGE_SUFFIXES``), ``"empty file"``, more
    than ``max_bytes``, more than ``max_pixels`` (default ``$PLAYGROUND_MAX_IMAGE_PIXELS`` or 50 million;
    checked in the header before decoding by :func:`playground.data.image_file.open_image`; PIL's own
    decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``, also applies), ``"cannot be decoded"``
    (corrupt or truncated: truncated files raise because PIL's ``LOAD_TRUNCATED_IMAGES`` is left
    False) and ``"duplicate of <path>"`` (same SHA-256 as an earlier file). ``known`` maps the
    SHA-256 of images already in the project to their path; it is updated as files are read, so
    a second scan (or a labelled folder read before) marks repeats as duplicates.

    ``progress(done, total)`` is called before the first file and after each one; ``total`` is
    the number of candidate files, counted first by listing paths only.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder {folder} does not exist; give a folder of images")
    _check_options(image_size, channels)
    max_pixels = max_image_pixels(max_pixels)
    rel_paths = candidate_files(folder)
    known = {} if known is None else known
    return _read_files(folder, rel_paths, (image_size, channels, max_bytes, max_pixels), progress, known)


def read_labelled(
    folder: str | Path,
    class_names: Sequence[str],
    image_size: int = 64,
    channels: int = 3,
    max_bytes: int = 50_000_000,
    max_pixels: int | None = None,
    progress: Progress | None = None,
    known: dict[str, str] | None = None,
) -> Iterator[LabelledImage | Skipped]:
    """Read a labelled ImageFolder tree ``folder/<class>/<image>`` to seed a project.

    Yields :class:`LabelledImage` records (``label`` is the index in ``class_names``, the
    project's order) or :class:`Skipped` ones, file by file exactly as :func:`scan_images` does;
    files directly in ``folder`` (in no class folder) are skipped too. A class folder whose name
    is not one of ``class_names`` is a :class:`DataFormatError`, raised before anything is read.
    """
    folder = Path(folder).expanduser()
    _check_options(image_size, channels)
    max_pixels = max_image_pixels(max_pixels)
    folders, _ = list_image_folder(folder)
    unknown = [name for name in folders if name not in class_names]
    if unknown:
        raise DataFormatError(
            f"labelled folder {folder} has sub-folder(s) {_some(unknown)} that are not classes of "
            f"the project ({_some(list(class_names))}); rename or remove them"
        )
    rel_paths = candidate_files(folder)
    stray = [p for p in rel_paths if "/" not in p]
    in_classes = [p for p in rel_paths if "/" in p]
    labels = [list(class_names).index(p.split("/", 1)[0]) for p in in_classes]
    options = (image_size, channels, max_bytes, max_pixels)
    known = {} if known is None else known

    def records() -> Iterator[LabelledImage | Skipped]:
        yield from (Skipped(p, "not in a class folder") for p in stray)
        yield from _read_files(folder, in_classes, options, progress, known, labels)

    return records()


def _some(names: list[str], most: int = 10) -> str:
    """At most ``most`` names, each on one line and cut to 40 characters, and how many more."""
    shown = ", ".join(" ".join(str(name).split())[:40] for name in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _colour_histograms(batch: torch.Tensor, levels: int, grid: int = 32) -> torch.Tensor:
    """Per-image normalised histogram of colours quantised to ``levels`` per channel.

    Counted on about ``grid x grid`` pixels sampled with a stride (true colours, not averages).
    """
    stride = max(1, batch.shape[1] // grid), max(1, batch.shape[2] // grid)
    sample = batch[:, :: stride[0], :: stride[1]]
    count, channels = sample.shape[0], sample.shape[-1]
    quantised = (sample.int() * levels) // 256  # (n, h, w, c) in 0..levels-1
    weights = levels ** torch.arange(channels - 1, -1, -1, dtype=torch.int32)
    bins = (quantised * weights).sum(-1, dtype=torch.int64).reshape(count, -1)
    n_bins = levels**channels
    offsets = torch.arange(count).unsqueeze(1) * n_bins
    hist = torch.bincount((bins + offsets).reshape(-1), minlength=count * n_bins).reshape(count, n_bins)
    return hist.float() / bins.shape[1]


def thumbnail_features(images: np.ndarray, thumb: int = 8, batch_size: int = 1024) -> torch.Tensor:
    """Cheap features for a pool with no model: a greyscale thumbnail and a coarse colour histogram.

    ``images`` is ``uint8`` ``(N, H, W, C)``. Each image gives its ``thumb x thumb`` greyscale
    thumbnail (area average) and a histogram of colours quantised to 4 levels per channel
    (64 bins for RGB; 16 intensity levels for greyscale; counted on a strided sample of
    about 32x32 pixels). Every column is standardised over the
    pool (zero mean, unit variance; constant columns become 0) and each of the two blocks is
    scaled by ``1/sqrt(its width)`` so both weigh the same in a Euclidean distance.
    Returns ``float32`` ``(N, thumb**2 + bins)``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
        raise DataFormatError(
            f"expected uint8 images of shape (N, H, W, 1 or 3), got {images.dtype} {images.shape}"
        )
    levels = 4 if images.shape[-1] == 3 else 16
    thumbs, hists = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start : start + batch_size])
        grey = batch.float().mean(-1, keepdim=True).permute(0, 3, 1, 2) / 255.0
        thumbs.append(torch.nn.functional.adaptive_avg_pool2d(grey, thumb).flatten(1))
        hists.append(_colour_histograms(batch, levels))
    blocks = []
    for block in (torch.cat(thumbs), torch.cat(hists)):
        std = block.std(0, unbiased=False)
        standardised = (block - block.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))
        blocks.append(standardised / block.shape[1] ** 0.5)
    return torch.cat(blocks, dim=1)


def diverse_seed(features: torch.Tensor, count: int, seed: int, batch_size: int = 8192) -> torch.Tensor:
    """Indices of ``count`` diverse points by k-center greedy (Sener & Savarese, ICLR 2018).

    The core-set objective is to choose a set ``S`` of ``count`` centers minimising the covering
    radius ``max_i min_{c in S} ||x_i - x_c||``: the largest distance of any point to its nearest
    chosen center. Greedy starts from a random point (drawn with ``seed``) and repeatedly adds the
    point farthest from the chosen set, a 2-approximation of the optimum. Only each point's
    distance to its nearest chosen center is kept (``N`` numbers), updated in batches of rows, so
    no ``N x N`` matrix is built. Returns distinct ``long`` indices in the order chosen; all ``N``
    indices when ``count >= N``.
    """
    features = torch.as_tensor(features).float()
    if features.ndim != 2:
        raise DataFormatError(f"features must be a 2-D (N, D) tensor, got shape {tuple(features.shape)}")
    n = features.shape[0]
    if count >= n:
        return torch.arange(n)
    if count <= 0:
        return torch.empty(0, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    squared_norms = features.square().sum(1)
    nearest = torch.full((n,), float("inf"))
    while True:
        center = features[chosen[-1]]
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2: one matrix-vector product per batch of rows
            distance = (
                squared_norms[start:stop] - 2 * (features[start:stop] @ center) + squared_norms[chosen[-1]]
            )
            torch.minimum(nearest[start:stop], distance.clamp_(min=0), out=nearest[start:stop])
        nearest[chosen[-1]] = -1.0  # never chosen twice, even when the rest are exact duplicates
        if len(chosen) == count:
            return torch.tensor(chosen, dtype=torch.long)
        chosen.append(int(nearest.argmax()))
