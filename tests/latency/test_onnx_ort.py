"""ONNX export (dynamo and legacy fallback), ONNX Runtime fp32/fp16/int8 variants, the int8
execution check and the errors a user can cause -- on a tiny CNN trained on 8x8 digits."""

from __future__ import annotations

import logging

import onnx
import pytest
import torch
from onnx import numpy_helper

from playground.errors import (
    ConfigError,
    DataFormatError,
    DataNotFoundError,
    PlaygroundError,
)
from playground.latency.onnx_export import Parity, SingleOutput, export_onnx, parity
from playground.latency.ort_variants import (
    OrtModel,
    int8_execution_check,
    quantize_int8_dynamic,
    quantize_int8_static,
    to_fp16,
    u8s8_saturates,
)
from playground.latency.variants import BuildContext, build_variant, check_parity


@pytest.fixture(scope="module")
def fp32_onnx(trained, digits, tmp_path_factory):
    """The trained model exported once with the dynamo exporter (about 5 s)."""
    return export_onnx(trained, digits[1].images[:4], tmp_path_factory.mktemp("onnx") / "fp32.onnx")


def torch_logits(model):
    return SingleOutput(model).eval()


def weight_bytes(path) -> int:
    """Bytes of all initializers (weights, biases, scales, zero points) in an ONNX file."""
    return sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


def test_dynamo_export_matches_torch_at_any_batch(trained, digits, fp32_onnx):
    assert fp32_onnx.exporter == "dynamo" and fp32_onnx.fallback_reason is None
    assert fp32_onnx.path.is_file() and not fp32_onnx.path.with_suffix(".onnx.data").exists()
    ort_model = OrtModel(fp32_onnx.path, threads=1)
    check = parity(torch_logits(trained), ort_model, digits[1].images)
    assert check.samples == 450
    assert check.max_abs_diff < 1e-4 and check.argmax_agreement == 1.0 and check.ok(1e-4, 1.0)
    for n in (1, 7):
        images = digits[1].images[:n]
        out = ort_model(images)
        assert out.shape == (n, 10) and out.dtype == torch.float32
        assert torch.allclose(out, trained(images).logits.detach(), atol=1e-4)


def test_fallback_to_legacy_exporter(trained, digits, tmp_path, monkeypatch, caplog):
    real_export = torch.onnx.export

    def dynamo_breaks(*args, **kwargs):
        if kwargs.get("dynamo", True):
            raise RuntimeError("simulated dynamo failure\nwith a long second line")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", dynamo_breaks)
    with caplog.at_level(logging.WARNING, logger="playground.latency"):
        result = export_onnx(trained, digits[1].images[:1], tmp_path / "legacy.onnx")
    assert result.exporter == "legacy"
    assert result.fallback_reason == "RuntimeError: simulated dynamo failure"
    assert any("simulated dynamo failure" in r.getMessage() for r in caplog.records)
    ort_model = OrtModel(result.path, threads=1)
    check = parity(torch_logits(trained), ort_model, digits[1].images)
    assert check.max_abs_diff < 1e-4 and check.argmax_agreement == 1.0
    assert ort_model(digits[1].images[:7]).shape == (7, 10)
    assert trained.training is False


def test_both_exporters_failing_is_one_config_error(trained, tmp_path, monkeypatch):
    def always_fails(*args, **kwargs):
        raise ValueError(f"no exporter today (dynamo={kwargs.get('dynamo')})\ndetails")

    monkeypatch.setattr(torch.onnx, "export", always_fails)
    with pytest.raises(ConfigError) as info:
        export_onnx(trained, torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")
    message = str(info.value)
    assert "\n" not in message and "dynamo=True" in message and "dynamo=False" in message


def test_fp16_is_close_and_half_the_weights(trained, digits, fp32_onnx, tmp_path):
    path = to_fp16(fp32_onnx.path, tmp_path / "fp16.onnx")
    fp32, fp16 = OrtModel(fp32_onnx.path, threads=1), OrtModel(path, threads=1)
    assert fp16.input_dtype.__name__ == "float32"  # fp32 IO kept
    check = parity(fp32, fp16, digits[1].images)
    assert check.max_abs_diff < 2e-2 and check.argmax_agreement >= 0.99
    # the weights halve exactly; the graph itself (names, shapes, Casts) does not shrink,
    # which for this 6.5k-parameter model is a fifth of the file
    assert 0.49 < weight_bytes(path) / weight_bytes(fp32_onnx.path) < 0.51
    assert fp16.size_mb < 0.7 * fp32.size_mb


def test_int8_dynamic_keeps_predictions_and_runs_integer_conv(trained, digits, fp32_onnx, tmp_path):
    path = quantize_int8_dynamic(fp32_onnx.path, tmp_path / "dyn.onnx")
    check = parity(torch_logits(trained), OrtModel(path, threads=1), digits[1].images)
    assert check.argmax_agreement >= 0.95 and 0 < check.max_abs_diff < 1.0
    ran = int8_execution_check(path, digits[1].images)
    assert ran.ran_int8 and ran.quantized_nodes.get("ConvInteger") == 4, ran.evidence
    assert "Conv" not in ran.float_nodes


def _int8_weight_range(path) -> tuple[int, int]:
    weights = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(path)).graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    return min(int(w.min()) for w in weights), max(int(w.max()) for w in weights)


