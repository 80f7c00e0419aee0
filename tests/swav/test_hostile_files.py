"""SwAV's readers refuse hostile files with one error naming the file and the problem (issue 25): the
pretrained model, the prototype examples and the probes and Sinkhorn sections of results.json."""

from __future__ import annotations

import json

import pytest
import torch

from playground.errors import CheckpointError, DataFormatError
from playground.swav.results import load_examples, load_probes, load_sinkhorn
from tests import loader_cases
from tests.hostile import replant


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda meta: [meta], "is a list"),
        (lambda meta: {k: v for k, v in meta.items() if k != "in_channels"}, "lacks 'in_channels'"),
        (lambda meta: {**meta, "config": "x"}, "'config' is 'x', not a JSON object"),
        (lambda meta: {**meta, "in_channels": 1e9}, "'in_channels' is 1000000000.0, not an int in 1..64"),
        (lambda meta: {**meta, "classes": [1]}, "'classes' is [1], not a list of a string"),
        (lambda meta: {**meta, "in_channels": 3}, "does not fit the model its metadata describes"),
    ],
)
def test_a_hostile_swav_model_is_refused(tmp_path, edit, problem):
    path, read = loader_cases.swav_model(tmp_path)
    replant(path, metadata=edit(loader_cases.metadata_of(path)))
    with pytest.raises(CheckpointError) as info:
        read()
    assert str(path) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize(
    "change, metadata, problem",
    [
        ({}, "3", "is a number (3), not a JSON object"),
        ({"counts": None}, None, "lacks the tensor 'counts'"),
        (
            {"counts": torch.ones(4, 3)},
            None,
            "tensor 'counts' is float32 (4, 3), expected number (K, *) (K = 5",
        ),
        ({"examples": torch.ones(5, 2, 8, 8)}, None, "tensor 'examples' is float32 (5, 2, 8, 8), expected"),
        ({"examples": torch.ones(5, 2, 2, 8, 8)}, None, "have 2 channels, not 1 or 3"),
    ],
)
def test_hostile_prototype_examples_are_refused(tmp_path, change, metadata, problem):
    path, read = loader_cases.swav_examples(tmp_path)
    replant(path, change, metadata)
    with pytest.raises(CheckpointError) as info:
        read()
    assert str(path) in str(info.value) and problem in str(info.value)


def test_examples_for_another_number_of_prototypes_than_the_model_has_are_refused(tmp_path):
    path, _ = loader_cases.swav_examples(tmp_path)
    assert load_examples(tmp_path, prototypes=5)[0].shape[0] == 5
    with pytest.raises(
        CheckpointError, match="tensor 'examples' is float32 \\(5, 2, 1, 8, 8\\), expected number \\(7,"
    ):
        load_examples(tmp_path, prototypes=7)


@pytest.mark.parametrize(
    "probes, problem",
    [
        ([1, 2], "is a list ([1, 2]), not a JSON object"),
        ({"linear_probe": {}, "lowshot": {}}, "lacks 'swav_loss'"),
        (
            {"linear_probe": {"swav": {"x": 0.5}}, "lowshot": {}, "swav_loss": []},
            "not a table of label fractions",
        ),
        ({"linear_probe": {"swav": [0.5]}, "lowshot": {}, "swav_loss": []}, "not a table of label fractions"),
        ({"linear_probe": {}, "lowshot": {}, "swav_loss": ["a"]}, "'swav_loss' is ['a'], not a list of"),
    ],
)
def test_a_hostile_probes_section_is_refused(tmp_path, probes, problem):
    (tmp_path / "probes.json").write_text(json.dumps(probes))
    with pytest.raises(DataFormatError) as info:
        load_probes(tmp_path)
    assert f"probes results of {tmp_path}" in str(info.value) and problem in str(info.value)


def test_a_sinkhorn_section_without_codes_is_refused(tmp_path):
    (tmp_path / "sinkhorn.json").write_text(json.dumps({"errors": []}))
    with pytest.raises(DataFormatError, match=f"sinkhorn results of {tmp_path} lacks 'codes'"):
        load_sinkhorn(tmp_path)
