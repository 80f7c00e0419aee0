"""A team's own model in the latency benchmark: a torchvision model with their calibration and eval
folders, an ONNX file without labels, the quality and trust figures, the pick, and bad input refused
before any timing (tiny models and images, short timings)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from playground.cli import build_parser
from playground.errors import ConfigError
from playground.latency.evaluation import EvalSet, Reference, far_ood_auroc, measure_quality
from playground.latency.experiment import Bench, Config, load, run
from playground.latency.own_model import corrupted_copy
from playground.latency.sources import Preprocess

SHORT = Bench(warmup=1, min_iters=3, min_seconds=0.0, max_seconds=0.5)


def _images(folder, count: int, seed: int, size=(40, 50)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("team")
    _images(root / "calibration", 12, 0)
    (root / "calibration" / "notes.png").write_text("not an image")
    for index, name in enumerate(("cats", "dogs")):
        _images(root / "eval" / name, 5, 10 + index)
    return root


@pytest.mark.slow
def test_a_torchvision_model_with_the_teams_folders_is_measured_picked_and_reported(folders, tmp_path):
    config = Config(
        model="torchvision:mobilenet_v3_small",
        input_shape="3x32x32",
        num_classes=2,
        calibration_dir=str(folders / "calibration"),
        eval_dir=str(folders / "eval"),
        methods=["torch_fp32", "ort_fp32", "ort_int8_static", "pruned50"],
        batch_sizes=[1, 2],
        bench=SHORT,
        max_drop=100.0,  # any variant is within budget: the pick is the fastest
        out=str(tmp_path),
    )
    result = run(config)
    assert result.run_dir.name.startswith("latency_mobilenet_v3_small-")  # named after the model
    values = result.metrics.values
    for name in ("torch_fp32", "ort_fp32", "ort_int8_static"):
        for measure in ("accuracy", "ece", "ood_accuracy", "agreement", "ood_auroc_msp", "ood_auroc_energy"):
            assert 0.0 <= values[f"bench/{name}/{measure}"] <= 1.0, (name, measure)
    assert values["bench/torch_fp32/agreement"] == 1.0 and values["bench/ort_fp32/agreement"] == 1.0
    assert values["bench/ort_int8_static/ran_int8"] == 1.0
    assert values["bench/torch_fp32/b1/gflops"] > 0 and 0 < values["bench/torch_fp32/b1/peak_share"] < 1
    fastest = min(("torch_fp32", "ort_fp32", "ort_int8_static"), key=lambda n: values[f"bench/{n}/b1/p50_ms"])
    assert result.metrics.tags["pick/speedup"]["variant"] == fastest
    report = result.report
    assert "weights random (no weights given)" in report and "1 skipped (1 cannot be decoded)" in report
    assert "pruned50: pruning and distillation train the project's own CNN" in report
    assert "## Pick" in report and "## Against the machine" in report
    assert "Eval: 10 images" in report and "in 2 classes" in report


def _onnx_file(path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = nn.Sequential(model, nn.Linear(8, 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 24, 24),),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )


@pytest.mark.slow
def test_an_onnx_file_without_labels_is_judged_by_agreement_with_ort_fp32(folders, tmp_path):
    _onnx_file(tmp_path / "team.onnx")
    config = Config(
        model=str(tmp_path / "team.onnx"),
        calibration_dir=str(folders / "calibration"),
        far_ood="noise",
        methods=["torch_fp32", "ort_fp32", "ort_int8_dynamic", "ort_int8_static"],
        batch_sizes=[1],
        bench=SHORT,
        min_agreement=0.5,
        out=str(tmp_path / "runs"),
    )
    result = run(config)
    assert result.run_dir.name.startswith("latency_team-")
    values = result.metrics.values
    assert "bench/torch_fp32/b1/p50_ms" not in values  # an ONNX file runs in ONNX Runtime only
    assert values["bench/ort_fp32/agreement"] == 1.0
    assert "bench/ort_fp32/accuracy" not in values  # no labels, no accuracy
    assert 0.5 <= values["bench/ort_int8_static/agreement"] <= 1.0
    report = result.report
    assert "torch_fp32: an ONNX file runs in ONNX Runtime only" in report
    assert "held-out calibration images" in report and "No MAC count" in report
    assert "with at least 0.5 argmax agreement with ort_fp32" in report


def test_quality_figures_on_known_logits():
    images = torch.arange(4.0).view(4, 1, 1, 1)
    confident = torch.tensor([[9.0, 0.0], [0.0, 9.0], [9.0, 0.0], [0.0, 9.0]])
    flat = torch.zeros(3, 2)
    data = EvalSet(images, torch.tensor([0, 1, 1, 1]), None, torch.zeros(3, 1, 1, 1), images)

    def run(batch):  # confident on the in-distribution images, flat on the far ones (all zeros)
        return confident[batch.view(-1).long()] if batch.abs().sum() else flat[: batch.shape[0]]

    reference = Reference(confident.flip(1), flat)  # the reference disagrees everywhere in-distribution
    out = measure_quality(run, data, reference)
    assert out["accuracy"] == 0.75 and out["agreement"] == 0.0
    assert out["ood_auroc_msp"] == 1.0 and out["far_agreement"] == 1.0
    assert out["ece"] == pytest.approx(abs(0.75 - torch.tensor([9.0, 0.0]).softmax(0)[0].item()), abs=1e-6)
    # energy: -logsumexp is lower for the confident images than for the flat far ones
    assert far_ood_auroc(confident, flat)["ood_auroc_energy"] == 1.0


def test_corruption_happens_in_pixel_space_and_keeps_the_normalisation():
    preprocess = Preprocess(8, 8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
    pixels = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    normalised = (pixels - 0.5) / 0.25
    corrupted = corrupted_copy(normalised, preprocess, 1.5, seed=0)
    assert corrupted.shape == normalised.shape and not torch.equal(corrupted, normalised)
    back = corrupted * 0.25 + 0.5
    assert back.min() >= -1e-6 and back.max() <= 1 + 1e-6  # corrupted pixels stay in [0, 1]


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(model="torchvision:resnet5"), "resnet50"),
        (dict(model="torchvision:resnet18", max_drop=0.5, min_agreement=0.9), "exactly one|one of"),
        (dict(model="torchvision:resnet18", pick_batch=8), "pick_batch 8"),
        (dict(model="torchvision:resnet18", models_from="x"), "models_from"),
        (dict(model="torchvision:resnet18", methods=["ort_int8_static"]), "torch_fp32"),
    ],
)
def test_bad_input_is_one_clear_error_before_any_timing(values, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load(Config(**values, batch_sizes=[1], out=str(tmp_path)))
    assert not any(tmp_path.iterdir())  # no run folder was made


def test_an_eval_folder_whose_classes_do_not_match_the_model_is_refused(folders, tmp_path):
    config = Config(
        model="torchvision:resnet18",
        input_shape="3x32x32",
        num_classes=3,
        calibration_dir=str(folders / "calibration"),
        eval_dir=str(folders / "eval"),
        out=str(tmp_path),
    )
    with pytest.raises(Exception, match="3") as caught:
        load(config)
    assert "cats" in str(caught.value) and "dogs" in str(caught.value)


def test_the_cli_flags_become_config_overrides(monkeypatch):
    seen = {}
    monkeypatch.setattr("playground.cli._run", lambda args, show_progress: seen.update(vars(args)))
    monkeypatch.setattr("playground.cli._print_result", lambda result: None)
    args = build_parser().parse_args(
        ["latency", "--model", "timm:resnet10t", "--input-shape", "3x64x64", "--calibration", "cal dir",
         "--eval", "ev", "--max-drop", "0.5", "--pick-batch", "1", "--num-classes", "3"]
    )  # fmt: skip
    args.handler(args)
    overrides = seen["overrides"]
    assert 'model="timm:resnet10t"' in overrides and 'calibration_dir="cal dir"' in overrides
    assert "max_drop=0.5" in overrides and "pick_batch=1" in overrides and "num_classes=3" in overrides
    bad = build_parser().parse_args(["latency", "--max-drop", "half"])
    with pytest.raises(ConfigError, match="--max-drop must be a number"):
        bad.handler(bad)
