"""PyTorch precision variants of a trained classifier: fp32 eager, torch.compile, bf16, fp16, int8.

Every variant is a :class:`TorchVariant` whose ``run`` maps float32 images to float32 logits
(playground models return ``ModelOutput(embedding, logits)``; :func:`logits_only` keeps the
logits), so the benchmark harness and the agreement checks treat them all alike. The fp32, bf16 and
compiled variants share the caller's model (put in eval mode and moved to ``device``); fp16
works on a copy and int8 on the exported graph.

Integer quantization (Jacob et al. 2018, "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference") stores a real value ``r`` as an 8-bit integer
``q`` with a scale ``S`` and zero point ``Z``: ``r = S (q - Z)``. Here activations are uint8
per-tensor affine (``S``, ``Z`` from a histogram observer run on calibration images) and
weights int8 per-channel symmetric (``Z = 0``), the x86 default.

PT2E ("PyTorch 2 export") quantization works on the exported ATen graph instead of on
``nn.Module``\\ s: ``torch.export`` captures the model, ``prepare_pt2e`` folds batch norm into
the convolutions, lets a backend ``Quantizer`` (here torchao's ``X86InductorQuantizer``)
annotate which tensors to quantize and inserts observers; calibration runs real images through
them; ``convert_pt2e`` replaces observers by quantize/dequantize pairs with the measured
``S, Z``. The graph is still "fp32 ops between q/dq"; ``torch.compile`` with inductor *freezing*
then pattern-matches dq -> conv/linear -> q into oneDNN int8 kernels
(``onednn::qconv_pointwise``, ``onednn::qlinear_pointwise``) with prepacked int8 weights.
:func:`int8_kernel_check` profiles one call to show which ops really ran.

Compiled variants use static shapes (``dynamic=False``): the exported int8 graph has a dynamic
batch dimension, but inductor's int8 conv lowering fails with symbolic batch sizes in torch
2.14 / torchao 0.18 (a stride assertion), so each new batch size compiles once, on its first
call (a benchmark's warm-up absorbs it), up to dynamo's ``recompile_limit`` batch sizes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from playground.core.timing import cpu_flags
from playground.errors import ConfigError
from playground.latency.onnx_export import SingleOutput

MIB = 1024 * 1024
QUANTIZED_OP_MARKERS = ("onednn::q", "quantized::", "qconv", "qlinear")


@dataclass
class TorchVariant:
    """One way to run the model: ``run(float32 images) -> float32 logits`` on ``device``."""

    name: str
    run: Callable[[Tensor], Tensor]  # float32 images -> float32 logits
    device: str
    notes: str = ""
    size_mb: float | None = None


def logits_only(model: nn.Module) -> nn.Module:
    """``model`` in eval mode, returning logits only (ConfigError for an embedding-only model)."""
    if getattr(model, "num_classes", None) == 0:
        raise ConfigError("the model has no classifier head (num_classes=0); precision variants need logits")
    return SingleOutput(model).eval()


def tensor_size_mb(module: nn.Module) -> float:
    """MiB of the distinct tensors a module uses: for an FX GraphModule the constants its graph
    reads (a converted int8 graph still holds its unused fp32 weights), else parameters and buffers."""
    graph = getattr(module, "graph", None)
    if graph is None:
        tensors = [*module.parameters(), *module.buffers()]
    else:
        tensors = [_attr(module, str(node.target)) for node in graph.nodes if node.op == "get_attr"]
    unique = {id(t): t for t in tensors if isinstance(t, Tensor)}
    return sum(t.numel() * t.element_size() for t in unique.values()) / MIB


def _attr(module: nn.Module, target: str) -> object:
    value: object = module
    for part in target.split("."):
        value = getattr(value, part, None)
    return value


def _runner(
    module: Callable[[Tensor], Tensor],
    device: str,
    dtype: torch.dtype | None = None,
    autocast: torch.dtype | None = None,
) -> Callable[[Tensor], Tensor]:
    """``run``: move the images to ``device`` (and ``dtype``), call ``module``, return fp32 logits."""
    device_type = torch.device(device).type

    def run(images: Tensor) -> Tensor:
        with (
            torch.inference_mode(),
            torch.autocast(device_type, dtype=autocast or torch.bfloat16, enabled=autocast is not None),
        ):
            return module(images.to(device=device, dtype=dtype)).float()

    return run


def torch_fp32(model: nn.Module, device: str = "cpu") -> TorchVariant:
    """The eager fp32 model in eval mode: the reference every other variant is compared with."""
    module = logits_only(model).to(device)
    return TorchVariant("torch-fp32", _runner(module, device), device, "eager fp32", tensor_size_mb(module))


class StaticCompiled:
    """Call a ``torch.compile(..., dynamic=False)`` module, compiling each new batch size under
    inductor freezing (weights become constants: prepacked oneDNN weights, folded q/dq), so
    later changes to the model's weights are not seen by sizes already compiled."""

    def __init__(self, module: nn.Module, device: str, freezing: bool = True) -> None:
        self.compiled = torch.compile(module, backend="inductor", dynamic=False)
        self.device, self.freezing, self.batches = device, freezing, set()

    def __call__(self, images: Tensor) -> Tensor:
        batch = int(images.shape[0])
        with torch.inference_mode():
            images = images.to(self.device)
            if batch in self.batches:
                return self.compiled(images).float()
            limit = torch._dynamo.config.recompile_limit
            if len(self.batches) >= limit:
                raise ConfigError(
                    f"compiled variant already holds {limit} batch sizes "
                    f"(torch._dynamo.config.recompile_limit); build a new variant"
                )
            with torch._inductor.config.patch(freezing=self.freezing):
                output = self.compiled(images).float()
            self.batches.add(batch)
            return output