def test_u8s8_saturation_is_known_from_the_cpu_flags(monkeypatch):
    flags = {"avx2": True, "avx512f": False, "avx512_vnni": False, "avx_vnni": False, "amx_int8": False}
    monkeypatch.setattr("playground.latency.ort_variants.cpu_flags", lambda: flags)
    assert u8s8_saturates()  # AVX2 alone: VPMADDUBSW's int16 sums saturate
    flags["avx512_vnni"] = True
    assert not u8s8_saturates()
    monkeypatch.setattr("playground.latency.ort_variants.cpu_flags", dict)  # no /proc/cpuinfo: no guess
    assert not u8s8_saturates()


def test_reduce_range_keeps_weights_within_7_bits(digits, fp32_onnx, tmp_path):
    images = digits[0].images[:64]
    full = quantize_int8_static(fp32_onnx.path, tmp_path / "s8.onnx", images, reduce_range=False)
    reduced = quantize_int8_static(fp32_onnx.path, tmp_path / "s7.onnx", images, reduce_range=True)
    assert _int8_weight_range(full) == (-127, 127)  # symmetric per channel: each channel's largest is ±127
    low, high = _int8_weight_range(reduced)
    assert max(-low, high) == 64  # symmetric 7-bit: half the range, so no int16 pair sum can saturate


def test_int8_static_runs_qlinear_kernels(trained, digits, fp32_onnx, tmp_path):
    path = quantize_int8_static(fp32_onnx.path, tmp_path / "static.onnx", digits[0].images[:256])
    int8 = OrtModel(path, threads=1)
    check = parity(torch_logits(trained), int8, digits[1].images)
    assert check.argmax_agreement >= 0.95 and 0 < check.max_abs_diff < 1.0
    assert weight_bytes(path) < 0.35 * weight_bytes(fp32_onnx.path)  # int8 weights, int32 biases, scales
    assert int8.size_mb < 0.8 * OrtModel(fp32_onnx.path).size_mb  # Q/DQ nodes add graph text
    ran = int8_execution_check(path, digits[1].images)
    assert ran.ran_int8 and ran.quantized_nodes.get("QLinearConv") == 4, ran.evidence
    assert ran.quantized_nodes.get("QGemm", 0) >= 1 and ran.float_nodes == {}, ran.evidence
    assert ran.evidence.startswith("ORT ran 4 QLinearConv") and "0 float Conv" in ran.evidence
    baseline = int8_execution_check(fp32_onnx.path, digits[1].images)
    assert not baseline.ran_int8 and baseline.quantized_nodes == {}
    assert baseline.float_nodes.get("Conv") == 4 and "0 integer" in baseline.evidence


def test_static_percentile_calibration_and_unknown_method(digits, fp32_onnx, tmp_path):
    path = quantize_int8_static(
        fp32_onnx.path,
        tmp_path / "p.onnx",
        digits[0].images[:128],
        batch_size=32,
        per_channel=False,
        method="percentile",
    )
    check = parity(OrtModel(fp32_onnx.path, threads=1), OrtModel(path, threads=1), digits[1].images)
    assert check.argmax_agreement >= 0.95
    with pytest.raises(ConfigError, match="calibration method"):
        quantize_int8_static(fp32_onnx.path, tmp_path / "x.onnx", digits[0].images[:8], method="kl")


def test_export_to_unwritable_places_is_a_playground_error(trained, tmp_path):
    example = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ConfigError, match="does not exist"):
        export_onnx(trained, example, tmp_path / "missing" / "m.onnx")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        export_onnx(trained, example, tmp_path / "a_file" / "m.onnx")
    with pytest.raises(DataFormatError, match="image batch"):
        export_onnx(trained, torch.zeros(8, 8), tmp_path / "m.onnx")


def test_corrupt_or_missing_onnx_file_is_a_playground_error(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x00\x01 this is not a protobuf \xff" * 10)
    with pytest.raises(DataFormatError) as info:
        OrtModel(bad)
    assert "cannot load" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataNotFoundError):
        OrtModel(tmp_path / "nowhere.onnx")
    assert issubclass(DataNotFoundError, PlaygroundError)


