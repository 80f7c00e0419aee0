"""The optimizers experiment: tiny digits runs, the recipe, multi-seed aggregation, bad configs."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch

from playground.core.config import build_config
from playground.core.registry import get_experiment
from playground.core.runner import config_from_recipe, run_recipe
from playground.core.runs import RESULTS, load_run, read_result
from playground.data import load_dataset
from playground.errors import ConfigError, TrainingDivergedError
from playground.optimizers import OPTIMIZERS
from playground.optimizers import experiment as optimizers_experiment
from playground.optimizers.curves import CURVES, find_runs, load_curves
from playground.optimizers.experiment import Config, build, load_data, loader_for, run
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "optimizers_fashion.toml"
# every optimizer, digits, about 8 s on one thread
TINY = dict(
    dataset="digits",
    epochs=2,
    full_batch_epochs=20,
    lr_gd=0.1,
    width=8,
    embedding_dim=32,
    batch_size=32,
    trajectory_steps=50,
    functions=["himmelblau", "saddle"],
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("runs"))))


def test_tiny_run_writes_every_metric_plot_and_curve(tiny_run):
    files = {p.name for p in tiny_run.run_dir.iterdir()}
    assert {
        "config.toml",
        "metrics.json",
        "report.md",
        RESULTS,
        "curves.png",
        "trajectory_himmelblau.png",
        "trajectory_saddle.png",
    } <= files
    assert "curves.json" not in files and list(read_result(tiny_run.run_dir, CURVES)) == list(OPTIMIZERS)
    metrics = json.loads((tiny_run.run_dir / "metrics.json").read_text())["metrics"]
    for name in OPTIMIZERS:
        for key in (
            "test/accuracy",
            "test/loss",
            "val/accuracy",
            "train/final_loss",
            "train/seconds",
            "train/updates",
            "lr",
        ):
            assert f"optim/{name}/{key}" in metrics, f"optim/{name}/{key}"
        assert f"traj/himmelblau/{name}/distance" in metrics
    assert metrics["data/chance"] == pytest.approx(0.1)
    assert (
        "| GD (full batch) | whole training set |" in tiny_run.report
        and "![curves](curves.png)" in tiny_run.report
    )


def test_metric_records_carry_the_split_and_the_optimizer_and_measure_tags(tiny_run):
    measured = load_run(tiny_run.run_dir).measured  # as written to metrics.json
    (accuracy,) = measured.select(split="test", optimizer="adam", measure="accuracy")
    assert accuracy.name == "optim/adam/test/accuracy" and accuracy.unit == "fraction"
    (val,) = measured.select(split="val", optimizer="adam", measure="accuracy")
    assert val.name == "optim/adam/val/accuracy"
    assert {r.tags["optimizer"] for r in measured.select(split="train", measure="updates")} == set(OPTIMIZERS)
    (distance,) = measured.select(split="", function="himmelblau", optimizer="sgd", measure="distance")
    assert distance.name == "traj/himmelblau/sgd/distance"
    (lr,) = measured.select(optimizer="gd", measure="lr")
    assert lr.split == "" and lr.value == tiny_run.metrics.values["optim/gd/lr"]


def test_every_optimizer_beats_chance_and_the_feeding_sets_the_update_count(tiny_run):
    values = tiny_run.metrics.values
    for name in OPTIMIZERS:
        assert values[f"optim/{name}/test/accuracy"] > 3 * values["data/chance"], name
    assert values["optim/adam/test/accuracy"] > 0.85 and values["optim/sgd/test/accuracy"] > 0.85
    n = len(load_data(Config(**TINY))[0])  # after the 10% validation split
    assert values["optim/gd/train/updates"] == 20  # one per pass
    assert values["optim/sgd/train/updates"] == 2 * n  # one per sample
    assert values["optim/adam/train/updates"] == 2 * -(-n // 32)  # one per mini-batch


def test_curves_start_from_the_same_model_and_go_down(tiny_run):
    curves = load_curves(tiny_run.run_dir)
    assert list(curves) == list(OPTIMIZERS)
    starts = {c.val_accuracy[0] for c in curves.values()} | {c.val_loss[0] for c in curves.values()}
    assert len(starts) == 2  # one initial accuracy and one initial loss, shared by every optimizer
    for name, c in curves.items():
        assert len(c.epochs) == len(c.val_accuracy) == (21 if name == "gd" else 3)
        assert c.val_loss[-1] < c.val_loss[0] and c.train_loss[-1] < c.train_loss[0], name
        assert c.train_x[-1] == (19 if name == "gd" else 2)
    assert [info.path for info in find_runs(tiny_run.run_dir.parent)] == [tiny_run.run_dir]
    results = tiny_run.results  # the typed in-memory results match what the run wrote
    assert list(results.outcomes) == list(OPTIMIZERS)
    assert list(results.trajectories) == ["himmelblau", "saddle"]
    assert results.outcomes["adam"].curves.val_loss == curves["adam"].val_loss


def test_gradient_descent_is_fed_the_whole_set_in_equal_chunks_and_sgd_one_sample():
    config = Config(dataset="digits", full_batch_chunk=500)
    train = load_dataset("digits", "train")
    loader, chunks = loader_for(config, "gd", train)
    sizes = [batch[1].shape[0] for batch in loader]
    assert chunks == len(sizes) == -(-len(train) // 500) and len(set(sizes)) == 1
    assert len(train) - sum(sizes) < chunks
    assert {batch[1].shape[0] for batch in loader_for(config, "sgd", train)[0]} == {1}
    model = build(config, train)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    batch_norm = build(dataclasses.replace(config, norm="batch", methods=["adam"]), train)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch_norm.modules())


def test_the_recipe_presets_build_and_name_every_optimizer():
    module, quick = config_from_recipe(RECIPE, "quick")
    assert module is get_experiment("optimizers")
    assert quick.methods == list(OPTIMIZERS) and quick.epochs == 1 and quick.train_limit == 3000
    _, full = config_from_recipe(RECIPE, "full", ["lr_adam=3e-3"])
    assert (
        full.train_limit == 0
        and full.epochs >= 3
        and full.full_batch_epochs > full.epochs
        and full.lr_adam == 3e-3
    )


@pytest.mark.parametrize(
    "values, message",
    [
        ({"methods": ["adam", "lbfgs"]}, "methods: unknown 'lbfgs'; valid: gd, sgd"),
        ({"optimizers": ["lbfgs"]}, "methods: unknown 'lbfgs'"),  # the old key, checked as methods
        ({"lr_adam": -1e-3}, "lr_adam must be a positive number"),
        ({"lr_gd": 0}, "lr_gd must be a positive number"),
        ({"functions": ["ackley"]}, "unknown name 'ackley' in functions"),
        ({"val_fraction": 0.0}, "val_fraction must be in"),
        ({"norm": "batch"}, "cannot train sgd"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"full_batch_epochs": -1}, "full_batch_epochs must be >= 0"),
        ({"trajectory_noise": -1.0}, "trajectory_noise must be >= 0"),
        ({"momentum": -0.9}, "momentum must be >= 0"),
        ({"condition": 0.5}, "condition must be >= 1"),
        ({"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_bad_config_is_a_config_error(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Config, values)


def test_bad_override_names_the_key():
    with pytest.raises(ConfigError, match="lr_adam must be a positive number"):
        config_from_recipe(RECIPE, "quick", ["lr_adam=-0.1"])
    with pytest.raises(ConfigError, match="unknown key 'lr_lbfgs'"):
        config_from_recipe(RECIPE, "quick", ["lr_lbfgs=0.1"])


def test_set_methods_trains_that_subset_in_the_known_order(monkeypatch):
    """``--set methods=[...]`` picks the optimizers trained and traced (empty: all, duplicates once)."""
    _, config = config_from_recipe(RECIPE, "quick", ['methods=["adam", "gd", "adam"]', "functions=[]"])
    assert config.methods == ["gd", "adam"]
    trained = []

    class Stop(Exception):
        pass

    def stop(config, progress):
        raise Stop

    monkeypatch.setattr(optimizers_experiment, "build", lambda config, train: None)
    monkeypatch.setattr(optimizers_experiment, "train_one", lambda config, name, *rest: trained.append(name))
    monkeypatch.setattr(optimizers_experiment, "run_trajectories", stop)
    with pytest.raises(Stop):
        optimizers_experiment.steps(SimpleNamespace(config=config, device="cpu", progress=None), [None] * 3)
    assert trained == ["gd", "adam"]
    assert config_from_recipe(RECIPE, "quick", ["methods=[]"])[1].methods == list(OPTIMIZERS)
    monkeypatch.undo()
    paths = optimizers_experiment.run_trajectories(dataclasses.replace(config, functions=["saddle"]))
    assert [path.optimizer for path in paths["saddle"]] == ["gd", "adam"]


def test_the_old_optimizers_key_still_works_in_a_recipe_and_with_set(tmp_path, capsys):
    old = tmp_path / RECIPE.name
    old.write_text(RECIPE.read_text().replace("\nmethods = ", "\noptimizers = "))
    assert "\noptimizers = [" in old.read_text()
    for preset in ("quick", "full"):
        assert config_from_recipe(old, preset)[1] == config_from_recipe(RECIPE, preset)[1]
    assert "optimizers in recipe" in capsys.readouterr().err
    _, config = config_from_recipe(RECIPE, "quick", ['optimizers=["adam"]'])
    notice = capsys.readouterr().err
    assert config.methods == ["adam"] and "is now methods" in notice


def test_divergence_names_the_optimizer(tmp_path):
    config = Config(**{**TINY, "methods": ["minibatch_sgd"], "lr_minibatch_sgd": 1e4, "out": str(tmp_path)})
    with pytest.raises(TrainingDivergedError, match=r"minibatch_sgd \(lr_minibatch_sgd = 10000\)"):
        run(config)


def test_seeds_in_worker_processes_aggregate_from_what_they_wrote(playground_home):
    overrides = [
        'dataset="digits"',
        "train_limit=300",
        "epochs=1",
        "full_batch_epochs=2",
        "width=4",
        "embedding_dim=8",
        "batch_size=32",
        "functions=[]",
        'methods=["gd", "adam"]',
    ]
    result = run_recipe(RECIPE, "quick", overrides, seeds=[0, 1], jobs=2)  # workers hand back no outcomes
    assert (result.run_dir / "curves.png").is_file() and "**Best mean test accuracy:" in result.report
    assert load_curves(result.run_dir)["adam"].seeds == 2


def test_seeds_aggregate_to_mean_and_std_curves(playground_home):
    overrides = [
        'dataset="digits"',
        "train_limit=0",
        "epochs=1",
        "full_batch_epochs=5",
        "width=8",
        "embedding_dim=32",
        "batch_size=32",
        "trajectory_steps=20",
        'functions=["saddle"]',
        'optimizers=["gd", "adam"]',  # the old name of methods still works in --set
    ]
    result = run_recipe(RECIPE, "quick", overrides, seeds=[0, 1])
    values = result.metrics.values
    assert values["optim/adam/test/accuracy:std"] > 0 and "optim/gd/train/seconds:std" in values
    assert {p.name for p in result.run_dir.iterdir()} >= {
        "curves.png",
        "report.md",
        "metrics.json",
        "config.toml",
    }
    assert "2 seeds" in result.report and " ± " in result.report
    adam_row = next(line for line in result.report.splitlines() if line.startswith("| Adam |"))
    assert adam_row.count(" ± ") == 5  # every number but the update count, which the seeds share
    curves = load_curves(result.run_dir)
    assert curves["adam"].seeds == 2 and len(curves["adam"].val_accuracy_std) == 2
    per_seed = [load_curves(r.run_dir)["adam"].val_accuracy[-1] for r in result.seeds]
    assert curves["adam"].val_accuracy[-1] == pytest.approx(sum(per_seed) / 2)
    assert [info.path for info in find_runs(playground_home)] == [result.run_dir]
