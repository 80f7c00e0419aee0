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
    assert (1 - threshold.confidence) / 2 <= alpha
    failures = 0
    for seed in range(1, 41):  # fresh data: the guarantee holds with probability >= 1 - delta
        c, ok = synthetic(10000, seed)
        failures += (1 - ok[c >= threshold.confidence].float().mean().item()) > alpha
    assert failures <= 4


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