def test_parity_flags_nan_and_checks_thresholds():
    images = torch.rand(5, 1, 8, 8)
    ref = lambda x: torch.zeros(len(x), 3)
    nan = lambda x: torch.full((len(x), 3), float("nan"))
    assert parity(ref, nan, images, batch_size=2).max_abs_diff == float("inf")
    assert Parity(0.01, 0.99, 10).ok(0.02, 0.99) and not Parity(0.03, 1.0, 10).ok(0.02, 0.99)
    with pytest.raises(DataFormatError):
        parity(ref, lambda x: torch.zeros(len(x), 4), images)


def test_parity_reports_the_mean_difference_and_the_logit_range():
    images = torch.rand(4, 1, 8, 8)
    ref = lambda x: torch.tensor([[-2.0, 0.0, 6.0]]).repeat(len(x), 1)
    cand = lambda x: ref(x) + torch.tensor([[0.3, 0.0, 0.0]])
    found = parity(ref, cand, images, batch_size=3)
    assert found.max_abs_diff == pytest.approx(0.3) and found.mean_abs_diff == pytest.approx(0.1)
    assert found.logit_range == pytest.approx(8.0) and found.argmax_agreement == 1.0


def test_the_report_explains_a_variant_outside_its_parity_tolerance():
    from playground.latency.report import parity_explanations
    from playground.latency.variants import Variant

    run = lambda x: x
    inside = Variant(
        "ort_fp32", run, "onnxruntime", 1.0, 0.0, parity=Parity(1e-5, 1.0, 100, 1e-6, 20.0), parity_ok=True
    )
    outside = Variant(
        "ort_int8_static",
        run,
        "onnxruntime",
        1.0,
        0.0,
        parity=Parity(1.6, 0.996, 1000, 0.12, 32.0),
        parity_ok=False,
    )
    results = {"torch_fp32": {"accuracy": 0.9352}, "ort_int8_static": {"accuracy": 0.9348}}
    lines = parity_explanations({"ort_fp32": inside, "ort_int8_static": outside}, results)
    assert len(lines) == 1 and lines[0].startswith("- **ort_int8_static**")
    assert "max |Δ| 1.6 on logits spanning 32 (5.0% of the range)" in lines[0]
    assert "mean |Δ| 0.12" in lines[0] and "-0.04 points" in lines[0] and "int8 rounding" in lines[0]


@pytest.mark.parametrize("name", ["ort_int8_entropy", "ort_int8_percentile"])
def test_the_histogram_calibrated_variants_run_int8_and_keep_predictions(name, trained, digits, tmp_path):
    ctx = BuildContext(trained, digits[1].images[:4], digits[0].images[:128], tmp_path, threads=1)
    variant = build_variant(ctx, name)
    assert variant is not None, ctx.skipped
    assert variant.precision == "int8" and variant.ran_int8, variant.int8_evidence
    assert (tmp_path / f"model_int8_{name.split('_')[-1]}.onnx").is_file()
    check_parity(variant, torch_logits(trained), digits[1].images)
    # clipping calibrators trade the largest logits (max |Δ| beyond the int8 tolerance) for resolution
    assert variant.parity.argmax_agreement >= 0.95, variant.parity


def test_a_builder_that_fails_on_a_model_is_listed_with_its_reason_not_fatal(
    trained, digits, tmp_path, monkeypatch
):
    def quantizer_bug(*args, **kwargs):
        raise ValueError("Input partition has more than one output node")

    monkeypatch.setattr("playground.latency.torch_variants.torch_int8_pt2e", quantizer_bug)
    ctx = BuildContext(trained, digits[1].images[:4], digits[0].images[:32], tmp_path, threads=1)
    assert build_variant(ctx, "torch_int8") is None
    assert ctx.skipped["torch_int8"] == "ValueError: Input partition has more than one output node"


def _activation_scales(path) -> dict[str, float]:
    graph = onnx.load(str(path)).graph
    return {
        t.name: float(numpy_helper.to_array(t))
        for t in graph.initializer
        if t.name.endswith("_scale") and numpy_helper.to_array(t).ndim == 0
    }


def test_entropy_calibration_searches_thresholds_instead_of_copying_minmax(
    trained, digits, fp32_onnx, tmp_path
):
    # ORT's defaults (128 bins, 128 quantized bins) made Entropy identical to MinMax; with 2048 bins the KL
    # search clips the long tails of some activations
    images = digits[0].images[:256]
    minmax = _activation_scales(quantize_int8_static(fp32_onnx.path, tmp_path / "mm.onnx", images))
    path = quantize_int8_static(fp32_onnx.path, tmp_path / "kl.onnx", images, method="entropy")
    entropy = _activation_scales(path)
    assert entropy.keys() == minmax.keys()
    tighter = [name for name in minmax if entropy[name] < 0.95 * minmax[name]]
    assert len(tighter) >= 2 and all(entropy[n] <= minmax[n] * 1.001 for n in minmax)
    check = parity(torch_logits(trained), OrtModel(path, threads=1), digits[1].images)
    assert check.argmax_agreement >= 0.9
