import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.core.checkpoint import (
    TensorSpec,
    build_loaded,
    check_fields,
    load_checkpoint,
    load_into,
    save_checkpoint,
)
from playground.errors import CheckpointError, DataFormatError
from playground.models import build_model
from tests.hostile import DAMAGED, edited_metadata, plant


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


# --------------------------------------------------------------------- hostile files (issue 25)


@pytest.mark.parametrize(
    "text, kind", [("[1, 2]", "a list"), ("3", "a number"), ('"x"', "a string"), ("null", "null")]
)
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, text, kind):
    path = plant(tmp_path / "m.safetensors", metadata=text)
    with pytest.raises(CheckpointError, match=f"metadata of checkpoint {path} is {kind}.*not a JSON object"):
        load_checkpoint(path)


def test_metadata_nested_too_deep_for_json_is_refused(tmp_path):
    path = plant(tmp_path / "deep.safetensors", metadata="[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match=f"{path} is corrupt.*metadata is not JSON"):
        load_checkpoint(path)


def test_a_missing_or_mistyped_metadata_key_names_the_key(tmp_path):
    path = plant(tmp_path / "m.safetensors", metadata=json.dumps({"hidden": "64", "names": ["a", 2]}))
    with pytest.raises(CheckpointError, match=f"{path} lacks 'width' \\(an int in 1..9\\)"):
        load_checkpoint(path, metadata={"width": range(1, 10)})
    with pytest.raises(CheckpointError, match=f"{path}: 'hidden' is '64', not int"):
        load_checkpoint(path, metadata={"hidden": int})
    with pytest.raises(CheckpointError, match="'names' is \\['a', 2\\], not a list of a string"):
        load_checkpoint(path, optional_metadata={"names": list[str]})
    assert load_checkpoint(path, optional_metadata={"absent": int})[1]["hidden"] == "64"


def test_booleans_nan_and_out_of_range_numbers_are_not_numbers(tmp_path):
    path = plant(tmp_path / "m.safetensors", metadata='{"flag": true, "t": NaN, "big": 99}')
    for key, expected in (("flag", int), ("t", float), ("big", range(1, 10))):
        with pytest.raises(CheckpointError, match=f"'{key}' is"):
            load_checkpoint(path, metadata={key: expected})


def test_a_missing_tensor_lists_what_the_file_holds(tmp_path):
    path = plant(tmp_path / "m.safetensors", {f"t{i}": torch.ones(1) for i in range(8)})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, tensors={"labels": TensorSpec(("N",), "int")})
    message = str(info.value)
    assert f"checkpoint {path} lacks the tensor 'labels'" in message and "(+3 more)" in message


@pytest.mark.parametrize(
    "tensor, spec, problem",
    [
        (torch.ones(4), TensorSpec(("N", 8)), "float32 (4,), expected float (N, 8)"),
        (torch.ones(4, 3), TensorSpec(("N", 8)), "float32 (4, 3), expected float (N, 8)"),
        (torch.ones(4), TensorSpec(("N",), "int"), "float32 (4,), expected int (N)"),
        (torch.ones(4, dtype=torch.complex64), TensorSpec(None, "number"), "complex64 (4,), expected number"),
    ],
)
def test_a_tensor_of_the_wrong_rank_size_or_kind_is_refused(tmp_path, tensor, spec, problem):
    path = plant(tmp_path / "m.safetensors", {"x": tensor})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, tensors={"x": spec})
    assert f"checkpoint {path}: tensor 'x' is {problem}" in str(info.value)


