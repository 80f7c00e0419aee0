"""User weights for a torchvision or timm architecture: read a state dict safely and check it fits.

A ``.safetensors`` file, or a ``.pt``/``.pth`` state dict read with ``torch.load(weights_only=True)``
(nothing is ever unpickled; a pickled module is refused). ``{"state_dict": ...}`` wrappers and a
``module.`` prefix are unwrapped. The state dict must fit the architecture exactly: a mismatch names the
first tensor whose shape differs (expected against got) and the missing and unexpected keys, and
suggests ``num_classes`` when only the classifier differs. Every bad input is one error.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from playground.core.checkpoint import read_safetensors
from playground.errors import CheckpointError, ConfigError, DataNotFoundError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
LISTED = 5  # names shown in an error before "(+N more)"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def listed(names: list[str], limit: int = LISTED) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# ---------------------------------------------------------------- input shape and preprocessing


def _read_weight_file(path: Path) -> Any:
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path, "weights", hint="save the model's state_dict with safetensors")[0]
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"weights {path} hold Python objects besides tensors and are refused (they are read with "
            "weights_only=True, never unpickled); save model.state_dict(), best with safetensors"
        ) from None
    except Exception as exc:
        raise CheckpointError(f"weights {path} are not a PyTorch checkpoint ({first_line(exc)})") from None


def _as_state_dict(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded file: unwraps ``{"state_dict": ...}`` and a ``module.`` prefix."""
    if isinstance(loaded, dict) and not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in ("state_dict", "model_state_dict", "model", "module"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise CheckpointError(f"weights {path} hold no state dict (a mapping of names to tensors)")
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"weights {path} have entries that are not tensors: {listed(not_tensors)}")
    if all(str(k).startswith("module.") for k in loaded):
        loaded = {k[len("module.") :]: v for k, v in loaded.items()}
    return {str(k): v for k, v in loaded.items()}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file, or a ``.pt``/``.pth`` read with ``weights_only=True``."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ConfigError(f"weights {path} must be a {', '.join(WEIGHT_SUFFIXES)} file of a state dict")
    if not path.is_file():
        raise DataNotFoundError(f"weights file {path} does not exist")
    return _as_state_dict(_read_weight_file(path), path)


def _class_hint(mismatched: list[tuple[str, tuple, tuple]]) -> str:
    """A hint when only the classifier's output count differs (weights fine-tuned on other classes)."""
    only_first_dim = all(len(want) == len(got) and want[1:] == got[1:] for _, want, got in mismatched)
    counts = {got[0] for _, _, got in mismatched if got}
    if mismatched and only_first_dim and len(counts) == 1:
        classes = counts.pop()
        return f"; if the weights were trained on {classes} classes, pass num_classes={classes}"
    return ""


def check_state_dict(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Raise one :class:`CheckpointError` unless ``state`` has exactly ``module``'s tensors and shapes."""
    expected = module.state_dict()
    mismatched = [
        (k, tuple(v.shape), tuple(state[k].shape))
        for k, v in expected.items()
        if k in state and tuple(v.shape) != tuple(state[k].shape)
    ]
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if not (mismatched or missing or unexpected):
        return
    problems = []
    if mismatched:
        key, want, got = mismatched[0]
        more = f" (+{len(mismatched) - 1} more tensors with other shapes)" if len(mismatched) > 1 else ""
        problems.append(f"tensor {key} has shape {list(got)}, the architecture expects {list(want)}{more}")
    if missing:
        problems.append(f"missing keys: {listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {listed(unexpected)}")
    raise CheckpointError(
        f"{what} do not fit the architecture: " + "; ".join(problems) + _class_hint(mismatched)
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(module: nn.Module, path: str | Path) -> str:
    """Load a state dict file into ``module`` (strict shapes); returns ``"<file> (sha256 <prefix>)"``."""
    path = Path(path).expanduser()
    state = read_state_dict(path)
    check_state_dict(module, state, f"weights {path.name}")
    module.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent after the check
    return f"{path.name} (sha256 {sha256_of(path)[:12]})"


# ---------------------------------------------------------------- torch architectures
