"""A model brought into a labelling project (``--model``) refuses hostile files with one
CheckpointError naming the file and the problem (issue 25)."""

from __future__ import annotations

import pytest
import torch

from playground.errors import CheckpointError
from tests import loader_cases
from tests.hostile import DAMAGED, replant


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"extra": torch.ones(2)}, "does not fit this project (classes, image_size"),
        ({"classifier.1.weight": None}, "missing 'classifier.1.weight'"),
        ({"classifier.1.weight": torch.ones(3)}, "'classifier.1.weight' is (3,) there"),
    ],
)
def test_an_imported_model_that_does_not_fit_is_refused(tmp_path, change, problem):
    path, read = loader_cases.label_model(tmp_path)
    replant(path, change)
    with pytest.raises(CheckpointError) as info:
        read()
    assert str(path) in str(info.value) and problem in str(info.value)


def test_an_imported_model_that_is_not_a_checkpoint_is_refused(tmp_path):
    path, read = loader_cases.label_model(tmp_path)
    path.write_bytes(DAMAGED["random bytes"])
    with pytest.raises(CheckpointError, match=f"{path} is corrupt or not a safetensors file"):
        read()
