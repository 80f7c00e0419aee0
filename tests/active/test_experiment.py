import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from playground.active import experiment
from playground.active.data import ActiveDataSpec
from playground.active.experiment import Config, run
from playground.active.handoff import find_source_run, queue_sources
from playground.active.learner import TrainSpec
from playground.active.loop import LoopSpec
from playground.active.results import (
    CURVES,
    QueueFill,
    find_active_runs,
    load_curves,
    read_curves,
    read_queue_fill,
)
from playground.active.simulate import EscalationSpec
from playground.core.runner import config_from_recipe, run_seeds
from playground.core.runs import RESULTS, load_run, read_result
from playground.errors import ConfigError
from playground.store import Store
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "active_fashion.toml"
TINY = dict(
    dataset="digits",
    data=ActiveDataSpec(
        pool_limit=0, test_limit=200, calibration_size=200, ood_sets=("shapes",), ood_limit=100
    ),
    loop=LoopSpec(initial=20, query=20, budget=60, pool_subset=300, mc_samples=4),
    train=TrainSpec(epochs=5, min_steps=20, max_steps=40),
    escalation=EscalationSpec(annotator_budget=20),
    methods=["random", "bald"],
    policy_strategy="bald",
    queue="digits-review",
)


def flat_toml(values: dict, preset_tables: dict | None = None) -> str:
    """A recipe (or a run's config.toml) as it was before the sections: every section's keys flat in
    ``[config]`` (and in each ``[presets.NAME]``), under their old names (``strategies`` for ``methods``)."""
    old_name = {new: old for old, new in Config.RENAMED_KEYS.items()}

    def table(name: str, entries: dict) -> str:
        flat = {}
        for key, value in entries.items():
            if isinstance(value, dict):  # a section: its keys that existed then, under their flat names
                flat.update({old_name[f"{key}.{k}"]: v for k, v in value.items() if f"{key}.{k}" in old_name})
            else:  # a renamed top-level key (methods) under its old name
                flat[old_name.get(key, key)] = value
        return f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in flat.items())

    presets = "".join(table(f"presets.{name}", entries) for name, entries in (preset_tables or {}).items())
    return f'experiment = "active"\n{table("config", values)}{presets}'


def flatten_run_config(run_dir: Path) -> None:
    """Rewrite a run's config.toml the way runs made before the sections wrote it."""
    from playground.core.config import tomllib

    config = tomllib.loads((run_dir / "config.toml").read_text())["config"]
    (run_dir / "config.toml").write_text(flat_toml(config))


def tiny_run(**changes):
    return run(Config(**{**TINY, **changes}))


def test_run_writes_every_metric_the_issue_names_and_fills_the_queue(playground_home):
    result = tiny_run()
    values = result.metrics.values
    for name in (
        "al/random/final_accuracy",
        "al/bald/final_accuracy",
        "al/policy/scratch/forgetting",
        "al/policy/finetune_replay/forgetting",
        "al/policy/scratch/compute_s",
        "al/policy/finetune_replay/compute_s",
        "escalation/auto_label_error",
        "escalation/rate",
        "escalation/alpha",
    ):
        assert name in values, name
    assert values["escalation/alpha"] == 0.05
    measured = load_run(result.run_dir).measured  # the records as written to metrics.json
    (final,) = measured.select(split="test", strategy="bald", labels=60, measure="final_accuracy")
    assert final.name == "al/bald/final_accuracy"
    (forgetting,) = measured.select(split="train", policy="finetune_replay", measure="forgetting")
    assert forgetting.name == "al/policy/finetune_replay/forgetting"
    (error,) = measured.select(split="test", measure="auto_label_error")
    assert error.name == "escalation/auto_label_error"
    for name in (
        RESULTS,
        "report.md",
        "learning_curves.png",
        "policies.png",
        "escalation.png",
        "metrics.json",
    ):
        assert (result.run_dir / name).is_file(), name
    assert not (result.run_dir / "curves.json").exists()  # the curves are a section of results.json
    curves = read_result(result.run_dir, CURVES)
    assert curves["strategies"]["bald"]["labels"] == [20, 40, 60]
    routes = curves["escalation"]["routes"]
    assert sum(routes.values()) == 250 + 100  # the in-distribution stream and the OOD images
    store = Store()
    progress = store.progress("digits-review")
    assert progress["total"] == routes["escalate"] + routes["ood"] > 0
    assert store.class_names("digits-review") == [str(d) for d in range(10)]
    assert "## Escalation" in result.report and "## Retraining policies" in result.report
    fill = read_queue_fill(result.run_dir)  # what the run recorded about the queue it filled
    assert fill == QueueFill(
        "digits-review", routes["escalate"], routes["ood"], progress["total"], store.location
    )
    assert (
        f"Sent {fill.sent} stream samples" in result.report
        and "annotate?queue=digits-review" in result.report
    )
    assert [s.model for s in queue_sources(store, "digits-review")] == [result.run_dir.name]


