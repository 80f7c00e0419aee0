import krippendorff
import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene, MajorityVote

from playground.errors import ConfigError, DataFormatError
from playground.label.consensus import NO_CONSENSUS, Annotations, agreement, dawid_skene, majority_vote
from playground.label.crowd import confusion, simulate_crowd

# crowd-kit 1.4 uses pandas keywords that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The (inplace|copy) keyword")


def simulated(kinds, num_items=2000, num_classes=5, per_item=3, seed=0):
    generator = np.random.default_rng(seed)
    truth = generator.integers(num_classes, size=num_items)
    confusions = np.stack([confusion(kind, num_classes, accuracy, generator) for kind, accuracy in kinds])
    return truth, simulate_crowd(truth, confusions, per_item, generator)


def to_frame(ann):
    return pd.DataFrame({"task": ann.items, "worker": ann.annotators, "label": ann.labels})


def crowdkit_arrays(model, ann):
    labels = model.labels_.reindex(range(ann.num_items)).to_numpy()
    probas = model.probas_.reindex(index=range(ann.num_items), columns=range(ann.num_classes), fill_value=0.0)
    return labels, probas.to_numpy()


def test_from_rows_maps_keys_names_and_class_names():
    rows = [("b.png", "ann", "cat"), ("a.png", "ann", "dog"), ("b.png", "bob", 1)]
    ann = Annotations.from_rows(rows, ["cat", "dog"], annotator_names=["bob", "ann", "cy"])
    assert ann.item_keys == ["b.png", "a.png"]
    assert ann.annotator_names == ["bob", "ann", "cy"]
    assert ann.items.tolist() == [0, 1, 0]
    assert ann.annotators.tolist() == [1, 1, 0]
    assert ann.labels.tolist() == [0, 1, 1]
    assert (ann.num_items, ann.num_annotators, ann.num_classes) == (2, 3, 2)


@pytest.mark.parametrize(
    "rows, match",
    [
        ([("a", "x", "bird")], "not one of the classes"),
        ([("a", "x", 2)], "not one of the classes"),
        ([("a", "x")], "each row"),
        ([("a", "x", 0), ("a", "x", 1)], "more than once"),
        ([("a", "nobody", 0)], "not among the declared annotators"),
    ],
)
def test_from_rows_rejects_bad_rows(rows, match):
    with pytest.raises(DataFormatError, match=match):
        Annotations.from_rows(rows, ["cat", "dog"], annotator_names=["x"])


@pytest.mark.parametrize(
    "columns, sizes, match",
    [
        (([0, 1], [0], [0, 1]), (2, 2, 2), "same length"),
        (([[0, 1]], [[0, 1]], [[0, 1]]), (2, 2, 2), "1-D"),
        (([0, 2], [0, 0], [0, 1]), (2, 2, 2), "items must lie"),
        (([0, 1], [0, 0], [0, 3]), (2, 2, 2), "labels must lie"),
        (([0, 1], [0, -1], [0, 1]), (2, 2, 2), "annotators must lie"),
        (([0.5, 1], [0, 0], [0, 1]), (2, 2, 2), "non-integer"),
        ((["a", "b"], [0, 0], [0, 1]), (2, 2, 2), "integer indices"),
        (([0, 1], [0, 0], [0, 1]), (2, 2, 0), "num_classes"),
    ],
)
def test_annotations_reject_bad_shapes(columns, sizes, match):
    with pytest.raises(DataFormatError, match=match):
        Annotations(*columns, *sizes)


