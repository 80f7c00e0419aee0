"""A team's own images, preprocessed for their model: calibration images and a labelled eval set.

:func:`load_images` reads a folder one file at a time (never holding the decoded originals) into
an :class:`ImageBatch` of normalised ``float32`` tensors at the model's input shape, using the
model's :class:`~playground.latency.sources.Preprocess`: resize the shorter side to ``resize``,
centre crop ``crop`` (then resize to the input ``H x W`` when they differ), scale to 0..1 and
normalise with ``mean``/``std``. The resize and crop are torchvision's, the same as timm's and
torchvision's own eval transforms.

``labelled=True`` reads an ImageFolder (``DIR/<class>/<image>``, classes sorted by name as
:func:`playground.data.folder.list_image_folder` lists them); ``labelled=False`` reads every image
under the folder, recursively. Hostile folders are handled as the labelling pool handles them
(:mod:`playground.label.pool`): hidden files are left out, and a file that is not an image, empty,
over ``max_bytes``, over ``max_pixels`` (read from the header before anything is decoded, by
:func:`playground.data.image_file.open_image`; PIL's decompression-bomb error and warning are
caught too), corrupt or truncated is skipped with its reason. EXIF orientation is applied;
greyscale, palette, 16-bit and transparent images are converted to the model's channel count
(transparent pixels composited on white for 1 and 3 channels). An empty folder, or one with no
readable image, is a :class:`DataFormatError`.
:func:`check_eval_classes` checks that an eval folder has one class per model output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode

from playground.data.folder import IMAGE_SUFFIXES, list_image_folder
from playground.data.image_file import UnreadableImageError, max_image_pixels, open_image
from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from playground.label.pool import _to_rgb_or_l, candidate_files
from playground.latency.sources import Preprocess

MAX_BYTES = 50_000_000
SAMPLE_SEED = 0
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


@dataclass
class ImageBatch:
    """Preprocessed images and what was left out.

    ``images`` is ``float32 (N, C, H, W)``, normalised; ``labels`` ``long (N,)`` and
    ``class_names`` are None for an unlabelled folder. ``paths`` are the files read (relative to
    ``folder``, in the order of ``images``); ``skipped`` lists ``(path, reason)``; ``unread``
    counts the images not read because ``max_images`` was reached.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: list[str] | None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    folder: str = ""
    unread: int = 0

    def summary(self) -> str:
        """One line for the report: how many images, from where, and what was left out."""
        text = f"{len(self.images)} images from {self.folder}"
        if self.class_names is not None:
            text += f" in {len(self.class_names)} classes"
        if self.skipped:
            reasons: dict[str, int] = {}
            for _, reason in self.skipped:
                key = reason.split(":")[0].split(",")[0]
                reasons[key] = reasons.get(key, 0) + 1
            text += (
                f"; {len(self.skipped)} skipped (" + ", ".join(f"{n} {r}" for r, n in reasons.items()) + ")"
            )
        if self.unread:
            text += f"; {self.unread} more not read (max_images)"
        return text


# ---------------------------------------------------------------- one image


def _to_channels(image: Image.Image, channels: int) -> Image.Image:
    """``image`` in the PIL mode of ``channels`` (L, LA, RGB, RGBA)."""
    mode = _MODES[channels]
    if channels in (2, 4) and (image.mode in _ALPHA_MODES or "transparency" in image.info):
        return image.convert(mode)  # keep the alpha channel the model asks for
    return _to_rgb_or_l(image).convert(mode)


def preprocess_image(
    image: Image.Image, preprocess: Preprocess, input_shape: tuple[int, int, int]
) -> torch.Tensor:
    """One PIL image as a normalised ``float32 (C, H, W)`` tensor at ``input_shape``."""
    channels, height, width = input_shape
    interpolation = InterpolationMode(preprocess.interpolation)
    image = _to_channels(image, channels)
    image = TF.resize(image, [preprocess.resize], interpolation=interpolation)
    image = TF.center_crop(image, [preprocess.crop, preprocess.crop])
    if (preprocess.crop, preprocess.crop) != (height, width):
        image = TF.resize(image, [height, width], interpolation=interpolation)
    tensor = TF.pil_to_tensor(image).float().div_(255.0)
    return TF.normalize(tensor, list(preprocess.mean), list(preprocess.std))


class _Skip(Exception):
    """A file left out, with the reason as its message."""


def _decode(path: Path, preprocess: Preprocess, input_shape, max_pixels: int) -> torch.Tensor:
    with open_image(path, max_pixels=max_pixels) as image:  # reads the header only
        draft = 2 * max(preprocess.resize, *input_shape[1:])
        image.draft(None, (draft, draft))  # JPEG: decode at a reduced scale, still >= 2x the target
        image = ImageOps.exif_transpose(image)  # decodes; a truncated file raises here
    return preprocess_image(image, preprocess, input_shape)


