"""FCT's readers refuse hostile files with one error naming the file and the problem (issue 25):
transformation, variance head, gallery store, run embeddings and summary, gallery versions, model pack."""

from __future__ import annotations

import json

import pytest
import torch

from playground.errors import CheckpointError, DataFormatError
from tests import loader_cases
from tests.hostile import plant, replant


def refused(read, error=CheckpointError) -> str:
    with pytest.raises(error) as info:
        read()
    message = str(info.value)
    assert "\n" not in message and len(message) < 600, message
    return message


@pytest.mark.parametrize(
    "metadata, problem",
    [
        ([1, 2], "is a list ([1, 2]), not a JSON object"),
        ({"old_dim": 8, "side_dim": 4, "new_dim": 8}, "lacks 'hidden' (an int in 1..65535)"),
        ({"old_dim": "8", "side_dim": 4, "new_dim": 8, "hidden": 16}, "'old_dim' is '8', not an int"),
        ({"old_dim": 8, "side_dim": 4, "new_dim": 8, "hidden": 65535}, "does not fit the model its metadata"),
    ],
)
def test_a_hostile_transformation_is_refused(tmp_path, metadata, problem):
    path, read = loader_cases.transformation(tmp_path)
    replant(path, metadata=metadata)
    message = refused(read)
    assert str(path) in message and problem in message


def test_a_variance_head_with_a_bad_hidden_size_or_weights_is_refused(tmp_path):
    path, read = loader_cases.variance_head(tmp_path)
    replant(path, metadata={"hidden": True})
    assert "'hidden' is True, not an int" in refused(read)
    replant(path, metadata={"hidden": 8}, **{"0.weight": torch.ones(8)})
    assert f"{path} does not fit" in refused(read) and "'0.weight' is (8,) there, (8, 12) here" in refused(
        read
    )


def test_a_gallery_store_shard_without_its_tensors_or_of_another_width_is_refused(tmp_path):
    path, read = loader_cases.gallery_store(tmp_path)
    replant(path, ids=None)
    assert f"{path} lacks the tensor 'ids'" in refused(read)
    replant(path, ids=torch.arange(6, 12), side=torch.ones(6, 5))
    assert "tensor 'side' is float32 (6, 5), expected float (N, 4)" in refused(read)


@pytest.mark.parametrize(
    "manifest, problem",
    [
        ([1], "manifest.json is a list"),
        (
            {"count": 12, "fields": {"old": "8"}, "dtype": "fp16", "shard_size": 6, "shards": []},
            "positive int",
        ),
        (
            {"count": 12, "fields": {}, "dtype": "fp16", "shard_size": 6, "shards": ["../x"]},
            "outside its folder",
        ),
        ({"count": 12, "fields": {}, "dtype": "fp16", "shard_size": 6}, "lacks 'shards'"),
    ],
)
def test_a_hostile_gallery_store_manifest_is_refused(tmp_path, manifest, problem):
    from playground.fct.gallery import GalleryStore

    path, _ = loader_cases.gallery_store(tmp_path)
    (path.parent / "manifest.json").write_text(json.dumps(manifest))
    assert problem in refused(lambda: GalleryStore.open(path.parent), DataFormatError)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"labels": torch.zeros(12)}, "tensor 'labels' is float32 (12,), expected int (N)"),
        ({"bct": torch.zeros(11, 8)}, "tensor 'bct' is float32 (11, 8), expected float (N, D) (N = 12"),
        ({"new": None}, "lacks the tensor 'new'"),
        (
            {"projection_index": torch.tensor([0, 99, 1, 2, 3, 4])},
            "projection_index points outside the gallery",
        ),
    ],
)
def test_run_embeddings_that_do_not_fit_are_refused(tmp_path, change, problem):
    path, read = loader_cases.fct_embeddings(tmp_path)
    replant(path, change)
    message = refused(read)
    assert str(path) in message and problem in message


def test_run_embeddings_whose_metadata_is_not_an_object_are_refused(tmp_path):
    path, read = loader_cases.fct_embeddings(tmp_path)
    replant(path, metadata='"classes"')
    assert f"metadata of checkpoint {path} is a string" in refused(read)


def test_a_summary_section_that_is_not_an_object_is_refused(tmp_path):
    from playground.fct.results import read_summary

    (tmp_path / "fct_results.json").write_text(json.dumps(["a", "b"]))
    assert f"summary results of {tmp_path} is a list" in refused(
        lambda: read_summary(tmp_path), DataFormatError
    )
    (tmp_path / "fct_results.json").write_text(json.dumps({"classes": "abc"}))
    assert "'classes' is 'abc', not a list" in refused(lambda: read_summary(tmp_path), DataFormatError)


def test_a_version_shard_without_how_names_the_shard_and_the_repair(tmp_path):
    path, read = loader_cases.gallery_version_shard(tmp_path)
    replant(path, how=None)
    message = refused(read, DataFormatError)
    assert f"version v1: checkpoint {path} lacks the tensor 'how'" in message and "gallery repair" in message


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda m: {**m, "versions": {}}, "'versions' is {}, not a list of a JSON object"),
        (lambda m: {**m, "versions": [{**m["versions"][0], "dim": "8"}]}, "version 1: 'dim' is '8'"),
        (lambda m: {**m, "versions": [{**m["versions"][0], "name": ".."}]}, "bad name or model"),
        (lambda m: {**m, "active": "v9"}, "the active version 'v9' is not one of 'v1'"),
        (lambda m: [m], "gallery.json is format 'list'"),
    ],
)
def test_a_hostile_gallery_manifest_is_refused(tmp_path, edit, problem):
    from playground.fct import versions

    version = {"name": "v1", "run": "r", "model": "old", "route": "embed", "parent": None, "dim": 8}
    manifest = {"format": versions.FORMAT, "shard_size": 4, "active": "v1"}
    manifest["versions"] = [{**version, "digests": {}, "status": "ready", "created": "now"}]
    (tmp_path / "images.json").write_text("[]")
    (tmp_path / "gallery.json").write_text(json.dumps(manifest))
    assert versions.Gallery.open(tmp_path).active["name"] == "v1"
    (tmp_path / "gallery.json").write_text(json.dumps(edit(manifest)))
    message = refused(lambda: versions.Gallery.open(tmp_path), DataFormatError)
    assert "gallery.json" in message and problem in message


@pytest.mark.parametrize(
    "metadata, problem",
    [
        ("null", "is null, not a JSON object"),
        ('{"experiment": "fct", "config": [1]}', "'config' is [1], not a JSON object"),
        ('{"experiment": "swav", "config": {}}', "was not saved by an FCT run (its metadata says 'swav')"),
        ('{"experiment": "fct", "config": {"side_info": 3}}', "does not fit the run's old model"),
    ],
)
def test_a_model_pack_with_hostile_metadata_is_refused(tmp_path, metadata, problem):
    path, read = loader_cases.fct_model_pack(tmp_path)
    state, _ = load_state(path)
    plant(path, state, metadata)
    message = refused(read)
    assert str(path) in message and problem in message


def load_state(path):
    from playground.core.checkpoint import load_checkpoint

    return load_checkpoint(path)


def test_a_model_pack_whose_config_describes_other_shapes_names_the_tensor_once(tmp_path):
    path, read = loader_cases.fct_model_pack(tmp_path)
    meta = loader_cases.metadata_of(path)
    replant(path, metadata={**meta, "config": {**meta["config"], "embedding_dim": 4096}})
    message = refused(read)
    assert message.count(str(path)) == 1 and "does not fit the model its metadata describes" in message
