"""The fusion page's saved models refuse hostile files with one CheckpointError naming the file and the
problem (issue 25): the zero-shot classifier here, the knowledge tensors in ``test_experiment.py``."""

from __future__ import annotations

import pytest
import torch

from playground.errors import CheckpointError
from tests import loader_cases
from tests.hostile import replant

META = {"class_names": ["a", "b", "c", "d"], "unseen": ["d"]}


@pytest.mark.parametrize(
    "metadata, tensors, problem",
    [
        ([META], {}, "is a list"),
        ({"unseen": ["d"]}, {}, "lacks 'class_names' (a list of a string)"),
        ({**META, "class_names": ["a", "b"]}, {}, "names 2 classes for 4 class embeddings"),
        (META, {"classes": None}, "lacks the tensor 'classes'"),
        (META, {"classes": torch.ones(4)}, "tensor 'classes' is float32 (4,), expected float (C, *)"),
        (META, {"extra": torch.ones(1)}, "does not fit the model its metadata describes: unexpected 'extra'"),
        (META, {"project.weight": torch.ones(3, 3)}, "'project.weight' is (3, 3) there"),
    ],
)
def test_a_hostile_zero_shot_checkpoint_is_refused(tmp_path, metadata, tensors, problem):
    path, read = loader_cases.fusion_zero_shot(tmp_path)
    replant(path, tensors, metadata)
    with pytest.raises(CheckpointError) as info:
        read()
    assert str(path) in str(info.value) and problem in str(info.value)