def test_the_same_seed_gives_the_same_curves():
    first, second = tiny_run(queue=""), tiny_run(queue="")
    a = read_curves(first.run_dir)["strategies"]
    b = read_curves(second.run_dir)["strategies"]
    assert (
        a["bald"]["accuracy"] == b["bald"]["accuracy"] and a["random"]["accuracy"] == b["random"]["accuracy"]
    )


def test_multi_seed_report_and_curves(playground_home):
    result = run_seeds(
        experiment,
        Config(
            **{
                **TINY,
                "queue": "multi",
                "methods": ["random", "entropy"],
                "policy_strategy": "entropy",
                "target_accuracy": 0.01,  # reached at once: the mean curve's labels-to-target exist
            }
        ),
        [0, 1],
    )
    assert "2 seeds" in result.report and (result.run_dir / "learning_curves.png").is_file()
    saved = load_run(result.run_dir).measured  # the mean-curve records the report adds are on disk
    assert saved.select(strategy="entropy", curve="mean") and saved.values == result.metrics.values
    curves = load_curves(result.run_dir)
    assert len(curves["strategies"]["entropy"]) == 2 and len(curves["escalation"]) == 2
    assert [r.name for r in find_active_runs(playground_home)] == [result.run_dir.name]
    assert Store().progress("multi")["total"] > 0  # both seeds' escalations, in the runs root's database
    fill = read_queue_fill(result.run_dir)
    assert fill.seeds == 2 and fill.added == Store().progress("multi")["total"] == fill.sent
    assert "to annotation queue `multi`" in result.report and "over 2 seeds" in result.report
    sources = queue_sources(Store(), "multi")  # each seed's folder name, both leading back to the run
    assert len(sources) == 2 and {find_source_run(playground_home, s.model) for s in sources} == {
        result.run_dir
    }
    assert (playground_home / "playground.db").is_file()


@pytest.mark.parametrize(
    "override, message",
    [
        ('methods=["coreset"]', "methods: unknown 'coreset'; valid: random, least_confidence"),
        ('strategies=["coreset"]', "methods: unknown 'coreset'"),  # the old key, checked as methods
        ("policy_strategy=coreset", "policy_strategy 'coreset' is unknown"),
        ('policies=["online"]', "policies"),
        ("escalation_strategy=entropy", "escalation_strategy"),
        ("target_accuracy=1.5", "target_accuracy"),
        ("escalation.alpha=1.5", "escalation.alpha"),
        ("escalation.stream_rounds=0", "escalation.stream_rounds"),
        ("data.calibration_size=10", "data.calibration_size"),
        ('data.ood_sets=["fashion"]', "data.ood_sets"),
        ("dataset=shapes", r"data.ood_sets .* other than the dataset itself \(shapes\)"),
        ("loop.budget=10", "loop.budget >= loop.initial"),
        ("loop.members=0", "loop.members"),
        ("loop.selection=best", "selection = 'best' is not allowed"),
        ("train.max_steps=0", "train.max_steps"),
        ("alpha=1.5", "escalation.alpha"),  # an old flat key is checked in its section
    ],
)
def test_bad_config_is_a_one_line_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as error:
        config_from_recipe(RECIPE, "quick", [override])
    assert "\n" not in str(error.value)


