"""OOD scores and metrics on hand-made numbers whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from playground.errors import ConfigError, DataFormatError
from playground.uncertainty.features import KNNScore, Mahalanobis
from playground.uncertainty.metrics import calibration, fpr_at_tpr, ood_metrics, reliability_bins, roc_points
from playground.uncertainty.scores import Prediction, score


def prediction(probs) -> Prediction:
    probs = torch.tensor(probs, dtype=torch.float32)
    return Prediction(probs, probs.clamp_min(1e-9).log())


def test_single_sample_scores_have_their_textbook_values():
    p = prediction([[[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]])
    assert score(p, "msp").tolist() == pytest.approx([-0.25, -1.0])
    assert score(p, "entropy").tolist() == pytest.approx([math.log(4), 0.0], abs=1e-5)
    logits = torch.tensor([[[1.0, 2.0, 3.0]]])
    q = Prediction(torch.softmax(logits, -1), logits)
    assert score(q, "energy").item() == pytest.approx(-torch.logsumexp(logits[0, 0], 0).item())
    assert score(q, "max_logit").item() == pytest.approx(-3.0)
    assert score(p, "mutual_information").tolist() == [0.0, 0.0]
    assert score(p, "variance").tolist() == [0.0, 0.0]


def test_mutual_information_separates_disagreement_from_ambiguity():
    agree_unsure = [[0.5, 0.5]] * 2  # both samples say "50/50": aleatoric
    disagree_sure = [[1.0, 0.0], [0.0, 1.0]]  # each sample is certain, they disagree: epistemic
    p = prediction([[agree_unsure[0], disagree_sure[0]], [agree_unsure[1], disagree_sure[1]]])
    entropy, mi = score(p, "entropy"), score(p, "mutual_information")
    assert entropy.tolist() == pytest.approx([math.log(2), math.log(2)], abs=1e-5)
    assert mi[0].item() == pytest.approx(0.0, abs=1e-6) and mi[1].item() == pytest.approx(
        math.log(2), abs=1e-5
    )
    assert score(p, "disagreement").tolist() == [0.0, 0.5]
    assert score(p, "variance")[1] > score(p, "variance")[0]


def test_scores_reject_what_they_cannot_compute():
    with pytest.raises(DataFormatError, match="logits"):
        score(Prediction(torch.full((1, 2, 3), 1 / 3)), "energy")
    with pytest.raises(ConfigError, match="unknown OOD score"):
        score(prediction([[[1.0, 0.0]]]), "confidence")
    with pytest.raises(DataFormatError, match="samples, N, classes"):
        Prediction(torch.ones(2, 3))


def test_ood_metrics_on_separable_reversed_and_tied_scores():
    low, high = torch.arange(100.0), torch.arange(100.0) + 1000
    perfect = ood_metrics(low, high)
    assert (
        perfect["auroc"] == 1.0
        and perfect["fpr95"] == 0.0
        and perfect["aupr_in"] == 1.0
        and perfect["aupr_out"] == 1.0
    )
    assert ood_metrics(high, low)["auroc"] == 0.0 and ood_metrics(high, low)["fpr95"] == 1.0
    assert ood_metrics(torch.zeros(50), torch.zeros(50))["auroc"] == 0.5


def test_auroc_equals_the_pairwise_win_rate_and_fpr95_the_tail_count():
    generator = torch.Generator().manual_seed(0)
    score_in, score_out = torch.randn(300, generator=generator), torch.randn(200, generator=generator) + 1
    wins = (score_out[:, None] > score_in[None]).double().mean().item()
    assert ood_metrics(score_in, score_out)["auroc"] == pytest.approx(wins, abs=1e-9)
    threshold = torch.quantile(score_in.double(), 0.95)
    assert fpr_at_tpr(score_in, score_out) == pytest.approx((score_out <= threshold).double().mean().item())
    fpr, tpr = roc_points(score_in, score_out)
    assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)


def test_ood_metrics_reject_empty_and_nan_scores():
    with pytest.raises(DataFormatError, match="at least one"):
        ood_metrics(torch.zeros(0), torch.ones(3))
    with pytest.raises(DataFormatError, match="NaN"):
        ood_metrics(torch.tensor([0.0, float("nan")]), torch.ones(3))


def test_calibration_of_a_known_overconfident_model():
    # confidence 0.8 on every image, right half the time: ECE = |0.5 - 0.8| = 0.3
    probs = torch.tensor([[0.8, 0.2]] * 100)
    targets = torch.tensor([0, 1] * 50)
    result = calibration(probs, targets)
    assert result["accuracy"] == 0.5 and result["ece"] == pytest.approx(0.3, abs=1e-6)
    assert result["nll"] == pytest.approx(-(math.log(0.8) + math.log(0.2)) / 2)
    assert result["brier"] == pytest.approx((0.04 + 0.04 + 0.64 + 0.64) / 2)
    bins = reliability_bins(probs, targets)
    assert (
        bins["count"].sum() == 100
        and bins["accuracy"][12] == 0.5
        and bins["confidence"][12] == pytest.approx(0.8)
    )
    perfect = calibration(torch.eye(3), torch.arange(3))
    assert perfect["ece"] == pytest.approx(0.0, abs=1e-6) and perfect["brier"] == 0.0


def test_feature_scores_rank_far_embeddings_above_near_ones():
    generator = torch.Generator().manual_seed(0)
    means = torch.tensor([[4.0, 0.0, 0.0], [-4.0, 0.0, 0.0]])
    labels = torch.arange(2).repeat(200)
    train = means[labels] + torch.randn(400, 3, generator=generator)
    inside = means[torch.arange(2).repeat(20)] + torch.randn(40, 3, generator=generator)
    outside = torch.tensor([[0.0, 8.0, 0.0], [0.0, 0.0, -9.0], [0.0, 6.0, 6.0]])
    maha = Mahalanobis.fit(train, labels, 2)
    assert maha.score(outside).min() > maha.score(inside).max()
    knn = KNNScore.fit(train, k=5)
    assert knn.score(outside).min() > knn.score(inside).median()
    with pytest.raises(DataFormatError, match="more embeddings"):
        Mahalanobis.fit(train[:2], labels[:2], 2)
