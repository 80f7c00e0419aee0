"""Design spaces: each constraint holds in every sample, samples respect the FLOP budget."""

import numpy as np
import pytest

from playground.design_space import SPACES, regnet_stages, sample_space
from playground.errors import ConfigError
from playground.models.anynet import anynet_flops

BUDGET = (1e6, 4e6)


@pytest.mark.parametrize("space", SPACES)
def test_every_sample_lies_in_the_budget_and_is_the_same_for_the_same_seed(space):
    models = sample_space(space, 30, BUDGET, seed=1)
    assert len(models) == 30 and all(
        BUDGET[0] <= anynet_flops(s) == p["flops"] <= BUDGET[1] for s, p in models
    )
    assert [s for s, _ in models] == [s for s, _ in sample_space(space, 30, BUDGET, seed=1)]
    assert [s for s, _ in models] != [s for s, _ in sample_space(space, 30, BUDGET, seed=2)]


def test_each_anynet_space_adds_its_constraint():
    shared = lambda values: len(set(values)) == 1  # noqa: E731
    rising = lambda values: list(values) == sorted(values)  # noqa: E731
    checks = {
        "anynetxb": lambda s: shared(s.bottlenecks),
        "anynetxc": lambda s: shared(s.bottlenecks) and shared(s.group_widths),
        "anynetxd": lambda s: shared(s.group_widths) and rising(s.widths),
        "anynetxe": lambda s: shared(s.group_widths) and rising(s.widths) and rising(s.depths),
        "regnety": lambda s: s.se and rising(s.widths) and shared(s.bottlenecks),
    }
    for space, holds in checks.items():
        assert all(holds(spec) for spec, _ in sample_space(space, 40, BUDGET)), space
    free = [spec for spec, _ in sample_space("anynetxa", 40, BUDGET)]
    assert not all(len(set(s.bottlenecks)) == 1 for s in free) and not all(
        s.widths == sorted(s.widths) for s in free
    )


def test_regnet_widths_follow_the_quantised_linear_function():
    depths, widths = regnet_stages(depth=8, w0=24, wa=20.0, wm=2.0)
    u = 24 + 20.0 * np.arange(8)
    expected = [int(round(24 * 2.0 ** round(np.log(v / 24) / np.log(2.0)) / 8) * 8) for v in u]
    assert sum(depths) == 8 and [w for w, d in zip(widths, depths) for _ in range(d)] == expected
    assert widths == sorted(widths) and all(w % 8 == 0 for w in widths)


def test_bad_spaces_and_budgets_are_refused():
    with pytest.raises(ConfigError, match="unknown design space 'anynetxz'"):
        sample_space("anynetxz", 1, BUDGET)
    with pytest.raises(ConfigError, match="0 < low < high"):
        sample_space("anynetxa", 1, (4e6, 1e6))
    with pytest.raises(ConfigError, match="fell in the FLOP budget"):
        sample_space("anynetxa", 1, (1.0, 2.0))
