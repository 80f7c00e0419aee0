"""ONNX files as model sources: shape and classes from the graph, dynamic axes, files that are not ONNX."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from playground.latency.sources import count_macs, load_source


def _export(path, dynamic_axes: dict, flatten_size: int | None = None) -> None:
    """A two-layer model (conv -> pool -> linear, 5 classes) exported with the TorchScript exporter."""
    torch.manual_seed(0)
    if flatten_size is None:
        model = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)
        )
    else:  # needs exactly 3x8x8 inputs
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    example = torch.zeros(1, 3, 8, 8) if flatten_size else torch.zeros(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
        )


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    files = {
        "static": folder / "static.onnx",
        "dynamic": folder / "dynamic.onnx",
        "fixed_batch": folder / "fixed_batch.onnx",
        "flatten": folder / "flatten.onnx",
    }
    batch = {"images": {0: "batch"}, "logits": {0: "batch"}}
    spatial = {"images": {0: "batch", 2: "h", 3: "w"}, "logits": {0: "batch"}}
    _export(files["static"], batch)
    _export(files["dynamic"], spatial)
    _export(files["fixed_batch"], {})
    _export(files["flatten"], spatial, flatten_size=8)
    return files


def test_onnx_source_reads_shape_and_classes_from_the_graph_and_runs(onnx_files):
    source = load_source(str(onnx_files["static"]))
    assert (source.name, source.kind, source.module) == ("onnx:static.onnx", "onnx", None)
    assert source.onnx_path == onnx_files["static"]
    assert (source.input_shape, source.num_classes, source.notes) == ((3, 32, 32), 5, [])
    digest = hashlib.sha256(onnx_files["static"].read_bytes()).hexdigest()[:12]
    assert source.weights == f"in the ONNX file (sha256 {digest})"
    assert count_macs(source) is None
    session = ort.InferenceSession(str(source.onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"images": source.example(3).numpy()})[0]
    assert out.shape == (3, 5)
    assert source.preprocess.crop == 32 and source.preprocess.resize == 36


def test_onnx_fixed_batch_is_noted(onnx_files):
    source = load_source(str(onnx_files["fixed_batch"]))
    assert source.notes == ["the ONNX batch axis is fixed to 1: only batch 1 can run"]


def test_dynamic_onnx_needs_an_input_shape_and_runs_at_the_one_given(onnx_files):
    with pytest.raises(ConfigError, match=r"dynamic input axes .*3x\?x\?.*--input-shape 3x224x224"):
        load_source(str(onnx_files["dynamic"]))
    source = load_source(str(onnx_files["dynamic"]), input_shape="3x40x48")
    assert (source.input_shape, source.num_classes) == ((3, 40, 48), 5)
    with pytest.raises(ConfigError, match="does not run at input shape 3x16x16"):
        load_source(str(onnx_files["flatten"]), input_shape="3x16x16")
    assert load_source(str(onnx_files["flatten"]), input_shape="3x8x8").num_classes == 5


def test_onnx_shape_or_classes_that_clash_are_refused(onnx_files):
    with pytest.raises(ConfigError, match="1x32x32 does not fit .* whose input is 3x32x32"):
        load_source(str(onnx_files["static"]), input_shape="1x32x32")
    with pytest.raises(ConfigError, match="outputs 5 classes, not num_classes=3"):
        load_source(str(onnx_files["static"]), num_classes=3)
    with pytest.raises(ConfigError, match="an ONNX file carries its own"):
        load_source(str(onnx_files["static"]), weights="w.safetensors")


def test_a_file_that_is_not_onnx_is_a_data_format_error(tmp_path):
    text = tmp_path / "model.onnx"
    text.write_text("hello, I am not a protobuf")
    with pytest.raises(DataFormatError, match="is not a valid ONNX model"):
        load_source(str(text))
    state = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, state)
    with pytest.raises(DataFormatError, match="give the architecture .* and this as weights"):
        load_source(str(state))
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_source(str(tmp_path / "absent.onnx"))


def test_ort_agrees_with_the_graph_shape(onnx_files):
    source = load_source(str(onnx_files["dynamic"]), input_shape="3x40x48")
    session = ort.InferenceSession(str(source.onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"images": np.zeros((1, *source.input_shape), np.float32)})[0]
    assert out.shape == (1, source.num_classes)
