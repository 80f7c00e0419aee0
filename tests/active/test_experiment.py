import json

import pytest

from playground.active import experiment
from playground.active.experiment import Config, run
from playground.active.results import find_active_runs, load_curves
from playground.core.runner import run_seeds
from playground.core.runs import load_run
from playground.errors import ConfigError
from playground.store import Store

TINY = dict(
    dataset="digits",
    pool_limit=0,
    test_limit=200,
    calibration_size=200,
    budget=60,
    initial=20,
    query=20,
    epochs=5,
    min_steps=20,
    max_steps=40,
    mc_samples=4,
    pool_subset=300,
    ood_sets=["shapes"],
    ood_limit=100,
    strategies=["random", "bald"],
    policy_strategy="bald",
    annotator_budget=20,
    queue="digits-review",
)


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
        "curves.json",
        "report.md",
        "learning_curves.png",
        "policies.png",
        "escalation.png",
        "metrics.json",
    ):
        assert (result.run_dir / name).is_file(), name
    curves = json.loads((result.run_dir / "curves.json").read_text())
    assert curves["strategies"]["bald"]["labels"] == [20, 40, 60]
    routes = curves["escalation"]["routes"]
    assert sum(routes.values()) == 250 + 100  # the in-distribution stream and the OOD images
    store = Store()
    progress = store.progress("digits-review")
    assert progress["total"] == routes["escalate"] + routes["ood"] > 0
    assert store.class_names("digits-review") == [str(d) for d in range(10)]
    assert "## Escalation" in result.report and "## Retraining policies" in result.report


def test_the_same_seed_gives_the_same_curves():
    first, second = tiny_run(queue=""), tiny_run(queue="")
    a = json.loads((first.run_dir / "curves.json").read_text())["strategies"]
    b = json.loads((second.run_dir / "curves.json").read_text())["strategies"]
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
                "strategies": ["random", "entropy"],
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
    assert (playground_home / "playground.db").is_file()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(strategies=["coreset"]), "strategies"),
        (dict(policies=["online"]), "policies"),
        (dict(escalation_strategy="entropy"), "escalation_strategy"),
        (dict(alpha=1.5), "alpha"),
        (dict(calibration_size=10), "calibration_size"),
        (dict(ood_sets=["fashion"]), "ood_sets"),
    ],
)
def test_bad_config_is_a_clear_error(change, message):
    with pytest.raises(ConfigError, match=message):
        Config(**{**TINY, **change})


def test_when_random_never_reaches_the_target_the_ratio_is_bounded():
    from types import SimpleNamespace

    from playground.active.loop import LoopHistory, Round
    from playground.active.report import claims, metrics

    def curve(strategy, accuracies):
        rounds = [Round(20 + 10 * i, a, float("nan"), 0.0, 0.0) for i, a in enumerate(accuracies)]
        return LoopHistory(strategy, "scratch", rounds, None, None)

    loops = {
        "random": curve("random", [0.5, 0.6, 0.7, 0.75]),
        "margin": curve("margin", [0.5, 0.82, 0.85, 0.9]),
    }
    config = SimpleNamespace(target_accuracy=0.8, budget=50, strategies=["random", "margin"])
    escalation = SimpleNamespace(
        metrics=lambda: {"escalation/alpha": 0.05, "escalation/auto_label_error": 0.02}
    )
    values = metrics(config, loops, {}, escalation).values
    assert "al/margin/labels_vs_random" not in values
    assert values["al/margin/labels_vs_random_below"] == pytest.approx(30 / 50)
    text = "\n".join(claims(config, values))
    assert "needs less than 60% of random's labels" in text and "meets" in text and "within α + 0.01" in text


def test_metric_records_carry_the_split_and_the_strategy_policy_and_measure_tags():
    from types import SimpleNamespace

    from playground.active.loop import LoopHistory, Round
    from playground.active.report import metrics

    def curve(accuracies, forgetting=float("nan")):
        rounds = [Round(20 + 10 * i, a, forgetting, 1.0, 0.5) for i, a in enumerate(accuracies)]
        return LoopHistory("", "", rounds, None, None)

    loops = {"random": curve([0.5, 0.7, 0.85]), "bald": curve([0.5, 0.82, 0.9])}
    config = SimpleNamespace(target_accuracy=0.8, budget=40)
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
