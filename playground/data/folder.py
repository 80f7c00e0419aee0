"""A user's own images in the ImageFolder layout: ``ROOT/<class name>/<image file>``.

Images are resized to a square ``image_size`` and converted to greyscale (``channels=1``)
or RGB (``channels=3``) as they are loaded into memory. Every file goes through
:func:`~playground.data.image_file.open_image`: an image over the pixel cap (a decompression bomb) is
an error naming the file, before it is decoded; other unreadable files are skipped and listed, with
why, in ``dataset.notes``; a folder with no readable image is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from playground.data.base import ImageDataset
from playground.data.image_file import ImageTooLargeError, UnreadableImageError, open_image
from playground.errors import DataFormatError, DataNotFoundError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def list_image_folder(root: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted sub-folder names) and ``(file, class index)`` pairs."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(
            f"image folder {root} does not exist; give a folder with one sub-folder per class"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataFormatError(
            f"image folder {root} has no class sub-folders; lay it out as {root}/<class>/<image>.png"
        )
    files = [
        (f, i)
        for i, c in enumerate(classes)
        for f in sorted((root / c).rglob("*"))
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
    ]
    if not files:
        raise DataFormatError(f"image folder {root} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return classes, files


def read_image(
    source, image_size: int, channels: int, name: str | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """One image (a path, encoded bytes or a binary file) as ``(image_size, image_size, channels)``
    uint8, greyscale or RGB, resized. Anything that cannot be read, more pixels than the cap
    included, is an :class:`~playground.data.image_file.UnreadableImageError` naming ``name``."""
    with open_image(source, name, max_pixels) as image:
        image = image.convert("L" if channels == 1 else "RGB").resize((image_size, image_size))
        return np.asarray(image, dtype=np.uint8).reshape(image_size, image_size, channels)


def images_as_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """``(N, C, H, W)`` float32 in [0, 1] from :func:`read_image` arrays."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def list_images(root: str | Path) -> list[Path]:
    """Every image file under ``root`` (any depth, no class folders needed), sorted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root} does not exist")
    files = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise DataFormatError(f"{root} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def load_image_folder(
    root: str | Path, image_size: int = 32, channels: int = 3, max_images: int = 100_000
) -> ImageDataset:
    """Load an ImageFolder tree into memory as an :class:`ImageDataset` (see the module docstring for
    what happens to a bad file)."""
    if channels not in (1, 3):
        raise DataFormatError(f"channels must be 1 (greyscale) or 3 (RGB), not {channels}")
    classes, files = list_image_folder(root)
    if len(files) > max_images:
        raise DataFormatError(
            f"image folder {root} holds {len(files)} images, more than max_images={max_images}; "
            "raise max_images or use a smaller folder"
        )
    arrays, labels, skipped = [], [], []
    for path, label in files:
        try:
            arrays.append(read_image(path, image_size, channels))
            labels.append(label)
        except ImageTooLargeError:
            raise
        except UnreadableImageError as err:
            skipped.append(f"{err.file}: {err.problem}")
    if not arrays:
        raise DataFormatError(
            f"no readable image in {root} ({len(skipped)} files could not be decoded; first: {skipped[0]})"
        )
    images = images_as_tensor(arrays)
    notes = [f"skipped unreadable file {p}" for p in skipped]
    return ImageDataset(
        images,
        torch.tensor(labels),
        classes,
        name=Path(root).name,
        source=str(root),
        notes=notes,
    )
