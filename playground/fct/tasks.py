"""The old-time / new-time data of an FCT experiment.

- **Class split** (Fashion-MNIST, digits, a user's folder): the old model sees only the
  old classes (by default the first half), the new model every class. This is the
  paper's ImageNet-500 -> ImageNet-1k protocol in small.
- **Shapes** (the paper's figure-1 intuition): the old task labels colour only, the new
  task shape *and* colour. Old embeddings cannot tell a blue circle from a blue square;
  side-information learned without labels can.

Side-info is trained on ``old_train.images`` with no labels. Retrieval is evaluated on
``test`` with the new labels, which serves as both query and gallery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from playground.data import ImageDataset, load_dataset
from playground.data.shapes import make_shapes
from playground.data.splits import class_subset, limit_per_split
from playground.errors import ConfigError


@dataclass
class FCTData:
    old_train: ImageDataset  # old-time images, old labels
    new_train: ImageDataset  # new-time training images, new labels
    test: ImageDataset  # query = gallery, new labels
    old_row_of_new: list[int | None]  # old-classifier row of each new class (None: unseen)
    description: str


def class_split_task(train: ImageDataset, test: ImageDataset, old_classes: Sequence[int] = ()) -> FCTData:
    """Old model on ``old_classes`` (default: the first half), new model on all classes."""
    old_classes = list(old_classes) or list(range(max(1, train.num_classes // 2)))
    if len(set(old_classes)) >= train.num_classes:
        raise ConfigError(f"old_classes {old_classes} must leave some classes for the new model only")
    old_train = class_subset(train, old_classes, relabel=True)
    rows = [old_classes.index(c) if c in old_classes else None for c in range(train.num_classes)]
    names = ", ".join(train.classes[c] for c in old_classes)
    return FCTData(
        old_train,
        train,
        test,
        rows,
        f"{train.name}: old model on {len(old_classes)} classes ({names}), "
        f"new model on all {train.num_classes}",
    )


def _shapes_split(n: int, seed: int, image_size: int, shapes: Sequence[str], colours: Sequence[str]):
    """``(images, shape-and-colour labels, colour labels, class names)`` for one split."""
    data = make_shapes(
        n, seed=seed, image_size=image_size, label_by="shape", shapes=list(shapes), colours=list(colours)
    )
    colour = torch.tensor([colours.index(a.colour) for a in data.attributes])
    shape = torch.tensor([shapes.index(a.shape) for a in data.attributes])
    names = [f"{c} {s}" for s in shapes for c in colours]
    return data.images, shape * len(colours) + colour, colour, names


def shapes_task(
    n_train: int, n_test: int, seed: int, image_size: int, shapes: Sequence[str], colours: Sequence[str]
) -> FCTData:
    """Old task: colour only; new task: shape and colour (``len(shapes) * len(colours)`` classes)."""
    shapes, colours = list(shapes), list(colours)
    images, new_labels, old_labels, names = _shapes_split(n_train, 2 * seed, image_size, shapes, colours)
    test_images, test_labels, _, _ = _shapes_split(n_test, 2 * seed + 1, image_size, shapes, colours)
    source = f"synthetic shapes, seed {seed}"
    new_train = ImageDataset(images, new_labels, names, name="shapes/train", source=source)
    old_train = ImageDataset(images, old_labels, colours, name="shapes/train (colour labels)", source=source)
    test = ImageDataset(test_images, test_labels, names, name="shapes/test", source=source)
    rows = [colours.index(name.split(" ")[0]) for name in names]  # "blue square" refines old "blue"
    return FCTData(
        old_train,
        new_train,
        test,
        rows,
        f"shapes: old model labels {len(colours)} colours, new model {len(names)} shape-colour classes",
    )


def load_task(
    dataset: str,
    *,
    data_root: str = "",
    download: bool = False,
    seed: int = 0,
    old_classes: Sequence[int] = (),
    train_limit: int = 0,
    test_limit: int = 0,
    image_size: int = 32,
    shapes_train: int = 6000,
    shapes_test: int = 2000,
    shapes: Sequence[str] = (),
    colours: Sequence[str] = (),
) -> FCTData:
    """Build the FCT data for ``dataset`` (``fashion_mnist``, ``digits``, ``folder``, ``shapes``)."""
    if dataset == "shapes":
        task = shapes_task(
            shapes_train,
            shapes_test,
            seed,
            image_size,
            shapes or ("circle", "square", "triangle", "star"),
            colours or ("red", "green", "blue"),
        )
    else:
        kwargs = dict(root=data_root or None, download=download, seed=seed, image_size=image_size)
        train = limit_per_split(load_dataset(dataset, "train", **kwargs), train_limit, seed)
        task = class_split_task(train, load_dataset(dataset, "test", **kwargs), old_classes)
    return replace(task, test=limit_per_split(task.test, test_limit, seed))