def torch_compiled(
    model: nn.Module, example: Tensor, device: str = "cpu", *, freezing: bool = True
) -> TorchVariant:
    """``torch.compile`` (inductor, static shapes, freezing) compiled now on ``example``."""
    module = logits_only(model).to(device)
    run = StaticCompiled(module, device, freezing)
    start = time.perf_counter()
    run(example)
    seconds = time.perf_counter() - start
    notes = (
        f"torch.compile inductor, freezing={freezing}, compiled in {seconds:.1f} s at batch "
        f"{len(example)}; a new batch size recompiles on its first call"
    )
    return TorchVariant("torch-compile", run, device, notes, tensor_size_mb(module))


def torch_bf16(model: nn.Module, device: str = "cpu") -> TorchVariant:
    """fp32 weights, bf16 autocast (convs and matmuls in bf16, reductions kept in fp32).

    CPUs with avx512_bf16 or AMX-BF16 run oneDNN bf16 kernels (often faster than fp32); without
    them bf16 is emulated and usually slower than fp32.
    """
    module = logits_only(model).to(device)
    notes = "bf16 autocast"
    if torch.device(device).type == "cpu":
        flags = cpu_flags()
        if flags and not (flags.get("avx512_bf16") or flags.get("amx_bf16")):
            notes += "; this CPU lacks avx512_bf16/amx_bf16, so bf16 is emulated and likely slower than fp32"
    elif not torch.cuda.is_bf16_supported():
        notes += "; this GPU has no native bf16, expect it to be slow"
    return TorchVariant(
        "torch-bf16", _runner(module, device, autocast=torch.bfloat16), device, notes, tensor_size_mb(module)
    )


