"""Partial backfill: the curve's ends, its area, and that each uncertainty score finds what it should."""

import pytest
import torch
from sklearn.metrics import roc_auc_score

from playground.errors import ConfigError
from playground.fct.backfill_order import (
    backfill_curve,
    curve_area,
    ensemble_scores,
    fastfill_scores,
    knn_scores,
    mahalanobis_scores,
    order_by,
    random_order,
    train_variance_head,
)
from playground.fct.retrieval import retrieval_metrics
from playground.fct.transformation import train_transformation

FRACTIONS = [0.0, 0.25, 0.5, 0.75, 1.0]


def clustered(n=400, d=8, classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    return (
        4 * torch.randn(classes, d, generator=generator)[labels] + torch.randn(n, d, generator=generator),
        labels,
        generator,
    )


def test_curve_area_is_the_trapezoid_mean():
    assert curve_area([0.0, 0.5, 1.0], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert curve_area([0.0, 1.0], [40.0, 50.0]) == pytest.approx(45.0)
    with pytest.raises(ValueError):
        curve_area([0.0], [1.0])


def test_the_curve_runs_from_the_transformed_gallery_to_the_reembedded_one():
    reembedded, labels, generator = clustered()
    transformed = reembedded + 3 * torch.randn(reembedded.shape, generator=generator)
    curve = backfill_curve(reembedded, transformed, reembedded, labels, random_order(400, 0), FRACTIONS)
    assert curve[0] == pytest.approx(100 * retrieval_metrics(reembedded, transformed, labels)["mAP"])
    assert curve[-1] == pytest.approx(100 * retrieval_metrics(reembedded, reembedded, labels)["mAP"])
    rows = torch.arange(0, 400, 4)
    subset = backfill_curve(
        reembedded[rows], transformed, reembedded, labels, random_order(400, 0), [0.0], query_rows=rows
    )
    assert subset[0] == pytest.approx(
        100 * retrieval_metrics(reembedded[rows], transformed, labels, query_rows=rows)["mAP"]
    )


def test_re_embedding_the_worst_vectors_first_beats_random():
    reembedded, labels, generator = clustered()
    broken = torch.arange(400) % 4 == 0  # a quarter of h's outputs are far off
    transformed = reembedded + 6 * broken[:, None] * torch.randn(reembedded.shape, generator=generator)
    error = (transformed - reembedded).pow(2).sum(1)
    args = (reembedded, transformed, reembedded, labels)
    oracle = curve_area(FRACTIONS, backfill_curve(*args, order_by(error), FRACTIONS))
    chance = curve_area(FRACTIONS, backfill_curve(*args, random_order(400, 0), FRACTIONS))
    assert oracle > chance + 5


def test_fastfill_learns_where_h_errs():
    """h fits the clean map; the targets it is judged on are noisy only where old[:, 0] > 0, so the
    learned variance must rank those vectors first."""
    generator = torch.Generator().manual_seed(0)
    old = torch.randn(3000, 8, generator=generator)
    noisy = old[:, 0] > 0
    clean = old @ torch.randn(8, 8, generator=generator) / 8**0.5
    new = clean + noisy[:, None] * torch.randn(3000, 8, generator=generator)
    h, _ = train_transformation(old, old, clean, hidden=64, epochs=20, seed=0)
    head = train_variance_head(h, old[:2000], old[:2000], new[:2000], epochs=10, seed=0)
    scores = fastfill_scores(head, old[2000:], old[2000:])
    assert roc_auc_score(noisy[2000:].numpy(), scores.numpy()) > 0.95


def test_distance_scores_rank_vectors_far_from_the_training_inputs_first():
    reference, labels, generator = clustered()
    near = reference[:50] + 0.1 * torch.randn(50, 8, generator=generator)
    far = 30 + torch.randn(50, 8, generator=generator)
    vectors, is_far = torch.cat([near, far]), torch.cat([torch.zeros(50), torch.ones(50)])
    for scores in (knn_scores(reference, vectors, k=5), mahalanobis_scores(reference, labels, vectors)):
        assert roc_auc_score(is_far.numpy(), scores.numpy()) == 1.0


def test_ensemble_scores_are_zero_for_agreeing_members_and_need_two():
    old, _, _ = clustered(n=300)
    h, _ = train_transformation(old, old, old, hidden=32, epochs=1, seed=0)
    assert ensemble_scores([h, h], old, old).abs().max() == 0
    other, _ = train_transformation(old, old, old, hidden=32, epochs=1, seed=1)
    assert ensemble_scores([h, other], old, old).min() > 0
    with pytest.raises(ConfigError, match="at least 2"):
        ensemble_scores([h], old, old)


def test_order_by_puts_the_highest_score_first_and_keeps_ties_in_index_order():
    assert order_by(torch.tensor([0.1, 0.5, 0.5, 0.9])).tolist() == [3, 1, 2, 0]
