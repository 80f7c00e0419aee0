"""ONNX Runtime variants of an exported model: fp32, fp16, int8 dynamic and int8 static.

Integer quantization follows Jacob et al., "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference" (CVPR 2018): a real value r is stored as an
8-bit integer q with the affine mapping ``r = S (q - Z)`` (scale S, zero point Z), so that
a convolution or matrix product runs in int8 x int8 -> int32 arithmetic and is rescaled once.

* **fp16** (:func:`to_fp16`) halves the weights. ORT's CPU execution provider has no fp16
  Conv/Gemm kernels on x86: it inserts Casts back to float32 and runs the float kernels, so
  on CPU fp16 saves disk, not time (the casts made a small CNN slower); a GPU runs it natively.
* **int8 dynamic** (:func:`quantize_int8_dynamic`): weights are quantized offline, each
  activation at run time from its own min/max. ORT's dynamic quantizer covers Conv as well
  as MatMul/Gemm: Conv becomes ``DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul``
  (checked on ORT 1.23/1.32 with the playground CNN), MatMul/Gemm become ``MatMulInteger``,
  which ORT fuses into ``DynamicQuantizeMatMul`` when it runs.
* **int8 static** (:func:`quantize_int8_static`): activation ranges are calibrated once on
  sample images (min/max, percentile or entropy) and written as QuantizeLinear /
  DequantizeLinear pairs (QDQ format); ORT fuses each ``DQ -> Conv -> Q`` into
  ``QLinearConv`` (and Gemm into ``QGemm``) when it builds the session.

Because a QDQ file still *contains* float Conv nodes, reading the file proves nothing about
what ran: :func:`int8_execution_check` profiles one run and counts the kernels ORT executed.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from playground.core.timing import cpu_flags
from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from playground.latency.onnx_export import _first_line
from playground.latency.ort_providers import check_provider, providers_for

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}
# Integer arithmetic kernels (the ones that do the Conv/MatMul work in int8).
INT_COMPUTE_OPS = {
    "QGemm",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QAttention",
    "DynamicQuantizeLSTM",
    "QEmbedLayerNormalization",
}
# Conversions between float and int8: counted as quantized nodes, not as proof of int8 compute.
INT_CONVERT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
FLOAT_COMPUTE_OPS = {"Conv", "FusedConv", "ConvTranspose", "MatMul", "FusedMatMul", "Gemm", "FusedGemm"}


def _model_file(path) -> Path:
    """``path`` as a Path, or DataNotFoundError when no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no ONNX model at {path}; export one with export_onnx first")
    return path


def file_size_mb(path) -> float:
    """Size of an ONNX model in MB (10^6 bytes), external-data files included."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    extra = {
        entry.value for t in model.graph.initializer for entry in t.external_data if entry.key == "location"
    }
    return sum((path.parent / name).stat().st_size for name in {path.name, *extra}) / 1e6


class OrtModel:
    """An ONNX Runtime session that maps a float32 image batch to float32 logits (torch tensors).

    ``threads > 0`` sets ``intra_op_num_threads``; ``profile=True`` records a Chrome-trace
    JSON profile of every run (see :meth:`end_profiling`). ``provider`` is ``cpu`` (the default),
    ``cuda`` or ``tensorrt`` (:mod:`playground.latency.ort_providers`; ``trt_fp16`` lets TensorRT
    pick fp16 kernels); a session that falls back from the provider asked for is refused.
    """

    def __init__(
        self, path, threads: int = 0, profile: bool = False, provider: str = "cpu", trt_fp16: bool = False
    ) -> None:
        self.path = _model_file(path)
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"ort_profile_{self.path.stem}")
        providers = providers_for(provider, fp16=trt_fp16, cache_dir=self.path.parent)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # ORT raises its own pybind types (InvalidProtobuf, Fail ...)
            raise DataFormatError(
                f"ONNX Runtime cannot load {self.path} (corrupt or not an ONNX model?): {_first_line(exc)}"
            ) from exc
        check_provider(self.session, provider, self.path)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = np.float16 if first.type == "tensor(float16)" else np.float32
        self.profiling = profile

    @property
    def size_mb(self) -> float:
        return file_size_mb(self.path)

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        feed = {self.input_name: images.detach().cpu().numpy().astype(self.input_dtype, copy=False)}
        (logits,) = self.session.run(None, feed)[:1]
        return torch.from_numpy(np.asarray(logits, dtype=np.float32))

    def end_profiling(self) -> Path:
        """Stop profiling and return the profile JSON's path (ConfigError if not profiling)."""
        if not self.profiling:
            raise ConfigError("this OrtModel was built without profile=True; nothing to end")
        self.profiling = False
        return Path(self.session.end_profiling())


