"""Error EDFs and the empirical bootstrap, against hand-computed values."""

import numpy as np
import pytest

from playground.design_space import bootstrap_range, edf, edf_gap, edf_gap_range, edf_steps, edf_summary
from playground.errors import ConfigError


def test_the_edf_is_the_fraction_of_models_at_or_below_each_error():
    errors, fraction = edf([0.3, 0.1, 0.2, 0.4])
    assert errors.tolist() == [0.1, 0.2, 0.3, 0.4] and fraction.tolist() == [0.25, 0.5, 0.75, 1.0]
    summary = edf_summary(np.linspace(0.1, 0.2, 11))
    assert summary == pytest.approx({"error_p10": 0.11, "error_median": 0.15, "count": 11})
    with pytest.raises(ConfigError, match="finite errors"):
        edf([0.1, float("nan")])


def test_the_drawn_edf_is_a_staircase_through_every_model():
    x, y = edf_steps([0.3, 0.1, 0.2])
    assert x.tolist() == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert y.tolist() == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])


def test_a_space_of_better_models_has_an_edf_above_the_other():
    rng = np.random.default_rng(0)
    good, bad = rng.normal(0.15, 0.02, 200), rng.normal(0.20, 0.02, 200)
    assert edf_gap(good, bad) > 0.3 and edf_gap(bad, good) == -edf_gap(good, bad)
    assert abs(edf_gap(good, rng.normal(0.15, 0.02, 200))) < 0.1


def test_the_gap_interval_separates_different_spaces_and_straddles_zero_for_equal_ones():
    rng = np.random.default_rng(0)
    good, bad, same = rng.normal(0.15, 0.02, 100), rng.normal(0.20, 0.02, 100), rng.normal(0.15, 0.02, 100)
    low, high = edf_gap_range(good, bad, draws=500)
    assert 0.3 < low < edf_gap(good, bad) < high
    low, high = edf_gap_range(good, same, draws=500)
    assert low < 0 < high and high - low < 0.4


@pytest.mark.parametrize(
    ("claim", "gap", "low", "high", "expected"),
    [
        ("A lies above B", 0.28, 0.21, 0.35, "holds"),
        ("A lies above B", 0.05, -0.02, 0.12, "inconclusive"),
        ("A lies above B", -0.2, -0.3, -0.1, "does not hold"),
        ("A does not hurt", -0.02, -0.04, 0.01, "holds"),
        ("A does not hurt", -0.058, -0.139, 0.025, "inconclusive"),
        ("A does not hurt", -0.2, -0.3, -0.1, "does not hold"),
        ("A does not hurt", -0.06, None, None, "does not hold"),  # a study from before the intervals
    ],
)
def test_a_claim_is_judged_by_its_interval(claim, gap, low, high, expected):
    from playground.design_space.report import verdict

    assert verdict(claim, gap, low, high).startswith(expected)


def test_the_bootstrap_finds_where_the_best_models_lie():
    rng = np.random.default_rng(0)
    values = rng.uniform(1, 4, 400)
    errors = 0.1 + 0.05 * (values - 2.5) ** 2 + rng.normal(0, 0.005, 400)  # best near 2.5
    found = bootstrap_range("wm", values, errors, draws=2000)
    assert found.parameter == "wm" and 2.2 < found.low <= found.best <= found.high < 2.8
    with pytest.raises(ConfigError, match="four or more"):
        bootstrap_range("wm", [1, 2], [0.1, 0.2])
