"""One entry point for every dataset: :func:`load_dataset` and :func:`dataset_status`.

Names: ``fashion_mnist`` (real, from Debian's package or a user root), ``digits``
(scikit-learn, bundled), ``shapes`` (synthetic, generated from a seed) and ``folder``
(a user's ImageFolder tree, given as ``root``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playground.data.base import ImageDataset
from playground.errors import ConfigError, PlaygroundError

DATASETS = ("fashion_mnist", "digits", "shapes", "folder")
SHAPES_SIZES = {"train": 6000, "test": 2000}


def load_dataset(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    image_size: int = 32,
) -> ImageDataset:
    """Load ``split`` (``train`` or ``test``) of dataset ``name``."""
    if name == "fashion_mnist":
        from playground.data.fashion import load_fashion_mnist

        return load_fashion_mnist(split, root, download)
    if name == "digits":
        from playground.data.digits import load_digits

        return load_digits(split, seed=seed)
    if name == "shapes":
        return _load_shapes(split, seed, image_size)
    if name == "folder":
        return _load_folder(split, root, image_size, seed)
    raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def load_train_val_test(
    name: str,
    root: str = "",
    download: bool = False,
    seed: int = 0,
    train_limit: int = 0,
    val_fraction: float = 0.0,
) -> tuple[ImageDataset, ImageDataset | None, ImageDataset]:
    """``(train, val or None, test)`` of dataset ``name``: train limited to ``train_limit`` images
    per class-stratified draw (0: all), then ``val_fraction`` of it held out (0: no validation set)."""
    from playground.data.splits import limit_per_split, random_split

    kwargs = dict(root=root or None, download=download, seed=seed)
    train, test = load_dataset(name, "train", **kwargs), load_dataset(name, "test", **kwargs)
    train = limit_per_split(train, train_limit, seed)
    val = None
    if val_fraction > 0:
        train, val = random_split(train, val_fraction, seed)
    return train, val, test


def load_config_splits(config, progress=None) -> tuple[ImageDataset, ImageDataset | None, ImageDataset]:
    """:func:`load_train_val_test` for a config that has ``dataset``, ``data_root``, ``download``,
    ``seed``, ``train_limit`` and ``val_fraction`` (classify, optimizers), reported as one step."""
    from playground.core.progress import report

    report(progress, "load data", 0, 1)
    splits = load_train_val_test(
        config.dataset,
        config.data_root,
        config.download,
        config.seed,
        config.train_limit,
        config.val_fraction,
    )
    report(progress, "load data", 1, 1)
    return splits


def _load_shapes(split: str, seed: int, image_size: int) -> ImageDataset:
    from playground.data.shapes import make_shapes

    if split not in SHAPES_SIZES:
        raise ConfigError(f"shapes has splits 'train' and 'test', not {split!r}")
    split_seed = seed * 2 + (split == "test")  # train and test never share a generator
    shapes = make_shapes(SHAPES_SIZES[split], seed=split_seed, image_size=image_size)
    return ImageDataset(
        shapes.images,
        shapes.labels,
        list(shapes.classes),
        name=f"shapes/{split}",
        source=f"synthetic, seed {split_seed}",
    )


def _load_folder(split: str, root, image_size: int, seed: int) -> ImageDataset:
    """A user folder: ``root/train`` and ``root/test`` if present, else a 80/20 split of ``root``."""
    from playground.data.folder import load_image_folder
    from playground.data.splits import random_split

    if not root:
        raise ConfigError(
            "dataset 'folder' needs data_root=DIR pointing at an ImageFolder tree (DIR/<class>/<image>)"
        )
    root = Path(root).expanduser()
    if (root / split).is_dir():
        return load_image_folder(root / split, image_size)
    train, test = random_split(load_image_folder(root, image_size), 0.2, seed)
    return train if split == "train" else test


@dataclass
class DatasetStatus:
    name: str
    available: bool
    where: str
    detail: str


def dataset_status(root: str | Path | None = None) -> list[DatasetStatus]:
    """Which datasets are available on this machine and where (for ``playground data``)."""
    from playground.data.fashion import HOW_TO_GET, find_fashion_mnist

    folder = find_fashion_mnist(root)
    rows = [
        DatasetStatus(
            "fashion_mnist",
            folder is not None,
            str(folder or "-"),
            "60,000 train + 10,000 test, 28x28 grey" if folder else f"missing: {HOW_TO_GET}",
        )
    ]
    try:
        import sklearn.datasets  # noqa: F401

        rows.append(DatasetStatus("digits", True, "scikit-learn (bundled)", "1,797 images, 8x8 grey"))
    except ImportError:
        rows.append(DatasetStatus("digits", False, "-", "missing: pip install scikit-learn"))
    rows.append(DatasetStatus("shapes", True, "generated", "synthetic shapes with captions, masks, facts"))
    rows.append(_folder_status(root))
    return rows


def _folder_status(root) -> DatasetStatus:
    if not root:
        return DatasetStatus("folder", False, "-", "give data_root=DIR with DIR/<class>/<image>")
    from playground.data.folder import list_image_folder

    try:
        classes, files = list_image_folder(root)
    except PlaygroundError as err:
        return DatasetStatus("folder", False, str(root), str(err))
    return DatasetStatus("folder", True, str(root), f"{len(files)} images in {len(classes)} classes")
