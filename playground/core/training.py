"""The one training loop: :func:`fit` and :func:`evaluate`, with progress callbacks.

Every technique trains through :func:`fit`. A batch is a tuple ``(*inputs, target)``;
the model is called as ``model(*inputs)`` and ``loss_fn(output, target)`` gives the loss.
The default loss is cross-entropy on the logits, where ``output`` may be a tensor of logits
or anything with a ``.logits`` attribute (see :class:`playground.models.ModelOutput`).

Under ``torchrun`` (see :mod:`playground.core.distributed`) the model is wrapped in DDP,
:class:`~playground.data.TensorLoader` loaders are sharded across ranks, and the reported
loss and accuracy are summed over every rank. Other loaders must be sharded by the caller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from playground.core import distributed
from playground.core.device import autocast
from playground.core.progress import Progress, report
from playground.errors import ConfigError, TrainingDivergedError

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]


def logits_of(output: Any) -> torch.Tensor:
    """The logits inside a model output (a tensor, or an object with ``.logits``)."""
    logits = getattr(output, "logits", output)
    if not isinstance(logits, torch.Tensor):
        raise TypeError("the model output has no logits; pass a loss_fn that knows its output")
    return logits


def cross_entropy(output: Any, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits_of(output), target)


@dataclass
class History:
    """Per-epoch numbers (``train/loss``, ``val/accuracy``, ``lr``, ``seconds``...)."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def series(self, name: str) -> list[float]:
        return [e[name] for e in self.epochs if name in e]

    @property
    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}


def _to_device(batch: Iterable, device: torch.device) -> list:
    return [t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in batch]


