import numpy as np
import pytest

from playground.data.fashion import find_fashion_mnist
from playground.errors import ConfigError, DataFormatError
from playground.label.consensus import dawid_skene, majority_vote
from playground.label.crowd import (
    FASHION_CONFUSABLE,
    argmax_random_ties,
    confusion,
    crowd_benchmark,
    fashion_crowd_benchmark,
    simulate_crowd,
)


def test_good_and_poor_confusions_follow_the_grouping():
    generator = np.random.default_rng(0)
    good = confusion("good", 10, 0.9, generator, FASHION_CONFUSABLE)
    poor = confusion("poor", 10, None, generator, FASHION_CONFUSABLE)
    for matrix, accuracy, share in ((good, 0.9, 0.8), (poor, 0.65, 0.5)):
        assert np.allclose(matrix.sum(axis=1), 1.0) and (matrix >= 0).all()
        assert np.allclose(np.diag(matrix), accuracy)
        coat = 4  # partners: T-shirt/top, pullover, shirt
        assert matrix[coat, [0, 2, 6]].sum() == pytest.approx(share * (1 - accuracy))
    trouser = good[1]  # no partners: its errors spread over the nine others
    assert np.count_nonzero(trouser) == 10


def test_without_grouping_each_class_gets_two_partners():
    matrix = confusion("good", 6, 0.7, np.random.default_rng(1))
    off = matrix - np.diag(np.diag(matrix))
    top_two = np.sort(off, axis=1)[:, -2:].sum(axis=1)
    assert np.all(top_two >= 0.8 * 0.3 - 1e-9)


def test_spammers_ignore_the_truth():
    assert np.allclose(confusion("spammer", 4, None, 0), 0.25)
    fixed = confusion("fixed_spammer", 4, None, np.random.default_rng(3))
    column = int(np.argmax(fixed[0]))
    assert np.all(fixed[:, column] == 1.0) and fixed.sum() == 4.0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: confusion("expert", 3), ConfigError, "unknown annotator kind"),
        (lambda: confusion("good", 3, 1.2), ConfigError, "accuracy"),
        (lambda: confusion("good", 10, 0.9, 0, [(0, 2), (2, 4)]), DataFormatError, "more than one"),
        (lambda: confusion("good", 3, 0.9, 0, [(0, 5)]), DataFormatError, "not in 0..2"),
        (lambda: simulate_crowd([0, 1], np.ones((2, 2, 3)) / 3), DataFormatError, "shape"),
        (lambda: simulate_crowd([0, 3], np.ones((2, 3, 3)) / 3), DataFormatError, "true labels"),
        (lambda: simulate_crowd([0, 1], np.ones((2, 3, 3)), 1), DataFormatError, "probability"),
        (lambda: simulate_crowd([0, 1], np.ones((2, 3, 3)) / 3, 3), ConfigError, "per_item"),
    ],
)
def test_bad_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_simulated_annotators_are_as_accurate_as_their_confusion():
    generator = np.random.default_rng(0)
    truth = generator.integers(10, size=6000)
    kinds = [("good", 0.85), ("good", 0.9), ("poor", 0.6), ("spammer", None), ("fixed_spammer", None)]
    confusions = np.stack([confusion(k, 10, a, generator, FASHION_CONFUSABLE) for k, a in kinds])
    ann = simulate_crowd(truth, confusions, per_item=3, generator=generator)
    assert ann.size == 18000 and ann.num_annotators == 5
    per_item = ann.annotators.reshape(-1, 3)
    assert np.all(np.sort(per_item, axis=1)[:, 1:] != np.sort(per_item, axis=1)[:, :-1])  # distinct
    assert np.all(np.abs(np.bincount(ann.annotators) / ann.size - 0.2) < 0.01)  # drawn uniformly
    right = ann.labels == truth[ann.items]
    for a in range(5):
        mine = ann.annotators == a
        expected = np.diagonal(confusions[a])[truth[ann.items[mine]]].mean()
        assert right[mine].mean() == pytest.approx(expected, abs=0.02)
    # the empirical confusion of a good annotator matches its matrix
    observed = np.zeros((10, 10))
    np.add.at(observed, (truth[ann.items[ann.annotators == 0]], ann.labels[ann.annotators == 0]), 1)
    assert np.abs(observed / observed.sum(axis=1, keepdims=True) - confusions[0]).max() < 0.05


def test_per_item_equal_to_the_crowd_gives_everyone_every_item():
    confusions = np.stack([confusion("good", 3, 0.8, seed) for seed in range(3)])
    ann = simulate_crowd(np.array([0, 1, 2, 1]), confusions, per_item=3, generator=0)
    assert np.array_equal(np.sort(ann.annotators.reshape(4, 3), axis=1), np.tile([0, 1, 2], (4, 1)))


def test_dawid_skene_beats_majority_when_one_of_three_is_a_fixed_spammer():
    gains = []
    for seed in range(3):
        generator = np.random.default_rng(seed)
        truth = generator.integers(10, size=2000)
        kinds = [("good", 0.85), ("poor", 0.6), ("fixed_spammer", None)]
        confusions = np.stack([confusion(k, 10, a, generator) for k, a in kinds])
        ann = simulate_crowd(truth, confusions, per_item=3, generator=generator)
        majority = argmax_random_ties(majority_vote(ann).posteriors, generator)
        ds = dawid_skene(ann, min_posterior=0.0)
        gains.append((ds.labels == truth).mean() - (majority == truth).mean())
        # the spammer is found out; two informative annotators alone cannot be told apart reliably
        assert ds.annotator_accuracy[2] < 0.2 < 0.6 < ds.annotator_accuracy[:2].min()
    assert np.mean(gains) > 0.03  # measured 0.062
    assert min(gains) > 0.0


def test_argmax_random_ties_picks_among_the_tied_only():
    scores = np.tile([0.4, 0.4, 0.2], (3000, 1))
    picks = argmax_random_ties(scores, np.random.default_rng(0))
    assert set(np.unique(picks)) == {0, 1}
    assert abs(picks.mean() - 0.5) < 0.05


def test_crowd_benchmark_names_and_ordering():
    truth = np.random.default_rng(0).integers(10, size=2000)
    metrics = crowd_benchmark(truth, 10, seed=0, confusable=FASHION_CONFUSABLE)
    assert sorted(metrics) == sorted(
        f"crowd/{setting}/{method}/accuracy"
        for setting in ("two_good_one_poor", "spammer")
        for method in ("single", "majority", "dawid_skene")
    )
    for setting in ("two_good_one_poor", "spammer"):
        single, majority, ds = (
            metrics[f"crowd/{setting}/{m}/accuracy"] for m in ("single", "majority", "dawid_skene")
        )
        assert single < majority < ds
    assert 0.75 < metrics["crowd/two_good_one_poor/single/accuracy"] < 0.82  # (0.85 + 0.85 + 0.65) / 3
    assert metrics == crowd_benchmark(truth, 10, seed=0, confusable=FASHION_CONFUSABLE)
    assert metrics != crowd_benchmark(truth, 10, seed=1, confusable=FASHION_CONFUSABLE)


@pytest.mark.slow
@pytest.mark.skipif(find_fashion_mnist() is None, reason="Fashion-MNIST is not installed")
def test_fashion_mnist_spammer_target():
    metrics = fashion_crowd_benchmark(seeds=(0,))
    gain = metrics["crowd/spammer/dawid_skene/accuracy"] - metrics["crowd/spammer/majority/accuracy"]
    assert gain >= 0.02
