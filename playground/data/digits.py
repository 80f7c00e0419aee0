"""scikit-learn's handwritten digits: 1,797 8x8 greyscale images of 0-9 (bundled, no download)."""

from __future__ import annotations

import torch

from playground.data.base import ImageDataset
from playground.errors import DataFormatError


def load_digits(split: str = "all", test_fraction: float = 0.25, seed: int = 0) -> ImageDataset:
    """``train``/``test`` are a stratified split fixed by ``seed``; ``all`` is every image."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    classes = [str(c) for c in bunch.target_names]
    if split == "all":
        return ImageDataset(images, labels, classes, name="digits", source="scikit-learn")
    if split not in ("train", "test"):
        raise DataFormatError(f"digits has splits 'train', 'test' and 'all', not {split!r}")
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(), test_size=test_fraction, random_state=seed, stratify=labels.numpy()
    )
    index = torch.as_tensor(train_idx if split == "train" else test_idx)
    return ImageDataset(images[index], labels[index], classes, name=f"digits/{split}", source="scikit-learn")
