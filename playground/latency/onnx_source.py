"""A team's ONNX file as a benchmark source: checked with ``onnx.checker``, its input shape read from the
graph (a dynamic height or width needs ``input_shape``), its classes from the output shape (or from one
ONNX Runtime run when the output shape is not static). A fixed batch axis is noted: only that batch runs.
"""

from __future__ import annotations

from pathlib import Path

from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from playground.latency.sources import SHAPE_HINT, ModelSource, imagenet_preprocess
from playground.latency.weights import WEIGHT_SUFFIXES, first_line, sha256_of


def _dims(value_info) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]


def _check_onnx(path: Path):
    """The loaded graph of a valid ONNX file (without external weights), or a DataFormatError."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, ValidationError, ...: all mean "not valid ONNX"
        hint = ""
        if path.suffix.lower() in WEIGHT_SUFFIXES:
            hint = (
                "; for a state dict, give the architecture (torchvision:NAME, timm:NAME) and this as weights"
            )
        raise DataFormatError(f"{path} is not a valid ONNX model ({first_line(exc)}){hint}") from None


def _onnx_input(model, path: Path):
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise DataFormatError(
            f"{path} has {len(inputs)} inputs ({names}); the benchmark feeds one image tensor"
        )
    if inputs[0].type.tensor_type.elem_type != 1:  # onnx.TensorProto.FLOAT
        raise DataFormatError(f"{path} input {inputs[0].name} is not float32; export the fp32 model")
    return inputs[0]


def _onnx_shape(dims: list[int | None], given, path: Path) -> tuple[int, int, int]:
    if len(dims) != 4:
        raise DataFormatError(
            f"{path} input has {len(dims)} dimensions; an image model takes (batch, C, H, W)"
        )
    graph = "x".join("?" if d is None else str(d) for d in dims[1:])
    if given is None:
        if None in dims[1:]:
            raise ConfigError(f"{path} has dynamic input axes (C x H x W = {graph}); {SHAPE_HINT}")
        return tuple(dims[1:])
    clashes = [i for i, d in enumerate(dims[1:]) if d is not None and d != given[i]]
    if clashes:
        raise ConfigError(
            f"input shape {'x'.join(map(str, given))} does not fit {path}, whose input is {graph}"
        )
    return given


def _onnx_outputs(model, path: Path, input_shape, batch: int, run: bool) -> int:
    """Classes from the graph's output shape; one ONNX Runtime run when ``run`` or it is not static."""
    dims = _dims(model.graph.output[0])
    if len(dims) == 2 and dims[1] is not None and not run:
        return dims[1]
    import numpy as np
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.zeros((batch, *input_shape), np.float32)}
        output = session.run(None, feed)[0]
    except Exception as exc:
        shape = "x".join(map(str, input_shape))
        raise ConfigError(f"{path} does not run at input shape {shape} ({first_line(exc)})") from None
    if output.ndim != 2:
        raise DataFormatError(f"{path} outputs shape {output.shape}, not (batch, classes) logits")
    return int(output.shape[1])


def onnx_source(path: Path, shape, num_classes: int, weights: str) -> ModelSource:
    if weights:
        raise ConfigError("weights apply to torchvision:/timm: architectures; an ONNX file carries its own")
    if not path.is_file():
        raise DataNotFoundError(f"ONNX file {path} does not exist")
    model = _check_onnx(path)
    dims = _dims(_onnx_input(model, path))
    input_shape = _onnx_shape(dims, shape, path)
    notes = []
    if dims[0] is not None:
        notes.append(f"the ONNX batch axis is fixed to {dims[0]}: only batch {dims[0]} can run")
    filled = None in dims[1:]  # the user's shape fills dynamic axes: check the graph runs at it
    classes = _onnx_outputs(model, path, input_shape, dims[0] or 1, run=filled)
    if num_classes and num_classes != classes:
        raise ConfigError(f"{path} outputs {classes} classes, not num_classes={num_classes}")
    preprocess = imagenet_preprocess(input_shape)
    weights_note = f"in the ONNX file (sha256 {sha256_of(path)[:12]})"
    return ModelSource(f"onnx:{path.name}", None, path, input_shape, classes, weights_note, preprocess, notes)


# ---------------------------------------------------------------- entry points