def test_set_section_keys_reach_the_code(monkeypatch):
    """``--set data.x / loop.x / train.x / escalation.x`` arrive in the objects the code receives."""
    overrides = ["data.pool_limit=1234", "loop.budget=60", "loop.mc_samples=3", "train.epochs=7"]
    _, config = config_from_recipe(RECIPE, "quick", [*overrides, "escalation.knn_k=4", "seed=5"])
    seen = {}

    class Stop(Exception):
        pass

    def fake_load(spec, dataset, data_root, seed):
        seen["data"] = (spec, dataset, seed)
        raise Stop

    def fake_loop(pool, test, strategy, policy, spec, train, seed, progress, stage, device):
        seen.setdefault("loops", []).append((spec, train, seed, device))
        return SimpleNamespace(learner="learner")

    def fake_simulate(learner, data, spec, mc_samples, seed):
        seen["escalation"] = (spec, mc_samples, seed)
        raise Stop

    monkeypatch.setattr(experiment, "load_active_data", fake_load)
    monkeypatch.setattr(experiment, "run_loop", fake_loop)
    monkeypatch.setattr(experiment, "simulate", fake_simulate)
    with pytest.raises(Stop):
        experiment.load(config)
    data = SimpleNamespace(pool=None, test=None)
    with pytest.raises(Stop):
        experiment.steps(SimpleNamespace(config=config, device="cpu", progress=None), data)
    spec, dataset, seed = seen["data"]
    assert (spec.pool_limit, spec.test_limit, dataset, seed) == (1234, 1000, "fashion_mnist", 5)
    assert len(seen["loops"]) == 3  # random and bald from scratch, bald fine-tuned with replay
    for loop, train, seed, device in seen["loops"]:
        assert (loop.budget, loop.mc_samples, loop.selection, train.epochs, train.max_steps) == (
            60,
            3,
            "power",
            7,
            150,
        )
        assert (seed, device) == (5, "cpu")
    escalation, mc_samples, seed = seen["escalation"]
    assert (escalation.knn_k, escalation.alpha, mc_samples, seed) == (4, 0.05, 3, 5)


def stages_run(monkeypatch, config) -> list[str]:
    """The learning loops ``config`` runs (``"<strategy> (<policy>)"``), with every loop faked."""
    stages = []

    class Stop(Exception):
        pass

    def fake_loop(pool, test, strategy, policy, spec, train, seed, progress, stage, device):
        stages.append(stage)
        return SimpleNamespace(learner="learner")

    def fake_simulate(learner, data, spec, mc_samples, seed):
        raise Stop

    monkeypatch.setattr(experiment, "run_loop", fake_loop)
    monkeypatch.setattr(experiment, "simulate", fake_simulate)
    with pytest.raises(Stop):
        run = SimpleNamespace(config=config, device="cpu", progress=None)
        experiment.steps(run, SimpleNamespace(pool=None, test=None))
    return stages


def test_set_methods_runs_that_subset_of_the_strategies(monkeypatch):
    """``--set methods=[...]`` picks the strategies that draw a curve (in ACQUISITIONS order); empty: all."""
    _, config = config_from_recipe(RECIPE, "quick", ['methods=["margin", "random"]'])
    assert config.methods == ["random", "margin"]
    # the two learning curves, then the quick preset's policy comparison on bald
    assert stages_run(monkeypatch, config) == [
        "random (scratch)",
        "margin (scratch)",
        "bald (scratch)",
        "bald (finetune_replay)",
    ]
    _, every = config_from_recipe(RECIPE, "quick", ["methods=[]"])
    assert every.methods == ["random", "least_confidence", "margin", "entropy", "bald"]


def test_the_old_strategies_key_still_works_in_a_recipe_and_with_set(tmp_path, capsys):
    """``strategies`` (the name before ``methods``) in a recipe or in ``--set``, with a notice."""
    old = tmp_path / RECIPE.name
    old.write_text(RECIPE.read_text().replace("\nmethods = ", "\nstrategies = "))
    assert "strategies = " in old.read_text() and "\nmethods = " not in old.read_text()
    for preset in ("quick", "full"):
        assert config_from_recipe(old, preset)[1] == config_from_recipe(RECIPE, preset)[1]
    assert "strategies in recipe" in capsys.readouterr().err
    _, config = config_from_recipe(RECIPE, "quick", ['strategies=["margin"]'])
    assert config.methods == ["margin"]
    notice = capsys.readouterr().err
    assert "strategies in --set" in notice and "is now methods" in notice


def test_old_flat_keys_still_work_in_a_recipe_and_with_set(tmp_path, capsys):
    """A recipe written before the sections (every key flat) gives the same config as today's; an old
    flat ``--set budget=...`` lands in its section; both with a notice."""
    from playground.core.config import tomllib

    recipe = tomllib.loads(RECIPE.read_text())
    old = tmp_path / RECIPE.name  # the same name: the same run name
    old.write_text(flat_toml(recipe["config"], recipe["presets"]))
    for preset in ("quick", "full"):
        assert config_from_recipe(old, preset)[1] == config_from_recipe(RECIPE, preset)[1]
    assert "budget in recipe" in capsys.readouterr().err
    _, config = config_from_recipe(old, "quick", ["budget=80", "epochs=9", "ensemble_members=2", "alpha=0.1"])
    assert (config.loop.budget, config.train.epochs, config.loop.members, config.escalation.alpha) == (
        80,
        9,
        2,
        0.1,
    )
    _, new = config_from_recipe(RECIPE, "quick", ["loop.budget=80", "train.epochs=9", "escalation.alpha=0.1"])
    assert new.loop.budget == 80 and new.train.epochs == 9 and new.escalation.alpha == 0.1
    assert "is now loop.budget" in capsys.readouterr().err


