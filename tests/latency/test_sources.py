"""Model sources: torchvision and timm models at their input shape, names, shapes and preprocessing.

ONNX files are in test_onnx_source.py, user weights in test_weights.py.
"""

from __future__ import annotations

import pytest
import torch

from playground.errors import ConfigError, DataNotFoundError
from playground.latency.sources import (
    RANDOM_WEIGHTS,
    Preprocess,
    apply_overrides,
    check_model_spec,
    count_macs,
    load_source,
    model_slug,
    parse_input_shape,
)

pytest.importorskip("timm")


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


@pytest.mark.parametrize(
    "spec, slug",
    [
        ("torchvision:resnet50", "resnet50"),
        ("timm:mobilenetv3_large_100.ra_in1k", "mobilenetv3_large_100.ra_in1k"),
        ("~/models/My Net (v2).onnx", "My-Net-v2"),
        ("timm:../../etc", "etc"),
        ("torchvision:", "model"),
    ],
)
def test_model_slugs_are_short_and_file_safe(spec, slug):
    assert model_slug(spec) == slug


def test_a_model_spec_is_checked_without_building_the_model(tmp_path):
    check_model_spec("torchvision:resnet152")  # known names pass, nothing is built
    check_model_spec("timm:mobilenetv3_large_100.ra_in1k")
    with pytest.raises(ConfigError, match="did you mean torchvision:resnet50"):
        check_model_spec("torchvision:resnet5")
    with pytest.raises(ConfigError, match="known tags"):
        check_model_spec("timm:resnet10t.nope")
    with pytest.raises(DataNotFoundError, match="absent.onnx does not exist"):
        check_model_spec(str(tmp_path / "absent.onnx"))
    with pytest.raises(ConfigError, match="accepted forms"):
        check_model_spec("keras:resnet50")
