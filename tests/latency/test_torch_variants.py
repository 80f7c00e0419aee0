"""PyTorch precision variants: agreement with the eager model and proof that int8 kernels run."""

from __future__ import annotations

import pytest
import torch

from playground.core.training import fit
from playground.data import TensorLoader, load_dataset
from playground.errors import ConfigError
from playground.latency.torch_variants import (
    int8_kernel_check,
    logits_only,
    split_repeated_module_calls,
    torch_bf16,
    torch_compiled,
    torch_fp16,
    torch_fp32,
    torch_int8_pt2e,
)
from playground.models import build_model


class ResidualNet(torch.nn.Module):
    """A stem and one torchvision ResNet block, whose one ``self.relu`` runs twice per call."""

    def __init__(self) -> None:
        from torchvision.models.resnet import BasicBlock

        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU())
        self.block = BasicBlock(8, 8)
        self.head = torch.nn.Sequential(
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)
        )

    def forward(self, images):
        return self.head(self.block(self.stem(images)))


def tiny_cnn(num_classes: int = 10):
    return build_model(
        "small_cnn",
        in_channels=1,
        num_classes=num_classes,
        width=8,
        pool_size=2,
        dropout=0.0,
        embedding_dim=32,
    )


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained for 3 epochs on digits (about a second), its train and test sets."""
    torch.manual_seed(0)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = tiny_cnn()
    fit(model, TensorLoader.of(train, batch_size=64, shuffle=True), epochs=3)
    model.eval()
    with torch.no_grad():
        reference = model(test.images).logits
    return model, train, test, reference


@pytest.fixture(scope="module")
def int8_variant(trained):
    model, train, test, _ = trained
    return torch_int8_pt2e(model, test.images, train.images, batch_size=128)


# inductor's own int8 lowering warns about a tensor copy inside torch; not ours to fix
INDUCTOR_INT8_WARNING = "ignore:To copy construct from a tensor:UserWarning"


def agreement(logits, reference) -> float:
    return (logits.argmax(1) == reference.argmax(1)).float().mean().item()


def test_logits_only_needs_a_classifier():
    with pytest.raises(ConfigError):
        logits_only(tiny_cnn(num_classes=0))


def test_fp32_matches_eager_and_is_not_int8(trained):
    model, _, test, reference = trained
    variant = torch_fp32(model)
    logits = variant.run(test.images)
    assert logits.dtype == torch.float32 and logits.shape == (len(test.images), 10)
    assert (logits - reference).abs().max().item() <= 1e-4
    assert variant.size_mb > 0
    assert not int8_kernel_check(variant, test.images[:8]).ran_int8


@pytest.mark.slow
def test_compiled_matches_eager_and_runs_no_int8_kernels(trained):
    model, _, test, reference = trained
    variant = torch_compiled(model, test.images)
    assert "compiled in" in variant.notes
    assert (variant.run(test.images) - reference).abs().max().item() <= 1e-4
    check = int8_kernel_check(variant, test.images)
    assert not check.ran_int8 and check.kernels == {}
    assert "no quantized op" in check.evidence


def test_bf16_agrees_with_fp32(trained):
    model, _, test, reference = trained
    logits = torch_bf16(model).run(test.images)
    assert logits.dtype == torch.float32
    assert agreement(logits, reference) >= 0.95


def test_fp16_on_cpu_raises_unless_allowed(trained):
    model, _, test, reference = trained
    with pytest.raises(ConfigError, match="fp16 on CPU"):
        torch_fp16(model, "cpu")
    variant = torch_fp16(model, "cpu", allow_cpu=True)
    assert agreement(variant.run(test.images[:64]), reference[:64]) >= 0.95
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is untouched


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_on_cuda_agrees(trained):
    model, _, test, reference = trained
    variant = torch_fp16(model, "cuda")
    logits = variant.run(test.images)
    assert logits.dtype == torch.float32 and logits.device.type == "cuda"
    assert agreement(logits.cpu(), reference) >= 0.95


@pytest.mark.slow
@pytest.mark.filterwarnings(INDUCTOR_INT8_WARNING)
def test_int8_pt2e_agrees_and_runs_onednn_int8_kernels(trained, int8_variant):
    _, _, test, reference = trained
    assert agreement(int8_variant.run(test.images), reference) >= 0.95
    check = int8_kernel_check(int8_variant, test.images)
    assert check.ran_int8, check.evidence
    assert check.kernels.get("onednn::qconv_pointwise", 0) >= 4
    assert check.kernels.get("onednn::qlinear_pointwise", 0) >= 1
    assert int8_variant.size_mb < torch_fp32(trained[0]).size_mb


@pytest.mark.slow
@pytest.mark.filterwarnings(INDUCTOR_INT8_WARNING)
def test_int8_pt2e_takes_a_new_batch_size_up_to_the_recompile_limit(trained, int8_variant):
    _, _, test, reference = trained
    assert agreement(int8_variant.run(test.images[:5]), reference[:5]) >= 0.8  # recompiles for batch 5
    # torch's own patch, not monkeypatch: monkeypatch's undo deletes the key, which hides it for later tests
    with torch._dynamo.config.patch(recompile_limit=len(int8_variant.run.batches)):
        with pytest.raises(ConfigError, match="recompile_limit"):
            int8_variant.run(test.images[:3])


def test_int8_pt2e_needs_calibration_images(trained):
    model, _, test, _ = trained
    with pytest.raises(ConfigError):
        torch_int8_pt2e(model, test.images[:4], test.images[:0])


def test_a_reused_module_is_split_into_one_name_per_call():
    net = ResidualNet().eval()
    batch = torch.export.Dim("batch", min=1)
    graph = torch.export.export(net, (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: batch},)).module()
    assert split_repeated_module_calls(graph) == 1  # block.relu's second call
    names = [
        next(reversed(n.meta["nn_module_stack"].values()))[0]
        for n in graph.graph.nodes
        if n.meta.get("nn_module_stack")
    ]
    assert "block.relu" in names and "block.relu@1" in names
    assert split_repeated_module_calls(graph) == 0


@pytest.mark.slow
@pytest.mark.filterwarnings(INDUCTOR_INT8_WARNING)
def test_int8_pt2e_builds_a_resnet_block_that_reuses_its_relu(trained):
    """torchvision ResNets used to fail in torchao's quantizer ("more than one output node")."""
    _, train, test, _ = trained
    torch.manual_seed(0)
    net = ResidualNet().eval()
    variant = torch_int8_pt2e(net, test.images[:2], train.images[:64], batch_size=32)
    with torch.no_grad():
        reference = net(test.images[:32])
    logits = variant.run(test.images[:32])
    assert (logits - reference).abs().max() <= 0.1 * reference.abs().max()
    check = int8_kernel_check(variant, test.images[:4])
    assert check.ran_int8 and check.kernels.get("onednn::qconv_pointwise", 0) >= 2, check.evidence
