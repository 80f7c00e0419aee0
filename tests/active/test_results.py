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