def make_optimizer(
    model: torch.nn.Module, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """``adam``, ``adamw`` or ``sgd`` (momentum 0.9, Nesterov) over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose adam, adamw or sgd")


def fit(
    model: torch.nn.Module,
    train_loader,
    *,
    epochs: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: LossFn = cross_entropy,
    val_loader=None,
    device: torch.device | str = "cpu",
    schedule: str = "cosine",
    dtype: str = "fp32",
    grad_clip: float | None = None,
    progress: Progress = None,
) -> History:
    """Train ``model`` for ``epochs`` and return its :class:`History`.

    ``schedule`` is ``"cosine"`` (per-step cosine decay to 0) or ``"constant"``.
    Progress events: stage ``"train"`` per batch (running loss/accuracy) and
    ``"evaluate"`` per validation batch.
    """
    device = torch.device(device)
    model.to(device)
    optimizer = optimizer or make_optimizer(model, lr=lr)
    train_loader = _shard(train_loader)
    trained = distributed.wrap_model(model, device)
    total_steps = max(1, epochs * len(train_loader))
    scheduler = _make_scheduler(optimizer, schedule, total_steps)
    history = History()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        row = _train_epoch(
            trained, train_loader, optimizer, scheduler, loss_fn, device, dtype, grad_clip, epoch, progress
        )
        row["lr"] = optimizer.param_groups[0]["lr"]
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn=loss_fn, device=device, dtype=dtype, progress=progress)
            row.update({f"val/{k}": v for k, v in val.items()})
        row["seconds"] = time.perf_counter() - start
        row["epoch"] = epoch
        history.epochs.append(row)
    return history


def _shard(loader):
    """This rank's shard of a TensorLoader under torchrun; the loader itself otherwise."""
    if distributed.world_size() > 1 and hasattr(loader, "sharded"):
        return loader.sharded(distributed.rank(), distributed.world_size())
    return loader


def _make_scheduler(optimizer, schedule: str, total_steps: int):
    if schedule == "constant":
        return None
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    raise ConfigError(f"unknown schedule {schedule!r}; choose cosine or constant")


def _train_epoch(
    model, loader, optimizer, scheduler, loss_fn, device, dtype, grad_clip, epoch, progress
) -> dict[str, float]:
    model.train()
    tally = _Tally()
    for step, batch in enumerate(loader, start=1):
        *inputs, target = _to_device(batch, device)
        with autocast(device, dtype):
            output = model(*inputs)
            loss = loss_fn(output, target)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"loss became {loss.item()} at epoch {epoch}, step {step}; lower the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        tally.add(loss, output, target)
        running = {**tally.summary(), "batch_loss": loss.item()}
        report(progress, "train", step, len(loader), epoch=epoch, metrics=running)
    return {f"train/{k}": v for k, v in tally.across_ranks().summary().items()}


class _Tally:
    """Running mean loss and (when the output has class logits) accuracy."""

    def __init__(self):
        self.loss_sum, self.correct, self.count = 0.0, 0, 0

    def add(self, loss: torch.Tensor, output: Any, target: torch.Tensor) -> None:
        n = target.shape[0]
        self.loss_sum += loss.item() * n
        self.count += n
        logits = getattr(output, "logits", output)
        if (
            isinstance(logits, torch.Tensor)
            and logits.ndim == 2
            and target.ndim == 1
            and not target.is_floating_point()
        ):
            self.correct += (logits.argmax(1) == target).sum().item()
        else:
            self.correct = -1  # accuracy is not defined for this output

    def across_ranks(self) -> _Tally:
        """The tally summed over every rank (itself without a process group)."""
        self.loss_sum, correct, self.count = distributed.sum_across_ranks(
            self.loss_sum, self.correct, self.count
        )
        self.correct = int(correct) if self.correct >= 0 else -1
        return self

    def summary(self) -> dict[str, float]:
        if not self.count:
            return {}
        out = {"loss": self.loss_sum / self.count}
        if self.correct >= 0:
            out["accuracy"] = self.correct / self.count
        return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader,
    *,
    loss_fn: LossFn = cross_entropy,
    device: torch.device | str = "cpu",
    dtype: str = "fp32",
    progress: Progress = None,
) -> dict[str, float]:
    """Mean loss (and accuracy for classifiers) of ``model`` over ``loader``."""
    device = torch.device(device)
    model.to(device).eval()
    loader = _shard(loader)
    tally = _Tally()
    for step, batch in enumerate(loader, start=1):
        *inputs, target = _to_device(batch, device)
        with autocast(device, dtype):
            output = model(*inputs)
            loss = loss_fn(output, target)
        tally.add(loss.float(), output, target)
        report(progress, "evaluate", step, len(loader))
    return tally.across_ranks().summary()


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    loader,
    *,
    device: torch.device | str = "cpu",
    dtype: str = "fp32",
    progress: Progress = None,
) -> dict[str, torch.Tensor]:
    """Run ``model`` over ``loader``; return concatenated ``logits``, ``embedding``, ``target``."""
    device = torch.device(device)
    model.to(device).eval()
    parts: dict[str, list[torch.Tensor]] = {"logits": [], "embedding": [], "target": []}
    for step, batch in enumerate(loader, start=1):
        *inputs, target = _to_device(batch, device)
        with autocast(device, dtype):
            output = model(*inputs)
        for name in ("logits", "embedding"):
            value = (
                output
                if name == "logits" and isinstance(output, torch.Tensor)
                else getattr(output, name, None)
            )
            if isinstance(value, torch.Tensor):
                parts[name].append(value.float().cpu())
        parts["target"].append(target.cpu())
        report(progress, "predict", step, len(loader))
    return {k: torch.cat(v) for k, v in parts.items() if v}


@torch.no_grad()
def embed_images(
    model: torch.nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    dtype: str = "fp32",
) -> torch.Tensor:
    """The ``embedding`` of ``model`` for every image, float32 on the CPU, in eval mode."""
    device = torch.device(device)
    model.to(device).eval()
    parts = []
    for start in range(0, images.shape[0], batch_size):
        with autocast(device, dtype):
            output = model(images[start : start + batch_size].to(device))
        parts.append(getattr(output, "embedding", output).float().cpu())
    return torch.cat(parts) if parts else torch.empty(0)
