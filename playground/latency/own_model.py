"""A team's own model in the latency benchmark: the model, its images, and what each variant is measured on.

``--model torchvision:resnet50`` / ``timm:NAME`` / ``model.onnx`` (:mod:`playground.latency.sources`;
random weights unless ``--weights`` is given) and the team's folders (:mod:`playground.latency.images`):

- ``calibration_dir``: images for int8 calibration. Without ``eval_dir``, a held-out half of them is
  where quality is measured (agreement with the fp32 reference), so int8 is never scored on the images
  it was calibrated on. Without ``calibration_dir``, built-in Fashion-MNIST images resized to the input
  stand in, and the report says so (they are not the team's data).
- ``eval_dir``: an ImageFolder whose sorted class folders match the model's outputs: accuracy, ECE and
  accuracy on a corrupted copy (blur, noise, low contrast in pixel space, then normalised again).
- far OOD: ``far_dir`` (any images), else ``far_ood`` = ``digits`` (resized) or ``noise`` (uniform).

Everything is read and checked before any variant is built or timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from playground.data import load_dataset
from playground.data.ood import CORRUPTIONS, corrupt, fit_images, noise_images
from playground.errors import ConfigError
from playground.latency.evaluation import EvalSet
from playground.latency.images import check_eval_classes, load_images
from playground.latency.sources import ModelSource, Preprocess, load_source

FAR_IMAGES = 300  # enough for an AUROC, and cheap at 224x224
BUILT_IN_CALIBRATION = 256


@dataclass
class OwnModel:
    """The loaded model and the images every variant of it is measured on."""

    source: ModelSource
    data: EvalSet
    notes: list[str] = field(default_factory=list)  # lines for the report (data sources, skipped files)


def load_own(config) -> OwnModel:
    """The model named by ``config.model`` and its evaluation images (all checks before any timing)."""
    source = load_source(
        config.model,
        weights=config.weights,
        input_shape=config.input_shape,
        num_classes=config.num_classes,
        preprocess_overrides=config.preprocess or None,
    )
    notes = [f"Model {source.name}: weights {source.weights}; input {_shape(source)}."]
    notes += [f"Preprocessing: {source.preprocess.describe()}."] + source.notes
    calibration, quality = _calibration(config, source, notes)
    labels = corrupted = None
    if config.eval_dir:
        batch = _read(config.eval_dir, source, notes, "Eval", labelled=True, max_images=config.eval_images)
        check_eval_classes(batch, source.num_classes, source.name)
        quality, labels = batch.images, batch.labels
        corrupted = corrupted_copy(quality, source.preprocess, config.corruption_severity, config.seed)
    far = _far(config, source, notes)
    description = (
        f"quality on {quality.shape[0]} {'labelled eval' if labels is not None else 'held-out calibration'} "
        f"images, int8 calibrated on {calibration.shape[0]}, far OOD {far.shape[0]}"
    )
    return OwnModel(source, EvalSet(quality, labels, corrupted, far, calibration, description), notes)


def _read(folder: str, source: ModelSource, notes: list[str], what: str, labelled=False, max_images=0):
    """A folder of the team's images, preprocessed for ``source``; what was read (and skipped) goes to
    the report's ``notes``."""
    batch = load_images(
        folder, source.preprocess, source.input_shape, labelled=labelled, max_images=max_images
    )
    notes.append(f"{what}: {batch.summary()}")
    return batch


def _shape(source: ModelSource) -> str:
    return "x".join(str(d) for d in source.input_shape)


def _calibration(config, source: ModelSource, notes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(int8 calibration images, held-out images)``: the folder split in two, or built-in images."""
    if config.calibration_dir:
        max_images = 2 * config.calibration_images
        images = _read(config.calibration_dir, source, notes, "Calibration", max_images=max_images).images
    else:
        fashion = load_dataset("fashion_mnist", "train", root=config.data_root or None)
        pixels = fit_images(fashion.images[: 2 * BUILT_IN_CALIBRATION], source.input_shape)
        images = normalise(pixels, source)
        notes.append(
            f"Calibration: no --calibration folder, so {images.shape[0]} built-in Fashion-MNIST images "
            f"resized to {_shape(source)} stand in; give --calibration DIR with your own images for int8 "
            "figures that hold on your data."
        )
    if images.shape[0] < 4:
        raise ConfigError(f"need at least 4 calibration images, got {images.shape[0]}")
    half = images.shape[0] // 2
    return images[:half], images[half:]


def _far(config, source: ModelSource, notes: list[str]) -> torch.Tensor:
    if config.far_dir:
        return _read(config.far_dir, source, notes, "Far OOD", max_images=FAR_IMAGES).images
    if config.far_ood == "noise":
        images = noise_images("uniform", FAR_IMAGES, source.input_shape, config.seed)
    else:
        images = fit_images(load_dataset(config.far_ood, "test").images[:FAR_IMAGES], source.input_shape)
    notes.append(f"Far OOD: {images.shape[0]} {config.far_ood} images resized to {_shape(source)}.")
    return normalise(images, source)


def _stats(preprocess: Preprocess, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(preprocess.mean[:channels]).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std[:channels]).view(1, -1, 1, 1)
    return mean, std


def normalise(images: torch.Tensor, source: ModelSource) -> torch.Tensor:
    """Pixels in [0, 1] normalised with the model's mean and std."""
    mean, std = _stats(source.preprocess, images.shape[1])
    return ((images - mean) / std).contiguous()


def corrupted_copy(images: torch.Tensor, preprocess: Preprocess, severity: float, seed: int) -> torch.Tensor:
    """Normalised images with a third blurred, a third noised and a third at low contrast (in pixel
    space, as :func:`playground.data.ood.corrupted_set` does for the project's test set)."""
    mean, std = _stats(preprocess, images.shape[1])
    pixels = (images * std + mean).clamp(0, 1)
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    for i, kind in enumerate(CORRUPTIONS):
        part = order[i :: len(CORRUPTIONS)]
        pixels[part] = corrupt(pixels[part], kind, severity, seed + i)
    return ((pixels - mean) / std).contiguous()
