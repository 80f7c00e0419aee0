"""A team's weights for a torchvision/timm architecture: safe loading, exact fit, one clear error."""

from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from playground.errors import CheckpointError, ConfigError, DataNotFoundError
from playground.latency.sources import load_source


def _mobilenet_state(num_classes: int = 10, seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return load_source(
        "torchvision:mobilenet_v3_small", input_shape="3x32x32", num_classes=num_classes
    ).module.state_dict()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_user_weights_round_trip(tmp_path, suffix):
    torch.manual_seed(1)
    original = load_source("torchvision:mobilenet_v3_small", input_shape="3x32x32", num_classes=10)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in original.module.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save({"state_dict": state}, path)
    torch.manual_seed(2)  # another random init, so equal outputs prove the weights were loaded
    loaded = load_source(
        "torchvision:mobilenet_v3_small", weights=path, input_shape="3x32x32", num_classes=10
    )
    images = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(images), original.module(images), rtol=0, atol=0)
    assert loaded.weights == f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"


def test_weights_with_another_class_count_name_the_tensor_and_suggest_num_classes(tmp_path):
    path = tmp_path / "ten.safetensors"
    save_file(_mobilenet_state(10), str(path))
    with pytest.raises(CheckpointError) as error:
        load_source("torchvision:mobilenet_v3_small", weights=str(path), input_shape="3x32x32")
    message = str(error.value)
    assert "tensor classifier.3.weight has shape [10, 1024], the architecture expects [1000, 1024]" in message
    assert "(+1 more tensors with other shapes)" in message  # classifier.3.bias
    assert message.endswith("pass num_classes=10")


def test_missing_and_unexpected_keys_are_listed_with_a_count(tmp_path):
    state = _mobilenet_state(10)
    for key in [k for k in state if k.startswith("features.1")]:
        del state[key]
    state.update({f"extra.{i}": torch.zeros(1) for i in range(7)})
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as error:
        load_source("torchvision:mobilenet_v3_small", weights=path, input_shape="3x32x32", num_classes=10)
    message = str(error.value)
    assert "missing keys: features.1.block.0.0.weight" in message
    assert "unexpected keys: extra.0, extra.1, extra.2, extra.3, extra.4 (+2 more)" in message
    assert "shape" not in message


def test_pickled_module_and_bad_weight_files_are_refused(tmp_path):
    pickled = tmp_path / "model.pt"
    torch.save(nn.Linear(2, 2), pickled)
    with pytest.raises(CheckpointError, match="never unpickled"):
        load_source("torchvision:resnet18", weights=pickled, input_shape="3x32x32")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(
        CheckpointError, match="weights .*broken.safetensors is corrupt or not a safetensors file"
    ):
        load_source("torchvision:resnet18", weights=broken, input_shape="3x32x32")
    with pytest.raises(ConfigError, match=r"must be a \.safetensors, \.pt, \.pth file"):
        load_source("torchvision:resnet18", weights=tmp_path / "w.bin", input_shape="3x32x32")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_source("torchvision:resnet18", weights=tmp_path / "absent.pt", input_shape="3x32x32")
