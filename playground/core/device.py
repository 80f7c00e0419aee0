"""Device and dtype choice, and seeding for repeatable runs."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from playground.errors import ConfigError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def choose_device(preference: str | None = None) -> torch.device:
    """Pick ``cuda``, then ``mps``, then ``cpu``.

    ``preference`` (or the ``PLAYGROUND_DEVICE`` environment variable) overrides the
    automatic choice; asking for a device that is not present is an error.
    """
    preference = (preference or os.environ.get("PLAYGROUND_DEVICE") or "auto").lower()
    if preference not in DEVICE_CHOICES and not preference.startswith("cuda:"):
        raise ConfigError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was asked for but no CUDA GPU is visible; use device='cpu' or 'auto'"
        )
    if preference == "mps" and not _mps_available():
        raise ConfigError(
            "device 'mps' was asked for but Apple MPS is not available; use device='cpu' or 'auto'"
        )
    return torch.device(preference)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> list[str]:
    """Devices this machine can run on, best first (always ends with ``cpu``)."""
    found = ["cuda"] if torch.cuda.is_available() else []
    if _mps_available():
        found.append("mps")
    return found + ["cpu"]


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"fp32" | "fp16" | "bf16"`` (or a torch dtype) to a ``torch.dtype``."""
    if isinstance(name, torch.dtype):
        return name
    try:
        return DTYPES[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}") from None


def autocast(device: torch.device, dtype: str | torch.dtype = "fp32"):
    """Mixed-precision context for ``device``; a no-op for fp32."""
    dtype = parse_dtype(dtype)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_threads(threads: int = 0) -> int:
    """Set torch's CPU thread count: ``threads``, else ``$PLAYGROUND_THREADS``, else leave it.

    On a busy 2-core machine one thread can be many times faster than two.
    """
    threads = threads or int(os.environ.get("PLAYGROUND_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
