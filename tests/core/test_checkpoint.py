import pytest
import torch

from playground.core.checkpoint import load_checkpoint, load_into, save_checkpoint
from playground.errors import CheckpointError
from playground.models import build_model


def small_model():
    return build_model(
        "small_cnn", in_channels=1, num_classes=3, embedding_dim=8, width=4, depth=1, pool_size=1
    )


def test_checkpoint_round_trip_restores_weights_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = small_model()
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"classes": ["a", "b", "c"], "epochs": 2})
    other = small_model()
    assert not torch.equal(other.embedding_head.linear.weight, model.embedding_head.linear.weight)
    metadata = load_into(other, path)
    assert metadata == {"classes": ["a", "b", "c"], "epochs": 2}
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(4, 1, 8, 8)
    model.eval(), other.eval()
    assert torch.equal(model(x).logits, other(x).logits)


def test_checkpoint_file_is_not_a_pickle(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(2)})
    head = path.read_bytes()[:16]
    assert not head.startswith(b"\x80")  # pickle protocol marker
    assert not (tmp_path / "m.safetensors.tmp").exists()


@pytest.mark.parametrize("payload", [b"", b"not a checkpoint at all", b"\x80\x04\x95" + b"x" * 64])
def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, payload):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "corrupt" in message and str(path) in message and "re-running" in message
    assert "\n" not in message


def test_truncated_checkpoint_is_detected(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", small_model())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_missing_and_mismatched_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    path = save_checkpoint(tmp_path / "m.safetensors", small_model())
    bigger = build_model(
        "small_cnn", in_channels=1, num_classes=5, embedding_dim=8, width=4, depth=1, pool_size=1
    )
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_into(bigger, path)
