"""The active-learning reader's curves over seeds and route counts, on hand-made curves."""

import numpy as np
import pytest

from playground.active.results import mean_route_counts, seed_curve


def curve(accuracy, seconds) -> dict:
    return {"labels": [10, 20, 30][: len(accuracy)], "accuracy": accuracy, "train_seconds": seconds}


def test_a_seed_curve_is_the_mean_and_sample_std_over_seeds():
    runs = [curve([0.5, 0.6, 0.7], [1, 1, 1]), curve([0.7, 0.8, 0.9], [3, 3, 3])]
    spread = seed_curve(runs, "accuracy")
    assert spread.labels == [10, 20, 30] and spread.band.seeds == 2
    assert np.allclose(spread.band.mean, [0.6, 0.7, 0.8])
    assert np.allclose(spread.band.std, [2**0.5 * 0.1] * 3)  # ddof=1: |0.7 - 0.5| / sqrt(2)
    assert np.allclose(spread.band.high - spread.band.low, 2 * spread.band.std)


def test_a_cumulative_seed_curve_sums_each_seed_first():
    runs = [curve([0.5, 0.6, 0.7], [1, 2, 3]), curve([0.7, 0.8, 0.9], [3, 2, 1])]
    spent = seed_curve(runs, "train_seconds", cumulative=True)
    assert np.allclose(spent.band.mean, [2, 4, 6])  # (1, 3, 6) and (3, 5, 6)
    assert np.allclose(spent.band.std, [2**0.5, 2**0.5, 0])


def test_one_seed_has_no_band_and_curves_are_cut_to_the_shortest_seed():
    alone = seed_curve([curve([0.5, 0.6], [1, 1])], "accuracy")
    assert alone.band.std is None and list(alone.band.low) == list(alone.band.mean) == [0.5, 0.6]
    cut = seed_curve([curve([0.5, 0.6, 0.7], [1, 1, 1]), curve([0.7, 0.8], [1, 1])], "accuracy")
    assert np.allclose(cut.band.mean, [0.6, 0.7])


def test_route_counts_are_averaged_over_the_seeds_that_report_them():
    escalation = [
        {"routes": {"auto": 10, "escalate": 4}},
        {"routes": {"auto": 13, "escalate": 5, "ood": 2}},
    ]
    counts = mean_route_counts(escalation)
    assert list(counts) == ["auto", "escalate", "ood"]
    assert counts == {"auto": 11.5, "escalate": 4.5, "ood": pytest.approx(2.0)}


def saved_curves(offset: float = 0.0) -> dict:
    """One seed's curves section as a run writes it (two strategies, one policy, the escalation)."""
    line = {
        "labels": [20, 40],
        "accuracy": [0.5 + offset, 0.7 + offset],
        "forgetting": [0.0, 0.0],
        "train_seconds": [1.0, 2.0],
        "acquire_seconds": [0.1, 0.1],
    }
    return {
        "strategies": {"random": line, "bald": line},
        "policies": {"scratch": line},
        "escalation": {
            "escalation_rate": [0.0, 0.5],
            "auto_label_accuracy": [0.9, 1.0],
            "routes": {"auto": 3},
        },
    }


def test_curves_are_a_results_section_and_a_run_made_before_results_json_still_opens(tmp_path):
    from playground.active.experiment import Config
    from playground.active.results import CURVES, load_curves
    from playground.core.runs import RESULTS, RunDir

    run = RunDir.create("active", tmp_path)
    run.write_result(CURVES, saved_curves())
    assert load_curves(run.path)["strategies"]["bald"] == [saved_curves()["strategies"]["bald"]]

    parent = RunDir.create("old", tmp_path)  # two seeds written before results.json: curves.json each
    for seed in (0, 1):
        old = RunDir(parent.path / f"seed{seed}-20250101-000000")
        old.path.mkdir()
        old.write_config(Config(), "active")
        old.write_json("curves.json", saved_curves(0.1 * seed))
        assert not (old.path / RESULTS).exists()
    curves = load_curves(parent.path)
    assert [c["accuracy"][0] for c in curves["strategies"]["random"]] == pytest.approx([0.5, 0.6])
    assert len(curves["escalation"]) == 2 and curves["policies"]["scratch"][1]["labels"] == [20, 40]
