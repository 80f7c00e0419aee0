"""A model file uploaded through the latency page, kept where a background run can read it.

An ONNX file (the model) or a ``.safetensors`` state dict (weights for a torchvision or timm
architecture) is size-checked, then written once under ``<runs root>/uploads/`` as
``<sha256 prefix>-<name>``: the same bytes uploaded twice are one file, and a half-written file is
never left behind (written to a temporary name, then renamed). Whether the bytes are a valid model is
checked by the run itself (:func:`playground.latency.sources.load_source`), before any timing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from playground.errors import DataFormatError

MODEL_SUFFIXES = (".onnx", ".safetensors")
MAX_MODEL_MB = 1024  # ResNet-152 in fp32 is 240 MB; ViT-L 1.2 GB is out of a page's reach anyway


def save_model_upload(data: bytes, name: str, folder: str | Path, max_mb: int = MAX_MODEL_MB) -> Path:
    """Write an uploaded model file under ``folder`` and return its path; clear errors for a wrong kind,
    an empty file or one over ``max_mb``."""
    suffix = Path(name).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise DataFormatError(f"{name}: upload an ONNX model (.onnx) or weights (.safetensors)")
    if not data:
        raise DataFormatError(f"{name} is empty")
    if len(data) > max_mb * 2**20:
        raise DataFormatError(f"{name} is {len(data) / 2**20:.0f} MB; the page takes files up to {max_mb} MB")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:64] or "model"
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:12]}-{stem}{suffix}"
    if not path.is_file():
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    return path
