"""Model sources: torchvision, timm and ONNX models at their input shape, user weights, bad input."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from playground.errors import CheckpointError, ConfigError, DataFormatError, DataNotFoundError
from playground.latency.sources import (
    RANDOM_WEIGHTS,
    Preprocess,
    apply_overrides,
    count_macs,
    load_source,
    parse_input_shape,
)

pytest.importorskip("timm")


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


# ---------------------------------------------------------------- each source runs at its shape


def test_torchvision_source_runs_at_its_input_shape_with_imagenet_preprocessing():
    source = load_source("torchvision:resnet18", input_shape="3x64x64", num_classes=10)
    assert (source.name, source.kind, source.input_shape, source.num_classes) == (
        "torchvision:resnet18",
        "torchvision",
        (3, 64, 64),
        10,
    )
    assert source.onnx_path is None and not source.module.training
    assert source.weights == RANDOM_WEIGHTS
    with torch.inference_mode():
        assert source.module(source.example(2)).shape == (2, 10)
    # ImageNet's resize 256 -> crop 224, scaled to 64: crop 64, resize floor(64 * 256 / 224) = 73
    assert source.preprocess == Preprocess(73, 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")
    # ResNet-18 is 1.814 GMACs at 224x224; every conv scales with the spatial area (64/224)^2
    assert count_macs(source) == pytest.approx(1.814e9 * (64 / 224) ** 2, rel=0.02)


def test_torchvision_default_shape_is_224_and_grey_input_is_refused():
    with pytest.raises(ConfigError, match="takes 3 input channels, not 1"):
        load_source("torchvision:resnet18", input_shape="1x64x64")


def test_timm_source_takes_shape_and_preprocessing_from_its_config():
    source = load_source("timm:resnet10t")
    # resnet10t's pretrained config: input 3x176x176, bicubic, crop_pct 0.875 -> resize floor(176/0.875)
    assert source.input_shape == (3, 176, 176)
    assert source.preprocess == Preprocess(201, 176, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bicubic")
    assert source.num_classes == 1000 and source.kind == "timm"


def test_timm_vit_is_built_for_the_input_shape_and_keeps_its_own_mean_std():
    source = load_source("timm:vit_tiny_patch16_224", input_shape=(3, 64, 64), num_classes=4)
    with torch.inference_mode():
        assert source.module(torch.randn(1, 3, 64, 64)).shape == (1, 4)
    # the ViT config has mean = std = 0.5, crop_pct 0.9: crop 64, resize floor(64 / 0.9) = 71
    assert source.preprocess == Preprocess(71, 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic")


def test_timm_greyscale_model_averages_mean_and_std():
    source = load_source("timm:mobilenetv3_small_050", input_shape="1x64x64", num_classes=3)
    assert source.input_shape == (1, 64, 64) and source.num_classes == 3
    assert source.preprocess.mean == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))
    assert source.preprocess.std == pytest.approx(((0.229 + 0.224 + 0.225) / 3,))
    assert count_macs(source) > 0


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


# ---------------------------------------------------------------- user weights


def _mobilenet_state(num_classes: int = 10, seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return load_source(
        "torchvision:mobilenet_v3_small", input_shape="3x32x32", num_classes=num_classes
    ).module.state_dict()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_user_weights_round_trip(tmp_path, suffix):
    torch.manual_seed(1)
    original = load_source("torchvision:mobilenet_v3_small", input_shape="3x32x32", num_classes=10)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in original.module.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save({"state_dict": state}, path)
    torch.manual_seed(2)  # another random init, so equal outputs prove the weights were loaded
    loaded = load_source(
        "torchvision:mobilenet_v3_small", weights=path, input_shape="3x32x32", num_classes=10
    )
    images = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module(images), original.module(images), rtol=0, atol=0)
    assert loaded.weights == f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"


def test_weights_with_another_class_count_name_the_tensor_and_suggest_num_classes(tmp_path):
    path = tmp_path / "ten.safetensors"
    save_file(_mobilenet_state(10), str(path))
    with pytest.raises(CheckpointError) as error:
        load_source("torchvision:mobilenet_v3_small", weights=str(path), input_shape="3x32x32")
    message = str(error.value)
    assert "tensor classifier.3.weight has shape [10, 1024], the architecture expects [1000, 1024]" in message
    assert "(+1 more tensors with other shapes)" in message  # classifier.3.bias
    assert message.endswith("pass num_classes=10")


def test_missing_and_unexpected_keys_are_listed_with_a_count(tmp_path):
    state = _mobilenet_state(10)
    for key in [k for k in state if k.startswith("features.1")]:
        del state[key]
    state.update({f"extra.{i}": torch.zeros(1) for i in range(7)})
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as error:
        load_source("torchvision:mobilenet_v3_small", weights=path, input_shape="3x32x32", num_classes=10)
    message = str(error.value)
    assert "missing keys: features.1.block.0.0.weight" in message
    assert "unexpected keys: extra.0, extra.1, extra.2, extra.3, extra.4 (+2 more)" in message
    assert "shape" not in message


def test_pickled_module_and_bad_weight_files_are_refused(tmp_path):
    pickled = tmp_path / "model.pt"
    torch.save(nn.Linear(2, 2), pickled)
    with pytest.raises(CheckpointError, match="never unpickled"):
        load_source("torchvision:resnet18", weights=pickled, input_shape="3x32x32")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_source("torchvision:resnet18", weights=broken, input_shape="3x32x32")
    with pytest.raises(ConfigError, match=r"must be a \.safetensors, \.pt, \.pth file"):
        load_source("torchvision:resnet18", weights=tmp_path / "w.bin", input_shape="3x32x32")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_source("torchvision:resnet18", weights=tmp_path / "absent.pt", input_shape="3x32x32")


# ---------------------------------------------------------------- bad specs and shapes


@pytest.mark.parametrize(
    "spec, close",
    [
        ("torchvision:resnet5", "torchvision:resnet50"),
        ("torchvision:mobilenet_v3", "torchvision:mobilenet_v3_small"),
        ("timm:resnet10", "timm:resnet10t"),
        ("timm:mobilenetv3_small_05", "timm:mobilenetv3_small_050"),
    ],
)
def test_unknown_names_list_close_matches(spec, close):
    with pytest.raises(ConfigError, match="did you mean") as error:
        load_source(spec)
    assert close in str(error.value).split("did you mean")[1]


def test_unknown_timm_tag_and_non_classifiers_are_refused():
    with pytest.raises(
        ConfigError, match="timm:resnet10t has no pretrained config 'nope'; known tags: c3_in1k"
    ):
        load_source("timm:resnet10t.nope")
    with pytest.raises(ConfigError, match="not an image classifier"):
        load_source("torchvision:fasterrcnn_resnet50_fpn")


@pytest.mark.parametrize("spec", ["resnet50", "keras:resnet50", "torchvision:", "", "timm: "])
def test_a_spec_of_no_accepted_form_says_the_forms(spec):
    with pytest.raises(ConfigError, match=r"accepted forms: torchvision:NAME .* timm:NAME .* \.onnx file"):
        load_source(spec)


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


@pytest.mark.parametrize(
    "text, shape",
    [("3x64x64", (3, 64, 64)), (" 1 X 32 x 48 ", (1, 32, 48)), ((4, 8, 2048), (4, 8, 2048)), ("", None)],
)
def test_input_shapes_that_parse(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("3x224", "has 2 numbers, not 3"),
        ("3x224x224x1", "has 4 numbers, not 3"),
        ("axbxc", "is not CxHxW"),
        ("3*224*224", "is not CxHxW"),
        ("5x64x64", "channels must be 1 to 4"),
        ("0x64x64", "channels must be 1 to 4"),
        ("3x4x4", "height and width must be 8 to 2048"),
        ("3x64x4096", "height and width must be 8 to 2048"),
        ((3, 64.0, 64), "is not CxHxW"),
        ((True, 64, 64), "is not CxHxW"),
    ],
)
def test_bad_input_shapes_are_config_errors(bad, reason):
    with pytest.raises(ConfigError, match=reason):
        parse_input_shape(bad)


# ---------------------------------------------------------------- preprocessing overrides


def test_preprocess_overrides_are_checked():
    base = Preprocess(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")
    changed = apply_overrides(
        base, {"resize": 240, "mean": 0.5, "std": [0.2, 0.3, 0.4], "interpolation": "Bicubic"}, 3
    )
    assert changed == Preprocess(240, 224, (0.5, 0.5, 0.5), (0.2, 0.3, 0.4), "bicubic")
    for overrides, reason in [
        ({"size": 3}, "unknown preprocess setting.*size"),
        ({"crop": 300}, "crop 300 is larger than resize 256"),
        ({"resize": 0}, "resize must be a positive number"),
        ({"mean": (0.5, 0.5)}, "mean has 2 values but the model takes 3 channels"),
        ({"std": (0.5, 0, 0.5)}, "std must be positive"),
        ({"interpolation": "cubic"}, "interpolation 'cubic' is not one of"),
    ]:
        with pytest.raises(ConfigError, match=reason):
            apply_overrides(base, overrides, 3)


def test_load_source_applies_overrides():
    source = load_source("timm:resnet10t", input_shape="3x32x32", preprocess_overrides={"crop": 30})
    assert (source.preprocess.resize, source.preprocess.crop, source.preprocess.interpolation) == (
        36,
        30,
        "bicubic",
    )
    with pytest.raises(ConfigError, match="unknown preprocess setting"):
        load_source("timm:resnet10t", input_shape="3x32x32", preprocess_overrides={"scale": 1})


def test_a_model_that_cannot_run_at_the_shape_is_one_config_error():
    # SqueezeNet's stem takes 8x8 down to 1x1, and its next max-pool has nothing left to pool
    with pytest.raises(
        ConfigError, match="torchvision:squeezenet1_0 does not run at input shape 3x8x8 .*too small"
    ):
        load_source("torchvision:squeezenet1_0", input_shape="3x8x8")


def test_ort_agrees_with_the_graph_shape(onnx_files):
    source = load_source(str(onnx_files["dynamic"]), input_shape="3x40x48")
    session = ort.InferenceSession(str(source.onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"images": np.zeros((1, *source.input_shape), np.float32)})[0]
    assert out.shape == (1, source.num_classes)