def to_fp16(src, dst) -> Path:
    """Convert weights and compute to float16, keeping float32 inputs and outputs.

    Uses ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``
    (the copy of onnxconverter-common's converter that ships with ORT): Casts are added at
    the graph's input and output, so callers keep feeding float32.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(_model_file(src)))
    try:
        half = convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:
        raise DataFormatError(f"cannot convert {src} to float16: {_first_line(exc)}") from exc
    try:
        onnx.save(half, str(dst))
    except OSError as exc:
        raise ConfigError(f"cannot write ONNX file {dst}: {_first_line(exc)}") from exc
    return Path(dst)


def _preprocess(src: Path, folder: Path) -> Path:
    """ORT's recommended pre-quantization pass (symbolic shape inference + graph
    optimisation, e.g. folding) into ``folder``; the original file is left alone."""
    out = folder / "preprocessed.onnx"
    try:
        quant_pre_process(str(src), str(out))
    except Exception as exc:
        raise DataFormatError(
            f"ONNX Runtime cannot pre-process {src} for quantization: {_first_line(exc)}"
        ) from exc
    return out


def u8s8_saturates() -> bool:
    """True on an x86 CPU without VNNI (AVX2 only, e.g. AMD Zen 3). ORT's U8S8 kernels multiply there with
    VPMADDUBSW, which adds pairs of u8 x s8 products into int16 with saturation: large activations times
    large weights clip, and the logits drift (max |Δ| 1.29 on a digits CNN where VNNI gave < 1). ORT's
    remedy is ``reduce_range``: 7-bit weights, so no pair sum can exceed int16. VNNI's VPDPBUSD adds into
    int32 and needs none of this."""
    flags = cpu_flags()
    return bool(flags) and not any(flags.get(f) for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def _reduce_range(reduce_range: bool | None) -> bool:
    return u8s8_saturates() if reduce_range is None else reduce_range


def quantize_int8_dynamic(src, dst, *, reduce_range: bool | None = None) -> Path:
    """Dynamic int8 quantization: int8 weights (QInt8), activations quantized per run.

    ``quantize_dynamic`` covers Conv (-> ConvInteger), MatMul and Gemm (-> MatMulInteger).
    Each quantized op pays a DynamicQuantizeLinear of its input at run time, and ConvInteger
    has no fast CPU kernel: a width-32 CNN (batch 32, 32x32, 1 thread) ran about 7x *slower*
    than fp32. It suits MatMul-heavy models (transformers, LSTMs); use static int8 for CNNs.
    ``reduce_range``: 7-bit weights; default on where U8S8 saturates (:func:`u8s8_saturates`).
    """
    src = _model_file(src)
    with tempfile.TemporaryDirectory() as tmp:
        pre = _preprocess(src, Path(tmp))
        quantize_dynamic(
            str(pre), str(dst), weight_type=QuantType.QInt8, reduce_range=_reduce_range(reduce_range)
        )
    return Path(dst)


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds calibration images to ORT's static quantizer, ``batch_size`` at a time."""

    def __init__(self, model_path, images: torch.Tensor, batch_size: int = 64) -> None:
        if images.ndim != 4 or images.shape[0] == 0:
            raise DataFormatError(
                f"calibration images must be a non-empty (N, C, H, W) batch, got {tuple(images.shape)}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        graph = onnx.load(str(_model_file(model_path)), load_external_data=False).graph
        weights = {t.name for t in graph.initializer}
        self.input_name = next(i.name for i in graph.input if i.name not in weights)
        self.images = images.detach().float().cpu().numpy()
        self.batch_size = batch_size
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._start >= len(self.images):
            return None
        batch = self.images[self._start : self._start + self.batch_size]
        self._start += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._start = 0


def quantize_int8_static(
    src,
    dst,
    calibration_images: torch.Tensor,
    *,
    batch_size: int = 64,
    per_channel: bool = True,
    method: str = "minmax",
    reduce_range: bool | None = None,
) -> Path:
    """Static int8 quantization (QDQ format), calibrated on ``calibration_images``.

    Activations are QUInt8 and weights QInt8 ("U8S8"): ORT's x86 kernels (MLAS) multiply
    unsigned by signed bytes, which is what AVX2's VPMADDUBSW and AVX-512/AVX VNNI's VPDPBUSD
    do natively (with VNNI there is no intermediate saturation). ORT's x86 CPU provider even
    rewrites s8 activations to u8 when it builds the session: profiled on an AVX512-VNNI EPYC,
    a QInt8-activation file executed the same uint8 QLinearConv/QGemm kernels, and both ran
    a width-32 CNN equally fast. Writing u8 keeps the file equal to what runs.
    Weights are per output channel when ``per_channel``. ``method`` is ``minmax``,
    ``percentile`` (clips outliers) or ``entropy`` (KL-divergence calibration). ``reduce_range``:
    7-bit weights; default on where U8S8 saturates (:func:`u8s8_saturates`).
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(
            f"unknown calibration method {method!r}; choose one of {', '.join(CALIBRATION_METHODS)}"
        )
    src = _model_file(src)
    with tempfile.TemporaryDirectory() as tmp:
        pre = _preprocess(src, Path(tmp))
        reader = ImageCalibrationReader(pre, calibration_images, batch_size)
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                _entropy_bins(method),
            ):  # calibrators print progress
                quantize_static(
                    str(pre),
                    str(dst),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    per_channel=per_channel,
                    calibrate_method=CALIBRATION_METHODS[method],
                    reduce_range=_reduce_range(reduce_range),
                )
        except OSError as exc:
            raise ConfigError(f"cannot write ONNX file {dst}: {_first_line(exc)}") from exc
    return Path(dst)


ENTROPY_BINS = 2048  # histogram bins for the KL search (TensorRT's calibrator uses 2048 as well)


@contextlib.contextmanager
def _entropy_bins(method: str):
    """Give ORT's Entropy calibrator a histogram finer than its quantized bins.

    ``quantize_static`` passes no bin counts to the calibrator, whose Entropy defaults are 128 histogram
    bins and 128 quantized bins: its KL search then has exactly one candidate, the full range, and Entropy
    calibration *is* MinMax (identical scales, checked on ORT 1.32). With 2048 bins it searches thresholds
    from 128 bins up to the full range, as TensorRT's entropy calibration does (Migacz, GTC 2017)."""
    if method != "entropy":
        yield
        return
    ort_quantize = importlib.import_module(
        "onnxruntime.quantization.quantize"
    )  # the module, not the function
    create = ort_quantize.create_calibrator

    def with_bins(*args, extra_options=None, **kwargs):
        options = {"num_bins": ENTROPY_BINS, "num_quantized_bins": 128, **(extra_options or {})}
        return create(*args, extra_options=options, **kwargs)

    ort_quantize.create_calibrator = with_bins
    try:
        yield
    finally:
        ort_quantize.create_calibrator = create


@dataclass
class Int8Check:
    """Which kernels ORT executed for one run: integer vs float compute."""

    quantized_nodes: dict[str, int]
    float_nodes: dict[str, int]
    ran_int8: bool
    evidence: str


def is_int_compute(op: str) -> bool:
    """True for kernels that do Conv/MatMul-type work in integer arithmetic."""
    return op.startswith("QLinear") or "Integer" in op or op in INT_COMPUTE_OPS


def executed_ops(profile_path) -> collections.Counter:
    """Op types of the kernels in an ORT profile (Chrome-trace events, cat ``Node``)."""
    events = json.loads(Path(profile_path).read_text())
    return collections.Counter(
        e["args"]["op_name"]
        for e in events
        if e.get("cat") == "Node"
        and e.get("name", "").endswith("_kernel_time")
        and "op_name" in e.get("args", {})
    )


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def int8_execution_check(path, images: torch.Tensor) -> Int8Check:
    """Run the model once with ORT profiling and count the integer and float kernels it ran.

    ``ran_int8`` is True only when an integer compute kernel (QLinearConv, QGemm,
    ConvInteger, MatMulInteger, DynamicQuantizeMatMul ...) executed; Quantize/Dequantize
    conversions alone do not count. At most 64 images are run: this is evidence, not accuracy.
    """
    model = OrtModel(path, threads=1, profile=True)
    model(images[:64])
    profile = model.end_profiling()
    try:
        ops = executed_ops(profile)
    finally:
        profile.unlink(missing_ok=True)
    compute = {op: n for op, n in ops.items() if is_int_compute(op)}
    convert = {op: n for op, n in ops.items() if op in INT_CONVERT_OPS}
    floats = {op: n for op, n in ops.items() if op in FLOAT_COMPUTE_OPS}
    evidence = f"ORT ran {_summary(compute) or '0 integer Conv/MatMul kernels'}"
    if convert:
        evidence += f" (+ {_summary(convert)})"
    evidence += f"; float: {_summary(floats)}" if floats else "; 0 float Conv/MatMul/Gemm"
    return Int8Check({**compute, **convert}, floats, bool(compute), evidence)


@dataclass
class OrtBuild:
    """One ONNX Runtime variant on disk and how long it took to build."""

    name: str
    path: Path
    seconds: float
    notes: str


def build_ort_variants(
    src, folder, calibration_images: torch.Tensor, *, method: str = "minmax"
) -> list[OrtBuild]:
    """Build the fp32 (the source itself), fp16, int8-dynamic and int8-static variants of ``src``
    in ``folder``.
    """
    src, folder = _model_file(src), Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"cannot write ONNX variants: folder {folder} does not exist")
    steps = [
        (
            "ort-fp16",
            lambda dst: to_fp16(src, dst),
            "float16 weights, fp32 IO (x86 CPU runs float32 kernels)",
        ),
        (
            "ort-int8-dynamic",
            lambda dst: quantize_int8_dynamic(src, dst),
            "int8 weights, activations per run",
        ),
        (
            "ort-int8-static",
            lambda dst: quantize_int8_static(src, dst, calibration_images, method=method),
            f"QDQ u8s8, per-channel, {method} calibration",
        ),
    ]
    builds = [OrtBuild("ort-fp32", src, 0.0, "exported float32 graph")]
    for name, make, notes in steps:
        start = time.perf_counter()
        path = make(folder / f"{name}.onnx")
        builds.append(OrtBuild(name, path, time.perf_counter() - start, notes))
    return builds
