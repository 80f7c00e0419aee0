"""The benchmark's saved models and user weights refuse hostile files with one clear error naming the
file (issue 25)."""

from __future__ import annotations

import pytest
import torch

from playground.errors import CheckpointError, DataFormatError
from tests import loader_cases
from tests.hostile import DAMAGED, plant


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_a_saved_model_with_a_tensor_of_another_rank_is_refused(tmp_path, rank):
    path, read = loader_cases.latency_saved_model(tmp_path)
    state = loader_cases.read_tensors(path)
    name = next(key for key, value in state.items() if value.ndim == 4)  # the first convolution
    plant(path, {**state, name: torch.ones((2,) * rank)}, metadata=None)
    with pytest.raises(DataFormatError) as info:
        read()
    assert str(path) in str(info.value) and f"{name} is {rank}-D in the saved model, 4-D here" in str(
        info.value
    )


@pytest.mark.parametrize("case", ["latency saved model", "latency user weights"])
@pytest.mark.parametrize("damage", ["huge header length", "tensor past the end", "random bytes"])
def test_damaged_model_files_are_one_checkpoint_error(tmp_path, case, damage):
    path, read = loader_cases.CASES[case](tmp_path)
    path.write_bytes(DAMAGED[damage])
    with pytest.raises(CheckpointError, match=f"{path} is corrupt or not a safetensors file"):
        read()