def test_majority_vote_ties_shares_and_min_share():
    # item 0: 2 of 3 say 1; item 1: a tie 0/1; item 2: three different labels; item 3: nobody
    ann = Annotations([0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 2, 0, 1, 0, 1, 2], [1, 1, 0, 0, 1, 0, 1, 2], 4, 3, 3)
    result = majority_vote(ann)
    assert result.labels.tolist() == [1, NO_CONSENSUS, NO_CONSENSUS, NO_CONSENSUS]
    assert result.confidence[:3] == pytest.approx([2 / 3, 0.5, 1 / 3])
    assert np.isnan(result.confidence[3])
    assert result.num_votes.tolist() == [3, 2, 3, 0]
    assert result.no_consensus.tolist() == [1, 2, 3]
    assert majority_vote(ann, min_share=0.7).labels[0] == NO_CONSENSUS
    assert majority_vote(ann, min_share=0.0).labels[1] == NO_CONSENSUS  # a tie is never a consensus
    # annotator 2 said 0 on item 0 where the consensus is 1; items 1-3 have no consensus
    assert result.annotator_accuracy.tolist() == [1.0, 1.0, 0.0]


def test_majority_vote_equals_crowdkit_where_there_is_no_tie():
    _, ann = simulated([("good", 0.7), ("poor", 0.5), ("spammer", None), ("good", 0.8)], per_item=3)
    ours = majority_vote(ann, min_share=0.0)
    theirs = MajorityVote().fit_predict(to_frame(ann)).reindex(range(ann.num_items)).to_numpy()
    decided = ours.labels != NO_CONSENSUS
    assert 0.6 < decided.mean() < 0.99  # there are ties, and they are the only undecided items
    assert np.array_equal(ours.labels[decided], theirs[decided])


def test_dawid_skene_matches_crowdkit_step_for_step():
    """Same EM steps, no smoothing: the posteriors agree to rounding, whatever the crowd."""
    kinds = [("good", 0.8), ("good", 0.7), ("poor", 0.55), ("spammer", None), ("fixed_spammer", None)]
    _, ann = simulated(kinds)
    model = DawidSkene(n_iter=100).fit(to_frame(ann))
    ours = dawid_skene(ann, iterations=len(model.loss_history_), smoothing=0.0, min_posterior=0.0)
    labels, probas = crowdkit_arrays(model, ann)
    assert np.abs(ours.posteriors - probas).max() < 1e-9
    assert np.array_equal(ours.labels, labels)


def test_dawid_skene_defaults_agree_with_crowdkit_and_the_truth():
    truth, ann = simulated([("good", 0.85), ("good", 0.85), ("poor", 0.65)])
    ours = dawid_skene(ann, min_posterior=0.0)
    model = DawidSkene(n_iter=100).fit(to_frame(ann))
    labels, probas = crowdkit_arrays(model, ann)
    assert (ours.labels == labels).mean() >= 0.99
    right = ann.labels == truth[ann.items]
    empirical = np.bincount(ann.annotators, weights=right) / np.bincount(ann.annotators)
    theirs = np.bincount(ann.annotators, weights=probas[ann.items, ann.labels]) / np.bincount(ann.annotators)
    assert np.abs(ours.annotator_accuracy - theirs).max() < 0.01
    assert np.abs(ours.annotator_accuracy - empirical).max() < 0.03
    assert ours.confusions.shape == (3, 5, 5)
    assert np.allclose(ours.confusions.sum(axis=2), 1.0)
    assert ours.prior.sum() == pytest.approx(1.0)
    assert (ours.labels == truth).mean() > (majority_vote(ann).labels == truth).mean()


def test_dawid_skene_min_posterior_and_unlabelled_items():
    truth, ann = simulated([("good", 0.7), ("poor", 0.5), ("poor", 0.5)], num_items=500)
    loose = dawid_skene(ann, min_posterior=0.0)
    strict = dawid_skene(ann, min_posterior=0.9)
    undecided = strict.labels == NO_CONSENSUS
    assert 0.05 < undecided.mean() < 0.95
    assert np.all(strict.confidence[undecided] < 0.9)
    assert np.array_equal(strict.labels[~undecided], loose.labels[~undecided])
    # a declared item nobody labelled: no consensus, posterior = prior
    padded = Annotations(ann.items, ann.annotators, ann.labels, ann.num_items + 1, 3, 5)
    result = dawid_skene(padded)
    assert result.labels[-1] == NO_CONSENSUS and np.isnan(result.confidence[-1])
    assert np.allclose(result.posteriors[-1], result.prior)


