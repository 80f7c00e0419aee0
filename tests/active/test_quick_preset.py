"""The recipe's quick preset end to end on real Fashion-MNIST (CI size, about 2 minutes)."""

import pytest

from playground.core.runner import config_from_recipe
from playground.store import Store
from tests.conftest import REPO, needs_fashion_mnist

pytestmark = [pytest.mark.slow, needs_fashion_mnist()]


def test_quick_preset_learns_escalates_safely_and_fills_the_queue():
    module, config = config_from_recipe(REPO / "recipes" / "active_fashion.toml", "quick")
    result = module.run(config)
    values = result.metrics.values
    for strategy in config.methods:
        curve = result.results.loops[strategy].series("accuracy")
        assert curve[-1] >= 0.6 and curve[-1] > curve[0], (strategy, curve)
    # the calibrated threshold keeps the auto-label error on the held-out stream within alpha + 0.01
    assert values["escalation/certified"] == 1.0
    assert values["escalation/auto_label_error"] <= values["escalation/alpha"] + 0.01
    # OOD images are flagged far more often than in-distribution ones and almost never auto-labelled
    assert (
        values["escalation/ood_flagged"] >= 0.2
        and values["escalation/ood_flagged"] > 3 * values["escalation/id_flagged"]
    )
    assert values["escalation/ood_auto_labelled"] <= 0.05
    routes = result.results.escalation.routes
    assert Store().progress(config.queue)["total"] == int(((routes == 1) | (routes == 2)).sum())
    assert "## Checks" in result.report and "labels to 65%" in result.report
