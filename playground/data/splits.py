"""Class-subset splits (old classes / new classes) and query/gallery splits."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from playground.data.base import ImageDataset
from playground.errors import DataFormatError


def class_subset(dataset: ImageDataset, classes: Sequence[int], relabel: bool = False) -> ImageDataset:
    """Keep only the images whose label is in ``classes``.

    With ``relabel`` the kept classes are renumbered 0..k-1 in the order given; otherwise
    labels and ``classes`` stay as they were (handy when an old model sees classes 0-4 of 10).
    """
    wanted = list(classes)
    bad = [c for c in wanted if not 0 <= c < dataset.num_classes]
    if bad or not wanted:
        raise DataFormatError(
            f"{dataset.name}: class ids must be in 0..{dataset.num_classes - 1}, got {wanted}"
        )
    keep = torch.isin(dataset.labels, torch.tensor(wanted))
    subset = dataset.subset(keep.nonzero().squeeze(1))
    if relabel:
        mapping = torch.full((dataset.num_classes,), -1, dtype=torch.int64)
        mapping[torch.tensor(wanted)] = torch.arange(len(wanted))
        subset.labels = mapping[subset.labels]
        subset.classes = [dataset.classes[c] for c in wanted]
    return subset


def old_new_split(dataset: ImageDataset, old_classes: Sequence[int]) -> tuple[ImageDataset, ImageDataset]:
    """The old-time data (only ``old_classes``) and the new-time data (every class)."""
    return class_subset(dataset, old_classes), dataset


def random_split(
    dataset: ImageDataset, fraction: float, seed: int = 0, stratified: bool = True
) -> tuple[ImageDataset, ImageDataset]:
    """Split into ``(rest, part)`` where ``part`` holds ``fraction`` of each class."""
    if not 0.0 < fraction < 1.0:
        raise DataFormatError(f"split fraction must be between 0 and 1, got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    groups = (
        [dataset.labels.eq(c).nonzero().squeeze(1) for c in range(dataset.num_classes)]
        if stratified
        else [torch.arange(len(dataset))]
    )
    part, rest = [], []
    for group in groups:
        shuffled = group[torch.randperm(len(group), generator=generator)]
        cut = round(len(group) * fraction)
        part.append(shuffled[:cut])
        rest.append(shuffled[cut:])
    return dataset.subset(torch.cat(rest).sort().values), dataset.subset(torch.cat(part).sort().values)


def query_gallery_split(
    dataset: ImageDataset, query_fraction: float = 0.2, seed: int = 0
) -> tuple[ImageDataset, ImageDataset]:
    """Disjoint ``(query, gallery)`` sets with every class in both (stratified)."""
    gallery, query = random_split(dataset, query_fraction, seed)
    return query, gallery


def limit_per_split(dataset: ImageDataset, limit: int, seed: int = 0) -> ImageDataset:
    """At most ``limit`` images, stratified by class; ``limit <= 0`` keeps everything."""
    if limit <= 0 or limit >= len(dataset):
        return dataset
    _, part = random_split(dataset, limit / len(dataset), seed)
    return part
