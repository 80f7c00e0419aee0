"""The OOD benchmark's data: the in-distribution task and its out-of-distribution sets.

- in distribution: a dataset with ``heldout_classes`` removed (Fashion-MNIST: 8 of 10 classes);
- ``near``: the held-out classes of the same dataset (near-OOD: same style, unseen classes);
- far sets, resized and converted to the in-distribution image shape: ``digits`` (scikit-learn's
  8x8 digits), ``shapes`` (the synthetic shapes), ``gaussian`` and ``uniform`` noise, and
  ``folder`` (a user's own image folder, ``ood_folder``);
- ``corrupted``: the in-distribution test set under blur, Gaussian noise or low contrast (a third
  each), labels kept, for calibration under covariate shift (cf. Ovadia et al. 2019, "Can You
  Trust Your Model's Uncertainty?").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from playground.data import ImageDataset, load_dataset
from playground.data.splits import class_subset, limit_per_split, random_split
from playground.errors import ConfigError

FAR_SETS = ("digits", "shapes", "gaussian", "uniform", "folder")
CORRUPTIONS = ("blur", "noise", "contrast")


@dataclass
class OODData:
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    ood: dict[str, torch.Tensor]  # set name -> images shaped like the in-distribution ones
    corrupted: ImageDataset
    heldout: list[str]  # names of the held-out (near-OOD) classes
    far: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def sets(self) -> list[str]:
        return list(self.ood)


def fit_images(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Images converted to ``shape`` = (C, H, W): grey <-> RGB, then an antialiased resize."""
    channels, height, width = shape
    if images.shape[1] != channels:
        images = (
            images.mean(1, keepdim=True)
            if channels == 1
            else images.mean(1, keepdim=True).expand(-1, channels, -1, -1)
        )
    if images.shape[-2:] != (height, width):
        images = F.interpolate(
            images, size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
    return images.clamp(0, 1).contiguous()


def noise_images(kind: str, n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """``gaussian`` (N(0.5, 0.25²) clipped to [0, 1]) or ``uniform`` (U[0, 1]) noise images."""
    generator = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        return (0.5 + 0.25 * torch.randn((n, *shape), generator=generator)).clamp(0, 1)
    return torch.rand((n, *shape), generator=generator)


def corrupt(images: torch.Tensor, kind: str, severity: float, seed: int = 0) -> torch.Tensor:
    """``blur`` (Gaussian, σ = severity px), ``noise`` (σ = 0.2·severity) or ``contrast`` (scaled to
    1/(1+severity)).
    """
    if kind == "blur":
        from torchvision.transforms.functional import gaussian_blur

        size = 2 * int(3 * severity) + 1
        return gaussian_blur(images, [size, size], [severity, severity]).clamp(0, 1)
    if kind == "noise":
        generator = torch.Generator().manual_seed(seed)
        return (images + 0.2 * severity * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    if kind == "contrast":
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return ((images - mean) / (1 + severity) + mean).clamp(0, 1)
    raise ConfigError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")


def corrupted_set(test: ImageDataset, severity: float, seed: int) -> ImageDataset:
    """The test set with a third of the images blurred, a third noised and a third at low contrast."""
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    images = test.images.clone()
    for i, kind in enumerate(CORRUPTIONS):
        part = order[i :: len(CORRUPTIONS)]
        images[part] = corrupt(test.images[part], kind, severity, seed + i)
    return ImageDataset(
        images,
        test.labels.clone(),
        list(test.classes),
        name=f"{test.name}/corrupted",
        source=f"blur/noise/contrast at severity {severity}",
    )


def subsample(images: torch.Tensor, limit: int, seed: int) -> torch.Tensor:
    if limit <= 0 or images.shape[0] <= limit:
        return images
    return images[torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))[:limit]]


@dataclass
class DataSpec:
    """What to load: the in-distribution dataset, its held-out classes and the OOD sets."""

    dataset: str = "fashion_mnist"
    data_root: str = ""
    heldout_classes: tuple[int, ...] = (8, 9)
    far_sets: tuple[str, ...] = ("digits", "shapes", "gaussian", "uniform")
    ood_folder: str = ""
    train_limit: int = 0
    val_fraction: float = 0.1
    test_limit: int = 0
    ood_limit: int = 2000
    corruption_severity: float = 1.5
    seed: int = 0

    def check(self) -> None:
        unknown = [s for s in self.far_sets if s not in FAR_SETS]
        if unknown:
            raise ConfigError(f"unknown far OOD set(s) {unknown}; choose from {', '.join(FAR_SETS)}")
        if self.dataset in self.far_sets:
            raise ConfigError(
                f"{self.dataset!r} is the in-distribution dataset and cannot also be a far OOD set"
            )
        if "folder" in self.far_sets and not self.ood_folder:
            raise ConfigError("far set 'folder' needs ood_folder=DIR (an image folder of OOD images)")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(
                "val_fraction must be in (0, 1): temperature scaling needs a validation split, "
                f"got {self.val_fraction}"
            )


def split_heldout(
    dataset: ImageDataset, heldout: tuple[int, ...]
) -> tuple[ImageDataset, ImageDataset | None]:
    """``(kept classes relabelled 0..k-1, held-out classes)``."""
    bad = [c for c in heldout if not 0 <= c < dataset.num_classes]
    if bad:
        raise ConfigError(
            f"heldout_classes {bad} are not class ids of {dataset.name} (0..{dataset.num_classes - 1})"
        )
    kept = [c for c in range(dataset.num_classes) if c not in heldout]
    if len(kept) < 2:
        raise ConfigError("heldout_classes must leave at least 2 in-distribution classes")
    return class_subset(dataset, kept, relabel=True), class_subset(
        dataset, list(heldout)
    ) if heldout else None


def far_images(name: str, spec: DataSpec, shape: tuple[int, int, int]) -> torch.Tensor:
    """The far OOD set ``name`` at the in-distribution image shape."""
    n = spec.ood_limit if spec.ood_limit > 0 else 2000
    if name in ("gaussian", "uniform"):
        return noise_images(name, n, shape, spec.seed + (name == "uniform"))
    if name == "digits":
        images = load_dataset("digits", "all").images
    elif name == "shapes":
        from playground.data.shapes import make_shapes

        images = make_shapes(n, seed=10_000 + spec.seed, image_size=32).images
    else:
        from playground.data.folder import load_image_folder

        images = load_image_folder(spec.ood_folder, image_size=max(shape[1:]), channels=shape[0]).images
    return subsample(fit_images(images, shape), spec.ood_limit, spec.seed)


def load_ood_data(spec: DataSpec) -> OODData:
    """In-distribution train/val/test, the near and far OOD sets and the corrupted test set."""
    spec.check()
    kwargs = dict(root=spec.data_root or None, seed=spec.seed)
    train_all, test_all = (
        load_dataset(spec.dataset, "train", **kwargs),
        load_dataset(spec.dataset, "test", **kwargs),
    )
    train, _ = split_heldout(train_all, tuple(spec.heldout_classes))
    test, near = split_heldout(test_all, tuple(spec.heldout_classes))
    train, val = random_split(
        limit_per_split(train, spec.train_limit, spec.seed), spec.val_fraction, spec.seed
    )
    test = limit_per_split(test, spec.test_limit, spec.seed)
    ood = (
        {"near": subsample(near.images, spec.ood_limit, spec.seed)} if near is not None and len(near) else {}
    )
    for name in spec.far_sets:
        ood[name] = far_images(name, spec, test.image_shape)
    heldout = [test_all.classes[c] for c in spec.heldout_classes]
    return OODData(
        train,
        val,
        test,
        ood,
        corrupted_set(test, spec.corruption_severity, spec.seed),
        heldout,
        far=list(spec.far_sets),
    )
