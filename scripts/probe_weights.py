"""Weights and image folders for measuring a torchvision/timm model's variants on real decisions, offline.

No pretrained weights can be downloaded here, and a randomly initialised network's logits barely depend
on its input (see :mod:`playground.latency.probe`). This script writes, under OUT:

- ``fashion_train/``, ``fashion_eval/`` (ImageFolders of Fashion-MNIST PNGs, class folders ``0_t-shirt``
  ... ``9_ankle-boot``) and ``fashion_calibration/`` (unlabelled training PNGs), written once and shared;
- ``<model>.safetensors``: the model with its BatchNorm statistics re-estimated on the training folder and
  a linear probe as its 10-class classifier;
- with ``--finetune-epochs N``, ``<model>_ft<N>.safetensors``: that model then trained end to end (SGD with
  Nesterov momentum, cosine decay, random horizontal flips) for N epochs on the training folder, so its
  convolutional features carry the classes as a trained network's do (slow: ResNet-18 at 224x224 trains at
  about 7 images/s on 2 cores).

Then time every variant of it on those folders, as a team would with its own model and images::

    python scripts/probe_weights.py --model torchvision:resnet50 --out ~/probe
    playground latency --model torchvision:resnet50 --weights ~/probe/torchvision_resnet50.safetensors \
        --num-classes 10 --calibration ~/probe/fashion_calibration --eval ~/probe/fashion_eval
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import torch

from playground.core.progress import TqdmProgress
from playground.core.training import fit, make_optimizer
from playground.data import TensorLoader, load_dataset
from playground.label.simulate import write_pool
from playground.latency.images import load_images
from playground.latency.probe import fit_linear_probe, recalibrate_batchnorm
from playground.latency.sources import load_source


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_folder(folder: Path, images: torch.Tensor, labels, classes, labelled: bool) -> Path:
    """Fashion-MNIST images as 28x28 PNGs (in class folders when ``labelled``); kept if already there."""
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    if not labelled:
        write_pool(images, labels, folder)
        return folder
    for label in sorted(set(labels.tolist())):
        chosen = labels == label
        write_pool(images[chosen], labels[chosen], folder / f"{label}_{_slug(classes[label])}")
    return folder


def write_folders(out: Path, train: int, evaluate: int, calibration: int) -> dict[str, Path]:
    fashion_train, fashion_test = (
        load_dataset("fashion_mnist", "train"),
        load_dataset("fashion_mnist", "test"),
    )
    classes = fashion_train.classes
    rest = slice(train, train + calibration)
    return {
        "train": write_folder(
            out / "fashion_train", fashion_train.images[:train], fashion_train.labels[:train], classes, True
        ),
        "eval": write_folder(
            out / "fashion_eval",
            fashion_test.images[:evaluate],
            fashion_test.labels[:evaluate],
            classes,
            True,
        ),
        "calibration": write_folder(
            out / "fashion_calibration",
            fashion_train.images[rest],
            fashion_train.labels[rest],
            classes,
            False,
        ),
    }


class FlippedLoader(TensorLoader):
    """Batches with half the images flipped left to right (the only augmentation; fine for clothing)."""

    def __iter__(self):
        for images, labels in super().__iter__():
            flip = torch.rand(images.shape[0], generator=self.generator) < 0.5
            yield torch.where(flip[:, None, None, None], images.flip(-1), images), labels


def finetune(module: torch.nn.Module, images, labels, epochs: int, lr: float) -> float:
    """Train ``module`` end to end; returns the last epoch's training accuracy. Left in eval mode.

    BatchNorm's running statistics are re-estimated afterwards: the probe's first steps send large
    activations through the network, and the running averages kept them (a ResNet-18 fine-tuned for 2
    epochs scored 9% on held-out images with its running statistics, 63% once they were re-estimated)."""
    loader = FlippedLoader(images, labels, batch_size=32, shuffle=True)
    optimizer = make_optimizer(module, "sgd", lr=lr, weight_decay=5e-4)
    history = fit(module, loader, epochs=epochs, optimizer=optimizer, progress=TqdmProgress())
    recalibrate_batchnorm(module, images)
    module.eval()
    return float(history.epochs[-1]["train/accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="torchvision:NAME or timm:NAME")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--input-shape", default="", help="CxHxW (default: the model's)")
    parser.add_argument("--train", type=int, default=2000, help="images the probe is fitted on")
    parser.add_argument("--eval", type=int, default=500, help="test images written to fashion_eval/")
    parser.add_argument("--calibration", type=int, default=512, help="images written to fashion_calibration/")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument(
        "--finetune-epochs", type=int, default=0, help="then train end to end (0: probe only)"
    )
    parser.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate (SGD)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = args.out.expanduser()
    folders = write_folders(out, args.train, args.eval, args.calibration)
    source = load_source(args.model, input_shape=args.input_shape, num_classes=10)
    start = time.perf_counter()
    batch = load_images(
        folders["train"], source.preprocess, source.input_shape, labelled=True, max_images=args.train
    )
    layers = recalibrate_batchnorm(source.module, batch.images)
    accuracy = fit_linear_probe(source.module, batch.images, batch.labels)
    from safetensors.torch import save_file

    suffix = f"_ft{args.finetune_epochs}" if args.finetune_epochs else ""
    if args.finetune_epochs:
        accuracy = finetune(source.module, batch.images, batch.labels, args.finetune_epochs, args.lr)
    path = out / f"{_slug(args.model.replace(':', '_')).replace('-', '_')}{suffix}.safetensors"
    save_file({k: v.contiguous() for k, v in source.module.state_dict().items()}, str(path))
    trained = f", then trained end to end for {args.finetune_epochs} epochs" if args.finetune_epochs else ""
    print(
        f"{args.model}: {layers} BatchNorm layers re-estimated and a linear probe fitted on "
        f"{batch.images.shape[0]} images{trained} (training accuracy {accuracy:.3f}) "
        f"in {time.perf_counter() - start:.0f} s -> {path}"
    )
    print(f"folders: {', '.join(f'{k}={v}' for k, v in folders.items())}")


if __name__ == "__main__":
    main()
