"""The OOD page's readers refuse hostile files with one error naming the file and the problem
(issue 25): the per-image scores and the evaluation section; the saved models in ``test_experiment.py``."""

from __future__ import annotations

import json

import pytest
import torch

from playground.errors import CheckpointError, DataFormatError
from playground.uncertainty.results import read_evaluation
from tests import loader_cases
from tests.hostile import replant


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"score": torch.ones(3)}, "holds 'score', not a score named row/set"),
        ({"single/test": torch.ones(3, 2)}, "tensor 'single/test' is float32 (3, 2), expected number (*)"),
        ({"single/test": torch.ones(3, dtype=torch.complex64)}, "tensor 'single/test' is complex64 (3,)"),
    ],
)
def test_hostile_per_image_scores_are_refused(tmp_path, change, problem):
    path, read = loader_cases.ood_scores(tmp_path)
    replant(path, change)
    with pytest.raises(CheckpointError) as info:
        read()
    assert str(path) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize(
    "evaluation, problem",
    [
        ([], "is a list ([]), not a JSON object"),
        ({"sets": "near"}, "'sets' is 'near', not a list of a string"),
        ({"ood": []}, "'ood' is [], not a JSON object"),
    ],
)
def test_a_hostile_evaluation_section_is_refused(tmp_path, evaluation, problem):
    (tmp_path / "ood_results.json").write_text(json.dumps(evaluation))
    with pytest.raises(DataFormatError) as info:
        read_evaluation(tmp_path)
    assert f"evaluation results of {tmp_path}" in str(info.value) and problem in str(info.value)
