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


OOD_CHOICES = tuple(s for s in FAR_SETS if s != "folder")


@dataclasses.dataclass
class ActiveDataSpec:
    """The ``[data]`` section: how the dataset is split into pool, curve test set, calibration split
    and stream, and which OOD sets join the stream (the dataset itself is the config's ``dataset``)."""

    pool_limit: int = 20000  # unlabelled pool size (0: the whole training set)
    test_limit: int = 3000  # test images for the learning curves; the rest of the test set is the stream
    calibration_size: int = 2000  # labelled split that calibrates the escalation threshold
    ood_sets: tuple[str, ...] = ("digits", "shapes")
    ood_limit: int = 500  # OOD images per set mixed into the stream

    def __post_init__(self):
        unknown = [s for s in self.ood_sets if s not in OOD_CHOICES]
        if unknown:
            raise ConfigError(
                f"data.ood_sets {list(self.ood_sets)}: choose from {', '.join(OOD_CHOICES)}, "
                "other than the dataset itself"
            )
        if self.calibration_size < 100:
            raise ConfigError(
                "data.calibration_size must be at least 100 to certify an error rate, "
                f"got {self.calibration_size}"
            )

    def check(self, dataset: str) -> None:
        """The OOD sets must differ from the in-distribution ``dataset``."""
        if dataset in self.ood_sets:
            raise ConfigError(
                f"data.ood_sets {list(self.ood_sets)}: choose from {', '.join(OOD_CHOICES)}, "
                f"other than the dataset itself ({dataset})"
            )


def load_active_data(spec: ActiveDataSpec, dataset: str, data_root: str = "", seed: int = 0) -> ActiveData:
    """Split ``dataset``'s training set into calibration + pool; its test set into curve test + stream."""
    spec.check(dataset)
    kwargs = dict(root=data_root or None, seed=seed)
    train, test = load_dataset(dataset, "train", **kwargs), load_dataset(dataset, "test", **kwargs)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    if len(train) <= spec.calibration_size + 100:
        raise ConfigError(
            f"{train.name} has {len(train)} images: too few for a calibration split of "
            f"{spec.calibration_size} and a pool"
        )
    calibration = train.subset(order[: spec.calibration_size])
    pool = train.subset(order[spec.calibration_size :])
    pool = limit_per_split(pool, spec.pool_limit, seed)
    test_order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed + 1))
    curve_size = spec.test_limit if 0 < spec.test_limit < len(test) else len(test) // 2
    far = DataSpec(dataset=dataset, ood_limit=spec.ood_limit, seed=seed)
    ood = {name: far_images(name, far, train.image_shape) for name in spec.ood_sets}
    return ActiveData(
        pool, test.subset(test_order[:curve_size]), calibration, test.subset(test_order[curve_size:]), ood
    )
