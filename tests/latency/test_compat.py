"""FCT compatibility of compressed embedders: reduced-precision queries against the fp32 gallery."""

from __future__ import annotations

import pytest
import torch

from playground.errors import ConfigError
from playground.latency import compat
from playground.latency.compat import compat_section, compressed, fct_compatibility
from playground.latency.onnx_export import SingleOutput
from playground.latency.variants import BuildContext, Variant


def test_only_reduced_precision_variants_are_compared():
    names = ["torch_fp32", "torch_compile", "torch_bf16", "ort_fp32", "ort_int8_static", "pruned50"]
    assert compressed(names) == ["torch_bf16", "ort_int8_static"]


def test_int8_and_fp16_embedders_search_the_fp32_gallery(trained, digits, tmp_path):
    train, test = digits
    ctx = BuildContext(trained, test.images[:4], train.images[:256], tmp_path, threads=1)
    rows, skipped = fct_compatibility(ctx, ["ort_fp16", "ort_int8_static"], test.images, test.labels)
    assert skipped == {}
    assert rows["torch_fp32"]["compat_map_ratio"] == 1.0 and rows["torch_fp32"]["compat_map"] > 0.8
    assert rows["ort_fp16"]["compat_map_ratio"] == pytest.approx(1.0, abs=0.005)
    assert 0.95 <= rows["ort_int8_static"]["compat_map_ratio"] <= 1.02
    assert 0.9 <= rows["ort_int8_static"]["compat_top1"] <= 1.0
    (section,) = compat_section(rows, len(test.images))
    assert section.startswith("## FCT compatibility of the compressed embedder")
    assert f"{len(test.images)} test images" in section and "| ort_int8_static | " in section


def test_an_embedder_in_another_space_is_shown_incompatible(trained, digits, tmp_path, monkeypatch):
    """A variant whose embeddings are rotated (as good on its own, useless against the old gallery)."""
    train, test = digits
    rotation = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(0)))[0]
    real_build = compat.build_variant

    def build(ctx, name):
        if name != "torch_bf16":
            return real_build(ctx, name)
        fp32 = real_build(ctx, "torch_fp32")
        return Variant(name, lambda images: fp32.run(images) @ rotation, "torch", 0.0, 0.0)

    monkeypatch.setattr(compat, "build_variant", build)
    ctx = BuildContext(trained, test.images[:4], train.images[:64], tmp_path, threads=1)
    rows, _ = fct_compatibility(ctx, ["torch_bf16"], test.images, test.labels)
    assert rows["torch_bf16"]["compat_map_ratio"] < 0.5  # chance mAP is ~0.1 of a good one


def test_a_model_without_an_embedding_is_refused():
    with pytest.raises(ConfigError, match="returns no embedding"):
        SingleOutput(torch.nn.Linear(4, 2), "embedding")(torch.zeros(1, 4))
