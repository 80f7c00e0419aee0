"""The data an active-learning run uses: an unlabelled pool, a test set, a labelled
calibration split for the escalation threshold, and OOD images mixed into the stream."""

from __future__ import annotations

import dataclasses

import torch

from playground.data import ImageDataset, load_dataset
from playground.data.ood import FAR_SETS, DataSpec, far_images
from playground.data.splits import limit_per_split
from playground.errors import ConfigError


@dataclasses.dataclass
class ActiveData:
    pool: ImageDataset  # labels hidden from the learner until acquired
    test: ImageDataset  # learning-curve accuracy
    calibration: ImageDataset  # held-out labelled split for the escalation threshold
    stream: ImageDataset  # new in-distribution data routed by the escalation policy
    ood: dict[str, torch.Tensor]


@dataclasses.dataclass
class ActiveDataSpec:
    dataset: str = "fashion_mnist"
    data_root: str = ""
    pool_limit: int = 20000
    test_limit: int = 3000
    calibration_size: int = 2000
    ood_sets: tuple[str, ...] = ("digits", "shapes")
    ood_limit: int = 500
    seed: int = 0

    def check(self) -> None:
        unknown = [s for s in self.ood_sets if s not in FAR_SETS or s == "folder"]
        if unknown or self.dataset in self.ood_sets:
            raise ConfigError(
                f"ood_sets {list(self.ood_sets)}: choose from "
                f"{', '.join(s for s in FAR_SETS if s != 'folder')}, "
                f"other than the dataset itself"
            )
        if self.calibration_size < 100:
            raise ConfigError(
                f"calibration_size must be at least 100 to certify an error rate, got {self.calibration_size}"
            )


def load_active_data(spec: ActiveDataSpec) -> ActiveData:
    """Split the training set into calibration + pool; the test set into curve test + stream."""
    spec.check()
    kwargs = dict(root=spec.data_root or None, seed=spec.seed)
    train, test = load_dataset(spec.dataset, "train", **kwargs), load_dataset(spec.dataset, "test", **kwargs)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(spec.seed))
    if len(train) <= spec.calibration_size + 100:
        raise ConfigError(
            f"{train.name} has {len(train)} images: too few for a calibration split of "
            f"{spec.calibration_size} and a pool"
        )
    calibration = train.subset(order[: spec.calibration_size])
    pool = train.subset(order[spec.calibration_size :])
    pool = limit_per_split(pool, spec.pool_limit, spec.seed)
    test_order = torch.randperm(len(test), generator=torch.Generator().manual_seed(spec.seed + 1))
    curve_size = spec.test_limit if 0 < spec.test_limit < len(test) else len(test) // 2
    far = DataSpec(dataset=spec.dataset, ood_limit=spec.ood_limit, seed=spec.seed)
    ood = {name: far_images(name, far, train.image_shape) for name in spec.ood_sets}
    return ActiveData(
        pool, test.subset(test_order[:curve_size]), calibration, test.subset(test_order[curve_size:]), ood
    )