def test_single_annotation_per_item():
    ann = Annotations([0, 1, 2, 3], [0, 1, 0, 1], [2, 0, 1, 2], 4, 2, 3)
    assert majority_vote(ann).labels.tolist() == [2, 0, 1, 2]
    assert dawid_skene(ann).labels.tolist() == [2, 0, 1, 2]
    result = agreement(ann)
    assert np.isnan(result["alpha"]) and result["pairable_items"] == 0
    assert "two or more" in result["reason"]


def test_all_agree():
    labels = [0, 0, 1, 1, 2, 2]
    ann = Annotations([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], labels, 3, 2, 3)
    assert majority_vote(ann).labels.tolist() == [0, 1, 2]
    assert dawid_skene(ann).labels.tolist() == [0, 1, 2]
    result = agreement(ann)
    assert result["alpha"] == pytest.approx(1.0) and result["percent_agreement"] == 1.0
    one_class = Annotations([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, 1], 2, 2, 3, class_names=["a", "b", "c"])
    result = agreement(one_class)
    assert np.isnan(result["alpha"]) and result["percent_agreement"] == 1.0
    assert "'b'" in result["reason"]
    assert "nobody used class 'a'" in result["per_class"][0]["reason"]


def test_annotator_who_labelled_nothing():
    truth, ann = simulated([("good", 0.8), ("good", 0.8), ("poor", 0.6)], num_items=300)
    idle = Annotations(ann.items, ann.annotators, ann.labels, ann.num_items, 4, 5)
    for result in (majority_vote(idle), dawid_skene(idle)):
        assert np.isnan(result.annotator_accuracy[3])
        assert np.all(np.isfinite(result.annotator_accuracy[:3]))
    ds = dawid_skene(idle)
    assert np.allclose(ds.confusions[3], 1 / 5)  # smoothing only: no opinion about them
    assert np.array_equal(ds.labels, dawid_skene(ann).labels)


def test_dawid_skene_rejects_bad_settings():
    ann = Annotations([0], [0], [0], 1, 1, 2)
    with pytest.raises(ConfigError, match="min_posterior"):
        dawid_skene(ann, min_posterior=1.5)
    with pytest.raises(ConfigError, match="smoothing"):
        dawid_skene(ann, smoothing=-1)
    empty = dawid_skene(Annotations([], [], [], 2, 1, 2))
    assert empty.labels.tolist() == [NO_CONSENSUS, NO_CONSENSUS]


# Krippendorff's example from the `krippendorff` package: 3 coders x 15 units, nominal alpha 0.691
RELIABILITY = np.array(
    [
        [np.nan, np.nan, np.nan, np.nan, np.nan, 3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
        [1, np.nan, 2, 1, 3, 3, 4, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
        [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4],
    ]
)


def reliability_annotations():
    coders, units = np.nonzero(~np.isnan(RELIABILITY))
    labels = RELIABILITY[coders, units].astype(int) - 1
    return Annotations(units, coders, labels, 15, 3, 4)


def test_agreement_matches_krippendorff_example():
    result = agreement(reliability_annotations())
    assert result["alpha"] == pytest.approx(0.691, abs=5e-4)
    assert result["reason"] is None
    assert result["pairable_items"] == 12
    # ordered pairs of labels on one item: 24 of 32 agree
    assert result["percent_agreement"] == pytest.approx(24 / 32)
    for index in range(4):
        binary = np.where(np.isnan(RELIABILITY), np.nan, (RELIABILITY == index + 1).astype(float))
        expected = krippendorff.alpha(reliability_data=binary, level_of_measurement="nominal")
        assert result["per_class"][index]["alpha"] == pytest.approx(expected)
        assert result["per_class"][index]["class"] == index
