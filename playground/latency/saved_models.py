"""Save the benchmark's trained models and load them back, pruned ones included, as safetensors.

Training and timing are separate concerns: a benchmark re-timed on another thread count, or on a
quieter machine, should measure the *same* weights. Every model is saved as a plain safetensors
state dict. A pruned model has fewer channels than its architecture's default, so
:func:`load_resized` first gives every Conv/Linear/norm layer of a freshly built template the saved
tensor shapes (and the matching ``in_channels``/``out_features``/... attributes), then loads the
weights strictly: nothing is unpickled, and a file of another architecture fails with a clear error.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from playground.core.checkpoint import read_safetensors, reason
from playground.errors import DataFormatError

MODELS_FOLDER = "models"
# the module attributes that follow a resized weight: attribute -> (tensor, dimension)
_SHAPE_ATTRIBUTES = {
    nn.Conv2d: {"out_channels": ("weight", 0), "in_channels": ("weight", 1)},
    nn.Linear: {"out_features": ("weight", 0), "in_features": ("weight", 1)},
    nn.BatchNorm2d: {"num_features": ("weight", 0)},
    nn.BatchNorm1d: {"num_features": ("weight", 0)},
    nn.GroupNorm: {"num_channels": ("weight", 0)},
    nn.LayerNorm: {},
}


def save_models(folder: Path, models: dict[str, nn.Module]) -> list[Path]:
    """``folder/<name>.safetensors`` for every model; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in models.items():
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        save_file(state, str(folder / f"{name}.safetensors"))
        paths.append(folder / f"{name}.safetensors")
    return paths


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict saved at ``path``; a missing or damaged file is one :class:`CheckpointError`."""
    return read_safetensors(path, "saved model", hint="re-run the benchmark that saved it")[0]


def _resize(module: nn.Module, prefix: str, state: dict[str, torch.Tensor]) -> None:
    """Give ``module``'s own parameters and buffers the saved shapes, and fix its shape attributes."""
    for name, tensor in list(module.named_parameters(recurse=False)):
        saved = state.get(prefix + name)
        if saved is not None and saved.ndim != tensor.ndim:
            raise DataFormatError(
                f"{prefix + name} is {saved.ndim}-D in the saved model, {tensor.ndim}-D here"
            )
        if saved is not None and saved.shape != tensor.shape:
            setattr(module, name, nn.Parameter(torch.empty_like(saved), requires_grad=tensor.requires_grad))
    for name, tensor in list(module.named_buffers(recurse=False)):
        saved = state.get(prefix + name)
        if tensor is not None and saved is not None and saved.ndim != tensor.ndim:
            raise DataFormatError(
                f"{prefix + name} is {saved.ndim}-D in the saved model, {tensor.ndim}-D here"
            )
        if tensor is not None and saved is not None and saved.shape != tensor.shape:
            module.register_buffer(name, torch.empty_like(saved))
    for attribute, (tensor_name, dim) in _SHAPE_ATTRIBUTES.get(type(module), {}).items():
        tensor = getattr(module, tensor_name, None)
        if tensor is not None:
            setattr(module, attribute, tensor.shape[dim])
    if isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups != module.out_channels:
        raise DataFormatError("grouped convolutions are not supported by load_resized")


def load_resized(template: nn.Module, path: Path) -> nn.Module:
    """``template`` (an unpruned model of the saved architecture) reshaped to and loaded with ``path``."""
    state = read_state(path)
    try:
        for prefix, module in template.named_modules():
            _resize(module, f"{prefix}." if prefix else "", state)
        template.load_state_dict(state, strict=True)
    except (RuntimeError, DataFormatError) as err:
        raise DataFormatError(
            f"{path} does not hold a model of this architecture: {reason(err)} "
            f"(were width/depth/embedding_dim the same when it was saved?)"
        ) from None
    return template.eval()
