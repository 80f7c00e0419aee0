"""Fashion-MNIST (Xiao et al., 2017): 60k train + 10k test 28x28 greyscale clothing images.

Search order: the files the Debian package ``dataset-fashion-mnist`` installs, then a
torchvision-layout root the user gives (``ROOT/FashionMNIST/raw/*-ubyte[.gz]`` or the files
directly in ``ROOT``). A download is strictly opt-in: only with ``download=True`` and a root to
write into (the issue asks for it for machines with internet); offline it fails with a
one-line error that says how to get the data instead. Nothing downloads by default.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from playground.data.base import ImageDataset
from playground.errors import DataFormatError, DataNotFoundError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MAX_IDX_DIMS = 4  # Fashion-MNIST's files have 1 (labels) or 3 (images)
MAX_IDX_BYTES = 2**30  # the training images take 47 MB
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW_TO_GET = (
    "install it with `sudo apt-get install dataset-fashion-mnist`, point data_root at a "
    "torchvision FashionMNIST root (e.g. --set data_root=DIR), or allow a download with --set download=true"
)


def candidate_dirs(root: str | Path | None = None) -> list[Path]:
    """Folders searched, in order: Debian's, then the user's root (and its torchvision subfolder)."""
    dirs = [DEBIAN_DIR]
    root = root or os.environ.get("PLAYGROUND_DATA")
    if root:
        root = Path(root).expanduser()
        dirs += [root / "FashionMNIST" / "raw", root]
    return dirs


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion_mnist(root: str | Path | None = None) -> Path | None:
    """The first folder that holds all four Fashion-MNIST files, or ``None``."""
    stems = [s for pair in FILES.values() for s in pair]
    for folder in candidate_dirs(root):
        if all(_find_file(folder, s) for s in stems):
            return folder
    return None


def read_idx(path: Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file of unsigned bytes (optionally gzipped) into a NumPy array.

    The header is checked before the body is read: at most :data:`MAX_IDX_DIMS` dimensions, and the
    size they claim must fit ``max_bytes`` (a header claiming 2^31 x 2^31 values allocates nothing);
    then exactly that many values are read, so a gzip file that inflates beyond them is refused
    without inflating it all."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08:
                raise DataFormatError(
                    f"{path} is not an unsigned-byte IDX file; re-install or re-download Fashion-MNIST"
                )
            shape = _idx_shape(path, head[3], handle.read(4 * head[3]), max_bytes)
            expected = math.prod(shape)
            body = handle.read(expected + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFormatError(
            f"{path} cannot be read ({err}); re-install or re-download Fashion-MNIST"
        ) from None
    if len(body) != expected:
        problem = "is truncated" if len(body) < expected else "has bytes after its values"
        raise DataFormatError(f"{path} {problem}: its header promises {expected:,} values for shape {shape}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _idx_shape(path: Path, ndim: int, dims: bytes, max_bytes: int) -> tuple[int, ...]:
    """The dimensions an IDX header gives, checked against :data:`MAX_IDX_DIMS` and ``max_bytes``."""
    if not 1 <= ndim <= MAX_IDX_DIMS or len(dims) != 4 * ndim:
        raise DataFormatError(
            f"{path} has a damaged IDX header ({ndim} dimensions; expected 1 to {MAX_IDX_DIMS})"
        )
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    if math.prod(shape) > max_bytes:
        raise DataFormatError(
            f"{path} claims shape {shape}: {math.prod(shape):,} values, more than the {max_bytes:,} "
            "read from one IDX file; re-install or re-download Fashion-MNIST"
        )
    return shape


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None, download: bool = False
) -> ImageDataset:
    """Load one split (``train`` or ``test``) as an :class:`ImageDataset` in [0, 1]."""
    if split not in FILES:
        raise DataFormatError(f"Fashion-MNIST has splits 'train' and 'test', not {split!r}")
    folder = find_fashion_mnist(root)
    if folder is None and download:
        folder = _download(root)
    if folder is None:
        looked = ", ".join(str(d) for d in candidate_dirs(root))
        raise DataNotFoundError(f"Fashion-MNIST not found (looked in {looked}); {HOW_TO_GET}")
    images = read_idx(_find_file(folder, FILES[split][0]))
    labels = read_idx(_find_file(folder, FILES[split][1]))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise DataFormatError(
            f"Fashion-MNIST files in {folder} do not match: images {images.shape}, labels {labels.shape}"
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return ImageDataset(x, y, list(CLASSES), name=f"fashion_mnist/{split}", source=str(folder))


def _download(root: str | Path | None) -> Path | None:
    """Download with torchvision into ``root`` (only ever called when the user asked)."""
    if not root:
        raise DataNotFoundError(
            "download=true needs a data_root to download into, e.g. --set data_root=./data"
        )
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as err:  # network errors come in many types
        raise DataNotFoundError(
            f"downloading Fashion-MNIST into {root} failed ({err}); {HOW_TO_GET}"
        ) from None
    return find_fashion_mnist(root)
