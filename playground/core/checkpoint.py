"""Safe checkpoints: tensors in safetensors, metadata as JSON in the file's header.

Nothing is ever unpickled: ``safetensors`` stores raw tensors only, so loading a
checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from playground.errors import CheckpointError

METADATA_KEY = "playground"


def write_json_whole(path: str | Path, data: Any) -> Path:
    """Write ``data`` as JSON through a temporary file renamed over ``path``: whole or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return path


def save_checkpoint(
    path: str | Path, model: torch.nn.Module | dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s state dict (or a plain tensor dict) with JSON ``metadata``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    header = {METADATA_KEY: json.dumps(metadata or {}, default=str)}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint behind
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state_dict, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train a model first or check the path")
    try:
        with safe_open(str(path), framework="pt") as handle:  # one pass: header and tensors
            metadata = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safetensors file ({reason}); "
            "re-create it by re-running the experiment that wrote it"
        ) from None
    return tensors, metadata


def load_into(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (shapes must match); return its metadata."""
    state, metadata = load_checkpoint(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(
            f"checkpoint {path} does not fit this model ({first}); "
            "build the model with the config stored in the checkpoint's metadata"
        ) from None
    return metadata
