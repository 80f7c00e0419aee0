"""Shared pieces for the labelling-project tests: a small folder of easy images with known classes (and a
few bad files), a SQLite store, tiny project settings, and annotators simulated through the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from playground.active.learner import TrainSpec
from playground.label.project import ProjectSettings, init_project
from playground.store import Store

CLASSES = ["red", "green", "blue"]
PER_CLASS = 30
BAD_FILES = {"empty.png": "empty file", "broken.jpg": "cannot be decoded", "notes.txt": "not an image"}


def draw(label: int, index: int, size: int = 16) -> np.ndarray:
    """An easy image of class ``label``: a red square, a green cross or a blue bar at a random place on
    a noisy grey background; ``index`` makes every image (and its hash) different."""
    rng = np.random.default_rng(1000 * label + index)
    pixels = rng.integers(60, 120, (size, size, 3)).astype(np.uint8)
    colour = np.zeros(3, dtype=np.uint8)
    colour[label] = 230
    x, y = rng.integers(0, size - 8, 2)
    if label == 0:
        pixels[y : y + 8, x : x + 8] = colour
    elif label == 1:
        pixels[y + 3 : y + 5, x : x + 8] = colour
        pixels[y : y + 8, x + 3 : x + 5] = colour
    else:
        pixels[y + 2 : y + 6, :] = colour
    return pixels


def write_images(folder: Path, per_class: int = PER_CLASS, start: int = 0) -> list[Path]:
    """``folder/<class>_<i>.png`` for every class; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for label, name in enumerate(CLASSES):
        for index in range(start, start + per_class):
            path = folder / f"{name}_{index:03d}.png"
            Image.fromarray(draw(label, index)).save(path)
            written.append(path)
    return written


def true_label(path: str) -> int:
    """The class an image was drawn as, read back from its file name (``sub/red_004.png`` -> 0)."""
    return CLASSES.index(Path(path).name.split("_")[0])


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """90 easy images (30 per class) plus an empty file, an undecodable one and a text file."""
    folder = tmp_path / "images"
    write_images(folder)
    (folder / "empty.png").write_bytes(b"")
    (folder / "broken.jpg").write_text("not a jpeg")
    (folder / "notes.txt").write_text("hello")
    return folder


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'label.db'}") as opened:
        yield opened


def tiny(**changes) -> ProjectSettings:
    """Project settings small enough for a test to train and score in about a second."""
    train = TrainSpec(width=8, min_steps=20, max_steps=40, finetune_steps=10, replay=20)
    values = dict(image_size=16, channels=3, budget=20, seed_size=10, min_calibration=10, train=train)
    return ProjectSettings(**{**values, **changes})


@pytest.fixture
def project(store, image_folder):
    """A fresh project ``shapes`` over ``image_folder`` with :func:`tiny` settings."""
    return init_project(store, "shapes", image_folder, CLASSES, tiny()).project


def label_queue(
    store: Store, queue: str, annotator: str = "ann", label_of=None, limit: int | None = None
) -> list[str]:
    """``annotator`` labels what they are offered (``label_of(path)``, the true class by default), at
    most ``limit`` items; returns the external ids labelled."""
    label_of = label_of or true_label
    done: list[str] = []
    while limit is None or len(done) < limit:
        item = store.lease_next(queue, annotator)
        if item is None:
            break
        store.submit(
            f"{annotator}-{item.escalation_id}",
            item.escalation_id,
            annotator,
            "correct",
            label_of(item.external_id),
        )
        done.append(item.external_id)
    return done