def _onednn_fp16() -> bool:
    """Whether oneDNN has fp16 kernels on this CPU (False where torch cannot say)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


def torch_fp16(model: nn.Module, device: str, *, allow_cpu: bool = False) -> TorchVariant:
    """A half-precision copy of the model (``.half()`` weights and inputs), meant for CUDA.

    On CPU, torch 2.14 does run fp16 ``conv2d`` (no error), but unless oneDNN has fp16 support
    (``torch.ops.mkldnn._is_mkldnn_fp16_supported()``: AVX512-FP16 / AMX-FP16 CPUs) it takes a
    slow non-oneDNN fallback: on an AVX-512 AMD EPYC without avx512_fp16 a 16->32 channel 3x3
    conv on 32x32x32 took ~196 ms in fp16 against ~4.5 ms in fp32 and ~1.3 ms in bf16. So CPU
    fp16 raises ConfigError unless ``allow_cpu=True``; use :func:`torch_bf16` on CPU.
    """
    on_cpu = torch.device(device).type == "cpu"
    fp16_onednn = _onednn_fp16()
    if on_cpu and not allow_cpu:
        raise ConfigError(
            "fp16 on CPU is slow (no oneDNN fp16 conv kernels on most CPUs); use bf16 "
            "on CPU, fp16 on CUDA, or pass allow_cpu=True to measure it anyway"
        )
    module = logits_only(copy.deepcopy(model)).half().to(device)
    notes = "fp16 weights and activations"
    if on_cpu:
        notes += f"; CPU oneDNN fp16 support: {fp16_onednn}" + ("" if fp16_onednn else " (slow fallback)")
    return TorchVariant(
        "torch-fp16", _runner(module, device, dtype=torch.float16), device, notes, tensor_size_mb(module)
    )


def _export_dynamic_batch(module: nn.Module, example: Tensor) -> nn.Module:
    """``torch.export`` with a dynamic batch dimension (min 1), as a GraphModule."""
    batch = torch.export.Dim("batch", min=1)
    graph = torch.export.export(module, (example,), dynamic_shapes=({0: batch},)).module()
    split_repeated_module_calls(graph)
    return graph


def split_repeated_module_calls(graph: torch.fx.GraphModule) -> int:
    """Give each call of a module that runs more than once its own name; returns the calls renamed.

    Quantizers find patterns (conv -> add -> relu) by grouping nodes per source module. A
    non-strict export records a module's second call under the key ``"...relu@1"`` but with the
    same module name, so torch's source matcher merges both calls of a reused module, such as
    the one ``self.relu`` in every torchvision ResNet block, into one partition with two outputs,
    and torchao's ``X86InductorQuantizer`` stops with "Input partition has more than one output
    node". Naming the call ``relu@1`` keeps the calls apart; nothing else reads the name.
    """
    renamed = 0
    for node in graph.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            continue
        key, (name, module_type) = next(reversed(stack.items()))
        call = key.rpartition("@")[2] if "@" in key else ""
        if call.isdigit() and not name.endswith(f"@{call}"):
            stack[key] = (f"{name}@{call}", module_type)
            renamed += 1
    return renamed


def _calibrate(prepared: nn.Module, images: Tensor, batch_size: int) -> None:
    if len(images) == 0 or batch_size < 1:
        raise ConfigError("int8 calibration needs at least one image and batch_size >= 1")
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            prepared(images[start : start + batch_size])


def torch_int8_pt2e(
    model: nn.Module, example: Tensor, calibration_images: Tensor, *, batch_size: int = 64
) -> TorchVariant:
    """Static int8 post-training quantization (PT2E + X86InductorQuantizer), lowered by inductor.

    CPU only. ``calibration_images`` (real, preprocessed training images) set the activation
    ranges, ``batch_size`` at a time; ``example`` fixes the first compiled batch size.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    start = time.perf_counter()
    exported = _export_dynamic_batch(logits_only(model).cpu(), example.cpu())
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    _calibrate(prepared, calibration_images.cpu(), batch_size)
    converted = convert_pt2e(prepared)
    quantize_seconds = time.perf_counter() - start
    run = StaticCompiled(converted, "cpu", freezing=True)
    start = time.perf_counter()
    run(example)
    notes = (
        f"PT2E static int8 (X86InductorQuantizer, {len(calibration_images)} calibration images), "
        f"quantized in {quantize_seconds:.1f} s, compiled in {time.perf_counter() - start:.1f} s; "
        "exported with a dynamic batch, compiled per batch size"
    )
    return TorchVariant("torch-int8-pt2e", run, "cpu", notes, tensor_size_mb(converted))


@dataclass
class Int8KernelCheck:
    """Whether quantized kernels ran in one call, which ones (op name -> calls), and a summary."""

    ran_int8: bool
    kernels: dict[str, int]
    evidence: str


def int8_kernel_check(
    variant_or_compiled_fn: TorchVariant | Callable[[Tensor], Tensor], example: Tensor
) -> Int8KernelCheck:
    """Profile one call and count the quantized ops that were dispatched (e.g. ``onednn::
    qconv_pointwise``, ``onednn::qlinear_pointwise``, ``quantized::max_pool2d``).

    The profiler sees every op the inductor wrapper code calls, so this shows what actually
    ran, not what a graph could have contained; an fp32 model gives ``ran_int8=False``.
    """
    fn = getattr(variant_or_compiled_fn, "run", variant_or_compiled_fn)
    fn(example)  # compile (if needed) outside the profiled call
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        fn(example)
    counts = {event.key: event.count for event in profile.key_averages()}
    kernels = {
        name: n
        for name, n in sorted(counts.items())
        if any(marker in name for marker in QUANTIZED_OP_MARKERS)
    }
    if kernels:
        listed = ", ".join(f"{name} x{n}" for name, n in kernels.items())
        evidence = f"one call at batch {len(example)} dispatched quantized ops: {listed}"
    else:
        ops = sorted((n, name) for name, n in counts.items() if "::" in name)[-4:]
        evidence = (
            f"no quantized op among {len(counts)} profiled ops at batch {len(example)}; "
            f"most called: {', '.join(name for _, name in reversed(ops))}"
        )
    return Int8KernelCheck(bool(kernels), kernels, evidence)
