import dataclasses
import json

import pytest
import tomllib
import torch

from playground.classify.experiment import HISTORY, Config, build, run
from playground.classify.metrics import confusion_matrix, per_class_accuracy, slug
from playground.core.checkpoint import load_into
from playground.core.runner import config_from_recipe, run_recipe
from playground.core.runs import read_result
from playground.core.training import evaluate
from playground.data import TensorLoader, load_dataset
from playground.errors import ConfigError
from tests.conftest import REPO, needs_fashion_mnist

DIGITS = dict(name="digits", dataset="digits", epochs=4, batch_size=64, lr=3e-3, width=16, pool_size=2)


def test_confusion_matrix_and_per_class_accuracy():
    matrix = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    rates = per_class_accuracy(matrix)
    assert rates[:3].tolist() == [1.0, 1.0, 0.5] and torch.isnan(rates[3])
    assert slug("T-shirt/top") == "t-shirt_top" and slug("Ankle boot") == "ankle_boot"


def test_digits_run_writes_a_complete_run_directory(playground_home):
    result = run(Config(**DIGITS))
    files = {p.name for p in result.run_dir.iterdir()}
    assert {
        "config.toml",
        "metrics.json",
        "report.md",
        "confusion_matrix.png",
        "training_curves.png",
        "per_class_accuracy.png",
        "model.safetensors",
        "results.json",
    } <= files
    assert result.run_dir.parent == playground_home
    metrics = json.loads((result.run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["test/accuracy"] >= 0.9  # digits is easy; 4 epochs of a small CNN
    assert all(0.0 <= metrics[f"test/accuracy/{c}"] <= 1.0 for c in "0123456789")
    ran = tomllib.loads((result.run_dir / "config.toml").read_text())
    assert ran["experiment"] == "classify" and ran["config"]["epochs"] == 4
    report = result.report
    assert (
        "Accuracy per class" in report
        and "confusion_matrix.png" in report
        and "training_curves.png" in report
    )


def test_save_models_false_writes_no_weights_and_results_are_typed(playground_home):
    result = run(Config(**dict(DIGITS, epochs=1, save_models=False)))
    files = {p.name for p in result.run_dir.iterdir()}
    assert "model.safetensors" not in files and {"metrics.json", "report.md", "results.json"} <= files
    history = read_result(result.run_dir, HISTORY)
    assert len(history["epochs"]) == 1 and len(history["step_loss"]) == len(result.results.step_loss) > 0
    assert result.results.classes == [str(c) for c in range(10)]
    assert result.results.confusion.shape == (10, 10) and len(result.results.history.epochs) == 1


def test_checkpoint_reproduces_the_reported_accuracy():
    config = Config(**DIGITS)
    result = run(config)
    test = load_dataset("digits", "test")
    model = build(config, test)
    metadata = load_into(model, result.run_dir / "model.safetensors")
    assert metadata["classes"] == test.classes and metadata["config"]["dataset"] == "digits"
    accuracy = evaluate(model, TensorLoader.of(test, batch_size=256))["accuracy"]
    assert accuracy == pytest.approx(result.metrics.values["test/accuracy"], abs=1e-6)


def test_same_seed_same_result_and_seeds_aggregate():
    small = dict(DIGITS, epochs=3)
    a, b = run(Config(**small)), run(Config(**small))
    assert a.metrics.values["test/accuracy"] == b.metrics.values["test/accuracy"]
    result = run_recipe(
        REPO / "recipes" / "classify_fashion.toml",
        "quick",
        [f"{k}={v!r}".replace("'", '"') for k, v in small.items()] + ["val_fraction=0.0"],
        seeds=[0, 1],
    )
    values = result.metrics.values
    assert "test/accuracy:std" in values and 0.5 < values["test/accuracy"] <= 1.0
    assert len(list(result.run_dir.glob("seed*/metrics.json"))) == 2


def test_config_rejects_out_of_range_values():
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        Config(epochs=0)
    with pytest.raises(ConfigError, match="val_fraction"):
        Config(val_fraction=1.0)


@pytest.mark.slow
@needs_fashion_mnist()
def test_quick_baseline_reaches_085_on_fashion_mnist():
    """The issue's bar: the quick preset reaches test accuracy >= 0.85 (measured 0.89)."""
    module, config = config_from_recipe(REPO / "recipes" / "classify_fashion.toml", "quick")
    torch.set_num_threads(2)
    try:
        result = module.run(dataclasses.replace(config, save_models=False))
    finally:
        torch.set_num_threads(1)
    assert result.metrics.values["test/accuracy"] >= 0.85


def test_ragged_last_batch_of_one_trains_and_bad_data_leaves_no_run_folder(playground_home):
    # 801 training images with batch 16 would leave a last batch of 1, which BatchNorm rejects
    result = run(Config(**dict(DIGITS, epochs=2, batch_size=16, train_limit=801, val_fraction=0.0)))
    assert result.metrics.values["test/accuracy"] > 0.5
    before = set(playground_home.iterdir())
    with pytest.raises(ConfigError, match="data_root"):
        run(Config(dataset="folder"))
    assert set(playground_home.iterdir()) == before
