"""The SwAV experiment: a tiny digits run, the recipe, multi-seed aggregation, bad configs."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from playground.core.checkpoint import load_checkpoint, load_into, save_checkpoint
from playground.core.config import build_config, config_to_toml, tomllib
from playground.core.runner import config_from_recipe, run_recipe
from playground.core.runs import load_run, read_result
from playground.errors import ConfigError, DataNotFoundError
from playground.swav import experiment
from playground.swav.augment import AugmentConfig
from playground.swav.experiment import CHECKPOINT, OLD_SWAV_KEYS, Config, Outcome, run
from playground.swav.report import EXAMPLES_FILE, lowshot_name, pct, probe_name
from playground.swav.results import PROBES, SINKHORN, has_model, load_model, normalised, read_config
from playground.swav.swav import SwAVConfig, build_swav
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "swav_fashion.toml"
# digits, a width-8 CNN: about 10 s on one thread
TINY = dict(
    dataset="digits",
    epochs=3,
    batch_size=64,
    width=8,
    pool_size=2,
    swav=SwAVConfig(prototypes=10, small_crops=2, augment=AugmentConfig(flip=False)),
    finetune_steps=30,
    supervised_epochs=2,
    lowshot_fractions=[0.1],
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("runs"))))


def test_tiny_run_writes_metrics_plots_and_a_loadable_checkpoint(tiny_run):
    files = {p.name for p in tiny_run.run_dir.iterdir()}
    assert {
        "config.toml",
        "metrics.json",
        "report.md",
        "probe_accuracy.png",
        "swav_loss.png",
        "sinkhorn.png",
        "prototypes.png",
        "results.json",
        CHECKPOINT,
        EXAMPLES_FILE,
    } <= files
    metrics = json.loads((tiny_run.run_dir / "metrics.json").read_text())["metrics"]
    for init in ("swav", "random_init", "supervised"):
        for fraction in (0.01, 0.1, 1.0):
            assert probe_name(init, fraction) in metrics
    assert {
        "ssl/swav/linear_probe/accuracy",
        "ssl/random_init/linear_probe/accuracy",
        "ssl/swav/lowshot_10/accuracy",
        "ssl/random_init/lowshot_10/accuracy",
    } <= set(metrics)
    assert "ssl/supervised/lowshot_10/accuracy" not in metrics  # it saw every label
    state, meta = load_checkpoint(tiny_run.run_dir / CHECKPOINT)
    config = build_config(Config, normalised(meta["config"], "checkpoint"))
    assert config.swav == TINY["swav"]  # the [swav] section, its [swav.augment] included
    torch.manual_seed(0)
    model = build_swav(config.encoder(meta["in_channels"]), config.representation_dim, config.swav)
    load_into(model, tiny_run.run_dir / CHECKPOINT)
    assert model.prototype_scores(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert "**Check: SwAV's linear probe is" in tiny_run.report and "| SwAV |" in tiny_run.report
    assert has_model(tiny_run.run_dir) and "No model saved" not in tiny_run.report
    assert isinstance(tiny_run.results, Outcome)  # the typed results, in memory
    assert tiny_run.results.probes["swav"][1.0] == tiny_run.metrics.values[probe_name("swav", 1.0)]
    assert not {"probes.json", "sinkhorn.json"} & files  # one results file, in sections
    probes = read_result(tiny_run.run_dir, PROBES)
    assert probes["linear_probe"]["swav"]["1.0"] == tiny_run.results.probes["swav"][1.0]
    assert len(probes["swav_loss"]) == TINY["epochs"]


def test_metric_records_carry_the_split_and_the_init_probe_and_label_fraction_tags(tiny_run):
    measured = load_run(tiny_run.run_dir).measured  # as written to metrics.json
    (probe,) = measured.select(split="test", init="swav", probe="linear_probe", label_fraction=0.1)
    assert probe.name == probe_name("swav", 0.1) and probe.tags["measure"] == "accuracy"
    (lowshot,) = measured.select(split="test", init="random_init", probe="lowshot", label_fraction=0.1)
    assert lowshot.name == lowshot_name("random_init", 0.1)
    probes = measured.select(split="test", probe="linear_probe", measure="accuracy")
    assert {(r.tags["init"], r.tags["label_fraction"]) for r in probes} == {
        (init, f) for init in ("swav", "random_init", "supervised") for f in (0.01, 0.1, 1.0)
    }
    (gain,) = measured.select(split="test", reference="random_init", measure="gain")
    assert gain.name == "ssl/swav/linear_probe/gain_over_random"
    (loss,) = measured.select(split="train", init="swav", measure="final_loss")
    assert loss.name == "ssl/swav/final_loss"


def test_save_models_false_saves_no_model_and_the_reader_says_so(tmp_path):
    tiny = TINY | {
        "epochs": 1,
        "supervised_epochs": 1,
        "finetune_steps": 5,
        "methods": ["swav", "random_init"],
    }
    result = run(Config(**tiny, save_models=False, out=str(tmp_path)))
    files = {p.name for p in result.run_dir.iterdir()}
    assert CHECKPOINT not in files and {"metrics.json", "report.md", "results.json", EXAMPLES_FILE} <= files
    assert "No model saved (save_models = false)." in result.report
    assert not has_model(result.run_dir)
    with pytest.raises(DataNotFoundError, match=r"saved no model \(save_models = false\)"):
        load_model(result.run_dir)


def test_probes_are_sensible_and_more_labels_help(tiny_run):
    values = tiny_run.metrics.values
    for init in ("swav", "random_init", "supervised"):
        assert values[probe_name(init, 1.0)] > values[probe_name(init, 0.01)] > 2 * values["data/chance"]
    assert values[probe_name("supervised", 1.0)] > 0.8
    assert values["ssl/swav/linear_probe/gain_over_random"] == pytest.approx(
        100 * (values[probe_name("swav", 1.0)] - values[probe_name("random_init", 1.0)])
    )
    # a random encoder fine-tuned on 10% of digits for 30 steps learns less than the SwAV-pretrained one
    assert values[lowshot_name("swav", 0.1)] > values[lowshot_name("random_init", 0.1)]


def test_diagnostics_purity_prototypes_and_sinkhorn(tiny_run):
    values = tiny_run.metrics.values
    assert values["ssl/swav/prototype_purity"] > 2 * values["data/chance"]
    assert values["ssl/swav/used_prototypes"] >= 5
    assert values["ssl/swav/final_loss"] < torch.tensor(10.0).log().item()  # below the uniform plateau
    trace = read_result(tiny_run.run_dir, SINKHORN)
    assert len(trace["errors"]) == 11 and trace["errors"][-1][0] < 1e-4
    assert trace["errors"][-1][1] < trace["errors"][0][1]  # iterations move towards equipartition


def test_pct_names():
    assert [pct(f) for f in (0.01, 0.1, 0.005, 1.0)] == ["1", "10", "0.5", "100"]
    assert probe_name("swav", 0.1) == "ssl/swav/linear_probe_10/accuracy"


def test_recipe_presets_parse_and_the_quick_preset_is_small():
    _, quick = config_from_recipe(RECIPE, "quick", [])
    _, full = config_from_recipe(RECIPE, "full", [])
    assert isinstance(quick, Config) and quick.pretrain_limit and quick.pretrain_limit <= 5000
    assert full.pretrain_limit == 0 and full.train_limit == 0 and full.epochs >= quick.epochs
    assert config_from_recipe(RECIPE, "quick", ['model="regnety_small"'])[1].model == "regnety_small"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"methods": ["random_init"]}, 'methods must include "swav"'),
        (
            {"methods": ["swav", "imagenet"]},
            r"methods: unknown 'imagenet'; valid: swav, random_init, supervised",
        ),
        ({"inits": ["random_init"]}, 'methods must include "swav"'),  # the old key, checked alike
        ({"probe_fractions": [0.0, 1.0]}, "probe_fractions"),
        ({"lowshot_fractions": [1.5]}, "lowshot_fractions"),
        ({"epochs": 0}, "epochs"),
        ({"swav": {"temperature": 0.0}}, r"\[swav\]: swav.temperature must be positive"),
        ({"swav": {"augment": {"flip": "yes"}}}, r"\[swav\] \[augment\]: flip must be bool"),
        ({"model": "vgg"}, "model"),
        ({"probe_l2": -1.0}, "probe_l2"),
    ],
)
def test_bad_configs_are_clear_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Config, values)


def test_three_seeds_aggregate_into_one_report(tmp_path):
    """``--set methods=...`` runs the subset: no supervised encoder in any seed."""
    tiny = TINY | {
        "epochs": 1,
        "supervised_epochs": 1,
        "finetune_steps": 5,
        "methods": ["swav", "random_init"],
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in tiny.items() if k != "swav"]
    overrides += ["swav.prototypes=10", "swav.small_crops=2", "swav.augment.flip=false"]
    result = run_recipe(RECIPE, None, overrides + [f"out={json.dumps(str(tmp_path))}"], seeds=[0, 1])
    assert "2 seeds" in result.report and "±" in result.report
    assert (result.run_dir / "probe_accuracy.png").is_file()
    assert "ssl/swav/linear_probe/accuracy:std" in result.metrics.values
    at = dict(init="swav", probe="linear_probe", label_fraction=1.0, measure="accuracy")
    (probe,) = result.metrics.select(split="test", **at)
    assert probe.std is not None  # the seeds' mean keeps its split and tags
    assert load_run(result.run_dir).experiment == "swav"  # the parent is listed as a SwAV run
    inits = {r.tags["init"] for r in result.metrics.select(probe="linear_probe", measure="accuracy")}
    assert inits == {"swav", "random_init"} and "| supervised" not in result.report
    assert all(set(seed.results.probes) == inits for seed in result.seeds)


def test_set_swav_keys_reach_the_swav_model_and_its_training(monkeypatch):
    overrides = ["swav.prototypes=7", "swav.temperature=0.3", "swav.augment.flip=false"]
    _, config = config_from_recipe(RECIPE, "quick", overrides)
    seen = {}

    def fake_train(model, images, swav_config, **kwargs):
        seen.update(model=model, config=swav_config)
        return SimpleNamespace(series=lambda name: [1.0])

    monkeypatch.setattr(experiment, "train_swav", fake_train)
    experiment.pretrain(config, config.encoder(1), torch.rand(4, 1, 8, 8), "cpu", None)
    assert seen["config"] is config.swav and seen["config"].augment == AugmentConfig(flip=False)
    assert (seen["config"].temperature, seen["config"].small_crops) == (
        0.3,
        2,
    )  # the quick preset's crops stay
    assert seen["model"].prototypes.weight.shape[0] == 7


def test_old_flat_keys_still_work_in_recipes_and_overrides(tmp_path, capsys):
    recipe = tmp_path / "old_swav.toml"
    recipe.write_text(
        'experiment = "swav"\n[config]\nprototypes = 12\nflip = false\n[presets.quick]\nsmall_crops = 1\n'
    )
    _, config = config_from_recipe(recipe, "quick", ["temperature=0.3", "queue_length=64"])
    expected = SwAVConfig(
        12, temperature=0.3, small_crops=1, queue_length=64, augment=AugmentConfig(flip=False)
    )
    assert config.swav == expected
    assert "flip in recipe" in capsys.readouterr().err
    text = config_to_toml(config)
    assert "[config.swav.augment]" in text and build_config(Config, tomllib.loads(text)["config"]) == config


def flatten_swav(config: dict) -> dict:
    """A config table as runs wrote it before the [swav] section."""
    section = config.pop("swav")
    return config | {key: section[key] for key in OLD_SWAV_KEYS} | {"flip": section["augment"]["flip"]}


def test_an_old_run_with_flat_keys_still_opens(tiny_run, tmp_path):
    old = shutil.copytree(tiny_run.run_dir, tmp_path / tiny_run.run_dir.name)
    table = tomllib.loads((old / "config.toml").read_text())["config"]
    flat = "".join(f"{key} = {json.dumps(value)}\n" for key, value in flatten_swav(table).items())
    (old / "config.toml").write_text(f'experiment = "swav"\n[config]\n{flat}')
    assert (
        read_config(old)["swav"]["prototypes"] == 10 and read_config(old)["swav"]["augment"]["flip"] is False
    )
    state, meta = load_checkpoint(old / CHECKPOINT)
    save_checkpoint(old / CHECKPOINT, state, meta | {"config": flatten_swav(meta["config"])})
    model, config, _ = load_model(old)
    assert config.swav == TINY["swav"] and model.prototypes.weight.shape[0] == 10


def test_methods_picks_the_inits_in_their_order_and_the_old_inits_key_still_works(tmp_path, capsys):
    assert Config().methods == ["swav", "random_init", "supervised"]
    assert experiment.chosen_inits([]) == experiment.INITS  # empty: all
    assert experiment.chosen_inits(["supervised", "swav"]) == ("swav", "supervised")
    _, config = config_from_recipe(RECIPE, "quick", ['methods=["swav","random_init"]'])
    assert config.methods == ["swav", "random_init"]
    _, config = config_from_recipe(RECIPE, "quick", ['inits=["swav","supervised"]'])
    assert config.methods == ["swav", "supervised"] and "inits in " in capsys.readouterr().err
    recipe = tmp_path / "old_inits.toml"
    recipe.write_text('experiment = "swav"\n[config]\ninits = ["swav", "random_init"]\n[presets.quick]\n')
    _, config = config_from_recipe(recipe, "quick", [])
    assert config.methods == ["swav", "random_init"] and "inits in recipe" in capsys.readouterr().err
    old_run = tmp_path / "old-run"
    old_run.mkdir()
    (old_run / "config.toml").write_text('experiment = "swav"\n[config]\ninits = ["swav", "random_init"]\n')
    assert read_config(old_run)["methods"] == ["swav", "random_init"]  # a run made before the rename
    assert capsys.readouterr().err == ""  # read quietly
