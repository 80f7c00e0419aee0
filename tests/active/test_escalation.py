import pytest
import torch

from playground.active.escalation import (
    AUTO,
    DEFER,
    ESCALATE,
    OOD,
    Threshold,
    calibrate_threshold,
    ood_threshold,
    risk_upper_bound,
    route,
    sequence_counts,
)
from playground.errors import ConfigError, DataFormatError


def synthetic(n, seed):
    """Confidence c ~ U(0.5, 1) and correct with probability c: a calibrated model."""
    g = torch.Generator().manual_seed(seed)
    confidence = 0.5 + 0.5 * torch.rand(n, generator=g)
    correct = torch.rand(n, generator=g) < confidence
    return confidence, correct


def test_clopper_pearson_bound():
    assert risk_upper_bound(0, 0, 0.1) == 1.0
    # zero errors in n: the bound is 1 - delta ** (1 / n)
    assert risk_upper_bound(0, 100, 0.05) == pytest.approx(1 - 0.05 ** (1 / 100), rel=1e-6)
    assert risk_upper_bound(5, 100, 0.05) > 0.05


def test_calibrated_threshold_keeps_the_error_on_new_data_below_alpha():
    alpha = 0.05
    confidence, correct = synthetic(10000, seed=0)
    threshold = calibrate_threshold(confidence, correct, alpha, delta=0.1)
    assert threshold.upper_bound <= alpha and threshold.calibration_coverage >= 0.08
    # the true error above lambda is (1 - E[c | c >= lambda]) = (1 - lambda) / 2 for this model
    assert true_risk_above(threshold.confidence) <= alpha
    failures = 0
    for seed in range(1, 41):  # fresh data: the guarantee holds with probability >= 1 - delta
        c, ok = synthetic(10000, seed)
        failures += (1 - ok[c >= threshold.confidence].float().mean().item()) > alpha
    assert failures <= 4


def true_risk_above(lam: float) -> float:
    """For ``synthetic``: the error among c >= lam is 1 - E[c | c >= lam] = (1 - lam) / 2."""
    return (1 - lam) / 2


def sharp(n, seed):
    """A sharper calibrated model: c = 1 - u²/2 (u ~ U(0, 1)), correct with probability c; the
    error among c >= lam is E[u²/2 | u²/2 <= 1 - lam] = (1 - lam) / 3."""
    g = torch.Generator().manual_seed(seed)
    confidence = 1 - 0.5 * torch.rand(n, generator=g) ** 2
    return confidence, torch.rand(n, generator=g) < confidence


def test_small_calibration_sets_keep_the_guarantee_over_many_draws():
    # 300 labels, as a labelling project has after a few rounds: the chosen threshold's true risk
    # exceeds alpha in at most about delta of the draws (binomial margin for 300 draws)
    alpha, delta, draws = 0.05, 0.1, 300
    thresholds = [calibrate_threshold(*sharp(300, seed), alpha, delta) for seed in range(draws)]
    certified = [t for t in thresholds if t.confidence < float("inf")]
    too_risky = sum((1 - t.confidence) / 3 > alpha for t in certified)
    assert too_risky / draws <= delta + 0.04
    # and it certifies something in most draws (the best threshold keeps 55% of the data here)
    assert len(certified) / draws >= 0.5
    assert sum(t.calibration_coverage for t in certified) / len(certified) >= 0.3


def test_the_sequence_starts_where_a_threshold_could_pass_and_stops_at_the_first_failure():
    counts = sequence_counts(1000, 0.05, 0.1, 50)
    assert counts[0] == 2 * 45 and counts[-1] == 1000 and counts == sorted(set(counts))
    assert sequence_counts(60, 0.05, 0.1, 50) == []  # too few to certify 5% at all
    # the 10 most confident are all wrong: the first test fails, and nothing below is tried
    confidence = torch.linspace(1.0, 0.5, 500)
    correct = torch.ones(500, dtype=torch.bool)
    correct[:10] = False
    assert calibrate_threshold(confidence, correct, 0.05).confidence == float("inf")


def test_uncertifiable_data_auto_labels_nothing():
    confidence, correct = torch.rand(500), torch.zeros(500, dtype=torch.bool)
    threshold = calibrate_threshold(confidence, correct, 0.05)
    assert threshold.confidence == float("inf") and threshold.calibration_coverage == 0.0


def test_calibration_checks_its_input():
    with pytest.raises(DataFormatError):
        calibrate_threshold(torch.rand(10), torch.ones(9, dtype=torch.bool), 0.05)
    with pytest.raises(ConfigError):
        calibrate_threshold(torch.rand(10), torch.ones(10, dtype=torch.bool), 1.5)


def test_route_flags_ood_first_then_auto_labels_then_fills_the_budget():
    threshold = Threshold(0.9, 0.05, 0.1, 0.5, 0.01, 0.04)
    confidence = torch.tensor([0.95, 0.95, 0.5, 0.6, 0.7, 0.4])
    uncertainty = torch.tensor([0.1, 0.1, 0.9, 0.8, 0.2, 1.0])
    ood_score = torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0, 0.0])
    routes = route(confidence, uncertainty, ood_score, threshold, ood_cut=1.0, budget=2)
    assert routes.tolist() == [AUTO, OOD, ESCALATE, DEFER, DEFER, ESCALATE]
    assert ood_threshold(torch.arange(101.0)) == pytest.approx(95.0)
