"""Every way the benchmark runs one trained classifier, built into one uniform record.

A :class:`Variant` is ``run(float32 images) -> float32 logits`` plus what the report needs:
backend, precision, file size, build time, the parity check against ``torch_fp32`` and, for
int8, the evidence that integer kernels really ran. Names (``VARIANTS``) are the metric names
``bench/<variant>/...``. A variant that cannot be built on this machine (fp16 on a CPU, a
compiler failure) is recorded as skipped with its reason rather than stopping the benchmark.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from playground.errors import ConfigError, PlaygroundError
from playground.latency import ort_variants as ortv
from playground.latency import torch_variants as tv
from playground.latency.onnx_export import Parity, export_onnx, parity
from playground.latency.ort_providers import provider_kind

VARIANTS = (
    "torch_fp32",
    "torch_compile",
    "torch_bf16",
    "torch_fp16",
    "torch_int8",
    "ort_fp32",
    "ort_fp16",
    "ort_int8_dynamic",
    "ort_int8_static",
    "ort_int8_entropy",
    "ort_int8_percentile",
    "ort_tensorrt_fp32",
    "ort_tensorrt_fp16",
    "pruned50",
    "pruned50_kd",
    "student_scratch",
    "student_kd",
)
PRECISION = {
    "torch_fp32": "fp32",
    "torch_compile": "fp32",
    "torch_bf16": "bf16",
    "torch_fp16": "fp16",
    "torch_int8": "int8",
    "ort_fp32": "fp32",
    "ort_fp16": "fp16",
    "ort_int8_dynamic": "int8",
    "ort_int8_static": "int8",
    "ort_int8_entropy": "int8",
    "ort_int8_percentile": "int8",
    "ort_tensorrt_fp32": "fp32",
    "ort_tensorrt_fp16": "fp16",
    "pruned50": "fp32",
    "pruned50_kd": "fp32",
    "student_scratch": "fp32",
    "student_kd": "fp32",
}
# parity tolerances against torch_fp32: (max |logit difference|, argmax agreement);
# other models: agreement only
TOLERANCE = {"fp32": (1e-3, 0.999), "bf16": (0.5, 0.97), "fp16": (0.05, 0.99), "int8": (1.0, 0.97)}
OTHER_MODELS = ("pruned50", "pruned50_kd", "student_scratch", "student_kd")


@dataclass
class Variant:
    name: str
    run: Callable[[torch.Tensor], torch.Tensor]
    backend: str  # "torch" or "onnxruntime"
    size_mb: float
    build_seconds: float
    notes: str = ""
    int8_evidence: str = ""
    ran_int8: bool | None = None  # None: not an int8 variant
    parity: Parity | None = None
    parity_ok: bool | None = None

    @property
    def precision(self) -> str:
        return PRECISION.get(self.name, "fp32")


@dataclass
class BuildContext:
    """What the builders share: the trained model, inputs, a folder for files, the other models."""

    model: nn.Module | None  # None for a team's ONNX file (onnx_path)
    example: torch.Tensor  # one batch of real images (export, compile)
    calibration: torch.Tensor  # real training images for int8 calibration
    folder: Path
    device: str = "cpu"
    threads: int = 0
    others: dict[str, nn.Module] = field(default_factory=dict)  # OTHER_MODELS by name
    skipped: dict[str, str] = field(default_factory=dict)  # variant -> why it did not run
    export_note: str = ""  # which ONNX exporter ran (and why the fallback, if any)
    onnx_path: Path | None = None  # the team's own ONNX file (then ``model`` is None)

    def onnx(self) -> Path:
        """The fp32 ONNX file (the team's, or exported once, from a CPU copy of the model)."""
        if self.onnx_path is not None:
            return self.onnx_path
        path = self.folder / "model_fp32.onnx"
        if not path.is_file():
            result = export_onnx(self.cpu_model(), self.example.cpu(), path)
            reason = (
                f": the dynamo exporter failed ({result.fallback_reason})" if result.fallback_reason else ""
            )
            self.export_note = f"ONNX export: {result.exporter}{reason}, {result.seconds:.1f} s"
        return path

    def cpu_model(self) -> nn.Module:
        """The model on the CPU (a copy when the run's device is a GPU, where the torch variants moved it):
        for ONNX export and PT2E int8, which are CPU paths."""
        if next(self.model.parameters()).device.type == "cpu":
            return self.model
        return copy.deepcopy(self.model).cpu()


def _from_torch(variant: tv.TorchVariant, seconds: float, size_mb: float) -> Variant:
    return Variant(variant.name, variant.run, "torch", variant.size_mb or size_mb, seconds, variant.notes)


def _torch(ctx: BuildContext, name: str) -> Variant:
    size = tv.tensor_size_mb(ctx.model)
    start = time.perf_counter()
    if name == "torch_fp32":
        built = tv.torch_fp32(ctx.model, ctx.device)
    elif name == "torch_compile":
        built = tv.torch_compiled(ctx.model, ctx.example, ctx.device)
    elif name == "torch_bf16":
        built = tv.torch_bf16(ctx.model, ctx.device)
    elif name == "torch_fp16":
        built = tv.torch_fp16(ctx.model, ctx.device)
    else:
        built = tv.torch_int8_pt2e(ctx.cpu_model(), ctx.example.cpu(), ctx.calibration.cpu())
    variant = _from_torch(built, time.perf_counter() - start, size)
    variant.name = name
    if name == "torch_int8":
        check = tv.int8_kernel_check(built, ctx.example)
        variant.ran_int8, variant.int8_evidence = check.ran_int8, check.evidence
    return variant


def _ort(ctx: BuildContext, name: str) -> Variant:
    start = time.perf_counter()
    src = ctx.onnx()
    path = {
        "ort_fp32": lambda: src,
        "ort_fp16": lambda: ortv.to_fp16(src, ctx.folder / "model_fp16.onnx"),
        "ort_int8_dynamic": lambda: ortv.quantize_int8_dynamic(src, ctx.folder / "model_int8_dynamic.onnx"),
        "ort_int8_static": lambda: _static(ctx, src, "minmax"),
        "ort_int8_entropy": lambda: _static(ctx, src, "entropy"),
        "ort_int8_percentile": lambda: _static(ctx, src, "percentile"),
        "ort_tensorrt_fp32": lambda: src,
        "ort_tensorrt_fp16": lambda: src,  # TensorRT converts to fp16 itself (trt_fp16_enable)
    }[name]()
    provider = _provider(ctx, name)
    session = ortv.OrtModel(path, threads=ctx.threads, provider=provider, trt_fp16=name.endswith("fp16"))
    if provider == "tensorrt":
        session(ctx.example.cpu())  # TensorRT builds its engine on the first run: part of the build
    notes = f"providers {', '.join(session.providers)}"
    if name.startswith("ort_int8") and ortv.u8s8_saturates():
        notes += "; 7-bit weights (reduce_range: this CPU has no VNNI, and U8S8 would saturate)"
    if name.startswith("ort_int8") and provider_kind(ctx.device) != "cpu":
        notes += " (int8 QDQ runs on the CPU provider: ORT's CUDA provider has no int8 convolution kernels)"
    variant = Variant(name, session, "onnxruntime", session.size_mb, time.perf_counter() - start, notes=notes)
    if variant.precision == "int8":
        check = ortv.int8_execution_check(path, ctx.calibration[:64])
        variant.ran_int8, variant.int8_evidence = check.ran_int8, check.evidence
    return variant


def _provider(ctx: BuildContext, name: str) -> str:
    """``tensorrt`` for the TensorRT variants, ``cpu`` for int8 QDQ, else the run's device's provider."""
    if name.startswith("ort_tensorrt"):
        return "tensorrt"
    return "cpu" if name.startswith("ort_int8") else provider_kind(ctx.device)


def _static(ctx: BuildContext, src: Path, method: str) -> Path:
    """Static QDQ int8 with per-channel weights, calibrated by ``method`` (``ort_int8_static`` is
    MinMax; ``ort_int8_entropy`` and ``ort_int8_percentile`` the histogram calibrators)."""
    dst = ctx.folder / f"model_int8_{method}.onnx"
    return ortv.quantize_int8_static(src, dst, ctx.calibration, method=method)


def _other_model(ctx: BuildContext, name: str) -> Variant:
    if name not in ctx.others:
        raise ConfigError(f"{name} needs its trained model; the experiment trains it")
    model = ctx.others[name]
    built = tv.torch_fp32(model, ctx.device)
    variant = _from_torch(built, 0.0, tv.tensor_size_mb(model))
    variant.name = name
    if name.startswith("pruned"):  # the pruned model must still export and run in ORT
        result = export_onnx(copy.deepcopy(model).cpu(), ctx.example.cpu(), ctx.folder / f"{name}.onnx")
        check = parity(built.run, ortv.OrtModel(result.path, threads=ctx.threads), ctx.example)
        variant.notes = (
            f"ONNX round trip ({result.exporter}): max abs diff {check.max_abs_diff:.2g}, "
            f"argmax agreement {check.argmax_agreement:.3f}"
        )
    return variant


def build_variant(ctx: BuildContext, name: str) -> Variant | None:
    """Build ``name``; ``None`` (with the reason in ``ctx.skipped``) when it cannot run here."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    builder = _ort if name.startswith("ort_") else _other_model if name in OTHER_MODELS else _torch
    if ctx.model is None and builder is not _ort:
        ctx.skipped[name] = "an ONNX file runs in ONNX Runtime only (torch variants need a torch model)"
        return None
    try:
        return builder(ctx, name)
    except PlaygroundError as err:
        ctx.skipped[name] = str(err)
    except Exception as err:  # a compiler, exporter or quantizer that cannot handle this model
        # (e.g. torchao's X86InductorQuantizer on torchvision's ResNet-18: "Input partition has more than
        # one output node"): the variant is listed with the reason, the benchmark goes on
        ctx.skipped[name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def check_parity(variant: Variant, reference: Callable, images: torch.Tensor) -> None:
    """Fill ``variant.parity`` against the fp32 reference on real images, and whether it is within
    tolerance.
    """
    variant.parity = parity(reference, variant.run, images)
    atol, agreement = TOLERANCE[variant.precision]
    if variant.name in OTHER_MODELS:  # another model: logits differ by design; report agreement only
        variant.parity_ok = None
        return
    variant.parity_ok = variant.parity.ok(atol, agreement)
