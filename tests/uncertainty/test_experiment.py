"""End-to-end OOD benchmark runs: a small digits run always, the recipe's quick preset as a slow test."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from playground.core.runner import config_from_recipe, run_recipe
from playground.core.runs import read_result
from playground.data import ood as ood_data
from playground.errors import CheckpointError, ConfigError, DataFormatError, DataNotFoundError
from playground.uncertainty.benchmark import MethodSettings, build_methods, method_rows, trained_methods
from playground.uncertainty.experiment import Config, run
from playground.uncertainty.inspection import inspect_image
from playground.uncertainty.methods import NetSpec
from playground.uncertainty.results import (
    EVALUATION,
    LEGACY_RESULTS,
    find_ood_runs,
    load_methods,
    load_ood_run,
)
from tests.conftest import REPO, needs_fashion_mnist

ROWS = ("single_msp", "single_energy", "temp_scaled", "mc_dropout", "ensemble", "bnn")
TINY = dict(
    dataset="digits",
    far_sets=["shapes", "gaussian", "uniform"],
    net=NetSpec(width=8, pool_size=2, embedding_dim=32, epochs=6, lr=3e-3, batch_size=64),
    bench=MethodSettings(members=3, mc_samples=4, bnn_samples=4),
    ood_limit=300,
    device="cpu",
)
RECIPE = REPO / "recipes" / "uncertainty_fashion.toml"


@pytest.fixture(scope="module")
def events():
    return []


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, events):
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("ood"))), progress=events.append)


def test_bad_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="cannot also be a far OOD set"):
        Config(dataset="digits")
    with pytest.raises(ConfigError, match="unknown far OOD set"):
        Config(far_sets=["cifar"])
    with pytest.raises(ConfigError, match="ood_folder"):
        Config(far_sets=["folder"])
    with pytest.raises(ConfigError, match="bench.members must be at least 2"):
        MethodSettings(members=1)
    with pytest.raises(ConfigError, match="bench.scores: ensemble"):
        MethodSettings(scores={"ensemble": "confidence"})
    with pytest.raises(ConfigError, match="net.epochs must be at least 1"):
        NetSpec(epochs=0)
    with pytest.raises(ConfigError, match="heldout_classes"):
        run(Config(**{**TINY, "heldout_classes": [12]}))
    with pytest.raises(ConfigError):
        config_from_recipe(RECIPE, "quick", ["no_such_key=1"])
    for override, message in (
        ('methods=["bnn", "gp"]', "methods: unknown 'gp'; valid: single, temp_scaled, mc_dropout, ensemble"),
        ("bench.members=1", "bench.members must be at least 2, got 1"),
        ("members=1", "bench.members must be at least 2, got 1"),  # the old flat key
        ("net.lr=0", "net.lr must be positive"),
        ('net.model="vgg"', "net.model = 'vgg' is not allowed"),
    ):
        with pytest.raises(ConfigError) as err:
            config_from_recipe(RECIPE, "quick", [override])
        assert message in str(err.value) and "\n" not in str(err.value), override


def test_section_keys_on_the_command_line_reach_the_methods():
    _, config = config_from_recipe(
        RECIPE, "quick", ["net.epochs=1", "net.width=8", "bench.members=4", 'bench.bnn_layers="last"']
    )
    assert (config.net.epochs, config.net.width, config.net.depth) == (1, 8, 2)  # depth: the recipe's
    assert (config.bench.members, config.bench.mc_samples) == (4, 10)
    methods = build_methods(config.net, config.bench, config.methods, config.seed, "cpu")
    assert methods.single.spec is config.net and methods.ensemble.members == 4
    assert methods.bnn.layers == "last" and methods.bnn.epochs == 1 and methods.bnn.device == "cpu"
    assert methods.mc_dropout.samples == 10 and methods.ensemble.device == "cpu"


def test_old_flat_keys_still_work_on_the_command_line_and_in_a_recipe(tmp_path, capsys):
    # the README's command: --set bnn_layers='"last"' sets bench.bnn_layers
    _, config = config_from_recipe(RECIPE, "quick", ['bnn_layers="last"', "epochs=2", 'methods=["bnn"]'])
    assert config.bench.bnn_layers == "last" and config.net.epochs == 2 and config.methods == ["bnn"]
    flat = RECIPE.read_text(encoding="utf-8")
    for table in ("config", "presets.quick", "presets.full"):  # the old recipe: every key flat
        flat = flat.replace(f"[{table}.net]", "").replace(f"[{table}.bench]", "")
    assert "net]" not in flat and "bench]" not in flat
    old = tmp_path / RECIPE.name
    old.write_text(flat, encoding="utf-8")
    for preset in ("quick", "full"):
        assert config_from_recipe(old, preset)[1] == config_from_recipe(RECIPE, preset)[1], preset
    notices = capsys.readouterr().err
    assert "note: members in recipe" in notices and "is now bench.members" in notices


def test_the_recipe_presets_reach_the_sections():
    quick, full = (config_from_recipe(RECIPE, preset)[1] for preset in ("quick", "full"))
    assert quick.net == NetSpec(width=16, epochs=3, lr=3e-3) and quick.bench == MethodSettings(members=3)
    assert (
        full.net == NetSpec(width=32, epochs=12, batch_size=256, lr=2e-3) and full.bench == MethodSettings()
    )
    assert (quick.train_limit, quick.test_limit, quick.ood_limit, full.ood_limit) == (10000, 4000, 1000, 2000)


def test_methods_pick_what_is_trained_and_reported():
    assert config_from_recipe(RECIPE, "quick", ['methods=["bnn"]'])[1].methods == ["bnn"]
    assert trained_methods(["bnn"]) == ("bnn",) and method_rows(["bnn"]) == ["bnn"]
    assert trained_methods(["ensemble", "temp_scaled"]) == ("single", "temp_scaled", "ensemble")
    assert method_rows(["ensemble", "temp_scaled"]) == ["temp_scaled", "ensemble"]  # single is only built on
    assert method_rows(["single"]) == ["single_msp", "single_energy", "mahalanobis", "knn"]
    assert trained_methods([]) == trained_methods(list(reversed(trained_methods([]))))
    assert len(method_rows([])) == 8


def test_digits_run_writes_every_metric_and_artifact(digits_run):
    files = {p.name for p in digits_run.run_dir.iterdir()}
    assert {
        "metrics.json",
        "report.md",
        "results.json",
        "scores.safetensors",
        "models",
        "roc.png",
        "reliability.png",
        "auroc.png",
        "score_histograms.png",
    } <= files
    assert "ood_results.json" not in files  # the evaluation is a section of results.json now
    names = json.loads((digits_run.run_dir / "metrics.json").read_text())["metrics"]
    for row in ROWS:
        for set_name in ("near", "shapes", "gaussian", "uniform", "far"):
            assert (
                0.0 <= names[f"ood/{row}/{set_name}/auroc"] <= 1.0 and f"ood/{row}/{set_name}/fpr95" in names
            )
        assert f"calib/{row}/ece" in names and f"test/{row}/accuracy" in names
        assert names[f"cost/{row}/latency_ms"] > 0 and names[f"cost/{row}/parameters"] > 0
    far = [names[f"ood/ensemble/{s}/auroc"] for s in ("shapes", "gaussian", "uniform")]
    assert names["ood/ensemble/far/auroc"] == pytest.approx(sum(far) / 3)
    assert names["cost/ensemble/parameters"] == 3 * names["cost/single_msp/parameters"]
    assert "## OOD detection" in digits_run.report and "`bnn` (mutual_information)" in digits_run.report
    linked = re.findall(r"!\[[^]]*\]\(([^)]+)\)", digits_run.report)
    assert sorted(linked) == ["auroc.png", "reliability.png", "roc.png", "score_histograms.png"]
    assert all((digits_run.run_dir / name).stat().st_size > 10_000 for name in linked)
    evaluation = read_result(digits_run.run_dir, EVALUATION)
    assert evaluation["ood"] == digits_run.results.outcome.ood and evaluation["classes"] == [
        str(c) for c in range(8)
    ]


@pytest.fixture(scope="module")
def bnn_run(tmp_path_factory):
    return run(Config(**TINY, methods=["bnn"], out=str(tmp_path_factory.mktemp("ood-bnn"))))


def test_a_bnn_only_run_gives_the_full_runs_bnn_numbers_and_nothing_else(digits_run, bnn_run):
    def bnn_numbers(result):  # every bnn metric but the timings
        return {
            name: value
            for name, value in result.metrics.values.items()
            if result.metrics.tags.get(name, {}).get("method") == "bnn"
            and not name.endswith(("/train_seconds", "/latency_ms"))
        }

    full, alone = bnn_numbers(digits_run), bnn_numbers(bnn_run)
    assert len(full) > 40 and alone == full  # each method is seeded on its own
    assert {tags["method"] for tags in bnn_run.metrics.tags.values()} == {"bnn"}
    assert set(bnn_run.metrics.values) == {n for n in digits_run.metrics.values if n.split("/")[1] == "bnn"}
    assert torch.equal(
        bnn_run.results.outcome.scores["bnn"]["near"], digits_run.results.outcome.scores["bnn"]["near"]
    )
    assert {p.name for p in (bnn_run.run_dir / "models").iterdir()} == {"bnn.safetensors"}
    saved = read_result(bnn_run.run_dir, EVALUATION)
    assert (
        list(saved["rows"]) == ["bnn"]
        and list(saved["roc"]) == ["bnn"]
        and list(saved["reliability"]) == ["bnn"]
    )
    assert {"roc.png", "reliability.png", "auroc.png", "score_histograms.png"} <= {
        p.name for p in bnn_run.run_dir.iterdir()
    }
    assert "`bnn` (mutual_information)" in bnn_run.report and "`ensemble`" not in bnn_run.report
    assert "BNN mutual-information far AUROC" in bnn_run.report and "ensemble ECE" not in bnn_run.report
    loaded = load_ood_run(bnn_run.run_dir)
    assert loaded.has_models and loaded.methods == ("bnn",) and loaded.ood_sets[0] == "near"
    assert list(loaded.scores) == ["bnn"]
    inspected = inspect_image(load_methods(loaded), bnn_run.results.data.test.images[0])
    assert list(inspected) == ["bnn"] and inspected["bnn"].probs.shape == (4, 8)


def test_progress_reaches_every_stage(digits_run, events):
    stages = {event.stage for event in events}
    assert {"train", "methods", "ensemble member", "bnn svi", "predict"} <= stages
    assert any(e.stage == "predict" and e.step == e.total for e in events)
    assert all(e.metrics["neg_elbo_per_datum"] > 0 for e in events if e.stage == "bnn svi")


def test_digits_run_numbers_make_sense(digits_run):
    values = digits_run.metrics.values
    assert values["test/single_msp/accuracy"] > 0.9 and values["test/ensemble/accuracy"] > 0.9
    assert values["test/bnn/accuracy"] > 0.8
    assert (
        values["calib/temp_scaled/ece"] < values["calib/single_msp/ece"]
    )  # fitted on validation, tested on test
    assert values["ood/ensemble/far/auroc"] > 0.9
    assert values["test/single_msp/corrupted/accuracy"] < values["test/single_msp/accuracy"]


def test_a_run_is_read_back_and_scores_a_new_image(digits_run):
    assert [info.path for info in find_ood_runs(digits_run.run_dir.parent)] == [digits_run.run_dir]
    loaded = load_ood_run(digits_run.run_dir)
    assert loaded.sets == ["near", "shapes", "gaussian", "uniform"] and len(loaded.classes) == 8
    assert torch.equal(
        loaded.scores["ensemble"]["test"], digits_run.results.outcome.scores["ensemble"]["test"]
    )
    methods = load_methods(loaded)
    image = digits_run.results.data.test.images[0]
    fresh, original = inspect_image(methods, image), inspect_image(digits_run.results.methods, image)
    for name in ("single", "temp_scaled", "ensemble", "bnn", "mc_dropout"):
        assert torch.allclose(fresh[name].probs, original[name].probs, atol=1e-5), name
    assert fresh["ensemble"].probs.shape == (3, 8) and "mutual_information" in fresh["bnn"].scores
    with pytest.raises(DataFormatError, match="one image"):
        inspect_image(methods, image[None])


def old_layout(run_dir: Path, target: Path) -> Path:
    """A copy of ``run_dir`` as runs made before the renames looked: experiment "ood", flat config keys
    and ``save_checkpoint``, a metrics.json without records, the evaluation in ``ood_results.json``."""
    shutil.copytree(run_dir, target)
    data = json.loads((target / "metrics.json").read_text())
    (target / "metrics.json").write_text(json.dumps({"metrics": data["metrics"], "units": data["units"]}))
    config = (target / "config.toml").read_text()
    assert 'experiment = "uncertainty"' in config and "save_models = " in config
    assert "[config.net]\nmodel = " in config and "[config.bench]\nmembers = " in config
    config = config.replace('experiment = "uncertainty"', 'experiment = "ood"')
    config = config.replace("[config.net]\n", "").replace("[config.bench]\n", "")  # before the sections
    (target / "config.toml").write_text(config.replace("save_models = ", "save_checkpoint = "))
    (target / LEGACY_RESULTS).write_text(json.dumps(read_result(target, EVALUATION)))
    (target / "results.json").unlink()
    return target


def test_metrics_carry_split_and_tags_and_old_runs_still_open(digits_run, tmp_path, capsys):
    data = json.loads((digits_run.run_dir / "metrics.json").read_text())
    ensemble = [
        r for r in data["records"] if r["tags"].get("method") == "ensemble" and "ood_set" in r["tags"]
    ]
    assert {r["tags"]["ood_set"] for r in ensemble} >= {"near", "far", "shapes"}
    assert all(r["split"] == "test" for r in ensemble)
    corrupted = data["records"][[r["name"] for r in data["records"]].index("calib/ensemble/corrupted/ece")]
    assert corrupted["split"] == "test_corrupted" and corrupted["tags"] == {
        "method": "ensemble",
        "measure": "ece",
    }
    run = load_ood_run(digits_run.run_dir)
    assert run.ood_sets[0] == "near" and run.ood_sets[-1] == "far"
    old = old_layout(digits_run.run_dir, tmp_path / "old-layout")
    assert not (old / "results.json").exists() and (old / "ood_results.json").is_file()
    capsys.readouterr()
    legacy = load_ood_run(old)
    assert legacy.ood_sets == run.ood_sets and legacy.config == run.config
    assert legacy.artifact_dir == old and legacy.results == run.results  # read from ood_results.json
    assert legacy.sets == ["near", "shapes", "gaussian", "uniform"] and legacy.classes == run.classes
    assert legacy.config.net.epochs == 6 and legacy.config.bench.members == 3
    assert load_methods(legacy).ensemble.members == 3
    assert "note:" not in capsys.readouterr().err  # a reader of old runs moves the keys quietly


def test_damaged_runs_give_clear_errors(digits_run, tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_ood_run(tmp_path / "nowhere")
    member = digits_run.run_dir / "models" / "member1.safetensors"
    saved = member.read_bytes()
    try:
        member.write_bytes(b"not a checkpoint")
        with pytest.raises(CheckpointError, match="corrupt"):
            load_methods(load_ood_run(digits_run.run_dir))
    finally:
        member.write_bytes(saved)


@pytest.mark.parametrize(
    "file, change, metadata, problem",
    [
        (
            "features",
            {"knn.bank": torch.ones(5, 3)},
            None,
            "tensor 'knn.bank' is float32 (5, 3), expected float (*,",
        ),
        ("features", {"mahalanobis.precision": None}, None, "lacks the tensor 'mahalanobis.precision'"),
        ("features", {}, {"knn_k": "5"}, "'knn_k' is '5', not an int"),
        ("member0", {}, {"temperature": "hot"}, "'temperature' is 'hot', not a finite number"),
        ("member0", {}, {"in_channels": 0}, "'in_channels' is 0, not an int in 1..64"),
    ],
)
def test_hostile_saved_models_are_one_checkpoint_error(digits_run, tmp_path, file, change, metadata, problem):
    from tests.hostile import replant

    copy = shutil.copytree(digits_run.run_dir, tmp_path / "run")
    path = copy / "models" / f"{file}.safetensors"
    replant(path, change, metadata)
    with pytest.raises(CheckpointError) as info:
        load_methods(load_ood_run(copy))
    assert str(path) in str(info.value) and problem in str(info.value)


def test_benchmark_sets_are_shaped_like_the_training_images():
    data = ood_data.load_ood_data(
        ood_data.DataSpec(dataset="digits", far_sets=("shapes", "gaussian"), ood_limit=50)
    )
    assert data.train.num_classes == 8 and data.heldout == ["8", "9"]
    assert all(images.shape[1:] == (1, 8, 8) for images in data.ood.values())
    assert torch.equal(data.corrupted.labels, data.test.labels) and not torch.equal(
        data.corrupted.images, data.test.images
    )
    assert 0 <= data.ood["shapes"].min() and data.ood["shapes"].max() <= 1
    again = ood_data.load_ood_data(
        ood_data.DataSpec(dataset="digits", far_sets=("shapes", "gaussian"), ood_limit=50)
    )
    assert torch.equal(again.ood["gaussian"], data.ood["gaussian"])  # deterministic from the seed


def test_a_users_image_folder_can_be_a_far_ood_set(tmp_path):
    from tests.data.test_loaders import make_folder

    root = make_folder(tmp_path / "mine", classes=("x", "y"), per_class=5)
    spec = ood_data.DataSpec(dataset="digits", far_sets=("folder",), ood_folder=str(root))
    data = ood_data.load_ood_data(spec)
    assert data.ood["folder"].shape == (10, 1, 8, 8)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a whole quick preset: 11 min quiet, 20 loaded, on 2 cores
@needs_fashion_mnist()
def test_fashion_quick_preset_ensemble_beats_the_single_model():
    result = run_recipe(REPO / "recipes" / "uncertainty_fashion.toml", "quick")
    values = result.metrics.values
    assert values["ood/ensemble/far/auroc"] >= values["ood/single_msp/far/auroc"] + 0.03
    assert values["test/ensemble/accuracy"] >= values["test/single_msp/accuracy"] - 0.005
    assert values["test/single_msp/accuracy"] > 0.8
    assert values["ood/single_msp/near/auroc"] < values["ood/single_msp/far/auroc"]
