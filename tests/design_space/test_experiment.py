"""The design-space study: metrics and claims from trained samples, and a tiny study end to end."""

import json

import numpy as np
import pytest

from playground.design_space import experiment
from playground.design_space.results import full_training_overrides, load_design_space_run
from playground.errors import ConfigError


def fake_trained(rng, space, centre, count=40):
    models = []
    for _ in range(count):
        wm = float(rng.uniform(1.5, 3.0))
        params = {"flops": 2e6, "depth": 8, "w0": 16, "wa": 20.0, "wm": wm, "bottleneck": 1, "group_width": 8}
        error = (
            centre + 0.05 * abs(wm - 2.2) + float(rng.normal(0, 0.005))
            if space.startswith("regnet")
            else centre + float(rng.normal(0, 0.02))
        )
        models.append({"spec": {}, "params": params, "error": error, "trial": "k"})
    models[0]["error"] = None  # a failed trial
    return models


def test_edf_summaries_claims_and_bootstrap_ranges_come_from_the_trained_samples():
    rng = np.random.default_rng(0)
    trained = {"anynetxa": fake_trained(rng, "anynetxa", 0.25), "regnety": fake_trained(rng, "regnety", 0.15)}
    config = experiment.Config(spaces=["anynetxa", "regnety"], bootstrap_draws=2000)
    metrics, ranges = experiment.study_metrics(config, trained)
    values = metrics.values
    assert values["edf/anynetxa/count"] == 39 and values["edf/anynetxa/failed"] == 1
    assert (
        values["edf/regnety/error_p10"]
        < values["edf/regnety/error_median"]
        < values["edf/anynetxa/error_p10"]
    )
    assert values["edf_gap/regnety-anynetxa/ci_low"] > 0.4
    assert values["edf_gap/regnety-anynetxa/ci_low"] < values["edf_gap/regnety-anynetxa"] > 0.5
    wm = ranges["regnety/wm"]
    assert 1.6 < wm["low"] <= wm["best"] <= wm["high"] < 2.8 and abs(wm["best"] - 2.2) < 0.2
    report = experiment_report(config, metrics, trained, ranges)
    assert "RegNetY's EDF lies above AnyNetXa's: mean EDF gap +" in report and "**holds**" in report
    assert "(95% bootstrap interval +" in report


def experiment_report(config, metrics, trained, ranges):
    from playground.design_space.report import report

    return report(config, metrics, trained, ranges)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"spaces": ["anynetxz"]}, "spaces must name one or more of"),
        ({"spaces": []}, "spaces must name one or more of"),
        ({"models_per_space": 3}, "at least 4"),
        ({"flops_low": 5e6, "flops_high": 1e6}, "0 < flops_low < flops_high"),
    ],
)
def test_a_bad_study_is_refused(kwargs, problem):
    with pytest.raises(ConfigError, match=problem):
        experiment.Config(**kwargs)


@pytest.mark.slow
def test_a_tiny_study_trains_every_sample_through_the_sweep_and_a_rerun_reuses_them(tmp_path):
    config = experiment.Config(
        spaces=["anynetxa", "regnety"],
        models_per_space=4,
        trial_set=['dataset="digits"', "epochs=2", "save_models=false", "batch_size=32"],
        out=str(tmp_path),
        jobs=1,
        bootstrap_draws=500,
    )
    first = experiment.run(config)
    metrics, spaces, ranges = load_design_space_run(first.run_dir)
    assert [len(spaces[s]) for s in ("anynetxa", "regnety")] == [4, 4]
    assert all(m["error"] is not None and 0 <= m["error"] < 0.9 for s in spaces.values() for m in s)
    assert metrics.values["edf/regnety/count"] == 4 and "regnety/wm" in ranges
    assert (first.run_dir / "edf.png").is_file() and (first.run_dir / "parameters.png").is_file()
    trials = tmp_path / experiment.TRIALS_FOLDER
    ledger = json.loads((trials / "trials.json").read_text())
    assert len(ledger) == 8 and all(e["status"] == "done" for e in ledger.values())
    folders = sorted(p.name for p in trials.iterdir() if p.is_dir())
    second = experiment.run(config)
    assert sorted(p.name for p in trials.iterdir() if p.is_dir()) == folders  # no model trained again
    assert second.metrics.values["edf/regnety/error_median"] == metrics.values["edf/regnety/error_median"]
    best = min(spaces["regnety"], key=lambda m: m["error"])
    assert full_training_overrides(best["spec"])[0] == 'model="anynet"'
