"""The label experiment end to end at toy size: crowd metrics, both loop orders through the real
project code, the auto-label error within alpha, the plot and the report."""

from __future__ import annotations

import math

import pytest

from playground.errors import ConfigError
from playground.label.experiment import Config, run
from tests.conftest import needs_fashion_mnist


def test_bad_orders_and_sizes_are_refused():
    with pytest.raises(ConfigError, match="orders"):
        Config(orders=["sideways"])
    with pytest.raises(ConfigError, match="rounds"):
        Config(pool_size=100, rounds=3, budget=50)


@pytest.mark.slow
@needs_fashion_mnist()
def test_a_toy_loop_learns_from_simulated_annotators(tmp_path):
    from playground.active.learner import TrainSpec

    config = Config(
        out=str(tmp_path),
        crowd_limit=600,
        pool_size=400,
        test_size=300,
        rounds=2,
        budget=60,
        seed_size=40,
        min_calibration=20,
        target_accuracy=0.3,
        train=TrainSpec(width=8, min_steps=30, max_steps=40, finetune_steps=20, replay=50),
    )
    result = run(config)
    values = result.metrics.values
    assert values["crowd/spammer/dawid_skene/accuracy"] > values["crowd/spammer/majority/accuracy"]
    for order in ("uncertainty", "random"):
        assert values[f"loop/{order}/final_accuracy"] > 0.3  # 10 classes: chance is 0.1
        assert values[f"loop/{order}/labels_to_target"] <= 2 * 60 + 40
    assert (
        math.isnan(values.get("loop/auto_label_error", math.nan)) or values["loop/auto_label_error"] <= 0.06
    )
    assert (result.run_dir / "loop_curve.png").is_file()
    assert "The loop" in (result.run_dir / "report.md").read_text()