def test_named_sizes_must_agree_and_optional_tensors_fit_when_present(tmp_path):
    path = plant(
        tmp_path / "m.safetensors", {"vec": torch.ones(5, 2), "labels": torch.ones(4, dtype=torch.int64)}
    )
    fits = {"vec": TensorSpec(("N", None)), "extra": TensorSpec(("N",), optional=True)}
    assert set(load_checkpoint(path, tensors=fits)[0]) == {"vec", "labels"}
    with pytest.raises(
        CheckpointError, match="tensor 'labels' is int64 \\(4,\\), expected int \\(N\\) \\(N = 5"
    ):
        load_checkpoint(path, tensors={**fits, "labels": TensorSpec(("N",), "int")})
    with pytest.raises(CheckpointError, match="tensor 'vec'"):
        load_checkpoint(path, tensors={"vec": TensorSpec(("N",), optional=True)})


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_files_are_one_corrupt_error(tmp_path, name):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(DAMAGED[name])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert f"checkpoint {path} is corrupt or not a safetensors file" in str(info.value)


def test_messages_stay_short_whatever_the_file_holds(tmp_path):
    long = "x" * 10_000
    path = plant(tmp_path / "m.safetensors", {long: torch.ones(1)}, json.dumps({"k": long}))
    for call in (
        lambda: load_checkpoint(path, metadata={"k": int}),
        lambda: load_checkpoint(path, tensors={"w": TensorSpec()}),
        lambda: plant(path, metadata=json.dumps([long] * 1000)) and load_checkpoint(path),
    ):
        with pytest.raises(CheckpointError) as info:
            call()
        assert len(str(info.value)) < len(str(path)) + 300 and "\n" not in str(info.value)


def test_metadata_describing_a_huge_model_is_refused_before_anything_is_allocated(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", torch.nn.Linear(4, 2))
    state, _ = load_checkpoint(path)
    huge = lambda: torch.nn.Linear(1 << 20, 1 << 20)  # noqa: E731 - 4 TiB of weights if built for real
    with pytest.raises(
        CheckpointError, match="does not fit the model its metadata describes: 'weight' is \\(2, 4\\) there"
    ):
        build_loaded(path, state, huge)
    assert isinstance(build_loaded(path, state, lambda: torch.nn.Linear(4, 2)), torch.nn.Linear)
    with pytest.raises(CheckpointError, match="unexpected 'bias'"):
        build_loaded(path, state, lambda: torch.nn.Linear(4, 2, bias=False))


def test_check_fields_reads_json_sidecars_with_the_caller_s_error(tmp_path):
    with pytest.raises(DataFormatError, match="summary.json is a list \\(\\[1\\]\\), not a JSON object"):
        check_fields([1], "summary.json", error=DataFormatError)


# --------------------------------------------------------------------- properties


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_any_bytes_load_or_raise_a_checkpoint_error(tmp_path, data):
    path = tmp_path / "any.safetensors"
    path.write_bytes(data)
    try:
        load_checkpoint(path)
    except CheckpointError:
        pass


SPECS = {
    "vec": TensorSpec(("N", "D")),
    "labels": TensorSpec(("N",), "int"),
    "extra": TensorSpec(optional=True),
}
TENSORS = st.dictionaries(
    st.sampled_from(["vec", "labels", "extra", "other"]),
    st.tuples(
        st.sampled_from([torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool]),
        st.lists(st.integers(0, 3), max_size=3),
    ),
    max_size=4,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=TENSORS, metadata=edited_metadata({"width": 4, "names": ["a"], "grid": {"extent": 1.0}}))
def test_any_valid_file_returns_what_the_caller_asked_for_or_a_checkpoint_error(tmp_path, tensors, metadata):
    state = {name: torch.zeros(shape, dtype=dtype) for name, (dtype, shape) in tensors.items()}
    path = plant(tmp_path / "valid.safetensors", state, metadata)
    try:
        loaded, meta = load_checkpoint(
            path, tensors=SPECS, metadata={"width": range(1, 9)}, optional_metadata={"names": list[str]}
        )
    except CheckpointError as err:
        assert str(path) in str(err)
        return
    assert isinstance(meta, dict) and meta["width"] in range(1, 9)
    assert loaded["vec"].ndim == 2 and loaded["labels"].shape == (loaded["vec"].shape[0],)
