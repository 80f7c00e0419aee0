"""Sweep trials: grids and samples are checked against the experiment's config before any work."""

import pytest

from playground.classify.experiment import Config
from playground.errors import ConfigError
from playground.sweep.space import Trial, check_ranges, grid_trials, parse_grid, sample_trials


def test_a_grid_is_typed_by_the_config_and_expands_to_every_combination_per_seed():
    grid = parse_grid(["lr=0.1,1e-2", "width=[16, 32]", "optimizer=sgd,adam"], Config)
    assert grid == {"lr": [0.1, 0.01], "width": [16, 32], "optimizer": ["sgd", "adam"]}
    trials = grid_trials(grid, [0, 1])
    assert len(trials) == 2 * 2 * 2 * 2
    assert trials[0] == Trial((("lr", 0.1), ("optimizer", "sgd"), ("width", 16)), 0)
    assert len({(t.values, t.seed) for t in trials}) == len(trials)
    assert trials[0].label() == "lr=0.1 optimizer=sgd width=16 seed=0"


@pytest.mark.parametrize(
    "entry, problem",
    [
        ("nope=1,2", "unknown key 'nope'"),
        ("width=", "a grid entry looks like key=v1,v2"),
        ("width=8,", "an empty value"),
        ("width=eight", "width must be int"),
        ("=3", "a grid entry looks like key=v1,v2"),
    ],
)
def test_a_bad_grid_entry_is_one_clear_error(entry, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_grid([entry], Config)


def test_a_key_given_twice_and_an_empty_grid_are_refused():
    with pytest.raises(ConfigError, match="width is in the grid twice"):
        parse_grid(["width=8", "width=16"], Config)
    with pytest.raises(ConfigError, match="the sweep is empty"):
        grid_trials({}, [0])


def test_samples_are_the_same_every_time_and_stay_in_their_ranges():
    ranges = check_ranges(
        {
            "lr": {"low": 1e-4, "high": 1e-1, "log": True},
            "width": [8, 16],
            "epochs": {"low": 1, "high": 3, "integer": True},
        },
        Config,
        "test",
    )
    trials = sample_trials(ranges, 50, [0], sample_seed=3)
    assert (
        trials
        == sample_trials(ranges, 50, [0], sample_seed=3)
        != sample_trials(ranges, 50, [0], sample_seed=4)
    )
    values = [t.as_dict() for t in trials]
    assert all(1e-4 <= v["lr"] <= 1e-1 and v["width"] in (8, 16) and v["epochs"] in (1, 2, 3) for v in values)
    assert {v["epochs"] for v in values} == {1, 2, 3} and {v["width"] for v in values} == {8, 16}
    small = sum(v["lr"] < 1e-2 for v in values)  # log-uniform: two of the three decades lie below 1e-2
    assert 25 <= small <= 42


@pytest.mark.parametrize(
    "ranges, problem",
    [
        (None, "needs a \\[sweep.ranges\\] table"),
        ({"nope": [1]}, "unknown key 'nope'"),
        ({"lr": {"low": 1}}, "give a list of choices or"),
        ({"lr": {"low": 1, "high": 2, "step": 1}}, "give a list of choices or"),
        ({"lr": {"low": 2, "high": 1}}, "low ≤ high"),
        ({"lr": {"low": 0, "high": 1, "log": True}}, "> 0 with log"),
        ({"lr": {"low": float("nan"), "high": 1}}, "finite numbers"),
        ({"width": []}, "must not be empty"),
        ({"width": {"low": "a", "high": "b"}}, "finite numbers"),
    ],
)
def test_bad_ranges_are_one_clear_error(ranges, problem):
    with pytest.raises(ConfigError, match=problem):
        check_ranges(ranges, Config, "recipe r.toml")


def test_a_trial_key_depends_on_its_values_its_seed_and_the_sweep():
    trial = Trial((("width", 8),), 0)
    assert trial.key("a") == Trial((("width", 8),), 0).key("a")
    assert (
        len(
            {
                trial.key("a"),
                trial.key("b"),
                Trial((("width", 8),), 1).key("a"),
                Trial((("width", 16),), 0).key("a"),
            }
        )
        == 4
    )
