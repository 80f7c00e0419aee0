"""ONNX Runtime providers: asked for explicitly, refused clearly when missing, never a silent fallback."""

from __future__ import annotations

import onnxruntime as ort
import pytest
import torch
from torch import nn

from playground.errors import ConfigError
from playground.latency import ort_providers
from playground.latency.ort_providers import check_provider, provider_kind, providers_for
from playground.latency.ort_variants import OrtModel
from playground.latency.variants import BuildContext, build_variant

ON_A_GPU = "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available()


def test_the_run_device_picks_the_provider():
    assert (
        provider_kind("cpu") == "cpu"
        and provider_kind("cuda") == "cuda"
        and provider_kind("cuda:1") == "cuda"
    )
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="unknown ONNX Runtime provider 'rocm'"):
        providers_for("rocm")


@pytest.mark.skipif(ON_A_GPU, reason="this ONNX Runtime has the CUDA provider")
def test_a_missing_gpu_provider_is_one_error_that_says_what_to_install():
    with pytest.raises(ConfigError, match="has no CUDAExecutionProvider .* install onnxruntime-gpu"):
        providers_for("cuda")
    with pytest.raises(ConfigError, match=r"has no TensorrtExecutionProvider .* \(pip install tensorrt\)"):
        providers_for("tensorrt", fp16=True)


def test_tensorrt_options_and_fallbacks(monkeypatch, tmp_path):
    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort_providers.ort, "get_available_providers", lambda: every)
    (trt, cuda, cpu) = providers_for("tensorrt", fp16=True, cache_dir=tmp_path)
    assert trt == (
        "TensorrtExecutionProvider",
        {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(tmp_path)},
    )
    assert (cuda, cpu) == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert providers_for("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]


class _FellBack:
    def get_providers(self):
        return ["CPUExecutionProvider"]


def test_a_session_that_fell_back_to_the_cpu_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="could not start CUDAExecutionProvider for m.onnx and fell back"):
        check_provider(_FellBack(), "cuda", tmp_path / "m.onnx")
    check_provider(_FellBack(), "cpu", tmp_path / "m.onnx")  # what was asked for: no error


@pytest.mark.skipif(ON_A_GPU, reason="TensorRT may run here")
def test_tensorrt_variants_on_a_cpu_are_listed_with_the_reason(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    images = torch.randn(8, 1, 12, 12)
    ctx = BuildContext(model, images[:2], images, tmp_path, threads=1)
    for name in ("ort_tensorrt_fp32", "ort_tensorrt_fp16"):
        assert build_variant(ctx, name) is None
        assert "no TensorrtExecutionProvider" in ctx.skipped[name]
    fp32 = build_variant(ctx, "ort_fp32")  # the run's device (cpu) gives the CPU provider
    assert fp32.notes == "providers CPUExecutionProvider"
    assert OrtModel(ctx.onnx()).providers == ["CPUExecutionProvider"]
