"""A user's own images in the ImageFolder layout: ``ROOT/<class name>/<image file>``.

Images are resized to a square ``image_size`` and converted to greyscale (``channels=1``)
or RGB (``channels=3``) as they are loaded into memory. Unreadable files are skipped and
listed in ``dataset.notes``; a folder with no readable image is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from playground.data.base import ImageDataset
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


def read_image(path: Path, image_size: int, channels: int) -> np.ndarray:
    """One image file as ``(image_size, image_size, channels)`` uint8 (greyscale or RGB, resized);
    PIL's errors (``UnidentifiedImageError``, ``OSError``, ``ValueError``) pass through."""
    from PIL import Image

    with Image.open(path) as image:
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
    """Load an ImageFolder tree into memory as an :class:`ImageDataset`."""
    from PIL import UnidentifiedImageError

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
        except (UnidentifiedImageError, OSError, ValueError):
            skipped.append(str(path))
    if not arrays:
        raise DataFormatError(f"no readable image in {root} ({len(skipped)} files could not be decoded)")
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
