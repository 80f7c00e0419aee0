"""Export a playground model to ONNX and check that an exported copy computes the same thing.

ONNX (Open Neural Network Exchange, onnx.ai) is a framework-neutral graph format; ONNX
Runtime and other engines run it without PyTorch. :func:`export_onnx` first tries PyTorch's
``torch.export``-based exporter (``dynamo=True``, the default since PyTorch 2.9: it captures
the graph with ``torch.export`` and translates it with onnxscript) and falls back to the
older TorchScript tracer (``dynamo=False``) when that fails, recording why. Both give a
graph with one input ``images`` ``(batch, C, H, W)`` and one output ``logits`` whose batch
dimension is dynamic; the spatial size is fixed to the example's.

Two things the exporters do that matter here:

* the dynamo exporter folds eval-mode BatchNorm into the preceding Conv/Gemm; the legacy
  tracer folds it into Conv but keeps BatchNorm1d as its own node;
* the dynamo exporter attaches per-node debug metadata (Python stack traces with absolute
  paths, FX node text). For the tiny playground CNNs that text is larger than the weights,
  which would distort every file-size comparison, and it leaks local paths into shared
  artifacts, so :func:`export_onnx` strips it and writes one self-contained file.

:func:`parity` compares any two "images -> logits" callables (PyTorch, ONNX Runtime fp32,
fp16, int8 ...) by the largest absolute logit difference and by how often the predicted
class (argmax) agrees.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from playground.errors import ConfigError, DataFormatError

log = logging.getLogger("playground.latency")

INPUT_NAME = "images"
OUTPUT_NAME = "logits"


class SingleOutput(nn.Module):
    """Wrap a playground model so that ``forward(images)`` returns one tensor: its logits or its embedding.

    Playground models return ``ModelOutput(embedding, logits)``; exporters and runtimes want a
    single tensor output. For ``"logits"``, a model that already returns a tensor passes through.
    """

    MISSING = {
        "logits": "the model returns no logits (num_classes=0?); export a classifier",
        "embedding": "the model returns no embedding; FCT compatibility needs an embedder",
    }

    def __init__(self, model: nn.Module, output: str = "logits") -> None:
        super().__init__()
        if output not in self.MISSING:
            raise ConfigError(f"output must be one of {sorted(self.MISSING)}, got {output!r}")
        self.model, self.output = model, output

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        if isinstance(out, torch.Tensor) and self.output == "logits":
            return out
        value = getattr(out, self.output, None)
        if value is None:
            raise ConfigError(self.MISSING[self.output])
        return value


@dataclass
class ExportResult:
    """Where the ONNX file went, which exporter wrote it, and why the first one failed."""

    path: Path
    exporter: str  # "dynamo" or "legacy"
    fallback_reason: str | None
    seconds: float


def _first_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` -- one line for a log or an error message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _export_dynamo(
    wrapper: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, opset: int
) -> None:
    """``torch.onnx.export(dynamo=True)``: torch.export graph capture + onnxscript translation."""
    dynamic_shapes = {"images": {0: torch.export.Dim("batch")}} if dynamic_batch else None
    torch.onnx.export(
        wrapper,
        (example,),
        str(path),
        dynamo=True,
        external_data=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_shapes=dynamic_shapes,
        verbose=False,
    )


def _export_legacy(
    wrapper: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, opset: int
) -> None:
    """``torch.onnx.export(dynamo=False)``: the TorchScript tracer with ``dynamic_axes``."""
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        # The deprecation notice is the reason we try dynamo first; TracerWarnings come from
        # shape checks on H and W, which are fixed in the exported graph anyway.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_axes=axes,
        )


def _check_target(path: Path) -> None:
    """Raise ConfigError when ``path`` cannot be written (missing or non-directory parent)."""
    parent = path.parent
    if not parent.exists():
        raise ConfigError(f"cannot write ONNX file {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise ConfigError(f"cannot write ONNX file {path}: {parent} is not a folder")
    if path.is_dir():
        raise ConfigError(f"cannot write ONNX file {path}: it is a folder; give a file name")


def _strip_and_check(path: Path) -> None:
    """Drop per-node debug metadata, save as one file and run ``onnx.checker`` on it."""
    try:
        model = onnx.load(str(path))
        for node in model.graph.node:
            del node.metadata_props[:]
        for info in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
            del info.metadata_props[:]
        onnx.save(model, str(path))
        onnx.checker.check_model(str(path))
    except OSError as exc:
        raise ConfigError(f"cannot write ONNX file {path}: {_first_line(exc)}") from exc
    except onnx.checker.ValidationError as exc:
        raise DataFormatError(f"the exported ONNX file {path} is invalid: {_first_line(exc)}") from exc


def _example_for(model: nn.Module, example: torch.Tensor, dynamic_batch: bool) -> torch.Tensor:
    """The example on the model's device; batch 1 is doubled so torch.export keeps it symbolic
    (sizes 0 and 1 are specialised by its shape analysis)."""
    param = next(model.parameters(), None)
    if param is not None:
        example = example.to(param.device)
    if example.ndim != 4:
        raise DataFormatError(
            f"the example must be an image batch (N, C, H, W), got shape {tuple(example.shape)}"
        )
    if dynamic_batch and example.shape[0] == 1:
        example = example.expand(2, *example.shape[1:]).contiguous()
    return example.float()


def export_onnx(
    model: nn.Module, example: torch.Tensor, path, *, dynamic_batch: bool = True, opset: int = 18
) -> ExportResult:
    """Export ``model``'s logits to the ONNX file ``path``: dynamo exporter, else legacy.

    The model is exported in eval mode (its training flag is restored afterwards). A dynamo
    failure is logged at WARNING on ``playground.latency`` and its first line kept in
    ``fallback_reason``. Raises ConfigError when ``path`` cannot be written or both
    exporters fail, DataFormatError when the example is not an image batch.
    """
    path = Path(path)
    _check_target(path)
    start = time.perf_counter()
    was_training = model.training
    wrapper = SingleOutput(model).eval()
    example = _example_for(model, example, dynamic_batch)
    try:
        exporter, reason = _export_either(wrapper, example, path, dynamic_batch, opset)
    finally:
        model.train(was_training)
    _strip_and_check(path)
    return ExportResult(path, exporter, reason, time.perf_counter() - start)


def _export_either(wrapper, example, path, dynamic_batch, opset) -> tuple[str, str | None]:
    """Run the dynamo exporter, falling back to legacy; return (exporter, fallback reason)."""
    try:
        _export_dynamo(wrapper, example, path, dynamic_batch, opset)
        return "dynamo", None
    except Exception as exc:  # noqa: BLE001 -- any exporter failure (unsupported op, guard ...) falls back
        reason = _first_line(exc)
        log.warning("dynamo ONNX export failed (%s); falling back to the legacy TorchScript exporter", reason)
    try:
        _export_legacy(wrapper, example, path, dynamic_batch, opset)
    except Exception as exc:
        raise ConfigError(
            f"cannot export the model to ONNX: dynamo failed ({reason}); legacy failed ({_first_line(exc)})"
        ) from exc
    return "legacy", reason


@dataclass
class Parity:
    """How closely a candidate's logits follow a reference's."""

    max_abs_diff: float
    argmax_agreement: float
    samples: int
    mean_abs_diff: float = 0.0
    logit_range: float = 0.0  # max - min of the reference's logits: the scale the differences live on

    def ok(self, atol: float, min_agreement: float) -> bool:
        """True when every logit is within ``atol`` and argmax agrees on ``min_agreement`` of samples."""
        return self.max_abs_diff <= atol and self.argmax_agreement >= min_agreement


@torch.no_grad()
def parity(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    batch_size: int = 256,
) -> Parity:
    """Compare two ``images (N, C, H, W) float32 -> logits (N, K)`` callables batch by batch.

    Logits are compared in float32 on the CPU: the largest absolute difference over all
    samples and classes, and the fraction of samples whose argmax agrees.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise DataFormatError(f"parity needs a non-empty image batch (N, C, H, W), got {tuple(images.shape)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    images = images.float()
    worst, agree, total, low, high = 0.0, 0, 0.0, math.inf, -math.inf
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        ref = reference(batch).detach().float().cpu()
        cand = candidate(batch).detach().float().cpu()
        if ref.shape != cand.shape:
            raise DataFormatError(
                f"reference logits {tuple(ref.shape)} and candidate logits "
                f"{tuple(cand.shape)} differ in shape"
            )
        gaps = (ref - cand).abs()
        diff = gaps.max().item()
        worst = max(worst, math.inf if math.isnan(diff) else diff)  # NaN must not compare as "close"
        agree += int((ref.argmax(1) == cand.argmax(1)).sum())
        total += gaps.mean(1).sum().item()
        low, high = min(low, ref.min().item()), max(high, ref.max().item())
    count = images.shape[0]
    return Parity(worst, agree / count, count, total / count, high - low)