def test_an_old_run_with_flat_keys_still_reads(tmp_path):
    """A run folder whose config.toml has the flat keys of before the sections: the reader gives them
    in their sections."""
    from playground.active.results import read_active_config
    from playground.core.config import build_config
    from playground.core.runs import RunDir

    config = Config(**TINY)
    run_dir = RunDir.create("old", str(tmp_path))
    run_dir.write_config(config, "active")
    flatten_run_config(run_dir.path)
    text = (run_dir.path / "config.toml").read_text()
    assert "budget = 60" in text and "[config.loop]" not in text and "strategies = " in text
    values = read_active_config(run_dir.path)
    assert values["methods"] == ["random", "bald"] and "strategies" not in values
    assert values["loop"]["budget"] == 60 and values["data"]["calibration_size"] == 200
    assert values["escalation"]["annotator_budget"] == 20 and values["queue"] == "digits-review"
    assert build_config(Config, values) == config


def test_when_random_never_reaches_the_target_the_ratio_is_bounded():
    from playground.active.loop import LoopHistory, Round
    from playground.active.report import claims, metrics

    def curve(strategy, accuracies):
        rounds = [Round(20 + 10 * i, a, float("nan"), 0.0, 0.0) for i, a in enumerate(accuracies)]
        return LoopHistory(strategy, "scratch", rounds, None, None)

    loops = {
        "random": curve("random", [0.5, 0.6, 0.7, 0.75]),
        "margin": curve("margin", [0.5, 0.82, 0.85, 0.9]),
    }
    config = Config(target_accuracy=0.8, loop=LoopSpec(budget=50), methods=["random", "margin"])
    escalation = SimpleNamespace(
        metrics=lambda: {"escalation/alpha": 0.05, "escalation/auto_label_error": 0.02}
    )
    values = metrics(config, loops, {}, escalation).values
    assert "al/margin/labels_vs_random" not in values
    assert values["al/margin/labels_vs_random_below"] == pytest.approx(30 / 50)
    text = "\n".join(claims(config.methods, config.target_accuracy, config.loop.budget, values))
    assert "needs less than 60% of random's labels" in text and "meets" in text and "within α + 0.01" in text


def test_metric_records_carry_the_split_and_the_strategy_policy_and_measure_tags():
    from playground.active.loop import LoopHistory, Round
    from playground.active.report import metrics

    def curve(accuracies, forgetting=float("nan")):
        rounds = [Round(20 + 10 * i, a, forgetting, 1.0, 0.5) for i, a in enumerate(accuracies)]
        return LoopHistory("", "", rounds, None, None)

    loops = {"random": curve([0.5, 0.7, 0.85]), "bald": curve([0.5, 0.82, 0.9])}
    config = Config(target_accuracy=0.8, loop=LoopSpec(budget=40))
    escalation = SimpleNamespace(
        metrics=lambda: {
            "escalation/alpha": 0.05,
            "escalation/rate": 0.3,
            "escalation/calibration_bound": 0.04,
        }
    )
    measured = metrics(config, loops, {"scratch": curve([0.5, 0.8], 0.01)}, escalation)
    goal = dict(strategy="bald", target_accuracy=0.8)
    (needed,) = measured.select(split="test", **goal, measure="labels_to_target")
    assert needed.name == "al/bald/labels_to_target" and needed.value == 30
    (ratio,) = measured.select(split="test", **goal, measure="labels_vs_random")
    assert ratio.name == "al/bald/labels_vs_random" and ratio.value == pytest.approx(30 / 40)
    (final,) = measured.select(split="test", strategy="random", labels=40, measure="final_accuracy")
    assert final.name == "al/random/final_accuracy" and final.value == 0.85
    (seconds,) = measured.select(split="", policy="scratch", measure="compute_s")
    assert seconds.name == "al/policy/scratch/compute_s"
    (forgetting,) = measured.select(split="train", policy="scratch", measure="forgetting")
    assert forgetting.name == "al/policy/scratch/forgetting"
    escalated = {r.name: r.split for r in measured.records() if r.name.startswith("escalation/")}
    assert escalated == {
        "escalation/alpha": "",
        "escalation/rate": "test",
        "escalation/calibration_bound": "val",
    }
    assert all("measure" in r.tags for r in measured.records())