def _read_image(
    path: Path, preprocess: Preprocess, input_shape, max_bytes: int, max_pixels: int
) -> torch.Tensor:
    """One file as a preprocessed tensor; raises ``_Skip(reason)`` for a file to leave out."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise _Skip("not an image")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _Skip(f"cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise _Skip("empty file")
    if size > max_bytes:
        raise _Skip(f"{size} bytes, more than max_bytes={max_bytes}")
    try:
        return _decode(path, preprocess, input_shape, max_pixels)
    except UnreadableImageError as exc:  # over max_pixels, a bomb, corrupt or truncated
        raise _Skip(exc.problem) from None


# ---------------------------------------------------------------- a folder


def _listing(folder: Path, labelled: bool) -> tuple[list[str], list[int | None], list[str] | None]:
    """Relative paths, their class index (None outside a class folder) and the class names."""
    if not labelled:
        if not folder.is_dir():
            raise DataNotFoundError(f"image folder {folder} does not exist; give a folder of images")
        paths = candidate_files(folder)
        if not paths:
            raise DataFormatError(f"image folder {folder} is empty; give a folder with image files")
        return paths, [None] * len(paths), None
    classes, _ = list_image_folder(folder)  # DataNotFoundError / DataFormatError for no classes or images
    paths = candidate_files(folder)
    index = {name: i for i, name in enumerate(classes)}
    labels = [index.get(p.split("/", 1)[0]) if "/" in p else None for p in paths]
    return paths, labels, classes


def _reading_order(paths: list[str], max_images: int) -> list[int]:
    """Sorted order, or a seeded random order when there are more images than ``max_images``."""
    images = sum(Path(p).suffix.lower() in IMAGE_SUFFIXES for p in paths)
    if images <= max_images:
        return list(range(len(paths)))
    generator = torch.Generator().manual_seed(SAMPLE_SEED)
    return torch.randperm(len(paths), generator=generator).tolist()


def _check_limits(input_shape, max_images: int, max_bytes: int, max_pixels: int) -> None:
    if len(input_shape) != 3 or input_shape[0] not in _MODES:
        raise ConfigError(f"input shape {input_shape} must be (C, H, W) with 1 to 4 channels")
    for name, value in (("max_images", max_images), ("max_bytes", max_bytes), ("max_pixels", max_pixels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive whole number, not {value!r}")


def load_images(
    folder: str | Path,
    preprocess: Preprocess,
    input_shape: tuple[int, int, int],
    *,
    labelled: bool,
    max_images: int,
    max_bytes: int = MAX_BYTES,
    max_pixels: int | None = None,
) -> ImageBatch:
    """Read up to ``max_images`` images of ``folder`` into an :class:`ImageBatch` (see the module doc).

    When the folder holds more images than ``max_images``, files are read in a seeded random
    order (seed 0) so every class is represented; otherwise in sorted order.
    """
    input_shape = tuple(input_shape)
    max_pixels = max_image_pixels(max_pixels)  # None: $PLAYGROUND_MAX_IMAGE_PIXELS, else 50 million
    _check_limits(input_shape, max_images, max_bytes, max_pixels)
    folder = Path(folder).expanduser()
    paths, labels, classes = _listing(folder, labelled)
    order = _reading_order(paths, max_images)
    buffer = torch.empty(min(max_images, len(paths)), *input_shape)
    kept, kept_labels, skipped = [], [], []
    for position, i in enumerate(order):
        if len(kept) == max_images:
            rest = [paths[j] for j in order[position:]]
            unread = sum(Path(p).suffix.lower() in IMAGE_SUFFIXES for p in rest)
            break
        if labelled and labels[i] is None:
            skipped.append((paths[i], "not in a class folder"))
            continue
        try:
            buffer[len(kept)] = _read_image(folder / paths[i], preprocess, input_shape, max_bytes, max_pixels)
        except _Skip as skip:
            skipped.append((paths[i], str(skip)))
            continue
        kept.append(paths[i])
        kept_labels.append(labels[i])
    else:
        unread = 0
    if not kept:
        reasons = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        raise DataFormatError(f"no readable image in {folder} ({len(skipped)} files skipped: {reasons})")
    images = buffer[: len(kept)].clone() if len(kept) < len(buffer) else buffer
    targets = torch.tensor(kept_labels, dtype=torch.long) if labelled else None
    return ImageBatch(images, targets, classes, skipped, kept, str(folder), unread)


def check_eval_classes(batch: ImageBatch, num_classes: int, model_name: str = "the model") -> None:
    """Raise one :class:`DataFormatError` unless the eval folder has one class per model output."""
    if batch.class_names is None:
        raise ConfigError(
            f"eval images from {batch.folder} have no labels; give an ImageFolder DIR/<class>/<image>"
        )
    found = len(batch.class_names)
    if found != num_classes:
        names = ", ".join(batch.class_names[:10]) + (f" (+{found - 10} more)" if found > 10 else "")
        raise DataFormatError(
            f"eval folder {batch.folder} has {found} classes ({names}) but {model_name} has {num_classes} "
            "outputs; give one sub-folder per output, named so that sorted order matches the outputs, "
            "or use a model (num_classes, weights) trained on these classes"
        )
