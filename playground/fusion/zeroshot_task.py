"""Zero-shot on the shapes: unseen colour-shape compositions.

The label space is every (colour, shape) pair, 36 classes, each described by the sentence
"a {colour} {shape}". Eight pairs are held out of training (each shape and colour still occurs
in seen pairs), so a held-out class is new as a whole: "a red circle" was never a training
label, although red things and circles were. A :class:`LabelEmbeddingClassifier` learns to
project images into the sentence encoder's space from the 28 seen classes; at test time the
8 held-out descriptions join (plain zero-shot) or all 36 (generalised zero-shot) are scored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from playground.core.progress import Progress
from playground.data.shapes import COLOURS, SHAPES, make_shapes
from playground.fusion.zeroshot import LabelEmbeddingClassifier, scores, train_zero_shot, zero_shot_metrics

PAIRS = [(colour, shape) for shape in SHAPES for colour in COLOURS]
HELDOUT = [(list(COLOURS)[i % 6], SHAPES[i % 6]) for i in range(6)] + [
    (list(COLOURS)[(i + 1) % 6], SHAPES[i]) for i in range(2)
]


def describe_class(colour: str, shape: str) -> str:
    return f"a {colour} {shape}"


@dataclasses.dataclass
class ZeroShotResult:
    metrics: dict[str, float]
    model: LabelEmbeddingClassifier
    class_names: list[str]
    unseen: list[int]


def composition_labels(dataset) -> torch.Tensor:
    return torch.tensor([PAIRS.index((a.colour, a.shape)) for a in dataset.attributes])


def run_zero_shot(
    config, encode_text: Callable[[list[str]], torch.Tensor], progress: Progress = None
) -> ZeroShotResult:
    """Train on the seen compositions, score the held-out ones (``config``: seed, sizes, epochs, lr)."""
    names = [describe_class(c, s) for c, s in PAIRS]
    embeddings = encode_text(names)
    unseen = [PAIRS.index(pair) for pair in HELDOUT]
    train = make_shapes(config.zeroshot_train, seed=4000 + config.seed, image_size=config.image_size)
    model = train_zero_shot(
        train.images,
        composition_labels(train),
        embeddings,
        unseen,
        width=config.width * 2,
        epochs=config.zeroshot_epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=progress,
    )
    test = make_shapes(config.zeroshot_test, seed=5000 + config.seed, image_size=config.image_size)
    metrics = zero_shot_metrics(scores(model, test.images, embeddings), composition_labels(test), unseen)
    return ZeroShotResult(metrics, model, names, unseen)
